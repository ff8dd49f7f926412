"""The default :class:`~flask_sentry_api.storage.Storage`: the host's Flask-SQLAlchemy ``db``.

Supports SQLite (3.35+, the embedded default) and PostgreSQL. Every write method is one
transaction that either commits whole or rolls back whole; bulk operations are single
set-based statements, never a loop over rows in Python. Database connection failures
surface as :class:`~flask_sentry_api.storage.Unavailable` (HTTP 503).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import secrets
import sqlite3
import typing as t
import unicodedata
from datetime import datetime
from datetime import timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from . import storage as s
from .migrate import lock_schema
from .migrate import upgrade_locked
from .models import Models
from .models import UTCDateTime
from .models import build_models
from .pagination import Window

UTC = timezone.utc
F = t.TypeVar("F", bound=t.Callable[..., t.Any])
R = t.TypeVar("R")


@dataclasses.dataclass(frozen=True)
class _Counted:
    """An event counted in its group, before the group is finished."""

    group_id: int
    is_new: bool
    is_regression: bool
    score: int


_DATETIME_SORT_COLUMNS = {"date": "last_seen", "new": "first_seen"}
_INTEGER_SORT_COLUMNS = {"freq": "times_seen", "priority": "score"}
_MAX_DATETIME = datetime.max.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _from_epoch(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return _MAX_DATETIME if seconds > 0 else datetime.min.replace(tzinfo=UTC)


def _key_bound(column: t.Any, op: str | None, value: int, *, seconds: bool = False) -> t.Any:
    """``key <op> value``, kept a range on the indexed ``column``.

    With ``seconds``, the key is whole Unix seconds of a datetime column, so the bounds
    become second boundaries rather than a computed expression the index cannot serve.
    """
    if op is None:
        return sa.true()
    if not seconds:
        return {"<=": column <= value, "==": column == value, ">": column > value}[op]
    start, end = _from_epoch(value), _from_epoch(value + 1)
    if op == "<=":
        return column < end
    if op == ">":
        return column >= end
    return sa.and_(column >= start, column < end)


def _keyset(
    stmt: t.Any, window: Window, column: t.Any, tiebreak: t.Any = None, *, seconds: bool = False
) -> t.Any:
    """Apply a pagination :class:`Window`: bound, ``(column, tiebreak)`` order, offset, limit."""
    columns = (column,) if tiebreak is None else (column, tiebreak)
    order = [c.desc() if window.descending else c.asc() for c in columns]
    return (
        stmt.where(_key_bound(column, window.op, window.value, seconds=seconds))
        .order_by(*order)
        .offset(window.offset)
        .limit(window.limit)
    )


def slugify(name: str) -> str:
    """Lowercase letters, digits, ``-`` and ``_``; ``project`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_name.lower()).strip("-_")
    return slug[:50] or "project"


@sa.event.listens_for(sa.Engine, "connect")
def _add_sqlite_functions(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    """Give SQLite connections a Unicode-aware lower() for case-insensitive search."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(
            "sentry_api_lower", 1, lambda text: text.lower() if text else text, deterministic=True
        )


def _translating_errors(method: F) -> F:
    """Roll back on any failure; report lost connections as :class:`storage.Unavailable`."""

    @functools.wraps(method)
    def wrapper(self: SQLAlchemyStorage, *args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return method(self, *args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            self._rollback_quietly()
            raise s.Unavailable(f"database unavailable: {type(exc.orig).__name__}") from exc
        except sa.exc.DBAPIError as exc:
            self._rollback_quietly()
            if exc.connection_invalidated:
                raise s.Unavailable("database connection lost") from exc
            raise
        except BaseException:
            self._rollback_quietly()
            raise

    return t.cast(F, wrapper)


class SQLAlchemyStorage:
    """Storage on a Flask-SQLAlchemy ``db``; its tables are named ``<table_prefix>*``.

    :param db: the host's :class:`flask_sqlalchemy.SQLAlchemy` instance.
    :param table_prefix: prefix of every table, so the storage never collides with the
        host's own tables.
    """

    def __init__(self, db: t.Any, *, table_prefix: str = "sentry_") -> None:
        self.db = db
        self.table_prefix = table_prefix
        self.models: Models = build_models(db, table_prefix)
        self._statements: dict[tuple[str, str], t.Any] = {}

    # -- plumbing ------------------------------------------------------------------------
    @property
    def session(self) -> t.Any:
        return self.db.session

    @property
    def dialect(self) -> str:
        return str(self.session.get_bind().dialect.name)

    def _rollback_quietly(self) -> None:
        try:
            self.session.rollback()
        except Exception:  # noqa: BLE001 - the original error is the one worth raising
            pass

    def _lower(self, column: t.Any) -> t.Any:
        # SQLite's lower() folds ASCII letters only; PostgreSQL's folds every letter.
        if self.dialect == "sqlite":
            return sa.func.sentry_api_lower(column)
        return sa.func.lower(column)

    def _commit_returning(self, record: t.Callable[[], R]) -> R:
        """Commit, returning ``record()`` built from the rows before the commit expires them:
        reading them afterwards would start a transaction left open (and holding locks) until
        the session is removed."""
        self.session.flush()
        result = record()
        self.session.commit()
        return result

    def _statement(self, connection: t.Any, name: str, build: t.Callable[[], t.Any]) -> t.Any:
        """The statement ``build()`` returns, built once per dialect (``connection``'s).

        For the statements every request or event runs (the key lookup, the eight of storing
        an event): built anew each time, SQLAlchemy constructs, coerces and cache-keys them,
        which cost several times the database work. Built once, with values as bound
        parameters, and executed on the session's connection, they cost little more than
        the query.
        """
        # The connection's dialect, not self.dialect, which asks the session for its bind
        # again for each statement an event looks up.
        cache_key = (name, connection.dialect.name)
        stmt = self._statements.get(cache_key)
        if stmt is None:
            stmt = self._statements[cache_key] = build()
        return stmt

    def _insert(self, model: t.Any) -> t.Any:
        """A dialect insert that supports ``ON CONFLICT`` (SQLite and PostgreSQL)."""
        if self.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    def _in_ids(self, column: t.Any, ids: t.Any) -> t.Any:
        """``column IN ids`` for a list of ids or a subquery.

        On PostgreSQL a list goes as one array parameter (``= ANY(:ids)``): an ``IN`` list
        binds every id separately, and at 100,000 ids binding and planning them cost more
        than the change itself (a bulk delete took 2.8 times the raw SQL).
        """
        if isinstance(ids, (list, tuple)) and self.dialect == "postgresql":
            # Bound as BIGINT[] (psycopg's dialect casts it), so the id indexes serve it.
            return column == sa.any_(sa.literal(list(ids), postgresql.ARRAY(sa.BigInteger())))
        return column.in_(ids)

    @_translating_errors
    def init_schema(self) -> None:
        """Migrate the tables to the current revision, creating them on a new database."""
        with self.session.get_bind().begin() as connection:
            lock_schema(connection, self.table_prefix)
            upgrade_locked(connection, self.table_prefix)
            # Tables dropped outside the migrations (db.drop_all() in a host's tests) return.
            self.db.metadata.create_all(bind=connection, tables=self.models.tables)

    # -- projects and keys -----------------------------------------------------------------
    @_translating_errors
    def create_project(self, name: str, slug: str | None = None) -> s.Project:
        Project = self.models.Project
        if slug is not None:
            if self.session.scalar(sa.select(Project.id).where(Project.slug == slug)):
                raise s.Conflict("slug", "This slug is already in use.")
        else:
            base = slugify(name)
            taken = set(
                self.session.scalars(
                    sa.select(Project.slug).where(
                        sa.or_(Project.slug == base, Project.slug.startswith(base + "-"))
                    )
                )
            )
            slug, n = base, 1
            while slug in taken:
                n += 1
                slug = f"{base}-{n}"
        row = Project(name=name, slug=slug, is_public=False, date_created=_now())
        self.session.add(row)
        try:
            return self._commit_returning(lambda: self._project(row))
        except sa.exc.IntegrityError as exc:
            self.session.rollback()
            raise s.Conflict("slug", "This slug is already in use.") from exc

    @_translating_errors
    def get_project(self, project_id: int) -> s.Project | None:
        Project = self.models.Project.__table__
        connection = self.session.connection()
        by_id = self._statement(
            connection,
            "project_by_id",
            lambda: sa.select(Project).where(Project.c.id == sa.bindparam("b_id")),
        )
        row = connection.execute(by_id, {"b_id": project_id}).first()
        return self._project(row) if row is not None else None

    @_translating_errors
    def update_project(self, project_id: int, changes: t.Mapping[str, t.Any]) -> s.Project:
        Project = self.models.Project
        values = {k: v for k, v in changes.items() if k in s.PROJECT_FIELDS}
        if "allowed_origins" in values:
            values["allowed_origins"] = "\n".join(values["allowed_origins"])
        if "slug" in values:
            clash = self.session.scalar(
                sa.select(Project.id).where(
                    Project.slug == values["slug"], Project.id != project_id
                )
            )
            if clash:
                raise s.Conflict("slug", "This slug is already in use.")
        try:
            if values:
                self.session.execute(
                    sa.update(Project).where(Project.id == project_id).values(values)
                )
            row = self.session.get(Project, project_id, populate_existing=True)
            if row is None:
                raise LookupError(project_id)
            return self._commit_returning(lambda: self._project(row))
        except sa.exc.IntegrityError as exc:  # a concurrent request took the slug
            self.session.rollback()
            raise s.Conflict("slug", "This slug is already in use.") from exc

    @_translating_errors
    def create_key(self, project_id: int, roles: int, label: str | None = None) -> s.ProjectKey:
        row = self.models.ProjectKey(
            project_id=project_id,
            public_key=secrets.token_hex(16),
            secret_key=secrets.token_hex(16),
            roles=roles,
            is_active=True,
            label=label,
            date_added=_now(),
        )
        self.session.add(row)
        return self._commit_returning(lambda: self._key(row))

    @_translating_errors
    def get_key(self, public_key: str) -> s.ProjectKey | None:
        ProjectKey = self.models.ProjectKey.__table__
        connection = self.session.connection()
        by_public_key = self._statement(
            connection,
            "key_by_public_key",
            lambda: sa.select(ProjectKey).where(
                ProjectKey.c.public_key == sa.bindparam("b_public_key")
            ),
        )
        params = {"b_public_key": public_key}
        row = connection.execute(by_public_key, params).first()
        return self._key(row) if row is not None else None

    @_translating_errors
    def list_keys(self, project_id: int) -> list[s.ProjectKey]:
        ProjectKey = self.models.ProjectKey
        rows = self.session.scalars(
            sa.select(ProjectKey).where(ProjectKey.project_id == project_id).order_by(ProjectKey.id)
        )
        return [self._key(row) for row in rows]

    @_translating_errors
    def set_key_active(self, public_key: str, active: bool) -> bool:
        ProjectKey = self.models.ProjectKey
        result = self.session.execute(
            sa.update(ProjectKey)
            .where(ProjectKey.public_key == public_key)
            .values(is_active=active)
        )
        self.session.commit()
        return bool(result.rowcount)

    # -- ingestion -------------------------------------------------------------------------
    @_translating_errors
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
        connection = self.session.connection()
        Event = self.models.Event.__table__
        insert_event = self._statement(
            connection,
            "event_insert",
            lambda: (
                self._insert(Event)
                .on_conflict_do_nothing(index_elements=["project_id", "event_id"])
                .returning(*Event.c)
            ),
        )
        counted = self._count_in_group(connection, project_id, event)
        inserted = connection.execute(
            insert_event,
            {
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
                "date_received": _now(),
                "release": event.release,
                "environment": event.environment,
                "user": dict(event.user) if event.user is not None else None,
                "tags": [list(pair) for pair in event.tags],
                "data": dict(event.data),
            },
        ).first()
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
            event=self._event(inserted),
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
            event=self._event(event_row),
            group=self._group(group_row),
            created=False,
            is_new_group=False,
            is_regression=False,
        )

    def _count_in_group(self, connection: t.Any, project_id: int, event: s.NewEvent) -> _Counted:
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
    def _group_count_statement(Group: t.Any) -> t.Any:  # noqa: N803 - a table, named as one
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

    def _finish_group(self, connection: t.Any, counted: _Counted, new_users: int) -> s.Group:
        """Set the counted group's score, reopen it if it was resolved, add the event's new
        users, and return the group as stored."""
        Group = self.models.Group.__table__

        def build(reopen: bool) -> t.Any:
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
                .returning(*self._group_columns())
            )

        name = "group_reopen" if counted.is_regression else "group_finish"
        finish = self._statement(connection, name, lambda: build(counted.is_regression))
        params = {"b_id": counted.group_id, "b_score": counted.score, "b_users": new_users}
        return self._group(connection.execute(finish, params).one())

    @staticmethod
    def _merge_seen(stmt: t.Any, model: t.Any, conflict: list[str]) -> t.Any:
        """``ON CONFLICT`` for tag rows: add the counts, widen first/last seen."""
        excluded = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=conflict,
            set_={
                "times_seen": model.times_seen + excluded.times_seen,
                "first_seen": sa.case(
                    (excluded.first_seen < model.first_seen, excluded.first_seen),
                    else_=model.first_seen,
                ),
                "last_seen": sa.case(
                    (excluded.last_seen > model.last_seen, excluded.last_seen),
                    else_=model.last_seen,
                ),
            },
        )

    @staticmethod
    def _merge_count(stmt: t.Any, model: t.Any, conflict: list[str]) -> t.Any:
        """``ON CONFLICT`` for stat rows: add the counts."""
        return stmt.on_conflict_do_update(
            index_elements=conflict, set_={"count": model.count + stmt.excluded.count}
        )

    def _record_tags(
        self, connection: t.Any, project_id: int, group_id: int, event: s.NewEvent
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
            lambda: self._merge_seen(
                self._insert(TagValue), TagValue, ["project_id", "key", "value"]
            ),
        )
        group_upsert = self._statement(
            connection,
            "group_tag_value",
            lambda: self._merge_seen(
                self._insert(GroupTagValue), GroupTagValue, ["group_id", "key", "value"]
            ).returning(GroupTagValue.key, GroupTagValue.times_seen),
        )
        ts = event.timestamp
        common = {"project_id": project_id, "times_seen": 1, "first_seen": ts, "last_seen": ts}
        # Parameter lists: one multi-row statement per table.
        connection.execute(project_upsert, [{**common, "key": k, "value": v} for k, v in pairs])
        group_rows = [{**common, "group_id": group_id, "key": k, "value": v} for k, v in pairs]
        result = connection.execute(group_upsert, group_rows)
        return sum(1 for key, seen in result if key == "user" and seen == 1)

    def _record_stats(
        self, connection: t.Any, project_id: int, group_id: int, moment: datetime
    ) -> None:
        GroupStat, ProjectStat = self.models.GroupStat, self.models.ProjectStat
        group_upsert = self._statement(
            connection,
            "group_stat",
            lambda: self._merge_count(
                self._insert(GroupStat), GroupStat, ["group_id", "resolution", "bucket"]
            ),
        )
        project_upsert = self._statement(
            connection,
            "project_stat",
            lambda: self._merge_count(
                self._insert(ProjectStat), ProjectStat, ["project_id", "resolution", "bucket"]
            ),
        )
        epoch = s.epoch_seconds(moment)
        buckets = [
            {"resolution": r, "bucket": epoch - epoch % r, "count": 1} for r in s.STAT_RESOLUTIONS
        ]
        connection.execute(group_upsert, [{**b, "group_id": group_id} for b in buckets])
        connection.execute(project_upsert, [{**b, "project_id": project_id} for b in buckets])

    def _record_release(
        self, connection: t.Any, project_id: int, event: s.NewEvent, is_new_group: bool
    ) -> None:
        Release = self.models.Release
        ts = event.timestamp
        connection.execute(
            self._statement(
                connection,
                "release_upsert",
                lambda: self._merge_release(self._insert(Release), Release),
            ),
            {
                "project_id": project_id,
                "version": event.release,
                "date_created": _now(),
                "first_event": ts,
                "last_event": ts,
                "new_groups": int(is_new_group),
            },
        )

    @staticmethod
    def _merge_release(stmt: t.Any, Release: t.Any) -> t.Any:  # noqa: N803 - a model
        """``ON CONFLICT`` for releases: widen first/last event, add the new groups."""
        excluded = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=["project_id", "version"],
            set_={
                "first_event": sa.case(
                    (
                        sa.or_(
                            Release.first_event.is_(None),
                            excluded.first_event < Release.first_event,
                        ),
                        excluded.first_event,
                    ),
                    else_=Release.first_event,
                ),
                "last_event": sa.case(
                    (
                        sa.or_(
                            Release.last_event.is_(None),
                            excluded.last_event > Release.last_event,
                        ),
                        excluded.last_event,
                    ),
                    else_=Release.last_event,
                ),
                "new_groups": Release.new_groups + excluded.new_groups,
            },
        )

    # -- groups ----------------------------------------------------------------------------
    @_translating_errors
    def get_group(self, group_id: int) -> s.Group | None:
        row = self.session.get(self.models.Group, group_id, populate_existing=True)
        return self._group(row) if row is not None else None

    def _group_conditions(self, project_id: int, query: s.GroupQuery) -> list[t.Any]:
        Group, GroupTagValue = self.models.Group, self.models.GroupTagValue
        conditions: list[t.Any] = [Group.project_id == project_id]
        if query.status is not None:
            conditions.append(Group.status == query.status)
        if query.ids is not None:
            conditions.append(self._in_ids(Group.id, query.ids))
        if query.since is not None:
            conditions.append(Group.last_seen >= query.since)
        if query.until is not None:
            conditions.append(Group.last_seen <= query.until)
        for key, value in query.tags:
            conditions.append(
                sa.exists().where(
                    GroupTagValue.group_id == Group.id,
                    GroupTagValue.key == key,
                    GroupTagValue.value == value,
                )
            )
        if query.text:
            needle = query.text.lower()
            conditions.append(
                sa.or_(
                    *(
                        self._lower(column).contains(needle, autoescape=True)
                        for column in (Group.title, Group.message, Group.culprit)
                    )
                )
            )
        return conditions

    def _sort_column(self, sort: str) -> tuple[t.Any, bool]:
        """The column behind a group sort, and whether its key is whole seconds of it."""
        Group = self.models.Group
        if sort in _INTEGER_SORT_COLUMNS:
            return getattr(Group, _INTEGER_SORT_COLUMNS[sort]), False
        return getattr(Group, _DATETIME_SORT_COLUMNS.get(sort, "last_seen")), True

    @_translating_errors
    def list_groups(self, project_id: int, query: s.GroupQuery, window: Window) -> list[s.Group]:
        Group = self.models.Group
        column, seconds = self._sort_column(query.sort)
        stmt = _keyset(
            sa.select(*self._group_columns()).where(*self._group_conditions(project_id, query)),
            window,
            column,
            Group.id,
            seconds=seconds,
        )
        # Plain rows, not ORM entities: a page is read-only, and building and registering
        # a hundred instances in the identity map cost as much as the query itself.
        return [self._group(row) for row in self.session.execute(stmt)]

    def _group_columns(self) -> list[t.Any]:
        """The group table's columns, named like the mapped attributes :meth:`_group` reads."""
        columns = self.models.Group.__table__.c
        return [c.label("metadata_") if c.name == "metadata" else c for c in columns]

    @_translating_errors
    def count_groups_with_key(self, project_id: int, query: s.GroupQuery, key: int) -> int:
        Group = self.models.Group
        column, seconds = self._sort_column(query.sort)
        stmt = (
            sa.select(sa.func.count())
            .select_from(Group)
            .where(
                *self._group_conditions(project_id, query),
                _key_bound(column, "==", key, seconds=seconds),
            )
        )
        return int(self.session.scalar(stmt) or 0)

    @_translating_errors
    def group_stats(
        self, group_ids: t.Sequence[int], resolution: int, start: int, end: int
    ) -> dict[int, dict[int, int]]:
        GroupStat = self.models.GroupStat
        stats: dict[int, dict[int, int]] = {group_id: {} for group_id in group_ids}
        if not group_ids:
            return stats
        rows = self.session.execute(
            sa.select(GroupStat.group_id, GroupStat.bucket, GroupStat.count).where(
                self._in_ids(GroupStat.group_id, list(group_ids)),
                GroupStat.resolution == resolution,
                GroupStat.bucket >= start,
                GroupStat.bucket <= end,
            )
        )
        for group_id, bucket, count in rows:
            stats[group_id][int(bucket)] = int(count)
        return stats

    @_translating_errors
    def update_groups(self, project_id: int, query: s.GroupQuery, changes: s.GroupChanges) -> int:
        Group = self.models.Group
        values: dict[str, t.Any] = {}
        if changes.status is not None:
            values["status"] = changes.status
            if changes.status == "resolved":
                values["resolved_at"] = sa.case(
                    (Group.status != "resolved", _now()), else_=Group.resolved_at
                )
            else:
                values["resolved_at"] = None
        for name in ("is_public", "is_bookmarked", "has_seen"):
            if getattr(changes, name) is not None:
                values[name] = getattr(changes, name)
        conditions = self._group_conditions(project_id, query)
        if not values:
            return int(
                self.session.scalar(
                    sa.select(sa.func.count()).select_from(Group).where(*conditions)
                )
                or 0
            )
        result = self.session.execute(
            sa.update(Group)
            .where(*conditions)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return int(result.rowcount)

    @_translating_errors
    def merge_groups(self, project_id: int, group_ids: t.Sequence[int]) -> tuple[int, list[int]]:
        m = self.models
        Group = m.Group
        # Locked in id order, as delete_groups does, so two writers never wait on each other.
        locked = self.session.execute(
            sa.select(Group.id, Group.times_seen)
            .where(Group.project_id == project_id, self._in_ids(Group.id, list(group_ids)))
            .order_by(Group.id)
            .with_for_update()
        ).all()
        ranked = [row.id for row in sorted(locked, key=lambda row: -row.times_seen)]
        if not ranked:
            raise LookupError("no such groups")
        parent, children = ranked[0], list(ranked[1:])
        if not children:
            return parent, []

        in_children = list(children)
        totals = self.session.execute(
            sa.select(
                sa.func.sum(Group.times_seen),
                sa.func.min(Group.first_seen),
                sa.func.max(Group.last_seen),
                sa.func.sum(Group.num_comments),
            ).where(Group.id.in_(ranked))
        ).one()
        # Events and notes move; tag and stat rows are summed into the parent's.
        self.session.execute(
            sa.update(m.Event).where(m.Event.group_id.in_(in_children)).values(group_id=parent)
        )
        self.session.execute(
            sa.update(m.Note).where(m.Note.group_id.in_(in_children)).values(group_id=parent)
        )
        GTV = m.GroupTagValue
        merged_tags = (
            sa.select(
                GTV.project_id,
                sa.literal(parent).label("group_id"),
                GTV.key,
                GTV.value,
                sa.func.sum(GTV.times_seen),
                sa.func.min(GTV.first_seen),
                sa.func.max(GTV.last_seen),
            )
            .where(GTV.group_id.in_(in_children))
            .group_by(GTV.project_id, GTV.key, GTV.value)
            .order_by(GTV.key, GTV.value)  # new rows get ids in a defined order
        )
        self.session.execute(
            self._merge_seen(
                self._insert(GTV).from_select(
                    [
                        "project_id",
                        "group_id",
                        "key",
                        "value",
                        "times_seen",
                        "first_seen",
                        "last_seen",
                    ],
                    merged_tags,
                ),
                GTV,
                ["group_id", "key", "value"],
            )
        )
        GS = m.GroupStat
        merged_stats = (
            sa.select(sa.literal(parent), GS.resolution, GS.bucket, sa.func.sum(GS.count))
            .where(GS.group_id.in_(in_children))
            .group_by(GS.resolution, GS.bucket)
        )
        self.session.execute(
            self._merge_count(
                self._insert(GS).from_select(
                    ["group_id", "resolution", "bucket", "count"], merged_stats
                ),
                GS,
                ["group_id", "resolution", "bucket"],
            )
        )
        self._delete_group_rows(in_children)
        times_seen, first_seen, last_seen, num_comments = totals
        user_count = self.session.scalar(
            sa.select(sa.func.count()).where(GTV.group_id == parent, GTV.key == "user")
        )
        self.session.execute(
            sa.update(Group)
            .where(Group.id == parent)
            .values(
                times_seen=times_seen,
                first_seen=first_seen,
                last_seen=last_seen,
                num_comments=num_comments,
                user_count=user_count,
                score=s.priority_score(int(times_seen), _aware(last_seen)),
            )
        )
        self.session.commit()
        return parent, children

    def _delete_group_rows(self, group_ids: t.Any) -> None:
        """Delete groups and everything under them (``group_ids``: a list or a subquery)."""
        m = self.models
        for model in (m.Event, m.Note, m.GroupTagValue, m.GroupStat):
            self.session.execute(
                sa.delete(model)
                .where(self._in_ids(model.group_id, group_ids))
                .execution_options(synchronize_session=False)
            )
        self.session.execute(
            sa.delete(m.Group)
            .where(self._in_ids(m.Group.id, group_ids))
            .execution_options(synchronize_session=False)
        )

    @_translating_errors
    def delete_groups(self, project_id: int, group_ids: t.Sequence[int]) -> int:
        Group = self.models.Group
        # The group rows are locked first, in id order: an event being stored holds its
        # group's row before it touches the rows under it, so taking them in the same order
        # means each waits for the other instead of deadlocking.
        selected = list(
            self.session.scalars(
                sa.select(Group.id)
                .where(Group.project_id == project_id, self._in_ids(Group.id, list(group_ids)))
                .order_by(Group.id)
                .with_for_update()
            )
        )
        if selected:
            self._delete_group_rows(selected)
        self.session.commit()
        return len(selected)

    @_translating_errors
    def update_group(self, group_id: int, changes: s.GroupChanges) -> s.Group | None:
        group = self.get_group(group_id)
        if group is None:
            return None
        self.update_groups(group.project_id, s.GroupQuery(ids=(group_id,)), changes)
        return self.get_group(group_id)

    # -- events and notes --------------------------------------------------------------------
    @_translating_errors
    def list_events(self, group_id: int, window: Window) -> list[s.Event]:
        Event = self.models.Event
        stmt = _keyset(sa.select(Event).where(Event.group_id == group_id), window, Event.id)
        return [self._event(row) for row in self.session.scalars(stmt)]

    @_translating_errors
    def get_event(self, event_id: int) -> s.Event | None:
        row = self.session.get(self.models.Event, event_id)
        return self._event(row) if row is not None else None

    @_translating_errors
    def latest_event(self, group_id: int) -> s.Event | None:
        Event = self.models.Event
        row = self.session.scalar(
            sa.select(Event)
            .where(Event.group_id == group_id)
            .order_by(Event.datetime.desc(), Event.id.desc())
            .limit(1)
        )
        return self._event(row) if row is not None else None

    @_translating_errors
    def adjacent_events(self, event: s.Event) -> tuple[int | None, int | None]:
        Event = self.models.Event
        same_group = Event.group_id == event.group_id
        before = sa.or_(
            Event.datetime < event.datetime,
            sa.and_(Event.datetime == event.datetime, Event.id < event.id),
        )
        after = sa.or_(
            Event.datetime > event.datetime,
            sa.and_(Event.datetime == event.datetime, Event.id > event.id),
        )
        previous = self.session.scalar(
            sa.select(Event.id)
            .where(same_group, before)
            .order_by(Event.datetime.desc(), Event.id.desc())
            .limit(1)
        )
        following = self.session.scalar(
            sa.select(Event.id)
            .where(same_group, after)
            .order_by(Event.datetime.asc(), Event.id.asc())
            .limit(1)
        )
        return previous, following

    @_translating_errors
    def list_notes(self, group_id: int, window: Window) -> list[s.Note]:
        Note = self.models.Note
        stmt = _keyset(sa.select(Note).where(Note.group_id == group_id), window, Note.id)
        return [self._note(row) for row in self.session.scalars(stmt)]

    @_translating_errors
    def create_note(self, group_id: int, text: str) -> s.Note:
        Note, Group = self.models.Note, self.models.Group
        row = Note(group_id=group_id, text=text, date_created=_now())
        self.session.add(row)
        self.session.execute(
            sa.update(Group).where(Group.id == group_id).values(num_comments=Group.num_comments + 1)
        )
        return self._commit_returning(lambda: self._note(row))

    # -- releases ------------------------------------------------------------------------
    @_translating_errors
    def list_releases(self, project_id: int, window: Window) -> list[s.Release]:
        Release = self.models.Release
        stmt = _keyset(
            sa.select(Release).where(Release.project_id == project_id), window, Release.id
        )
        return [self._release(row) for row in self.session.scalars(stmt)]

    @_translating_errors
    def create_release(self, project_id: int, version: str) -> s.Release:
        Release = self.models.Release
        created = self.session.execute(
            self._insert(Release)
            .values(project_id=project_id, version=version, date_created=_now(), new_groups=0)
            .on_conflict_do_nothing(index_elements=["project_id", "version"])
            .returning(Release.id)
        ).scalar()
        if created is None:
            self.session.rollback()
            raise s.Conflict("version", "A release with this version already exists.")
        release = self.get_release(project_id, version)
        assert release is not None
        self.session.commit()
        return release

    @_translating_errors
    def get_release(self, project_id: int, version: str) -> s.Release | None:
        Release = self.models.Release
        row = self.session.scalar(
            sa.select(Release).where(Release.project_id == project_id, Release.version == version)
        )
        return self._release(row) if row is not None else None

    @_translating_errors
    def delete_release(self, project_id: int, version: str) -> bool:
        Release = self.models.Release
        result = self.session.execute(
            sa.delete(Release).where(Release.project_id == project_id, Release.version == version)
        )
        self.session.commit()
        return bool(result.rowcount)

    # -- tags ----------------------------------------------------------------------------
    @_translating_errors
    def group_tag_keys(self, group_id: int, top: int) -> list[s.TagKeySummary]:
        GTV = self.models.GroupTagValue
        totals = self.session.execute(
            sa.select(GTV.key, sa.func.count(), sa.func.sum(GTV.times_seen))
            .where(GTV.group_id == group_id)
            .group_by(GTV.key)
            .order_by(GTV.key)
        ).all()
        rank = (
            sa.func.row_number()
            .over(partition_by=GTV.key, order_by=(GTV.times_seen.desc(), GTV.id.desc()))
            .label("rank")
        )
        ranked = sa.select(GTV, rank).where(GTV.group_id == group_id).subquery()
        top_rows = self.session.execute(
            sa.select(ranked).where(ranked.c.rank <= top).order_by(ranked.c.key, ranked.c.rank)
        ).all()
        tops: dict[str, list[s.TagValue]] = {}
        for row in top_rows:
            tops.setdefault(row.key, []).append(self._tag_value(row))
        return [
            s.TagKeySummary(
                key=key,
                unique_values=int(unique),
                total_values=int(total or 0),
                top_values=tuple(tops.get(key, ())),
            )
            for key, unique, total in totals
        ]

    def _tag_values_source(self, project_id: int, key: str, group_id: int | None) -> t.Any:
        if group_id is None:
            TV = self.models.TagValue
            return TV, [TV.project_id == project_id, TV.key == key]
        GTV = self.models.GroupTagValue
        return GTV, [GTV.group_id == group_id, GTV.project_id == project_id, GTV.key == key]

    @_translating_errors
    def list_tag_values(
        self, project_id: int, key: str, window: Window, group_id: int | None = None
    ) -> list[s.TagValue]:
        model, conditions = self._tag_values_source(project_id, key, group_id)
        stmt = _keyset(sa.select(model).where(*conditions), window, model.times_seen, model.id)
        return [self._tag_value(row) for row in self.session.scalars(stmt)]

    @_translating_errors
    def count_tag_values_with_key(
        self, project_id: int, key: str, times_seen: int, group_id: int | None = None
    ) -> int:
        model, conditions = self._tag_values_source(project_id, key, group_id)
        stmt = (
            sa.select(sa.func.count())
            .select_from(model)
            .where(*conditions, model.times_seen == times_seen)
        )
        return int(self.session.scalar(stmt) or 0)

    @_translating_errors
    def delete_tag_key(self, project_id: int, key: str) -> bool:
        TV, GTV = self.models.TagValue, self.models.GroupTagValue
        deleted = self.session.execute(
            sa.delete(TV).where(TV.project_id == project_id, TV.key == key)
        ).rowcount
        deleted += self.session.execute(
            sa.delete(GTV).where(GTV.project_id == project_id, GTV.key == key)
        ).rowcount
        if key == "user":
            Group = self.models.Group
            self.session.execute(
                sa.update(Group).where(Group.project_id == project_id).values(user_count=0)
            )
        self.session.commit()
        return bool(deleted)

    # -- stats ---------------------------------------------------------------------------
    @_translating_errors
    def project_stats(
        self, project_id: int, resolution: int, start: int, end: int
    ) -> dict[int, int]:
        ProjectStat = self.models.ProjectStat
        rows = self.session.execute(
            sa.select(ProjectStat.bucket, ProjectStat.count).where(
                ProjectStat.project_id == project_id,
                ProjectStat.resolution == resolution,
                ProjectStat.bucket >= start,
                ProjectStat.bucket <= end,
            )
        )
        return {int(bucket): int(count) for bucket, count in rows}

    # -- row -> record -----------------------------------------------------------------------
    @staticmethod
    def _project(row: t.Any) -> s.Project:
        origins = tuple(o for o in (row.allowed_origins or "").split("\n") if o)
        return s.Project(
            id=row.id,
            slug=row.slug,
            name=row.name,
            is_public=bool(row.is_public),
            date_created=_aware(row.date_created),
            status=row.status,
            allowed_origins=origins,
        )

    @staticmethod
    def _key(row: t.Any) -> s.ProjectKey:
        return s.ProjectKey(
            id=row.id,
            project_id=row.project_id,
            public_key=row.public_key,
            secret_key=row.secret_key,
            roles=row.roles,
            is_active=bool(row.is_active),
            date_added=_aware(row.date_added),
            label=row.label,
        )

    @staticmethod
    def _group(row: t.Any) -> s.Group:
        return s.Group(
            id=row.id,
            project_id=row.project_id,
            hash=row.hash,
            title=row.title,
            culprit=row.culprit,
            message=row.message,
            logger=row.logger,
            level=row.level,
            type=row.type,
            metadata=row.metadata_ or {},
            platform=row.platform,
            status=row.status,
            is_public=bool(row.is_public),
            is_bookmarked=bool(row.is_bookmarked),
            has_seen=bool(row.has_seen),
            times_seen=int(row.times_seen),
            user_count=int(row.user_count),
            first_seen=_aware(row.first_seen),
            last_seen=_aware(row.last_seen),
            resolved_at=_aware(row.resolved_at) if row.resolved_at is not None else None,
            num_comments=int(row.num_comments),
            score=int(row.score),
        )

    @staticmethod
    def _event(row: t.Any) -> s.Event:
        return s.Event(
            id=row.id,
            project_id=row.project_id,
            group_id=row.group_id,
            event_id=row.event_id,
            message=row.message,
            title=row.title,
            culprit=row.culprit,
            level=row.level,
            logger=row.logger,
            platform=row.platform,
            datetime=_aware(row.datetime),
            date_received=_aware(row.date_received),
            release=row.release,
            environment=row.environment,
            user=row.user,
            tags=tuple((str(k), str(v)) for k, v in (row.tags or [])),
            data=row.data or {},
        )

    @staticmethod
    def _release(row: t.Any) -> s.Release:
        return s.Release(
            id=row.id,
            project_id=row.project_id,
            version=row.version,
            date_created=_aware(row.date_created),
            first_event=_aware(row.first_event) if row.first_event is not None else None,
            last_event=_aware(row.last_event) if row.last_event is not None else None,
            new_groups=int(row.new_groups),
        )

    @staticmethod
    def _tag_value(row: t.Any) -> s.TagValue:
        return s.TagValue(
            id=row.id,
            key=row.key,
            value=row.value,
            times_seen=int(row.times_seen),
            first_seen=_aware(row.first_seen),
            last_seen=_aware(row.last_seen),
        )

    @staticmethod
    def _note(row: t.Any) -> s.Note:
        return s.Note(
            id=row.id, group_id=row.group_id, text=row.text, date_created=_aware(row.date_created)
        )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
