"""Group endpoints: the project's group list with bulk update/delete, one group, its notes."""

from __future__ import annotations

import dataclasses
import time
import typing as t

from flask import Response
from flask import current_app

from .. import errors
from .. import signals
from ..apidoc import Op
from ..apidoc import link
from ..http import json_body
from ..http import json_response
from ..links import permalink_writer
from ..pagination import Window
from ..schemas import BulkArgs
from ..schemas import BulkDeleteArgsSchema
from ..schemas import BulkGroupUpdateSchema
from ..schemas import BulkUpdateArgsSchema
from ..schemas import GroupListArgs
from ..schemas import GroupListArgsSchema
from ..schemas import GroupUpdateSchema
from ..schemas import NoteCreateSchema
from ..schemas import NoteSchema
from ..schemas import OrganizationBulkDeleteArgsSchema
from ..schemas import OrganizationBulkUpdateArgsSchema
from ..schemas import OrganizationGroupListArgsSchema
from ..schemas import PageArgsSchema
from ..schemas import dump_group_list
from ..state import get_state
from ..stats import period_buckets
from ..stats import series_filler
from ..storage import GROUP_STATUSES
from ..storage import Group
from ..storage import GroupChanges
from ..storage import GroupQuery
from ..storage import Project
from ..storage import Storage
from ..storage import group_sort_key
from .base import FIRST_ID
from .base import GROUP_FROM_PATH
from .base import APIView
from .base import OrganizationScoped
from .base import group_links

_FLAG_FIELDS = {"isBookmarked": "is_bookmarked", "hasSeen": "has_seen", "isPublic": "is_public"}
_CHANGE_FIELDS = ("status", *_FLAG_FIELDS.values())


def dump_groups(
    groups: t.Sequence[Group], project: Project, stats_period: str | None, *, many: bool = True
) -> t.Any:
    """Serialise groups, their ``stats`` computed in one storage call for all of them."""
    dumped = dump_group_list(groups, project, permalink_writer(project))
    if stats_period:
        resolution, first, last = period_buckets(stats_period, int(time.time()))
        counts = get_state().storage.group_stats([g.id for g in groups], resolution, first, last)
        fill = series_filler(first, last, resolution)
        empty: dict[int, int] = {}
        for group, out in zip(groups, dumped, strict=True):
            out["stats"] = {stats_period: fill(counts.get(group.id, empty))}
    return dumped if many else dumped[0]


@dataclasses.dataclass(frozen=True)
class ResolvedGroups:
    """The groups one request changed from not resolved to resolved: how many, and their ids
    when the request named its groups (see :func:`resolve_reporting`)."""

    count: int = 0
    ids: tuple[int, ...] = ()


def resolve_reporting(
    storage: Storage, project_id: int, selection: GroupQuery, update: GroupChanges
) -> ResolvedGroups:
    """Apply ``update`` (which resolves) first to the selected groups that are not resolved,
    each UPDATE conditional on the status it expects, so what it matched is exactly what this
    request resolved, whatever a concurrent request does. The caller then applies ``update``
    to the whole selection as usual (a no-op for these groups).

    Groups named by ``id`` (at most ``SENTRY_API_MAX_BULK_IDS``) are read once and resolved
    one by one, so their ids are known (Sentry does the same); a selection by filters alone
    may reach a whole project, so it is resolved with one UPDATE per status and only counted.
    Called only when a receiver of ``issue_resolved`` is connected.
    """
    pending = tuple(status for status in GROUP_STATUSES if status != "resolved")
    if selection.status is not None:
        pending = tuple(status for status in pending if status == selection.status)
    if selection.ids is None:
        count = sum(
            storage.update_groups(project_id, dataclasses.replace(selection, status=status), update)
            for status in pending
        )
        return ResolvedGroups(count=count)
    window = Window(op=None, value=0, descending=True, offset=0, limit=max(len(selection.ids), 1))
    changed = [
        group.id
        for group in storage.list_groups(project_id, selection, window)
        if group.status in pending
        and storage.update_groups(
            project_id, GroupQuery(ids=(group.id,), status=group.status), update
        )
    ]
    return ResolvedGroups(count=len(changed), ids=tuple(changed))


def send_resolved(storage: Storage, project: Project, resolved: ResolvedGroups) -> None:
    """Send ``issue_resolved`` for what :func:`resolve_reporting` resolved (after its commits),
    with the named groups as stored now (one read)."""
    if not resolved.count:
        return
    groups: tuple[Group, ...] = ()
    if resolved.ids:
        window = Window(op=None, value=0, descending=True, offset=0, limit=len(resolved.ids))
        listed = storage.list_groups(project.id, GroupQuery(ids=resolved.ids), window)
        order = {group_id: index for index, group_id in enumerate(resolved.ids)}
        groups = tuple(sorted(listed, key=lambda group: order[group.id]))
    link = permalink_writer(project)
    signals.send(
        signals.issue_resolved,
        current_app._get_current_object(),  # type: ignore[attr-defined]
        project=project,
        groups=groups,
        permalinks=tuple(link(group) for group in groups),
        count=resolved.count,
    )


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

    scope_kind = "event"

    operations = {
        "get": Op(
            "Search the project's groups, a page at a time.",
            body="Group",
            many=True,
            query=GroupListArgsSchema,
            links={
                "FirstGroup": link("getGroupDetails", group_id=FIRST_ID),
                "UpdateFirstGroup": link("putGroupDetails", group_id=FIRST_ID),
                "FirstGroupLatestEvent": link("getGroupLatestEvent", group_id=FIRST_ID),
                "FirstGroupTags": link("getGroupTags", group_id=FIRST_ID),
                "FirstGroupNotes": link("getGroupNotes", group_id=FIRST_ID),
            },
        ),
        "put": Op(
            "Change the groups named by `id`, or the status of every group the filters select.",
            body="BulkGroupUpdateResult",
            query=BulkUpdateArgsSchema,
            request="BulkGroupUpdate",
            extra={204: "None of the groups named by `id` belongs to the project."},
        ),
        "delete": Op(
            "Delete the groups named by `id`, with their events, notes and tag data.",
            status=204,
            query=BulkDeleteArgsSchema,
        ),
    }

    def get(self, project_id: int) -> Response:
        project = self.project_for_key(project_id)
        args: GroupListArgs = self.query_args()
        query = args.selection
        return self.list_response(
            lambda window: self.storage.list_groups(project_id, query, window),
            lambda groups: dump_groups(groups, project, args.stats_period),
            key=lambda group: group_sort_key(group, query.sort),
            page=args.page,
            count_key=lambda key: self.storage.count_groups_with_key(project_id, query, key),
        )

    def put(self, project_id: int) -> Response:
        project = self.project_for_key(project_id)
        args: BulkArgs = self.query_args()
        ids = args.ids
        selection = dataclasses.replace(args.selection, ids=ids)
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
        reporting = update.status == "resolved" and bool(signals.issue_resolved.receivers)
        resolved = ResolvedGroups()
        if reporting:
            resolved = resolve_reporting(self.storage, project_id, selection, update)
        matched = self.storage.update_groups(project_id, selection, update)
        if reporting:
            send_resolved(self.storage, project, resolved)
        if ids is not None and not (matched or resolved.count) and "merge" not in result:
            return json_response(None, 204)
        if update.status is not None:
            result["status"] = update.status
        for wire_name, attribute in _FLAG_FIELDS.items():
            if getattr(update, attribute) is not None:
                result[wire_name] = getattr(update, attribute)
        return json_response(result)

    def delete(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        ids: tuple[int, ...] = self.query_args()
        self.storage.delete_groups(project_id, ids)
        return json_response(None, 204)


class OrganizationIssuesView(OrganizationScoped, ProjectGroupIndexView):
    """The organization's issues (over the projects the credential reaches; ``project``
    narrows): GET, PUT and DELETE as on a project's group list."""

    operations = {
        verb: dataclasses.replace(op, query=schema)
        for (verb, op), schema in zip(
            ProjectGroupIndexView.operations.items(),
            (
                OrganizationGroupListArgsSchema,
                OrganizationBulkUpdateArgsSchema,
                OrganizationBulkDeleteArgsSchema,
            ),
            strict=True,
        )
    }

    def get(self) -> Response:  # type: ignore[override]
        return super().get(self.reachable_project().id)

    def put(self) -> Response:  # type: ignore[override]
        return super().put(self.reachable_project().id)

    def delete(self) -> Response:  # type: ignore[override]
        return super().delete(self.reachable_project().id)


class GroupDetailsView(APIView):
    """One group. GET reads it, PUT changes status/isBookmarked/hasSeen/isPublic, DELETE
    removes it with its events, notes and tag data (202)."""

    scope_kind = "event"

    operations = {
        "get": Op(
            "Read the group (with 24h stats).",
            body="Group",
            links={
                "Project": link("getProjectDetails", project_id="$response.body#/project/id"),
                **group_links(GROUP_FROM_PATH),
            },
        ),
        "put": Op(
            "Change status, isBookmarked, hasSeen or isPublic.",
            body="Group",
            request="GroupUpdate",
            links=group_links(GROUP_FROM_PATH),
        ),
        "delete": Op("Delete the group with its events, notes and tag data.", status=202),
    }

    def get(self, group_id: int) -> Response:
        group, project = self.group_for_key(group_id)
        return json_response(dump_groups([group], project, "24h", many=False))

    def put(self, group_id: int) -> Response:
        group, project = self.group_for_key(group_id)
        changes = GroupUpdateSchema().load(json_body())
        update = GroupChanges(**changes)
        resolved = ResolvedGroups()
        if update.status == "resolved" and signals.issue_resolved.receivers:
            resolved = resolve_reporting(
                self.storage, project.id, GroupQuery(ids=(group.id,)), update
            )
        if not update.is_empty():
            self.storage.update_groups(project.id, GroupQuery(ids=(group.id,)), update)
        if resolved.count:
            send_resolved(self.storage, project, resolved)
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

    scope_kind = "event"

    operations = {
        "get": Op("The group's notes, newest first.", body="Note", many=True, query=PageArgsSchema),
        "post": Op(
            "Add a note.",
            status=201,
            body="Note",
            request="NoteCreate",
            links={
                "Group": link("getGroupDetails", group_id=GROUP_FROM_PATH),
                **group_links(GROUP_FROM_PATH),
            },
        ),
    }

    def get(self, group_id: int) -> Response:
        return self.group_list_response(
            group_id, self.storage.list_notes, NoteSchema(many=True).dump
        )

    def post(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        text = NoteCreateSchema().load(json_body())["text"]
        try:
            note = self.storage.create_note(group.id, text)
        except LookupError:  # the group was deleted since group_for_key found it
            raise errors.NotFound() from None
        return json_response(NoteSchema().dump(note), 201)
