"""The dashboard's blueprint: its pages (projects, a project's issues, an issue, releases),
its POST actions, and its error pages.

Every page reads through the app's :class:`~flask_sentry_api.storage.Storage`, with the
same parsing and paging as the API (``schemas.GroupListArgsSchema``, ``paginate``) and the
same storage calls: a page of issues is one ``list_groups`` read (two for a newer page) and
one ``group_stats`` read for all its rows. Every request is first put to the host's
``SENTRY_API_DASHBOARD_AUTH`` (:mod:`.access`); every POST must carry the session's CSRF
token and is answered with a redirect (303) to the page that shows its result.
"""

from __future__ import annotations

import time
import typing as t

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from marshmallow import ValidationError

from .. import errors
from .. import signals
from ..pagination import Cursor
from ..pagination import Window
from ..pagination import paginate
from ..schemas import GroupListArgs
from ..schemas import GroupListArgsSchema
from ..schemas import NoteCreateSchema
from ..schemas import PageArgs
from ..schemas import PageArgsSchema
from ..schemas import load_query
from ..state import get_state
from ..stats import period_buckets
from ..stats import series_filler
from ..storage import GROUP_STATUSES
from ..storage import LEVELS
from ..storage import MAX_ID
from ..storage import Event
from ..storage import Group
from ..storage import GroupChanges
from ..storage import GroupQuery
from ..storage import Project
from ..storage import Storage
from ..storage import Unavailable
from ..storage import group_sort_key
from ..storage import utcnow
from ..views.groups import ResolvedGroups
from ..views.groups import resolve_reporting
from ..views.groups import send_resolved
from . import render
from .access import CSRF_FIELD
from .access import BadCSRFToken
from .access import Refused
from .access import add_security_headers
from .access import check_access
from .access import check_csrf
from .access import csrf_token

blueprint = Blueprint(
    "sentry_dashboard",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: The one-shot message of the page a POST redirects to.
NOTICE_SESSION_KEY = "_sentry_dashboard_notice"
#: The status tabs of the issues page: (label, ``is:`` value or None for every status).
TABS = (("Unresolved", "unresolved"), ("Resolved", "resolved"), ("Muted", "muted"), ("All", None))
SORT_LABELS = {"date": "Last seen", "new": "First seen", "freq": "Events", "priority": "Priority"}
#: The group-list parameters the issues page reads (the API's names and meaning).
_LIST_PARAMS = ("query", "sort", "cursor", "limit", "per_page")
#: Most notes an issue page shows (newest first).
NOTES_SHOWN = 100
#: Most values shown per tag key.
TOP_TAG_VALUES = 5
_STATUS_CHOICES = ("resolved", "unresolved", "muted")
_STATUS_NOTICES = {
    "resolved": "Issue resolved.",
    "unresolved": "Issue marked unresolved.",
    "muted": "Issue muted.",
}


def _storage() -> Storage:
    return get_state().storage


# -- every request ------------------------------------------------------------------------


@blueprint.before_request
def _guard() -> Response | None:
    """Access first (the stylesheet and script excepted: they are the package's own files),
    then the CSRF token of a POST."""
    if request.endpoint == f"{blueprint.name}.static":
        return None
    answer = check_access()
    if answer is not None:
        return answer
    if request.method == "POST":
        check_csrf()
    return None


blueprint.after_request(add_security_headers)


@blueprint.context_processor
def _page_globals() -> dict[str, t.Any]:
    return {"csrf_field": CSRF_FIELD, "csrf_token": csrf_token}


def _page(template: str, status: int = 200, **context: t.Any) -> Response:
    now = utcnow()
    notice = session.pop(NOTICE_SESSION_KEY, None)
    body = render_template(
        f"sentry_dashboard/{template}",
        notice=notice if isinstance(notice, str) else None,
        now=now,
        ago=lambda moment: render.time_ago(moment, now),
        exact=render.exact_time,
        shorten=render.shorten,
        **context,
    )
    return Response(body, status, content_type="text/html; charset=utf-8")


def _redirect(endpoint: str, notice: str, **values: t.Any) -> Response:
    session[NOTICE_SESSION_KEY] = notice
    return t.cast(Response, redirect(url_for(endpoint, **values), 303))


# -- errors -------------------------------------------------------------------------------


@blueprint.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    return _page("refused.html", 403, reason=error.reason)


@blueprint.errorhandler(BadCSRFToken)
def _bad_csrf(error: BadCSRFToken) -> Response:
    return _page(
        "error.html",
        400,
        title="Form expired",
        detail="The form was sent without a valid security token (it may be from an earlier"
        " session). Go back, reload the page and try again.",
    )


@blueprint.errorhandler(errors.APIError)
def _api_error(error: errors.APIError) -> Response:
    titles = {400: "Bad request", 404: "Not found", 503: "Storage unavailable"}
    return _page(
        "error.html",
        error.status_code,
        title=titles.get(error.status_code, "Error"),
        detail=error.detail,
    )


@blueprint.errorhandler(Unavailable)
def _unavailable(error: Unavailable) -> Response:
    return _api_error(errors.StorageUnavailable())


def _check_id(*ids: int) -> None:
    if any(value > MAX_ID for value in ids):
        raise errors.NotFound()  # no stored id is that large (ids are 64-bit)


def _project(project_id: int) -> Project:
    _check_id(project_id)
    project = _storage().get_project(project_id)
    if project is None:
        raise errors.NotFound("There is no such project.")
    return project


def _group(group_id: int) -> tuple[Group, Project]:
    _check_id(group_id)
    storage = _storage()
    group = storage.get_group(group_id)
    project = storage.get_project(group.project_id) if group is not None else None
    if group is None or project is None:
        raise errors.NotFound("There is no such issue (it may have been deleted).")
    return group, project


# -- pages --------------------------------------------------------------------------------


@blueprint.get("/")
def projects() -> Response:
    return _page("projects.html", projects=_storage().list_projects())


def _list_args() -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in _LIST_PARAMS if name in request.args}


def _page_url(project: Project, query: str, sort: str, cursor: Cursor | None) -> str:
    values: dict[str, t.Any] = {"project_id": project.id, "query": query}
    if sort != "date":
        values["sort"] = sort
    if cursor is not None:
        values["cursor"] = str(cursor)
    limit = request.args.get("limit")
    if limit:
        values["limit"] = limit
    return url_for(".issues", **values)


@blueprint.get("/projects/<int:project_id>/")
def issues(project_id: int) -> Response:
    project = _project(project_id)
    storage = _storage()
    settings = get_state().settings
    # No "query" at all means is:unresolved, as in the API; the box shows it spelt out.
    query_text = request.args.get("query", "is:unresolved")
    sort = request.args.get("sort") or "date"
    context: dict[str, t.Any] = {
        "project": project,
        "query": query_text,
        "sort": sort,
        "sorts": SORT_LABELS,
        "rows": [],
        "error": None,
        "newer": None,
        "older": None,
    }
    try:
        args: GroupListArgs = load_query(GroupListArgsSchema, _list_args(), settings)
    except errors.BadRequest as exc:
        context.update(error=exc.detail, tabs=_tabs(project, None, sort, "unresolved"))
        return _page("issues.html", 400, **context)
    selection = args.selection
    page = paginate(
        lambda window: storage.list_groups(project.id, selection, window),
        lambda group: group_sort_key(group, selection.sort),
        args.page.cursor,
        args.page.limit,
        count_key=lambda key: storage.count_groups_with_key(project.id, selection, key),
    )
    resolution, first, last = period_buckets("24h", int(time.time()))
    counts = storage.group_stats([group.id for group in page.rows], resolution, first, last)
    fill = series_filler(first, last, resolution)
    chart = render.BarChart((last - first) // resolution + 1)
    empty: dict[int, int] = {}
    charts = [chart(fill(counts.get(group.id, empty))) for group in page.rows]
    rows = render.issue_rows(page.rows, charts, utcnow())
    # url_for costs more than the rest of a row: build one issue URL and splice the ids in.
    marker = str(MAX_ID)
    head, _, tail = url_for(".issue", group_id=MAX_ID).rpartition(marker)
    base = render.format_query(None, selection.tags, selection.text)
    context.update(
        rows=rows,
        short_prefix=f"{project.slug.upper()}-",
        levels=LEVELS,
        statuses=GROUP_STATUSES,
        issue_url=(head, tail),
        tabs=_tabs(project, base, selection.sort, selection.status),
        newer=_page_url(project, query_text, selection.sort, page.prev)
        if page.prev.has_results
        else None,
        older=_page_url(project, query_text, selection.sort, page.next)
        if page.next.has_results
        else None,
        sort=selection.sort,
    )
    return _page("issues.html", **context)


def _tabs(
    project: Project, base: str | None, sort: str, active: str | None
) -> list[tuple[str, str, bool]]:
    """(label, URL, current) of each status tab: the search with its ``is:`` replaced."""
    tabs = []
    for label, status in TABS:
        query = " ".join(part for part in (f"is:{status}" if status else "", base or "") if part)
        tabs.append((label, _page_url(project, query, sort, None), status == active))
    return tabs


@blueprint.get("/issues/<int:group_id>/")
@blueprint.get("/issues/<int:group_id>/events/<int:event_id>/")
def issue(group_id: int, event_id: int | None = None) -> Response:
    group, project = _group(group_id)
    storage = _storage()
    event: Event | None
    if event_id is None:
        event = storage.latest_event(group.id)
    else:
        _check_id(event_id)
        event = storage.get_event(event_id)
        if event is None or event.group_id != group.id:
            raise errors.NotFound("This issue has no such event.")
    older = newer = None
    if event is not None:
        older, newer = storage.adjacent_events(event)
    resolution, first, last = period_buckets("24h", int(time.time()))
    counts = storage.group_stats([group.id], resolution, first, last).get(group.id, {})
    notes = storage.list_notes(
        group.id, Window(op=None, value=0, descending=True, offset=0, limit=NOTES_SHOWN)
    )
    return _page(
        "issue.html",
        group=group,
        project=project,
        short_id=f"{project.slug.upper()}-{group.id}",
        event=event,
        view=render.event_view(event) if event is not None else None,
        older=older,
        newer=newer,
        activity=render.BarChart(
            (last - first) // resolution + 1, width=240, height=40, css="chart", counts=True
        )(series_filler(first, last, resolution)(counts)),
        tags=render.tag_distributions(storage.group_tag_keys(group.id, TOP_TAG_VALUES)),
        notes=notes,
        notes_shown=NOTES_SHOWN,
    )


@blueprint.get("/projects/<int:project_id>/releases/")
def releases(project_id: int) -> Response:
    project = _project(project_id)
    storage = _storage()
    args: PageArgs = load_query(
        PageArgsSchema,
        {name: request.args.getlist(name) for name in ("cursor", "limit") if name in request.args},
        get_state().settings,
    )
    page = paginate(
        lambda window: storage.list_releases(project.id, window),
        lambda release: release.id,
        args.cursor,
        args.limit,
    )

    def link(cursor: Cursor) -> str | None:
        if not cursor.has_results:
            return None
        return url_for(".releases", project_id=project.id, cursor=str(cursor))

    return _page(
        "releases.html",
        project=project,
        releases=page.rows,
        newer=link(page.prev),
        older=link(page.next),
    )


@blueprint.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(unknown: str) -> Response:
    """Anything else under the prefix: a 404 page, after the access check like every page
    (so a stranger learns nothing from which paths exist)."""
    raise errors.NotFound("There is no such page.")


# -- actions ------------------------------------------------------------------------------


@blueprint.post("/issues/<int:group_id>/status/")
def set_status(group_id: int) -> Response:
    group, project = _group(group_id)
    status = request.form.get("status", "")
    if status not in _STATUS_CHOICES:
        raise errors.BadRequest(f"Unknown status; use one of {', '.join(_STATUS_CHOICES)}.")
    storage = _storage()
    update = GroupChanges(status=status)
    selection = GroupQuery(ids=(group.id,))
    # As the API does: a host's issue_resolved receivers hear of it, whichever client acted.
    resolved = ResolvedGroups()
    if status == "resolved" and signals.issue_resolved.receivers:
        resolved = resolve_reporting(storage, project.id, selection, update)
    storage.update_groups(project.id, selection, update)
    send_resolved(storage, project, resolved)
    return _redirect(".issue", _STATUS_NOTICES[status], group_id=group.id)


@blueprint.post("/issues/<int:group_id>/bookmark/")
def set_bookmark(group_id: int) -> Response:
    group, project = _group(group_id)
    bookmarked = request.form.get("bookmarked") == "1"
    _storage().update_groups(
        project.id, GroupQuery(ids=(group.id,)), GroupChanges(is_bookmarked=bookmarked)
    )
    notice = "Issue bookmarked." if bookmarked else "Bookmark removed."
    return _redirect(".issue", notice, group_id=group.id)


@blueprint.post("/issues/<int:group_id>/delete/")
def delete(group_id: int) -> Response:
    group, project = _group(group_id)
    _storage().delete_groups(project.id, [group.id])
    return _redirect(
        ".issues", f"Issue {project.slug.upper()}-{group.id} deleted.", project_id=project.id
    )


@blueprint.post("/issues/<int:group_id>/notes/")
def add_note(group_id: int) -> Response:
    group, _ = _group(group_id)
    if "\0" in request.form.get("text", ""):
        # No storage keeps NUL in text (PostgreSQL refuses it), and no note needs one.
        raise errors.BadRequest("The note was not added: it contains a NUL character.")
    try:
        text = NoteCreateSchema().load({"text": request.form.get("text", "")})["text"]
    except ValidationError as exc:
        messages = exc.messages
        found = messages.get("text", []) if isinstance(messages, dict) else []
        detail = "; ".join(str(message) for message in found) or "invalid text"
        raise errors.BadRequest(f"The note was not added: {detail}") from None
    try:
        _storage().create_note(group.id, text)
    except LookupError:
        raise errors.NotFound("There is no such issue (it may have been deleted).") from None
    return _redirect(".issue", "Note added.", group_id=group.id)
