"""Tag endpoints: a group's tag keys, tag values of a group or project, deleting a key."""

from __future__ import annotations

import re

from flask import Response

from .. import errors
from ..apidoc import Op
from ..apidoc import link
from ..http import json_response
from ..pagination import paginate
from ..schemas import TAG_KEY_PATTERN
from ..schemas import PageArgs
from ..schemas import PageArgsSchema
from ..schemas import TagKeySchema
from ..schemas import TagValueSchema
from .base import GROUP_FROM_PATH
from .base import APIView

#: Most frequent values listed per key in ``/groups/<id>/tags/``.
TOP_VALUES = 10
_TAG_KEY = re.compile(TAG_KEY_PATTERN)


def _check_key(key: str) -> None:
    # A key no event could have produced names nothing: answer as for an unknown key.
    if not _TAG_KEY.fullmatch(key):
        raise errors.NotFound()


class GroupTagsView(APIView):
    """The tag keys of a group, each with its distinct values, event count and top values."""

    scope_kind = "event"

    operations = {
        "get": Op(
            "The group's tag keys with their top values.",
            body="TagKey",
            many=True,
            paged=False,
            links={
                "FirstKeyValues": link(
                    "getGroupTagValues", group_id=GROUP_FROM_PATH, key="$response.body#/0/key"
                ),
            },
        ),
    }

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        summaries = self.storage.group_tag_keys(group.id, TOP_VALUES)
        return json_response(TagKeySchema(many=True).dump(summaries))


def _values_operations(scope: str) -> dict[str, Op]:
    return {
        "get": Op(
            f"Values of a tag key in the {scope}, most seen first.",
            body="TagValue",
            many=True,
            query=PageArgsSchema,
        ),
    }


class TagValuesView(APIView):
    """Values of one tag key, most seen first (404 when the key has none)."""

    def values(self, project_id: int, key: str, group_id: int | None) -> Response:
        _check_key(key)
        args: PageArgs = self.query_args()
        page = paginate(
            lambda window: self.storage.list_tag_values(project_id, key, window, group_id),
            lambda value: value.times_seen,
            args.cursor,
            args.limit,
            count_key=lambda seen: self.storage.count_tag_values_with_key(
                project_id, key, seen, group_id
            ),
        )
        if not page.rows and args.cursor is None:
            raise errors.NotFound("No such tag key.")
        return self.paginated(page, TagValueSchema(many=True).dump(page.rows))


class GroupTagValuesView(TagValuesView):
    """Values of one tag key within a group, most seen first."""

    scope_kind = "event"

    operations = _values_operations("group")

    def get(self, group_id: int, key: str) -> Response:
        group, project = self.group_for_key(group_id)
        return self.values(project.id, key, group.id)


class ProjectTagValuesView(TagValuesView):
    """Values of one tag key across the project, most seen first."""

    operations = _values_operations("project")

    def get(self, project_id: int, key: str) -> Response:
        self.project_for_key(project_id)
        return self.values(project_id, key, None)


class ProjectTagKeyView(APIView):
    """A tag key of the project: DELETE removes its values from the project and its groups."""

    operations = {
        "delete": Op("Delete a tag key's values from the project and its groups.", status=204),
    }

    def delete(self, project_id: int, key: str) -> Response:
        self.project_for_key(project_id)
        _check_key(key)
        if not self.storage.delete_tag_key(project_id, key):
            raise errors.NotFound("No such tag key.")
        return json_response(None, 204)
