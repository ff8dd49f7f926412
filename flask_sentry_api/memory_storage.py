"""An in-memory :class:`~flask_sentry_api.storage.Storage`: plain dicts, no database.

It exists to prove the Storage interface is real (it shares no code with the SQLAlchemy
storage) and to give hosts a fast storage for their own tests. Its observable behaviour
matches :class:`~flask_sentry_api.sqlalchemy_storage.SQLAlchemyStorage`: the same slugs,
the same ``Conflict`` rules, the same group upsert, regression and rollup rules, and the
same orderings (a group list is ordered by the sort column then the id, and keyset windows
compare the integer sort key, whole seconds for datetime sorts).

Every public method holds one :class:`threading.Lock` for its whole run, so a threaded
development server sees each call as atomic. Records are the frozen dataclasses of
:mod:`flask_sentry_api.storage`, changed with :func:`dataclasses.replace`; JSON-like fields
(``metadata``, ``user``, ``data``) are copied through JSON on the way in and copied on the
way out, as a database would, so callers can never write into the store through them.
Ids come from per-table counters and are never reused.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import secrets
import threading
import typing as t
from datetime import datetime

from . import storage as s
from .pagination import apply_window
from .storage import UTC
from .storage import slugify
from .storage import utcnow

if t.TYPE_CHECKING:
    from .pagination import Window

__all__ = ["MemoryStorage"]

_TITLE_LENGTH = 255


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; naive datetimes are refused, as the SQL storage refuses them."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the sentry_api storage")
    return moment.astimezone(UTC)


def _json(value: t.Any) -> t.Any:
    """``value`` as it comes back from a JSON column (a deep copy, tuples as lists)."""
    return json.loads(json.dumps(value))


def _merge_seen(old: s.TagValue, new: s.TagValue) -> s.TagValue:
    """Add ``new``'s count into ``old`` (keeping ``old``'s id), widen first/last seen."""
    return dataclasses.replace(
        old,
        times_seen=old.times_seen + new.times_seen,
        first_seen=min(old.first_seen, new.first_seen),
        last_seen=max(old.last_seen, new.last_seen),
    )


def _counted(old: s.TagValue, ts: datetime) -> s.TagValue:
    """``old`` with one more event at ``ts`` counted."""
    return dataclasses.replace(
        old,
        times_seen=old.times_seen + 1,
        first_seen=min(old.first_seen, ts),
        last_seen=max(old.last_seen, ts),
    )


class MemoryStorage:
    """A complete :class:`~flask_sentry_api.storage.Storage` (and
    :class:`~flask_sentry_api.storage.TokenStorage`) kept in process memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, itertools.count[int]] = {}
        self._projects: dict[int, s.Project] = {}
        self._keys: dict[str, s.ProjectKey] = {}  # by public key
        self._groups: dict[int, s.Group] = {}
        self._group_by_hash: dict[tuple[int, str], int] = {}
        self._events: dict[int, s.Event] = {}
        self._event_by_event_id: dict[tuple[int, str], int] = {}
        self._notes: dict[int, s.Note] = {}
        #: (project id, key, value) -> counts over the whole project.
        self._tag_values: dict[tuple[int, str, str], s.TagValue] = {}
        #: group id -> (key, value) -> counts within the group.
        self._group_tag_values: dict[int, dict[tuple[str, str], s.TagValue]] = {}
        #: group id -> (resolution, bucket start) -> event count.
        self._group_stats: dict[int, dict[tuple[int, int], int]] = {}
        #: (project id, resolution, bucket start) -> event count.
        self._project_stats: dict[tuple[int, int, int], int] = {}
        self._releases: dict[tuple[int, str], s.Release] = {}
        self._tokens: dict[int, s.AuthToken] = {}
        self._token_by_hash: dict[str, int] = {}

    def _next_id(self, table: str) -> int:
        return next(self._ids.setdefault(table, itertools.count(1)))

    def init_schema(self) -> None:
        """Nothing to create: the dicts exist from the start."""

    # -- projects and keys -----------------------------------------------------------------
    def _slug_taken(self, slug: str, except_id: int | None = None) -> bool:
        return any(p.slug == slug and p.id != except_id for p in self._projects.values())

    def create_project(self, name: str, slug: str | None = None) -> s.Project:
        with self._lock:
            if slug is not None:
                if self._slug_taken(slug):
                    raise s.Conflict("slug", "This slug is already in use.")
            else:
                base = slugify(name)
                taken = {p.slug for p in self._projects.values()}
                slug, n = base, 1
                while slug in taken:
                    n += 1
                    slug = f"{base}-{n}"
            project = s.Project(
                id=self._next_id("project"),
                slug=slug,
                name=name,
                is_public=False,
                date_created=utcnow(),
            )
            self._projects[project.id] = project
            return project

    def get_project(self, project_id: int) -> s.Project | None:
        with self._lock:
            return self._projects.get(project_id)

    def get_project_by_slug(self, slug: str) -> s.Project | None:
        with self._lock:
            return next((p for p in self._projects.values() if p.slug == slug), None)

    def list_projects(self) -> list[s.Project]:
        with self._lock:
            return sorted(self._projects.values(), key=lambda project: project.id)

    def update_project(self, project_id: int, changes: t.Mapping[str, t.Any]) -> s.Project:
        with self._lock:
            values = {k: v for k, v in changes.items() if k in s.PROJECT_FIELDS}
            if "slug" in values and self._slug_taken(values["slug"], except_id=project_id):
                raise s.Conflict("slug", "This slug is already in use.")
            project = self._projects.get(project_id)
            if project is None:
                raise LookupError(project_id)
            if "is_public" in values:
                values["is_public"] = bool(values["is_public"])
            if "allowed_origins" in values:
                values["allowed_origins"] = tuple(values["allowed_origins"])
            project = dataclasses.replace(project, **values)
            self._projects[project_id] = project
            return project

    def create_key(
        self,
        project_id: int,
        roles: int,
        label: str | None = None,
        rate_limit: s.RateLimit | None = None,
    ) -> s.ProjectKey:
        with self._lock:
            if project_id not in self._projects:
                raise LookupError(project_id)
            key = s.ProjectKey(
                id=self._next_id("project_key"),
                project_id=project_id,
                public_key=secrets.token_hex(16),
                secret_key=secrets.token_hex(16),
                roles=roles,
                is_active=True,
                date_added=utcnow(),
                label=label,
                rate_limit=rate_limit,
            )
            self._keys[key.public_key] = key
            return key

    def get_key(self, public_key: str) -> s.ProjectKey | None:
        with self._lock:
            return self._keys.get(public_key)

    def list_keys(self, project_id: int) -> list[s.ProjectKey]:
        with self._lock:
            keys = [key for key in self._keys.values() if key.project_id == project_id]
        return sorted(keys, key=lambda key: key.id)

    def set_key_active(self, public_key: str, active: bool) -> bool:
        return self._replace_key(public_key, is_active=bool(active))

    def set_key_rate_limit(self, public_key: str, rate_limit: s.RateLimit | None) -> bool:
        return self._replace_key(public_key, rate_limit=rate_limit)

    def delete_key(self, public_key: str) -> bool:
        with self._lock:
            return self._keys.pop(public_key, None) is not None

    def _replace_key(self, public_key: str, **changes: t.Any) -> bool:
        with self._lock:
            key = self._keys.get(public_key)
            if key is None:
                return False
            self._keys[public_key] = dataclasses.replace(key, **changes)
            return True

    # -- ingestion -------------------------------------------------------------------------
    def save_event(self, project_id: int, event: s.NewEvent) -> s.SavedEvent:
        with self._lock:
            return self._save_event(project_id, event)

    def save_events(self, items: t.Sequence[tuple[int, s.NewEvent]]) -> list[s.SavedEvent | None]:
        with self._lock:
            # Convert every event first: one that cannot be stored fails the whole batch
            # before anything of it is (as the SQL storage's rolled-back transaction).
            for _project_id, event in items:
                self._converted(event)
            results: list[s.SavedEvent | None] = []
            for project_id, event in items:
                try:
                    results.append(self._save_event(project_id, event))
                except LookupError:
                    results.append(None)
            # Each result with its group as the batch leaves it (as the SQL storage's).
            return [
                None
                if saved is None
                else dataclasses.replace(saved, group=self._group_out(self._groups[saved.group.id]))
                for saved in results
            ]

    @staticmethod
    def _converted(
        event: s.NewEvent,
    ) -> tuple[
        dict[str, t.Any] | None, tuple[tuple[str, str], ...], dict[str, t.Any], dict[str, t.Any]
    ]:
        """The event's user, tags, data and metadata as the storage keeps them (JSON values)."""
        user = _json(dict(event.user)) if event.user is not None else None
        tags = tuple((str(k), str(v)) for k, v in _json([list(p) for p in event.tags]))
        data = _json(dict(event.data)) or {}
        metadata = _json(dict(event.metadata)) or {}
        return user, tags, data, metadata

    def _save_event(self, project_id: int, event: s.NewEvent) -> s.SavedEvent:
        """:meth:`save_event` with the lock held."""
        if project_id not in self._projects:
            raise LookupError(project_id)
        existing = self._event_by_event_id.get((project_id, event.event_id))
        if existing is not None:
            stored = self._events[existing]
            return s.SavedEvent(
                event=self._event_out(stored),
                group=self._group_out(self._groups[stored.group_id]),
                created=False,
                is_new_group=False,
                is_regression=False,
            )
        ts = _utc(event.timestamp)
        # Convert everything before touching state: a failure leaves nothing half-done.
        user, tags, data, metadata = self._converted(event)

        group_id, is_new, is_regression = self._upsert_group(project_id, event, ts, metadata)
        stored = s.Event(
            id=self._next_id("event"),
            project_id=project_id,
            group_id=group_id,
            event_id=event.event_id,
            message=event.message,
            title=event.title[:_TITLE_LENGTH],
            culprit=event.culprit,
            level=event.level,
            logger=event.logger,
            platform=event.platform,
            datetime=ts,
            date_received=utcnow(),
            release=event.release,
            environment=event.environment,
            user=user,
            tags=tags,
            data=data,
        )
        self._events[stored.id] = stored
        self._event_by_event_id[(project_id, event.event_id)] = stored.id
        self._record_tags(project_id, group_id, event, ts)
        self._record_stats(project_id, group_id, ts)
        if event.release:
            self._record_release(project_id, event.release, ts, is_new)
        return s.SavedEvent(
            event=self._event_out(stored),
            group=self._group_out(self._groups[group_id]),
            created=True,
            is_new_group=is_new,
            is_regression=is_regression,
        )

    def _upsert_group(
        self, project_id: int, event: s.NewEvent, ts: datetime, metadata: dict[str, t.Any]
    ) -> tuple[int, bool, bool]:
        """Count the event in its group (creating it); returns (id, is new, regression)."""
        group_id = self._group_by_hash.get((project_id, event.group_hash))
        if group_id is not None:
            group = self._groups[group_id]
            # The newest event by timestamp (the later one on a tie) sets level and culprit.
            is_newest = group.last_seen <= ts
            times_seen = group.times_seen + 1
            last_seen = ts if is_newest else group.last_seen
            regression = group.status == "resolved"
            group = dataclasses.replace(
                group,
                times_seen=times_seen,
                last_seen=last_seen,
                level=event.level if is_newest else group.level,
                culprit=event.culprit if is_newest else group.culprit,
                score=s.priority_score(times_seen, last_seen),
            )
            if regression:
                group = dataclasses.replace(group, status="unresolved", resolved_at=None)
            self._groups[group_id] = group
            return group_id, False, regression

        group = s.Group(
            id=self._next_id("group"),
            project_id=project_id,
            hash=event.group_hash,
            title=event.title[:_TITLE_LENGTH],
            culprit=event.culprit,
            message=event.message,
            logger=event.logger,
            level=event.level,
            type=event.type,
            metadata=metadata,
            platform=event.platform,
            status="unresolved",
            is_public=False,
            is_bookmarked=False,
            has_seen=False,
            times_seen=1,
            user_count=0,
            first_seen=ts,
            last_seen=ts,
            resolved_at=None,
            num_comments=0,
            score=s.priority_score(1, ts),
        )
        self._groups[group.id] = group
        self._group_by_hash[(project_id, event.group_hash)] = group.id
        self._group_tag_values[group.id] = {}
        self._group_stats[group.id] = {}
        return group.id, True, False

    def _record_tags(self, project_id: int, group_id: int, event: s.NewEvent, ts: datetime) -> None:
        # One row per key, the last value of a repeated key winning (as dict() does); new
        # rows get ids in (key, value) order.
        pairs = sorted(dict(event.tags).items())
        for key, value in pairs:
            slot = (project_id, key, value)
            old = self._tag_values.get(slot)
            if old is None:
                self._tag_values[slot] = self._seen("tag_value", key, value, 1, ts, ts)
            else:
                self._tag_values[slot] = _counted(old, ts)
        group_tags = self._group_tag_values[group_id]
        new_users = 0
        for key, value in pairs:
            old = group_tags.get((key, value))
            if old is None:
                new_users += key == "user"
                group_tags[(key, value)] = self._seen("group_tag_value", key, value, 1, ts, ts)
            else:
                group_tags[(key, value)] = _counted(old, ts)
        if new_users:
            group = self._groups[group_id]
            self._groups[group_id] = dataclasses.replace(
                group, user_count=group.user_count + new_users
            )

    def _seen(
        self, table: str, key: str, value: str, times_seen: int, first: datetime, last: datetime
    ) -> s.TagValue:
        return s.TagValue(
            id=self._next_id(table),
            key=key,
            value=value,
            times_seen=times_seen,
            first_seen=first,
            last_seen=last,
        )

    def _record_stats(self, project_id: int, group_id: int, ts: datetime) -> None:
        epoch = s.epoch_seconds(ts)
        group_stats = self._group_stats[group_id]
        for resolution in s.STAT_RESOLUTIONS:
            bucket = epoch - epoch % resolution
            group_stats[(resolution, bucket)] = group_stats.get((resolution, bucket), 0) + 1
            slot = (project_id, resolution, bucket)
            self._project_stats[slot] = self._project_stats.get(slot, 0) + 1

    def _record_release(self, project_id: int, version: str, ts: datetime, is_new: bool) -> None:
        release = self._releases.get((project_id, version))
        if release is None:
            release = s.Release(
                id=self._next_id("release"),
                project_id=project_id,
                version=version,
                date_created=utcnow(),
                first_event=ts,
                last_event=ts,
                new_groups=int(is_new),
            )
        else:
            first, last = release.first_event, release.last_event
            release = dataclasses.replace(
                release,
                first_event=ts if first is None or ts < first else first,
                last_event=ts if last is None or ts > last else last,
                new_groups=release.new_groups + int(is_new),
            )
        self._releases[(project_id, version)] = release

    # -- groups ----------------------------------------------------------------------------
    def get_group(self, group_id: int) -> s.Group | None:
        with self._lock:
            group = self._groups.get(group_id)
            return self._group_out(group) if group is not None else None

    def _matches(self, group: s.Group, project_id: int, query: s.GroupQuery) -> bool:
        if group.project_id != project_id:
            return False
        if query.status is not None and group.status != query.status:
            return False
        if query.ids is not None and group.id not in query.ids:
            return False
        if query.since is not None and group.last_seen < _utc(query.since):
            return False
        if query.until is not None and group.last_seen > _utc(query.until):
            return False
        if query.tags:
            group_tags = self._group_tag_values.get(group.id, {})
            if not all((key, value) in group_tags for key, value in query.tags):
                return False
        if query.text:
            needle = query.text.lower()
            haystacks = (group.title, group.message, group.culprit)
            if not any(h is not None and needle in h.lower() for h in haystacks):
                return False
        return True

    def _select(self, project_id: int, query: s.GroupQuery) -> list[s.Group]:
        return [g for g in self._groups.values() if self._matches(g, project_id, query)]

    @staticmethod
    def _sort(sort: str) -> tuple[t.Callable[[s.Group], int], t.Callable[[s.Group], t.Any]]:
        """(integer key, tiebreak) of a sort: the key is the cursor key, the tiebreak the
        exact column value then the id (what the SQL storage orders by)."""
        column = s.SORT_ATTRIBUTES.get(sort, "last_seen")

        def key(group: s.Group) -> int:
            return s.group_sort_key(group, sort)

        def tiebreak(group: s.Group) -> tuple[t.Any, int]:
            return getattr(group, column), group.id

        return key, tiebreak

    def list_groups(self, project_id: int, query: s.GroupQuery, window: Window) -> list[s.Group]:
        with self._lock:
            key, tiebreak = self._sort(query.sort)
            rows = apply_window(self._select(project_id, query), window, key, tiebreak)
            return [self._group_out(g) for g in rows]

    def count_groups_with_key(self, project_id: int, query: s.GroupQuery, key: int) -> int:
        with self._lock:
            sort_key, _ = self._sort(query.sort)
            return sum(1 for g in self._select(project_id, query) if sort_key(g) == key)

    def group_stats(
        self, group_ids: t.Sequence[int], resolution: int, start: int, end: int
    ) -> dict[int, dict[int, int]]:
        with self._lock:
            stats: dict[int, dict[int, int]] = {group_id: {} for group_id in group_ids}
            for group_id in stats:
                for (res, bucket), count in self._group_stats.get(group_id, {}).items():
                    if res == resolution and start <= bucket <= end:
                        stats[group_id][bucket] = count
            return stats

    def update_groups(self, project_id: int, query: s.GroupQuery, changes: s.GroupChanges) -> int:
        with self._lock:
            selected = self._select(project_id, query)
            now = utcnow()  # one stamp for the whole statement
            flags = {
                name: bool(getattr(changes, name))
                for name in ("is_public", "is_bookmarked", "has_seen")
                if getattr(changes, name) is not None
            }
            for group in selected:
                values: dict[str, t.Any] = dict(flags)
                if changes.status is not None:
                    values["status"] = changes.status
                    if changes.status == "resolved":
                        # Already resolved keeps the stamp of when it was resolved.
                        values["resolved_at"] = (
                            now if group.status != "resolved" else group.resolved_at
                        )
                    else:
                        values["resolved_at"] = None
                self._groups[group.id] = dataclasses.replace(group, **values)
            return len(selected)

    def merge_groups(self, project_id: int, group_ids: t.Sequence[int]) -> tuple[int, list[int]]:
        with self._lock:
            wanted = set(group_ids)
            ranked = sorted(
                (g for g in self._groups.values() if g.project_id == project_id and g.id in wanted),
                key=lambda g: (-g.times_seen, g.id),
            )
            if not ranked:
                raise LookupError("no such groups")
            parent, children = ranked[0], ranked[1:]
            if not children:
                return parent.id, []
            child_ids = {c.id for c in children}

            for event in list(self._events.values()):
                if event.group_id in child_ids:
                    self._events[event.id] = dataclasses.replace(event, group_id=parent.id)
            for note in list(self._notes.values()):
                if note.group_id in child_ids:
                    self._notes[note.id] = dataclasses.replace(note, group_id=parent.id)
            # The children's tag rows are summed per value, then added into the parent's
            # rows; values new to the parent get fresh ids in (key, value) order.
            summed: dict[tuple[str, str], s.TagValue] = {}
            parent_stats = self._group_stats[parent.id]
            for child in children:
                for slot, seen in self._group_tag_values.pop(child.id).items():
                    summed[slot] = seen if slot not in summed else _merge_seen(summed[slot], seen)
                for bucket, count in self._group_stats.pop(child.id).items():
                    parent_stats[bucket] = parent_stats.get(bucket, 0) + count
                del self._groups[child.id]
                del self._group_by_hash[(child.project_id, child.hash)]
            parent_tags = self._group_tag_values[parent.id]
            for slot in sorted(summed):
                seen = summed[slot]
                old = parent_tags.get(slot)
                if old is None:
                    parent_tags[slot] = dataclasses.replace(
                        seen, id=self._next_id("group_tag_value")
                    )
                else:
                    parent_tags[slot] = _merge_seen(old, seen)

            times_seen = sum(g.times_seen for g in ranked)
            last_seen = max(g.last_seen for g in ranked)
            self._groups[parent.id] = dataclasses.replace(
                parent,
                times_seen=times_seen,
                first_seen=min(g.first_seen for g in ranked),
                last_seen=last_seen,
                num_comments=sum(g.num_comments for g in ranked),
                user_count=sum(1 for key, _ in parent_tags if key == "user"),
                score=s.priority_score(times_seen, last_seen),
            )
            return parent.id, [c.id for c in children]

    def delete_groups(self, project_id: int, group_ids: t.Sequence[int]) -> int:
        with self._lock:
            wanted = set(group_ids)
            selected = [
                g for g in self._groups.values() if g.project_id == project_id and g.id in wanted
            ]
            doomed = {g.id for g in selected}
            for event in list(self._events.values()):
                if event.group_id in doomed:
                    del self._events[event.id]
                    del self._event_by_event_id[(event.project_id, event.event_id)]
            for note in list(self._notes.values()):
                if note.group_id in doomed:
                    del self._notes[note.id]
            for group in selected:
                del self._group_tag_values[group.id]
                del self._group_stats[group.id]
                del self._group_by_hash[(group.project_id, group.hash)]
                del self._groups[group.id]
            return len(selected)

    # -- events and notes --------------------------------------------------------------------
    def list_events(self, group_id: int, window: Window) -> list[s.Event]:
        with self._lock:
            rows = [e for e in self._events.values() if e.group_id == group_id]
            return [self._event_out(e) for e in apply_window(rows, window, _id, _id)]

    def get_event(self, event_id: int) -> s.Event | None:
        with self._lock:
            event = self._events.get(event_id)
            return self._event_out(event) if event is not None else None

    def get_event_by_event_id(self, project_id: int, event_id: str) -> s.Event | None:
        with self._lock:
            row_id = self._event_by_event_id.get((project_id, event_id))
            return self._event_out(self._events[row_id]) if row_id is not None else None

    def list_project_events(self, project_id: int, window: Window) -> list[s.Event]:
        with self._lock:
            rows = [e for e in self._events.values() if e.project_id == project_id]
            return [self._event_out(e) for e in apply_window(rows, window, _id, _id)]

    def latest_event(self, group_id: int) -> s.Event | None:
        return self._edge_event(group_id, max)

    def oldest_event(self, group_id: int) -> s.Event | None:
        return self._edge_event(group_id, min)

    def _edge_event(self, group_id: int, pick: t.Callable[..., s.Event]) -> s.Event | None:
        """The group's newest (``max``) or oldest (``min``) event, by time then id."""
        with self._lock:
            rows = [e for e in self._events.values() if e.group_id == group_id]
            return self._event_out(pick(rows, key=_time_then_id)) if rows else None

    def adjacent_events(self, event: s.Event) -> tuple[int | None, int | None]:
        with self._lock:
            here = (_utc(event.datetime), event.id)
            rows = [e for e in self._events.values() if e.group_id == event.group_id]
            before = [e for e in rows if _time_then_id(e) < here]
            after = [e for e in rows if _time_then_id(e) > here]
            previous = max(before, key=_time_then_id).id if before else None
            following = min(after, key=_time_then_id).id if after else None
            return previous, following

    def list_notes(self, group_id: int, window: Window) -> list[s.Note]:
        with self._lock:
            rows = [n for n in self._notes.values() if n.group_id == group_id]
            return apply_window(rows, window, _id, _id)

    def create_note(self, group_id: int, text: str) -> s.Note:
        with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                raise LookupError(group_id)
            note = s.Note(
                id=self._next_id("note"), group_id=group_id, text=text, date_created=utcnow()
            )
            self._notes[note.id] = note
            self._groups[group_id] = dataclasses.replace(group, num_comments=group.num_comments + 1)
            return note

    # -- releases ------------------------------------------------------------------------
    def list_releases(self, project_id: int, window: Window) -> list[s.Release]:
        with self._lock:
            rows = [r for r in self._releases.values() if r.project_id == project_id]
            return apply_window(rows, window, _id, _id)

    def create_release(
        self, project_id: int, version: str, details: s.ReleaseChanges | None = None
    ) -> s.Release:
        with self._lock:
            if project_id not in self._projects:
                raise LookupError(project_id)
            if (project_id, version) in self._releases:
                raise s.Conflict("version", "A release with this version already exists.")
            values = _release_changes(details or s.ReleaseChanges())
            release = s.Release(
                id=self._next_id("release"),
                project_id=project_id,
                version=version,
                date_created=utcnow(),
                first_event=None,
                last_event=None,
                new_groups=0,
                **values,
            )
            self._releases[(project_id, version)] = release
            return release

    def update_release(
        self, project_id: int, version: str, changes: s.ReleaseChanges
    ) -> s.Release | None:
        with self._lock:
            release = self._releases.get((project_id, version))
            if release is None:
                return None
            release = dataclasses.replace(release, **_release_changes(changes))
            self._releases[(project_id, version)] = release
            return release

    def get_release(self, project_id: int, version: str) -> s.Release | None:
        with self._lock:
            return self._releases.get((project_id, version))

    def delete_release(self, project_id: int, version: str) -> bool:
        with self._lock:
            return self._releases.pop((project_id, version), None) is not None

    # -- tags ----------------------------------------------------------------------------
    def group_tag_keys(self, group_id: int, top: int) -> list[s.TagKeySummary]:
        with self._lock:
            by_key: dict[str, list[s.TagValue]] = {}
            for (key, _value), seen in self._group_tag_values.get(group_id, {}).items():
                by_key.setdefault(key, []).append(seen)
            summaries = []
            for key in sorted(by_key):
                values = sorted(by_key[key], key=_most_seen, reverse=True)
                summaries.append(
                    s.TagKeySummary(
                        key=key,
                        unique_values=len(values),
                        total_values=sum(v.times_seen for v in values),
                        top_values=tuple(values[: max(top, 0)]),
                    )
                )
            return summaries

    def _tag_value_rows(self, project_id: int, key: str, group_id: int | None) -> list[s.TagValue]:
        if group_id is None:
            return [
                seen
                for (project, tag_key, _), seen in self._tag_values.items()
                if project == project_id and tag_key == key
            ]
        group = self._groups.get(group_id)
        if group is None or group.project_id != project_id:
            return []
        return [
            seen
            for (tag_key, _), seen in self._group_tag_values.get(group_id, {}).items()
            if tag_key == key
        ]

    def list_tag_values(
        self, project_id: int, key: str, window: Window, group_id: int | None = None
    ) -> list[s.TagValue]:
        with self._lock:
            rows = self._tag_value_rows(project_id, key, group_id)
            return apply_window(rows, window, _times_seen, _id)

    def count_tag_values_with_key(
        self, project_id: int, key: str, times_seen: int, group_id: int | None = None
    ) -> int:
        with self._lock:
            rows = self._tag_value_rows(project_id, key, group_id)
            return sum(1 for row in rows if row.times_seen == times_seen)

    def delete_tag_key(self, project_id: int, key: str) -> bool:
        with self._lock:
            doomed = [slot for slot in self._tag_values if slot[0] == project_id and slot[1] == key]
            for slot in doomed:
                del self._tag_values[slot]
            deleted = len(doomed)
            for group in self._groups.values():
                if group.project_id != project_id:
                    continue
                group_tags = self._group_tag_values[group.id]
                for pair in [pair for pair in group_tags if pair[0] == key]:
                    del group_tags[pair]
                    deleted += 1
            if key == "user":
                for group in list(self._groups.values()):
                    if group.project_id == project_id:
                        self._groups[group.id] = dataclasses.replace(group, user_count=0)
            return bool(deleted)

    # -- stats ---------------------------------------------------------------------------
    def project_stats(
        self, project_id: int, resolution: int, start: int, end: int
    ) -> dict[int, int]:
        with self._lock:
            return {
                bucket: count
                for (project, res, bucket), count in self._project_stats.items()
                if project == project_id and res == resolution and start <= bucket <= end
            }

    # -- auth tokens -----------------------------------------------------------------------
    def create_token(
        self,
        project_id: int,
        token_hash: str,
        scopes: t.Sequence[str],
        *,
        label: str | None = None,
        last_characters: str = "",
    ) -> s.AuthToken:
        with self._lock:
            if project_id not in self._projects:
                raise LookupError(project_id)
            checked = s.checked_scopes(scopes)
            if token_hash in self._token_by_hash:
                raise s.Conflict("token_hash", "A token with this hash already exists.")
            token = s.AuthToken(
                id=self._next_id("auth_token"),
                project_id=project_id,
                token_hash=token_hash,
                scopes=checked,
                date_created=utcnow(),
                label=label,
                last_characters=last_characters,
            )
            self._tokens[token.id] = token
            self._token_by_hash[token_hash] = token.id
            return token

    def get_token(self, token_hash: str) -> s.AuthToken | None:
        with self._lock:
            token_id = self._token_by_hash.get(token_hash)
            return self._tokens[token_id] if token_id is not None else None

    def list_tokens(self, project_id: int | None = None) -> list[s.AuthToken]:
        with self._lock:
            tokens = [
                token
                for token in self._tokens.values()
                if project_id is None or token.project_id == project_id
            ]
        return sorted(tokens, key=lambda token: token.id)

    def delete_token(self, token_id: int) -> bool:
        with self._lock:
            token = self._tokens.pop(token_id, None)
            if token is None:
                return False
            del self._token_by_hash[token.token_hash]
            return True

    # -- records out ---------------------------------------------------------------------------
    @staticmethod
    def _group_out(group: s.Group) -> s.Group:
        return dataclasses.replace(group, metadata=copy.deepcopy(group.metadata))

    @staticmethod
    def _event_out(event: s.Event) -> s.Event:
        return dataclasses.replace(
            event, user=copy.deepcopy(event.user), data=copy.deepcopy(event.data)
        )


def _release_changes(changes: s.ReleaseChanges) -> dict[str, t.Any]:
    """The fields of ``changes`` that are set, datetimes in UTC."""
    values = {
        field.name: getattr(changes, field.name)
        for field in dataclasses.fields(changes)
        if getattr(changes, field.name) is not None
    }
    return {k: _utc(v) if isinstance(v, datetime) else v for k, v in values.items()}


def _id(row: s.Event | s.Note | s.Release | s.TagValue) -> int:
    return row.id


def _times_seen(row: s.TagValue) -> int:
    return row.times_seen


def _most_seen(row: s.TagValue) -> tuple[int, int]:
    return row.times_seen, row.id


def _time_then_id(event: s.Event) -> tuple[datetime, int]:
    return event.datetime, event.id
