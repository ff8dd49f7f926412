"""Group endpoints: the project's group list with bulk update/delete, one group, its notes."""

from __future__ import annotations

import dataclasses
import time
import typing as t

from flask import Response
from flask import request
from flask import url_for

from . import errors
from .blueprint import json_body
from .blueprint import json_response
from .extension import get_state
from .pagination import paginate
from .schemas import BulkGroupUpdateSchema
from .schemas import GroupUpdateSchema
from .schemas import NoteCreateSchema
from .schemas import NoteSchema
from .schemas import dump_group_list
from .search import parse_sort
from .search import parse_stats_period
from .search import parse_time_bound
from .search import resolve_status_filter
from .stats import fill_series
from .stats import period_buckets
from .storage import Group
from .storage import GroupChanges
from .storage import GroupQuery
from .storage import Project
from .storage import group_sort_key
from .views import MAX_ID
from .views import APIView

_BULK_PARAMS = frozenset({"id", "status", "query"})
_FLAG_FIELDS = {"isBookmarked": "is_bookmarked", "hasSeen": "has_seen", "isPublic": "is_public"}
_CHANGE_FIELDS = ("status", *_FLAG_FIELDS.values())


def permalink(project: Project) -> t.Callable[[Group], str]:
    """How group permalinks are written for this request (SENTRY_API_PERMALINK_TEMPLATE)."""
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


def dump_groups(
    groups: t.Sequence[Group], project: Project, stats_period: str | None, *, many: bool = True
) -> t.Any:
    """Serialise groups, their ``stats`` computed in one storage call for all of them."""
    stats: dict[int, list[list[int]]] = {}
    if stats_period:
        resolution, first, last = period_buckets(stats_period, int(time.time()))
        counts = get_state().storage.group_stats([g.id for g in groups], resolution, first, last)
        stats = {g.id: fill_series(counts.get(g.id, {}), first, last, resolution) for g in groups}
    dumped = dump_group_list(groups, project, permalink(project))
    if stats_period:
        for group, out in zip(groups, dumped, strict=True):
            out["stats"] = {stats_period: stats[group.id]}
    return dumped if many else dumped[0]


def _selection(*, default_unresolved: bool) -> GroupQuery:
    """The groups selected by ``query``, ``status``, ``since``, ``until`` and ``sort``."""
    args = request.args
    status, parsed = resolve_status_filter(
        args.get("query"), args.get("status"), default_unresolved=default_unresolved
    )
    since, until = args.get("since"), args.get("until")
    return GroupQuery(
        status=status,
        tags=parsed.tags,
        text=parsed.text,
        since=parse_time_bound(since, param="since") if since else None,
        until=parse_time_bound(until, param="until") if until else None,
        sort=parse_sort(args.get("sort")),
    )


def _bulk_ids() -> tuple[int, ...] | None:
    """The repeated ``id`` parameters of a bulk request (None when absent)."""
    unknown = sorted(set(request.args) - _BULK_PARAMS)
    if unknown:
        raise errors.BadRequest(
            f'Unknown query parameter "{unknown[0]}": bulk changes take only id, status and'
            " query, so nothing is selected by accident."
        )
    raw = request.args.getlist("id")
    if not raw:
        return None
    limit = get_state().settings.max_bulk_ids
    if len(raw) > limit:
        raise errors.BadRequest(f'Too many "id" parameters: {len(raw)}, at most {limit}.')
    ids = []
    for value in raw:
        if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_ID:
            raise errors.BadRequest(
                f'Invalid value for parameter "id": {value[:50]!r} is not a group id.'
            )
        ids.append(int(value))
    return tuple(dict.fromkeys(ids))


def _check_bulk_changes(
    raw: t.Mapping[str, t.Any], changes: t.Mapping[str, t.Any], ids: tuple[int, ...] | None
) -> None:
    """Refuse bulk changes that would be unsafe or that cannot be honoured."""
    if changes.get("snooze_duration") is not None:
        raise errors.BadRequest('snoozeDuration is not supported: mute with {"status": "muted"}.')
    if ids is None:
        # Without ids a change would reach the whole project: only a status may do that.
        for name in (*_FLAG_FIELDS, "merge"):
            if name in raw:
                raise errors.BadRequest(
                    f'"{name}" can only be changed for groups named by "id" parameters.'
                )
    if changes.get("merge") and (ids is None or len(ids) < 2):
        raise errors.BadRequest('"merge" needs at least two "id" parameters.')


class ProjectGroupIndexView(APIView):
    """The project's groups. GET searches and pages them; PUT changes the status or flags
    of a selection (repeated ``id``, or ``status``/``query`` filters; without ids only
    ``status`` may change); DELETE removes the groups named by repeated ``id``."""

    parameters = {
        "query": "search: is:<status>, key:value tag filters, free text (default is:unresolved)",
        "status": "unresolved | resolved | muted",
        "sort": "date (default) | new | freq | priority",
        "since": "lastSeen lower bound (Unix seconds or ISO 8601)",
        "until": "lastSeen upper bound (Unix seconds or ISO 8601)",
        "statsPeriod": "24h (default) | 14d | empty for no stats",
        "limit": "page size, 1 to the maximum (default 100)",
        "cursor": "from the Link header",
        "id": "PUT/DELETE: a group id, repeatable",
    }

    def get(self, project_id: int) -> Response:
        project = self.project_for_key(project_id)
        query = _selection(default_unresolved=True)
        stats_period = parse_stats_period(request.args.get("statsPeriod"))
        page = paginate(
            lambda window: self.storage.list_groups(project_id, query, window),
            lambda group: group_sort_key(group, query.sort),
            self.cursor(),
            self.page_size(),
            count_key=lambda key: self.storage.count_groups_with_key(project_id, query, key),
        )
        return self.paginated(page, dump_groups(page.rows, project, stats_period))

    def put(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        ids = _bulk_ids()
        selection = dataclasses.replace(_selection(default_unresolved=False), ids=ids)
        raw = json_body()
        changes = BulkGroupUpdateSchema().load(raw)
        _check_bulk_changes(raw, changes, ids)
        result: dict[str, t.Any] = {}
        if changes.get("merge"):
            try:
                parent, children = self.storage.merge_groups(project_id, ids or ())
            except LookupError:
                return json_response(None, 204)
            result["merge"] = {"parent": str(parent), "children": [str(c) for c in children]}
            selection = GroupQuery(ids=(parent,))
        update = GroupChanges(**{name: changes.get(name) for name in _CHANGE_FIELDS})
        matched = self.storage.update_groups(project_id, selection, update)
        if ids is not None and not matched and "merge" not in result:
            return json_response(None, 204)
        if update.status is not None:
            result["status"] = update.status
        for wire_name, attribute in _FLAG_FIELDS.items():
            if getattr(update, attribute) is not None:
                result[wire_name] = getattr(update, attribute)
        return json_response(result)

    def delete(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        ids = _bulk_ids()
        if ids is None:
            raise errors.BadRequest('Bulk delete needs at least one "id" parameter.')
        if set(request.args) - {"id"}:
            raise errors.BadRequest('Bulk delete selects groups by "id" only.')
        self.storage.delete_groups(project_id, ids)
        return json_response(None, 204)


class GroupDetailsView(APIView):
    """One group. GET reads it, PUT changes status/isBookmarked/hasSeen/isPublic, DELETE
    removes it with its events, notes and tag data (202)."""

    def get(self, group_id: int) -> Response:
        group, project = self.group_for_key(group_id)
        return json_response(dump_groups([group], project, "24h", many=False))

    def put(self, group_id: int) -> Response:
        group, project = self.group_for_key(group_id)
        changes = GroupUpdateSchema().load(json_body())
        update = GroupChanges(**changes)
        if not update.is_empty():
            self.storage.update_groups(project.id, GroupQuery(ids=(group.id,)), update)
        updated = self.storage.get_group(group.id)
        if updated is None:
            raise errors.NotFound()
        return json_response(dump_groups([updated], project, "24h", many=False))

    def delete(self, group_id: int) -> Response:
        group, project = self.group_for_key(group_id)
        self.storage.delete_groups(project.id, [group.id])
        return json_response(None, 202)


class GroupNotesView(APIView):
    """Notes on a group: GET pages them newest first, POST {"text": ...} adds one."""

    parameters = {"per_page": "page size (default 100)", "cursor": "from the Link header"}

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        page = paginate(
            lambda window: self.storage.list_notes(group.id, window),
            lambda note: note.id,
            self.cursor(),
            self.page_size(),
        )
        return self.paginated(page, NoteSchema(many=True).dump(page.rows))

    def post(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        text = NoteCreateSchema().load(json_body())["text"]
        note = self.storage.create_note(group.id, text)
        return json_response(NoteSchema().dump(note), 201)
