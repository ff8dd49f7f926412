"""The SQL storage's write path: :meth:`~EventWriter.save_event` in eight statements, each
built once per dialect and run on the session's connection with plain parameters (no ORM
objects); the tag and stat upserts send all of an event's rows in one statement each."""

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
        values: dict[str, t.Any] = {
            "project_id": project_id,
            "group_id": counted.group_id,
            "event_id": event.event_id,
            "message": event.message,
            "title": event.title[:255],
            "culprit": event.culprit,
            "level": event.level,
            "logger": event.logger,
            "platform": event.platform,
            "datetime": event.timestamp,
            "date_received": s.utcnow(),
            "release": event.release,
            "environment": event.environment,
            "user": dict(event.user) if event.user is not None else None,
            "tags": [list(pair) for pair in event.tags],
            "data": dict(event.data),
        }
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
    def _group_count_statement(Group: sa.Table) -> sa.Update:  # noqa: N803 - a table
        """``UPDATE`` counting one event in its group; the newest event sets last_seen,
        level and culprit."""
        ts = sa.bindparam("b_ts", type_=UTCDateTime())
        is_newest = Group.c.last_seen <= ts
        return (
            sa.update(Group)
            .where(
                Group.c.project_id == sa.bindparam("b_project"),
                Group.c.hash == sa.bindparam("b_hash"),
            )
            .values(
                times_seen=Group.c.times_seen + 1,
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

    def _record_tags(
        self, connection: sa.Connection, project_id: int, group_id: int, event: s.NewEvent
    ) -> int:
        """Count the event's tag values in the project and the group; returns how many of
        its users the group had not seen before."""
        pairs = sorted(dict(event.tags).items())  # sorted: every writer locks rows in one order
        if not pairs:
            return 0
        TagValue, GroupTagValue = self.models.TagValue, self.models.GroupTagValue
        project_upsert = self._statement(
            connection,
            "tag_value",
            lambda: sql.merge_seen(
                self._insert(TagValue), TagValue, ["project_id", "key", "value"]
            ).returning(TagValue.times_seen),
        )
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
        epoch = s.epoch_seconds(moment)
        buckets = [
            {"resolution": r, "bucket": epoch - epoch % r, "count": 1} for r in s.STAT_RESOLUTIONS
        ]
        connection.execute(group_upsert, [{**b, "group_id": group_id} for b in buckets])
        connection.execute(project_upsert, [{**b, "project_id": project_id} for b in buckets])

    def _record_release(
        self, connection: sa.Connection, project_id: int, event: s.NewEvent, is_new_group: bool
    ) -> None:
        Release = self.models.Release
        ts = event.timestamp
        connection.execute(
            self._statement(
                connection,
                "release_upsert",
                lambda: sql.merge_release(self._insert(Release), Release),
            ),
            {
                "project_id": project_id,
                "version": event.release,
                "date_created": s.utcnow(),
                "first_event": ts,
                "last_event": ts,
                "new_groups": int(is_new_group),
            },
        )
