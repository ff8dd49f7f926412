"""How a group's ``permalink`` is written: ``SENTRY_API_PERMALINK_TEMPLATE``, or the group's
API URL; one rule for the API's answers and for the signals of both ingestion modes."""

from __future__ import annotations

import typing as t

from flask import request
from flask import url_for

from .state import get_state
from .storage import MAX_ID
from .storage import Group
from .storage import Project


def permalink_writer(project: Project) -> t.Callable[[Group], str]:
    """How this request writes the permalinks of ``project``'s groups.

    Without a template the URL is the group's API URL, and building it raises
    :class:`~werkzeug.routing.BuildError` where the API's blueprint is not registered.
    """
    template = get_state().settings.permalink_template
    if template is None:
        # url_for costs more than all the rest of a listed group's serialisation, and the
        # URLs of a request differ only in the id: build one and splice the ids into it.
        marker = str(MAX_ID)
        url = url_for("sentry_api.group_details", group_id=MAX_ID, _external=True)
        head, found, tail = url.rpartition(marker)
        if found and marker not in head:
            return lambda group: f"{head}{group.id}{tail}"
        return lambda group: url_for("sentry_api.group_details", group_id=group.id, _external=True)
    base_url = request.host_url.rstrip("/")
    return lambda group: template.format(
        base_url=base_url, project_id=project.id, project_slug=project.slug, group_id=group.id
    )
