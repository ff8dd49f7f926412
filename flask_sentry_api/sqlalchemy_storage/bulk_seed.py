"""Bulk loading for the SQL storage: chunks of generated groups and events staged in
temporary tables, then copied and rolled up with set-based ``INSERT … SELECT`` statements.

The generated rows go into two temporary staging tables with multi-row inserts (``COPY`` on
psycopg), then ``INSERT … SELECT`` statements copy them into the group and event tables and
derive every rollup from them (tag values per group and per project, stats buckets,
releases), so the rollups are what ingestion would have produced. Each chunk is one
transaction; the next chunk is generated in a thread while the database works on this one.
:meth:`~flask_sentry_api.sqlalchemy_storage.SQLAlchemyStorage.bulk_seed` is the entry
point.
"""

from __future__ import annotations

import itertools
import queue
import threading
import typing as t
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from .. import storage as s
from ..models import Models
from . import statements as sql

if t.TYPE_CHECKING:
    from ..seed import DemoGroup

#: What :meth:`~flask_sentry_api.sqlalchemy_storage.SQLAlchemyStorage.bulk_seed` stores:
#: called with the project's largest group id (0 for none), it returns chunks of groups.
SeedChunks = Callable[[int], Iterable[Sequence["DemoGroup"]]]
#: A chunk as staged: group rows, event rows, and whether no group has more than one event.
_Staged = tuple[list[tuple[t.Any, ...]], list[tuple[t.Any, ...]], bool]

#: SQLite page cache (KiB) of the seeding connection while it runs.
SQLITE_CACHE_KIB = 262_144
_STAGE_GROUPS = "sentry_api_seed_groups"
_STAGE_EVENTS = "sentry_api_seed_events"
#: Bound parameters per staging statement (SQLite allows 32766, PostgreSQL 65535).
_MAX_PARAMS = 30_000
#: The group columns staged as generated (besides the chunk index and the group id).
_GROUP_COLUMNS = (
    "hash",
    "title",
    "message",
    "culprit",
    "logger",
    "level",
    "type",
    "metadata",
    "platform",
    "status",
    "is_public",
    "is_bookmarked",
    "has_seen",
    "times_seen",
    "user_count",
    "first_seen",
    "last_seen",
    "resolved_at",
    "score",
)


class BulkSeeder:
    """Chunks of groups: staged with multi-row inserts, then copied and rolled up in SQL."""

    def __init__(self, models: Models, engine: sa.Engine, project_id: int) -> None:
        self.m = models
        self.project_id = project_id
        self.engine = engine
        self.dialect = engine.dialect
        self.is_sqlite = self.dialect.name == "sqlite"
        self._define_stage()
        # The dialect's processor, as the ORM binds: on SQLite the text
        # '2026-11-10 07:41:32.000000'. The generic type's (no dialect_impl) would hand the
        # driver a datetime, which pysqlite writes as '2026-11-10 07:41:32' on whole
        # seconds: a second form of the same instant, missed by the cursor's `==` bound.
        dt_type = self.m.Event.__table__.c.datetime.type.dialect_impl(self.dialect)
        self.encode_dt: Callable[[datetime | None], t.Any] = dt_type.bind_processor(
            self.dialect
        ) or (lambda value: value)

    def _insert(self, model: t.Any) -> sql.DialectInsert:
        return sql.dialect_insert(self.dialect.name, model)

    def _define_stage(self) -> None:
        G, E = self.m.Group.__table__.c, self.m.Event.__table__.c
        meta = sa.MetaData()
        # Same column types as the targets, so copies need no casts on any backend.
        self.sg = sa.Table(
            _STAGE_GROUPS,
            meta,
            sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("group_id", G.id.type),
            *(sa.Column(name, G[name].type) for name in _GROUP_COLUMNS),
            prefixes=["TEMPORARY"],
        )
        self.se = sa.Table(
            _STAGE_EVENTS,
            meta,
            sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("group_idx", sa.Integer, nullable=False),
            sa.Column("event_id", E.event_id.type),
            sa.Column("datetime", E.datetime.type),
            sa.Column("epoch", sa.BigInteger),
            sa.Column("release", E.release.type),
            sa.Column("environment", E.environment.type),
            sa.Column("user", E.user.type),
            sa.Column("tags", E.tags.type),
            sa.Column("data", E.data.type),
            sa.Column("user_ident", sa.String(200)),
            sa.Column("server_name", sa.String(200)),
            sa.Column("browser", sa.String(200)),
            sa.Column("os", sa.String(200)),
            sa.Column("is_first", sa.Integer),
            prefixes=["TEMPORARY"],
        )
        self._placeholder = "?" if self.dialect.paramstyle in ("qmark", "numeric") else "%s"
        self._insert_sql: dict[tuple[str, int], str] = {}

    def _stage_rows(self, conn: sa.Connection, table: sa.Table, rows: list[t.Any]) -> None:
        """Insert staging rows, many per statement.

        One statement per row would hand the GIL back and forth with the thread making the
        next chunk for every row; one per batch does so once per batch.
        """
        if self.dialect.driver == "psycopg":
            # COPY: PostgreSQL parses no statement per batch and binds no parameters.
            names = ", ".join(f'"{c.name}"' for c in table.columns)
            cursor = conn.connection.cursor()
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        width = len(table.columns)
        per_statement = _MAX_PARAMS // width
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            key = (table.name, len(batch))
            statement = self._insert_sql.get(key)
            if statement is None:
                names = ", ".join(f'"{c.name}"' for c in table.columns)
                row = "(" + ", ".join(self._placeholder for _ in range(width)) + ")"
                values = ", ".join(row for _ in batch)
                statement = f"INSERT INTO {table.name} ({names}) VALUES {values}"
                self._insert_sql[key] = statement
            conn.exec_driver_sql(statement, tuple(itertools.chain.from_iterable(batch)))

    # -- driving ---------------------------------------------------------------------------------
    def run(self, chunks: SeedChunks, report: Callable[[int], None]) -> None:
        with self.engine.connect() as conn:
            staged = _prefetched(self._rows(chunk) for chunk in chunks(self._salt(conn)))
            restore = self._tune(conn)
            try:
                self._drop_stage(conn)
                self.sg.create(conn)
                self.se.create(conn)
                conn.commit()
                for group_rows, event_rows, one_event in staged:
                    self._store(conn, group_rows, event_rows, one_event)
                    report(len(group_rows))
            except BaseException:
                conn.rollback()
                raise
            finally:
                staged.close()
                self._drop_stage(conn)
                restore()
                conn.commit()

    @staticmethod
    def _drop_stage(conn: sa.Connection) -> None:
        for name in (_STAGE_EVENTS, _STAGE_GROUPS):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")

    def _salt(self, conn: sa.Connection) -> int:
        """The project's largest group id (0 for none)."""
        Group = self.m.Group
        return int(
            conn.scalar(sa.select(sa.func.max(Group.id)).where(Group.project_id == self.project_id))
            or 0
        )

    def _tune(self, conn: sa.Connection) -> Callable[[], t.Any]:
        """More memory for this connection while it seeds; returns what undoes it."""
        if not self.is_sqlite:
            work_mem = conn.exec_driver_sql("SHOW work_mem").scalar()
            # A chunk's sorts then stay in memory instead of spilling to disk.
            conn.exec_driver_sql("SET work_mem = '64MB'")
            return lambda: conn.exec_driver_sql(f"SET work_mem = '{work_mem}'")
        main = conn.exec_driver_sql("PRAGMA main.cache_size").scalar_one()
        # The index pages being filled stay cached instead of being reread per chunk.
        conn.exec_driver_sql(f"PRAGMA main.cache_size = -{SQLITE_CACHE_KIB}")
        return lambda: conn.exec_driver_sql(f"PRAGMA main.cache_size = {int(main)}")

    def _rows(self, chunk: Sequence[DemoGroup]) -> _Staged:
        """The staging rows of one chunk: plain values the driver binds as they are."""
        group_rows: list[tuple[t.Any, ...]] = []
        event_rows: list[tuple[t.Any, ...]] = []
        one_event = True
        encode = self.encode_dt
        for g in chunk:
            last_seen = encode(g.last_seen)
            group_rows.append(
                (
                    g.index,
                    None,
                    g.hash,
                    g.title,
                    g.message,
                    g.culprit,
                    g.logger,
                    g.level,
                    g.type,
                    g.metadata_json,
                    g.platform,
                    g.status,
                    g.is_public,
                    g.is_bookmarked,
                    g.has_seen,
                    g.times_seen,
                    g.user_count,
                    last_seen if g.first_seen is g.last_seen else encode(g.first_seen),
                    last_seen,
                    encode(g.resolved_at) if g.resolved_at is not None else None,
                    g.score,
                )
            )
            one_event = one_event and len(g.events) <= 1
            is_first = 1
            for e in g.events:
                event_rows.append(
                    (
                        len(event_rows),
                        g.index,
                        e.event_id,
                        last_seen if e.datetime is g.last_seen else encode(e.datetime),
                        e.epoch_us // 1_000_000,
                        e.release,
                        e.environment,
                        e.user_json,
                        e.tags_json,
                        e.data_json,
                        e.user_ident,
                        e.server_name,
                        e.browser,
                        e.os,
                        is_first,
                    )
                )
                is_first = 0
        return group_rows, event_rows, one_event

    def _store(
        self,
        conn: sa.Connection,
        group_rows: list[tuple[t.Any, ...]],
        event_rows: list[tuple[t.Any, ...]],
        one_event: bool,
    ) -> None:
        """One chunk, one transaction."""
        self._stage_rows(conn, self.sg, group_rows)
        self._stage_rows(conn, self.se, event_rows)
        self._copy_groups(conn)
        if event_rows:
            self._copy_events(conn, one_event)
        conn.exec_driver_sql(f"{self._clear} {_STAGE_GROUPS}")
        conn.exec_driver_sql(f"{self._clear} {_STAGE_EVENTS}")
        conn.commit()

    @property
    def _clear(self) -> str:
        # PostgreSQL never vacuums temporary tables: deleted rows would pile up.
        return "DELETE FROM" if self.is_sqlite else "TRUNCATE"

    # -- set-based copies --------------------------------------------------------------------
    def _copy_groups(self, conn: sa.Connection) -> None:
        Group, sg, p = self.m.Group, self.sg, self.project_id
        columns = [c.name for c in sg.columns if c.name not in ("idx", "group_id")]
        select = sa.select(
            sa.literal(p, Group.project_id.type),
            sa.literal(0, sa.Integer),
            *(sg.c[name] for name in columns),
        ).order_by(sg.c.idx)
        conn.execute(
            sa.insert(Group.__table__).from_select(["project_id", "num_comments", *columns], select)
        )

    def _copy_events(self, conn: sa.Connection, one_event: bool) -> None:
        m, sg, se, p = self.m, self.sg, self.se, self.project_id
        Group = m.Group
        conn.execute(
            sa.update(sg).values(
                group_id=sa.select(Group.id)
                .where(Group.project_id == p, Group.hash == sg.c.hash)
                .scalar_subquery()
            )
        )
        joined = se.join(sg, sg.c.idx == se.c.group_idx)
        project = sa.literal(p, Group.project_id.type)
        # (event column, staged source): the group's columns are the same for its events.
        copied = {
            "project_id": project,
            "group_id": sg.c.group_id,
            "event_id": se.c.event_id,
            **{c: sg.c[c] for c in ("message", "title", "culprit", "level", "logger", "platform")},
            "datetime": se.c.datetime,
            "date_received": se.c.datetime,
            **{name: se.c[name] for name in ("release", "environment", "user", "tags", "data")},
        }
        conn.execute(
            sa.insert(m.Event.__table__).from_select(
                list(copied),
                sa.select(*copied.values()).select_from(joined).order_by(se.c.idx),
            )
        )

        tag_source = {
            "level": sg.c.level,
            "logger": sg.c.logger,
            "server_name": se.c.server_name,
            "release": se.c.release,
            "environment": se.c.environment,
            "user": se.c.user_ident,
            "browser": se.c.browser,
            "os": se.c.os,
        }
        # Every event times every key (one pass over the staged events), kept where the
        # event has that tag.
        keys = sa.union_all(
            *(sa.select(sa.literal(key, sa.String(32)).label("key")) for key in sorted(tag_source))
        ).subquery("tag_keys")
        value = sa.case(*((keys.c.key == key, column) for key, column in tag_source.items()))
        pairs = (
            sa.select(
                sg.c.group_id.label("group_id"),
                keys.c.key.label("key"),
                value.label("value"),
                se.c.datetime.label("seen"),
            )
            .select_from(joined.join(keys, sa.true()))
            .where(value.is_not(None))
            .subquery("pairs")
        )
        GTV, TV = m.GroupTagValue, m.TagValue
        before = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(GTV.id), 0)))
        rows: sa.Select[t.Any]
        if one_event:
            # One event per group: every pair is a row of its own, no grouping needed.
            rows = sa.select(
                project,
                pairs.c.group_id,
                pairs.c.key,
                pairs.c.value,
                sa.literal(1, sa.BigInteger),
                pairs.c.seen,
                pairs.c.seen,
            )
        else:
            # New rows get ids in (group, key, value) order, as ingestion's sorted writes do.
            rows = (
                sa.select(
                    project,
                    pairs.c.group_id,
                    pairs.c.key,
                    pairs.c.value,
                    sa.func.count(),
                    sa.func.min(pairs.c.seen),
                    sa.func.max(pairs.c.seen),
                )
                .group_by(pairs.c.group_id, pairs.c.key, pairs.c.value)
                .order_by(pairs.c.group_id, pairs.c.key, pairs.c.value)
            )
        conn.execute(
            sa.insert(GTV.__table__).from_select(
                ["project_id", "group_id", *sql.SEEN_COLUMNS], rows
            )
        )
        # The project's counts are the sums of the rows just added: a range of new row ids
        # is cheaper to read than the staged events are to unpivot again.
        project_tags = sql.tag_rollup(
            GTV, (project,), (GTV.id > before, GTV.group_id.in_(sa.select(sg.c.group_id)))
        )
        conn.execute(
            sql.merge_seen(
                self._insert(TV).from_select(["project_id", *sql.SEEN_COLUMNS], project_tags),
                TV,
                ["project_id", "key", "value"],
            )
        )

        GS, PS = m.GroupStat, m.ProjectStat
        for resolution in s.STAT_RESOLUTIONS:
            # Inline, not bound: PostgreSQL must see the GROUP BY and SELECT as one expression.
            size = sa.literal_column(str(int(resolution)), sa.BigInteger)
            bucket = (se.c.epoch - se.c.epoch % size).label("bucket")
            res = sa.literal(resolution, sa.Integer)
            conn.execute(
                sa.insert(GS.__table__).from_select(
                    ["group_id", "resolution", "bucket", "count"],
                    sa.select(sg.c.group_id, res, bucket, sa.func.count())
                    .select_from(joined)
                    .group_by(sg.c.group_id, bucket),
                )
            )
            conn.execute(
                sql.merge_count(
                    self._insert(PS).from_select(
                        ["project_id", "resolution", "bucket", "count"],
                        sa.select(project, res, bucket, sa.func.count())
                        .where(sa.true())
                        .group_by(bucket)
                        .order_by(bucket),
                    ),
                    PS,
                    ["project_id", "resolution", "bucket"],
                )
            )

        Release = m.Release
        stmt = self._insert(Release).from_select(
            ["project_id", "version", "date_created", "first_event", "last_event", "new_groups"],
            sa.select(
                project,
                se.c.release,
                sa.literal(s.utcnow(), Release.date_created.type),
                sa.func.min(se.c.datetime),
                sa.func.max(se.c.datetime),
                sa.func.sum(se.c.is_first),
            )
            .where(se.c.release.is_not(None))
            .group_by(se.c.release)
            .order_by(se.c.release),
        )
        conn.execute(sql.merge_release(stmt, Release))


T = t.TypeVar("T")


def _prefetched(items: Iterator[T]) -> t.Generator[T, None, None]:
    """``items``, produced one ahead in a thread.

    SQLite and the PostgreSQL driver release the GIL while a statement runs, so the next
    chunk is generated while this one is stored. At most two chunks wait in memory.
    """
    slots: queue.Queue[tuple[bool, t.Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def put(item: tuple[bool, t.Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, end))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            put((False, exc))

    thread = threading.Thread(target=produce, name="seed-demo rows", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                raise item
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()
