"""The SQL storage's write path: :meth:`~EventWriter.save_event` in eight statements, each
built once per dialect and run on the session's connection with plain parameters (no ORM
objects); the tag and stat upserts send all of an event's rows in one statement each.
:meth:`~EventWriter.save_events` stores a batch in one transaction, each table's rows of the
whole batch summed up and sent in one statement (a group's counting: one per group)."""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import datetime

import sqlalchemy as sa

from .. import storage as s
from ..models import UTCDateTime
from . import records
from . import statements as sql
from .base import SQLStorageBase


def _event_record(event_id: int, values: t.Mapping[str, t.Any]) -> s.Event:
    """The record of an event just inserted as ``values``, under its new id."""
    return s.Event(
        id=event_id,
        project_id=values["project_id"],
        group_id=values["group_id"],
        event_id=values["event_id"],
        message=values["message"],
        title=values["title"],
        culprit=values["culprit"],
        level=values["level"],
        logger=values["logger"],
        platform=values["platform"],
        # As the database hands them back: in UTC, whatever zone they were given in.
        datetime=values["datetime"].astimezone(s.UTC),
        date_received=values["date_received"].astimezone(s.UTC),
        release=values["release"],
        environment=values["environment"],
        user=values["user"],
        tags=tuple((str(k), str(v)) for k, v in values["tags"]),
        data=values["data"],
    )


@dataclasses.dataclass(frozen=True)
class _Counted:
    """An event counted in its group, before the group is finished."""

    group_id: int
    is_new: bool
    is_regression: bool
    score: int


#: How many times :meth:`EventWriter.save_events` tries a batch that concurrent writers
#: interfere with; each interference means another writer committed, so it ends.
_BATCH_ATTEMPTS = 5
#: PostgreSQL's SQLSTATE for a transaction aborted to break a deadlock.
_DEADLOCK_DETECTED = "40P01"


@dataclasses.dataclass
class _BatchGroup:
    """The new events of a batch that count into one group, and what counting them gave."""

    #: Indexes of the events in the batch, in batch order.
    indexes: list[int]
    group_id: int = 0
    is_new: bool = False
    is_regression: bool = False
    score: int = 0
    new_users: int = 0


def _newest(events: t.Sequence[s.NewEvent]) -> s.NewEvent:
    """The event that sets a group's level and culprit: the newest by timestamp, the later
    one on a tie (as one ``save_event`` after another would)."""
    newest = events[0]
    for event in events[1:]:
        if event.timestamp >= newest.timestamp:
            newest = event
    return newest


class EventWriter(SQLStorageBase):
    """Stores events: the :meth:`save_event` half of the SQL storage."""

    @sql.translating_errors
    def save_event(self, project_id: int, event: s.NewEvent) -> s.SavedEvent:
        # A second try only when the event stored first by a concurrent request is deleted,
        # with its group, before we can read it back.
        for _attempt in range(3):
            saved = self._store_event(project_id, event)
            if saved is not None:
                return saved
        raise s.Unavailable("the event's group was being deleted; try again")

    def _store_event(self, project_id: int, event: s.NewEvent) -> s.SavedEvent | None:
        """Store and count the event, or find it stored already (None: found and deleted).

        Eight statements for an event of a known group: count it in the group, insert it,
        upsert its tags (two) and stat buckets (two) and its release, then finish the group
        (score, reopening, users) returning the group as stored. A retried event_id is
        found at the insert, and the counting rolled back.
        """
        self._begin_write()
        connection = self.session.connection()
        Event = self.models.Event.__table__
        insert_event = self._statement(
            connection,
            "event_insert",
            lambda: (
                self._insert(Event)
                .on_conflict_do_nothing(index_elements=["project_id", "event_id"])
                .returning(Event.c.id)
            ),
        )
        counted = self._count_in_group(connection, project_id, event)
        values = self._event_values(project_id, counted.group_id, event)
        values["date_received"] = s.utcnow()
        # Only the id comes back: the rest is what was sent, and reading the event's data
        # back would decode again the JSON just encoded.
        inserted = connection.execute(insert_event, values).scalar()
        if inserted is None:
            # Stored before (an SDK retry, or a concurrent request): undo our counting.
            self.session.rollback()
            return self._stored_event(project_id, event.event_id)

        new_users = self._record_tags(connection, project_id, counted.group_id, event)
        self._record_stats(connection, project_id, counted.group_id, event.timestamp)
        if event.release:
            self._record_release(connection, project_id, event, counted.is_new)
        # The group as this transaction leaves it, read before the commit: a concurrent
        # delete may remove it as soon as the commit releases it.
        group = self._finish_group(connection, counted, new_users)
        self.session.commit()
        return s.SavedEvent(
            event=_event_record(inserted, values),
            group=group,
            created=True,
            is_new_group=counted.is_new,
            is_regression=counted.is_regression,
        )

    def _stored_event(self, project_id: int, event_id: str) -> s.SavedEvent | None:
        """The event already stored under ``event_id``, with its group, in one read."""
        Event, Group = self.models.Event, self.models.Group
        row = self.session.execute(
            sa.select(Event, Group)
            .join(Group, Group.id == Event.group_id)
            .where(Event.project_id == project_id, Event.event_id == event_id)
        ).first()
        if row is None:
            return None
        event_row, group_row = row
        return s.SavedEvent(
            event=records.event(event_row),
            group=records.group(group_row),
            created=False,
            is_new_group=False,
            is_regression=False,
        )

    @sql.translating_errors
    def save_events(self, items: t.Sequence[tuple[int, s.NewEvent]]) -> list[s.SavedEvent | None]:
        items = list(items)
        if not items:
            return []
        # Another try when a concurrent writer stored one of the batch's events after this
        # transaction looked for it (the next try finds it stored), or when PostgreSQL broke
        # a deadlock by aborting this transaction (two batches creating the same new groups
        # in opposite orders).
        for _attempt in range(_BATCH_ATTEMPTS):
            try:
                saved = self._store_events(items)
            except sa.exc.DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != _DEADLOCK_DETECTED:
                    raise
                self.session.rollback()
                continue
            if saved is not None:
                return saved
        raise s.Unavailable("the batch's events were being stored concurrently; try again")

    def _store_events(
        self, items: list[tuple[int, s.NewEvent]]
    ) -> list[s.SavedEvent | None] | None:
        """Store the batch in one transaction, or roll back and return None when an event
        turned out stored by a concurrent writer at the insert (its counting is undone).

        Every table's rows are locked in one order (groups by project and hash, then events,
        tag values, stats and releases each sorted by key), the order ``save_event`` takes
        them in too: concurrent batches wait for one another rather than deadlock.
        """
        self._begin_write()
        connection = self.session.connection()
        projects = self._existing_projects(connection, {project_id for project_id, _ in items})
        self._lock_groups(
            connection,
            {
                (project_id, event.group_hash)
                for project_id, event in items
                if project_id in projects
            },
        )
        stored = self._stored_events(
            [(project_id, event.event_id) for project_id, event in items if project_id in projects]
        )
        # Which items are new: the first copy of each (project, event_id) not stored before.
        first_copy: dict[tuple[int, str], int] = {}
        groups: dict[tuple[int, str], _BatchGroup] = {}
        for index, (project_id, event) in enumerate(items):
            key = (project_id, event.event_id)
            if project_id not in projects or key in stored or key in first_copy:
                continue
            first_copy[key] = index
            group_key = (project_id, event.group_hash)
            groups.setdefault(group_key, _BatchGroup(indexes=[])).indexes.append(index)
        if not first_copy:
            self.session.commit()
            return [
                None if project_id not in projects else stored[(project_id, event.event_id)]
                for project_id, event in items
            ]

        # Existing groups are counted in key order (the lock order); new ones created in
        # the order of their first events, so their ids run as one save_event after another
        # would give them.
        created = self._count_batch_in_groups(connection, items, groups)
        for project_id, batch_group in sorted(created, key=lambda pair: pair[1].indexes[0]):
            self._create_batch_group(connection, project_id, items, batch_group)
        group_of = {i: g for g in groups.values() for i in g.indexes}
        received = s.utcnow()
        values_of: dict[int, dict[str, t.Any]] = {}
        for index in first_copy.values():
            project_id, event = items[index]
            values_of[index] = self._event_values(project_id, group_of[index].group_id, event)
            values_of[index]["date_received"] = received
        ids = self._insert_events(connection, list(values_of.values()))
        if len(ids) < len(values_of):
            # Stored meanwhile by a concurrent writer: undo our counting, and try again.
            self.session.rollback()
            return None

        self._record_batch_tags(connection, items, groups)
        self._record_batch_stats(connection, items, groups)
        self._record_batch_releases(connection, items, groups)
        # The groups as this transaction leaves them, read before the commit (see
        # _store_event).
        finished = self._finish_groups(connection, groups)
        self.session.commit()

        events = {
            index: _event_record(ids[(values["project_id"], values["event_id"])], values)
            for index, values in values_of.items()
        }
        results: list[s.SavedEvent | None] = []
        for index, (project_id, event) in enumerate(items):
            key = (project_id, event.event_id)
            if project_id not in projects:
                results.append(None)
            elif key in stored:
                before = stored[key]
                group = finished.get(before.group.id, before.group)
                results.append(dataclasses.replace(before, group=group))
            elif first_copy[key] != index:  # a second copy in the batch
                first = events[first_copy[key]]
                results.append(
                    s.SavedEvent(
                        event=first,
                        group=finished[first.group_id],
                        created=False,
                        is_new_group=False,
                        is_regression=False,
                    )
                )
            else:
                batch_group = group_of[index]
                opens = batch_group.indexes[0] == index  # the group's first event of the batch
                results.append(
                    s.SavedEvent(
                        event=events[index],
                        group=finished[batch_group.group_id],
                        created=True,
                        is_new_group=opens and batch_group.is_new,
                        is_regression=opens and batch_group.is_regression,
                    )
                )
        return results

    def _existing_projects(self, connection: sa.Connection, project_ids: set[int]) -> set[int]:
        """Which of ``project_ids`` exist; on PostgreSQL they are share-locked until the
        commit, so none is deleted under the batch (SQLite: the write lock does it)."""
        Project = self.models.Project.__table__
        query = sa.select(Project.c.id).where(Project.c.id.in_(sorted(project_ids)))
        if self.dialect == "postgresql":
            query = query.with_for_update(read=True, key_share=True)
        return set(connection.execute(query).scalars())

    def _lock_groups(self, connection: sa.Connection, keys: set[tuple[int, str]]) -> None:
        """PostgreSQL: lock the batch's groups that exist, in key order, before looking for
        its events: a concurrent writer storing the same events (a redelivered message)
        holds their group until it commits, so this transaction then finds them stored
        rather than meeting them at the insert. (SQLite: the write lock does it.)"""
        if self.dialect != "postgresql" or not keys:
            return
        Group = self.models.Group.__table__
        connection.execute(
            sa.select(Group.c.id)
            .where(sa.tuple_(Group.c.project_id, Group.c.hash).in_(sorted(keys)))
            .order_by(Group.c.project_id, Group.c.hash)
            .with_for_update()
        ).all()

    def _stored_events(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], s.SavedEvent]:
        """The events of ``keys`` already stored, with their groups (``created=False``)."""
        if not keys:
            return {}
        Event, Group = self.models.Event, self.models.Group
        wanted = set(keys)
        rows = self.session.execute(
            sa.select(Event, Group)
            .join(Group, Group.id == Event.group_id)
            .where(
                Event.project_id.in_(sorted({project_id for project_id, _ in keys})),
                Event.event_id.in_(sorted({event_id for _, event_id in keys})),
            )
        ).all()
        found: dict[tuple[int, str], s.SavedEvent] = {}
        for event_row, group_row in rows:
            key = (event_row.project_id, event_row.event_id)
            if key in wanted:
                found[key] = s.SavedEvent(
                    event=records.event(event_row),
                    group=records.group(group_row),
                    created=False,
                    is_new_group=False,
                    is_regression=False,
                )
        return found

    def _count_batch_in_groups(
        self,
        connection: sa.Connection,
        items: list[tuple[int, s.NewEvent]],
        groups: dict[tuple[int, str], _BatchGroup],
    ) -> list[tuple[int, _BatchGroup]]:
        """Count the batch's new events into their groups that exist; returns the others
        (to create), by key. PostgreSQL: the groups are locked in key order by one SELECT
        and counted by one UPDATE; SQLite (one writer at a time): one UPDATE per group."""
        if self.dialect != "postgresql":
            return [
                (project_id, batch_group)
                for (project_id, _hash), batch_group in sorted(groups.items())
                if not self._count_batch_in_group(connection, project_id, items, batch_group)
            ]
        Group = self.models.Group.__table__
        keys = sorted(groups)  # locked already (_lock_groups)
        rows = []
        for project_id, group_hash in keys:
            newest = _newest([items[i][1] for i in groups[(project_id, group_hash)].indexes])
            rows.append(
                (
                    project_id,
                    group_hash,
                    newest.timestamp,
                    newest.level,
                    newest.culprit,
                    len(groups[(project_id, group_hash)].indexes),
                )
            )
        counted = sa.values(
            sa.column("v_project", sa.BigInteger()),
            sa.column("v_hash", sa.String()),
            sa.column("v_ts", UTCDateTime()),
            sa.column("v_level", sa.String()),
            sa.column("v_culprit", sa.String()),
            sa.column("v_n", sa.Integer()),
            name="counted",
        ).data(rows)
        is_newest = Group.c.last_seen <= counted.c.v_ts
        update = (
            sa.update(Group)
            .where(Group.c.project_id == counted.c.v_project, Group.c.hash == counted.c.v_hash)
            .values(
                times_seen=Group.c.times_seen + counted.c.v_n,
                last_seen=sa.case((is_newest, counted.c.v_ts), else_=Group.c.last_seen),
                level=sa.case((is_newest, counted.c.v_level), else_=Group.c.level),
                culprit=sa.case((is_newest, counted.c.v_culprit), else_=Group.c.culprit),
            )
            .returning(
                Group.c.id,
                Group.c.project_id,
                Group.c.hash,
                Group.c.status,
                Group.c.times_seen,
                Group.c.last_seen,
            )
        )
        for row in connection.execute(update):
            batch_group = groups[(row.project_id, row.hash)]
            batch_group.group_id = row.id
            batch_group.is_regression = row.status == "resolved"
            batch_group.score = s.priority_score(row.times_seen, row.last_seen)
        return [(key[0], g) for key, g in sorted(groups.items()) if not g.group_id]

    def _finish_groups(
        self, connection: sa.Connection, groups: dict[tuple[int, str], _BatchGroup]
    ) -> dict[int, s.Group]:
        """:meth:`_finish_group` for each group of the batch (PostgreSQL: in one UPDATE);
        the groups as stored, by id."""
        ordered = [g for _key, g in sorted(groups.items())]
        if self.dialect != "postgresql":
            return {
                g.group_id: self._finish_group(
                    connection,
                    _Counted(g.group_id, g.is_new, g.is_regression, g.score),
                    g.new_users,
                )
                for g in ordered
            }
        Group = self.models.Group.__table__
        finished = sa.values(
            sa.column("v_id", sa.BigInteger()),
            sa.column("v_score", sa.BigInteger()),
            sa.column("v_users", sa.Integer()),
            sa.column("v_reopen", sa.Boolean()),
            name="finished",
        ).data([(g.group_id, g.score, g.new_users, g.is_regression) for g in ordered])
        reopen = finished.c.v_reopen
        update = (
            sa.update(Group)
            .where(Group.c.id == finished.c.v_id)
            .values(
                score=finished.c.v_score,
                user_count=Group.c.user_count + finished.c.v_users,
                status=sa.case((reopen, "unresolved"), else_=Group.c.status),
                resolved_at=sa.case((reopen, sa.null()), else_=Group.c.resolved_at),
            )
            .returning(*records.group_columns(Group))
        )
        stored = {}
        for row in connection.execute(update):
            group = records.group(row)
            stored[group.id] = group
        return stored

    def _count_batch_in_group(
        self,
        connection: sa.Connection,
        project_id: int,
        items: list[tuple[int, s.NewEvent]],
        batch_group: _BatchGroup,
    ) -> bool:
        """Count a batch's new events of one group into it, if it exists (one UPDATE);
        sets ``batch_group``'s outcome. False: no such group yet."""
        Group = self.models.Group.__table__
        count_in = self._statement(
            connection, "group_count_many", lambda: self._group_count_statement(Group, many=True)
        )
        events = [items[index][1] for index in batch_group.indexes]
        newest = _newest(events)
        row = connection.execute(
            count_in,
            {
                "b_project": project_id,
                "b_hash": events[0].group_hash,
                "b_ts": newest.timestamp,
                "b_level": newest.level,
                "b_culprit": newest.culprit,
                "b_n": len(events),
            },
        ).first()
        if row is None:
            return False
        batch_group.group_id = row.id
        batch_group.is_regression = row.status == "resolved"
        batch_group.score = s.priority_score(row.times_seen, row.last_seen)
        return True

    def _create_batch_group(
        self,
        connection: sa.Connection,
        project_id: int,
        items: list[tuple[int, s.NewEvent]],
        batch_group: _BatchGroup,
    ) -> None:
        """Create the group of a batch's new events as its first event would and count the
        others into it (one INSERT), or count them into it when a concurrent writer just
        created it."""
        Group = self.models.Group.__table__
        create = self._statement(
            connection,
            "group_insert",
            lambda: (
                self._insert(Group)
                .on_conflict_do_nothing(index_elements=["project_id", "hash"])
                .returning(Group.c.id)
            ),
        )
        events = [items[index][1] for index in batch_group.indexes]
        first, newest = events[0], _newest(events)
        for _attempt in range(3):
            score = s.priority_score(len(events), newest.timestamp)
            created = connection.execute(
                create,
                {
                    "project_id": project_id,
                    "hash": first.group_hash,
                    "title": first.title[:255],
                    "message": first.message,
                    "culprit": newest.culprit,
                    "logger": first.logger,
                    "level": newest.level,
                    "type": first.type,
                    "metadata": dict(first.metadata),
                    "platform": first.platform,
                    "status": "unresolved",
                    "is_public": False,
                    "is_bookmarked": False,
                    "has_seen": False,
                    "times_seen": len(events),
                    "user_count": 0,
                    "num_comments": 0,
                    # The group's first event sets first_seen: later ones never change it.
                    "first_seen": first.timestamp,
                    "last_seen": newest.timestamp,
                    "score": score,
                },
            ).scalar()
            if created is not None:
                batch_group.group_id = created
                batch_group.is_new = True
                batch_group.score = score
                return
            # Lost the race to create it: the row exists now, count into it.
            if self._count_batch_in_group(connection, project_id, items, batch_group):
                return
        raise RuntimeError("could not create or update the group")  # pragma: no cover

    def _insert_events(
        self, connection: sa.Connection, rows: list[dict[str, t.Any]]
    ) -> dict[tuple[int, str], int]:
        """Insert the events (one multi-row statement); the new ids by (project, event_id),
        without those a concurrent writer stored first."""
        Event = self.models.Event.__table__
        insert_events = self._statement(
            connection,
            "event_insert_many",
            lambda: (
                self._insert(Event)
                .on_conflict_do_nothing(index_elements=["project_id", "event_id"])
                .returning(Event.c.id, Event.c.project_id, Event.c.event_id)
            ),
        )
        result = connection.execute(insert_events, rows)
        return {(row.project_id, row.event_id): row.id for row in result}

    @staticmethod
    def _event_values(project_id: int, group_id: int, event: s.NewEvent) -> dict[str, t.Any]:
        """The event's row (``date_received`` is set by the caller)."""
        return {
            "project_id": project_id,
            "group_id": group_id,
            "event_id": event.event_id,
            "message": event.message,
            "title": event.title[:255],
            "culprit": event.culprit,
            "level": event.level,
            "logger": event.logger,
            "platform": event.platform,
            "datetime": event.timestamp,
            "date_received": None,
            "release": event.release,
            "environment": event.environment,
            "user": dict(event.user) if event.user is not None else None,
            "tags": [list(pair) for pair in event.tags],
            "data": dict(event.data),
        }

    def _new_in_batch_order(
        self, items: list[tuple[int, s.NewEvent]], groups: dict[tuple[int, str], _BatchGroup]
    ) -> list[tuple[int, int, s.NewEvent]]:
        """The batch's new events in batch order, as (project id, group id, event)."""
        group_of = {index: g.group_id for g in groups.values() for index in g.indexes}
        return [(items[i][0], group_of[i], items[i][1]) for i in sorted(group_of)]

    def _in_lock_order(
        self,
        connection: sa.Connection,
        table: sa.Table,
        columns: tuple[str, ...],
        rows: dict[tuple[t.Any, ...], dict[str, t.Any]],
    ) -> list[dict[str, t.Any]]:
        """The rows of an upsert (keyed by ``columns``, first seen first): those whose key
        exists, sorted by it, then the new ones in the order the batch first saw them.

        The rows that exist are locked in key order, the order every writer takes them in
        (concurrent batches wait rather than deadlock); new rows get their ids in the order
        one ``save_event`` after another would give them (ties in lists go by id).
        """
        key_columns = [table.c[name] for name in columns]
        query = sa.select(*key_columns).where(
            *(column.in_(sorted({key[n] for key in rows})) for n, column in enumerate(key_columns))
        )
        existing = {tuple(row) for row in connection.execute(query)} & rows.keys()
        return [rows[key] for key in sorted(existing)] + [
            row for key, row in rows.items() if key not in existing
        ]

    def _record_batch_tags(
        self,
        connection: sa.Connection,
        items: list[tuple[int, s.NewEvent]],
        groups: dict[tuple[int, str], _BatchGroup],
    ) -> None:
        """Count the new events' tag values in their projects and groups, one statement
        each; sets each group's ``new_users`` (user values its group had not seen)."""
        TagValue, GroupTagValue = self.models.TagValue, self.models.GroupTagValue
        in_projects: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
        in_groups: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
        for project_id, group_id, event in self._new_in_batch_order(items, groups):
            ts = event.timestamp
            # Each event's values sorted, as save_event sends them.
            for key, value in sorted(dict(event.tags).items()):
                for seen, owner, owner_id in (
                    (in_projects, "project_id", project_id),
                    (in_groups, "group_id", group_id),
                ):
                    row = seen.get((owner_id, key, value))
                    if row is None:
                        seen[(owner_id, key, value)] = {
                            "project_id": project_id,
                            owner: owner_id,
                            "key": key,
                            "value": value,
                            "times_seen": 1,
                            "first_seen": ts,
                            "last_seen": ts,
                        }
                    else:
                        row["times_seen"] += 1
                        row["first_seen"] = min(row["first_seen"], ts)
                        row["last_seen"] = max(row["last_seen"], ts)
        if not in_projects:
            return
        project_upsert = self._tag_value_upsert(connection)
        group_upsert = self._statement(
            connection,
            "group_tag_value_many",
            lambda: sql.merge_seen(
                self._insert(GroupTagValue), GroupTagValue, ["group_id", "key", "value"]
            ).returning(
                GroupTagValue.group_id,
                GroupTagValue.key,
                GroupTagValue.value,
                GroupTagValue.times_seen,
            ),
        )
        connection.execute(
            project_upsert,
            self._in_lock_order(
                connection, TagValue.__table__, ("project_id", "key", "value"), in_projects
            ),
        )
        group_rows = self._in_lock_order(
            connection, GroupTagValue.__table__, ("group_id", "key", "value"), in_groups
        )
        by_id = {g.group_id: g for g in groups.values()}
        for stored in connection.execute(group_upsert, group_rows):
            # A row the batch created holds the batch's count only: a user new to the group.
            counted = in_groups[(stored.group_id, stored.key, stored.value)]["times_seen"]
            if stored.key == "user" and stored.times_seen == counted:
                by_id[stored.group_id].new_users += 1

    def _record_batch_stats(
        self,
        connection: sa.Connection,
        items: list[tuple[int, s.NewEvent]],
        groups: dict[tuple[int, str], _BatchGroup],
    ) -> None:
        group_upsert, project_upsert = self._stat_upserts(connection)
        in_groups: dict[tuple[int, int, int], int] = {}
        in_projects: dict[tuple[int, int, int], int] = {}
        for project_id, group_id, event in self._new_in_batch_order(items, groups):
            epoch = s.epoch_seconds(event.timestamp)
            for r in s.STAT_RESOLUTIONS:
                bucket = epoch - epoch % r
                in_groups[(group_id, r, bucket)] = in_groups.get((group_id, r, bucket), 0) + 1
                project_key = (project_id, r, bucket)
                in_projects[project_key] = in_projects.get(project_key, 0) + 1
        # Stat rows have no order a reader sees: all of them in key (lock) order.
        connection.execute(
            group_upsert,
            [
                {"group_id": g, "resolution": r, "bucket": b, "count": n}
                for (g, r, b), n in sorted(in_groups.items())
            ],
        )
        connection.execute(
            project_upsert,
            [
                {"project_id": p, "resolution": r, "bucket": b, "count": n}
                for (p, r, b), n in sorted(in_projects.items())
            ],
        )

    def _record_batch_releases(
        self,
        connection: sa.Connection,
        items: list[tuple[int, s.NewEvent]],
        groups: dict[tuple[int, str], _BatchGroup],
    ) -> None:
        # The group's first event of the batch is the one that created it, if any.
        creators = {g.indexes[0] for g in groups.values() if g.is_new}
        group_of = {index: g for g in groups.values() for index in g.indexes}
        created = s.utcnow()
        releases: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
        for index in sorted(group_of):
            project_id, event = items[index]
            if not event.release:
                continue
            ts = event.timestamp
            row = releases.get((project_id, event.release))
            if row is None:
                releases[(project_id, event.release)] = {
                    "project_id": project_id,
                    "version": event.release,
                    "date_created": created,
                    "first_event": ts,
                    "last_event": ts,
                    "new_groups": int(index in creators),
                }
            else:
                row["first_event"] = min(row["first_event"], ts)
                row["last_event"] = max(row["last_event"], ts)
                row["new_groups"] += int(index in creators)
        if not releases:
            return
        Release = self.models.Release
        upsert = self._release_upsert(connection)
        connection.execute(
            upsert,
            self._in_lock_order(connection, Release.__table__, ("project_id", "version"), releases),
        )

    def _count_in_group(
        self, connection: sa.Connection, project_id: int, event: s.NewEvent
    ) -> _Counted:
        """Count the event in its group, creating the group if needed.

        The UPDATE comes first so it takes the row (PostgreSQL) or database (SQLite) write
        lock before anything is read: the status it returns cannot change under us, and
        concurrent events for one new fingerprint meet at the unique (project, hash) key.
        """
        Group = self.models.Group.__table__
        count_in = self._statement(
            connection, "group_count", lambda: self._group_count_statement(Group)
        )
        create = self._statement(
            connection,
            "group_insert",
            lambda: (
                self._insert(Group)
                .on_conflict_do_nothing(index_elements=["project_id", "hash"])
                .returning(Group.c.id)
            ),
        )
        ts = event.timestamp
        for _attempt in range(3):
            row = connection.execute(
                count_in,
                {
                    "b_project": project_id,
                    "b_hash": event.group_hash,
                    "b_ts": ts,
                    "b_level": event.level,
                    "b_culprit": event.culprit,
                },
            ).first()
            if row is not None:
                return _Counted(
                    group_id=row.id,
                    is_new=False,
                    is_regression=row.status == "resolved",
                    score=s.priority_score(row.times_seen, row.last_seen),
                )

            score = s.priority_score(1, ts)
            created = connection.execute(
                create,
                {
                    "project_id": project_id,
                    "hash": event.group_hash,
                    "title": event.title[:255],
                    "message": event.message,
                    "culprit": event.culprit,
                    "logger": event.logger,
                    "level": event.level,
                    "type": event.type,
                    "metadata": dict(event.metadata),
                    "platform": event.platform,
                    "status": "unresolved",
                    "is_public": False,
                    "is_bookmarked": False,
                    "has_seen": False,
                    "times_seen": 1,
                    "user_count": 0,
                    "num_comments": 0,
                    "first_seen": ts,
                    "last_seen": ts,
                    "score": score,
                },
            ).scalar()
            if created is not None:
                return _Counted(group_id=created, is_new=True, is_regression=False, score=score)
            # Lost the race to create it: the row exists now, count into it.
        raise RuntimeError("could not create or update the group")  # pragma: no cover

    @staticmethod
    def _group_count_statement(
        Group: sa.Table,  # noqa: N803 - a table
        *,
        many: bool = False,
    ) -> sa.Update:
        """``UPDATE`` counting one event (``many``: ``b_n`` events) in its group; the newest
        event sets last_seen, level and culprit."""
        ts = sa.bindparam("b_ts", type_=UTCDateTime())
        is_newest = Group.c.last_seen <= ts
        counted = sa.bindparam("b_n", type_=sa.Integer()) if many else 1
        return (
            sa.update(Group)
            .where(
                Group.c.project_id == sa.bindparam("b_project"),
                Group.c.hash == sa.bindparam("b_hash"),
            )
            .values(
                times_seen=Group.c.times_seen + counted,
                last_seen=sa.case((is_newest, ts), else_=Group.c.last_seen),
                level=sa.case(
                    (is_newest, sa.bindparam("b_level", type_=sa.String())),
                    else_=Group.c.level,
                ),
                culprit=sa.case(
                    (is_newest, sa.bindparam("b_culprit", type_=sa.String())),
                    else_=Group.c.culprit,
                ),
            )
            .returning(Group.c.id, Group.c.status, Group.c.times_seen, Group.c.last_seen)
        )

    def _finish_group(
        self, connection: sa.Connection, counted: _Counted, new_users: int
    ) -> s.Group:
        """Set the counted group's score, reopen it if it was resolved, add the event's new
        users, and return the group as stored."""
        Group = self.models.Group.__table__

        def build(reopen: bool) -> sa.UpdateBase:
            values: dict[str, t.Any] = {
                "score": sa.bindparam("b_score"),
                "user_count": Group.c.user_count + sa.bindparam("b_users", type_=sa.Integer()),
            }
            if reopen:
                values.update(status="unresolved", resolved_at=None)
            return (
                sa.update(Group)
                .where(Group.c.id == sa.bindparam("b_id"))
                .values(values)
                .returning(*records.group_columns(Group))
            )

        name = "group_reopen" if counted.is_regression else "group_finish"
        finish = self._statement(connection, name, lambda: build(counted.is_regression))
        params = {"b_id": counted.group_id, "b_score": counted.score, "b_users": new_users}
        return records.group(connection.execute(finish, params).one())

    def _tag_value_upsert(self, connection: sa.Connection) -> sa.Executable:
        """Count a tag value in its project (both write paths)."""
        TagValue = self.models.TagValue
        return self._statement(
            connection,
            "tag_value",
            lambda: sql.merge_seen(
                self._insert(TagValue), TagValue, ["project_id", "key", "value"]
            ).returning(TagValue.times_seen),
        )

    def _stat_upserts(self, connection: sa.Connection) -> tuple[sa.Executable, sa.Executable]:
        """Count events in a group's and a project's stat buckets (both write paths)."""
        GroupStat, ProjectStat = self.models.GroupStat, self.models.ProjectStat
        group_upsert = self._statement(
            connection,
            "group_stat",
            lambda: sql.merge_count(
                self._insert(GroupStat), GroupStat, ["group_id", "resolution", "bucket"]
            ).returning(GroupStat.count),
        )
        project_upsert = self._statement(
            connection,
            "project_stat",
            lambda: sql.merge_count(
                self._insert(ProjectStat), ProjectStat, ["project_id", "resolution", "bucket"]
            ).returning(ProjectStat.count),
        )
        return group_upsert, project_upsert

    def _release_upsert(self, connection: sa.Connection) -> sa.Executable:
        """Record a release's events and new groups (both write paths)."""
        Release = self.models.Release
        return self._statement(
            connection, "release_upsert", lambda: sql.merge_release(self._insert(Release), Release)
        )

    def _record_tags(
        self, connection: sa.Connection, project_id: int, group_id: int, event: s.NewEvent
    ) -> int:
        """Count the event's tag values in the project and the group; returns how many of
        its users the group had not seen before."""
        pairs = sorted(dict(event.tags).items())  # sorted: every writer locks rows in one order
        if not pairs:
            return 0
        GroupTagValue = self.models.GroupTagValue
        project_upsert = self._tag_value_upsert(connection)
        group_upsert = self._statement(
            connection,
            "group_tag_value",
            lambda: sql.merge_seen(
                self._insert(GroupTagValue), GroupTagValue, ["group_id", "key", "value"]
            ).returning(GroupTagValue.key, GroupTagValue.times_seen),
        )
        ts = event.timestamp
        common = {"project_id": project_id, "times_seen": 1, "first_seen": ts, "last_seen": ts}
        # Parameter lists with RETURNING: SQLAlchemy's "insertmanyvalues" sends each as one
        # multi-row statement (SQLite and PostgreSQL), its SQL compiled once and cached. (A
        # statement built with multi-row .values() is never cached: it compiles each time.)
        connection.execute(project_upsert, [{**common, "key": k, "value": v} for k, v in pairs])
        group_rows = [{**common, "group_id": group_id, "key": k, "value": v} for k, v in pairs]
        result = connection.execute(group_upsert, group_rows)
        return sum(1 for key, seen in result if key == "user" and seen == 1)

    def _record_stats(
        self, connection: sa.Connection, project_id: int, group_id: int, moment: datetime
    ) -> None:
        group_upsert, project_upsert = self._stat_upserts(connection)
        epoch = s.epoch_seconds(moment)
        buckets = [
            {"resolution": r, "bucket": epoch - epoch % r, "count": 1} for r in s.STAT_RESOLUTIONS
        ]
        connection.execute(group_upsert, [{**b, "group_id": group_id} for b in buckets])
        connection.execute(project_upsert, [{**b, "project_id": project_id} for b in buckets])

    def _record_release(
        self, connection: sa.Connection, project_id: int, event: s.NewEvent, is_new_group: bool
    ) -> None:
        ts = event.timestamp
        connection.execute(
            self._release_upsert(connection),
            {
                "project_id": project_id,
                "version": event.release,
                "date_created": s.utcnow(),
                "first_event": ts,
                "last_event": ts,
                "new_groups": int(is_new_group),
            },
        )
