"""The Storage contract against both shipped storages, plus a differential test between them.

The SQLAlchemy storage runs on in-memory SQLite unless ``SENTRY_API_TEST_DATABASE_URL``
names another database (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); its
tables are dropped and recreated around every test.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import typing as t
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_sentry_api import storage as s
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.pagination import Window
from flask_sentry_api.sqlalchemy_storage import SQLAlchemyStorage
from flask_sentry_api.testing import T0
from flask_sentry_api.testing import StorageContract
from flask_sentry_api.testing import TokenStorageContract
from flask_sentry_api.testing import make_event

DATABASE_URL = os.environ.get("SENTRY_API_TEST_DATABASE_URL", "sqlite://")
ON_SQLITE = DATABASE_URL.startswith("sqlite")
#: A shared server database may be in use by other test runs at the same time: tables of
#: their own per process keep runs from dropping each other's tables.
TABLE_PREFIX = "sentry_" if ON_SQLITE else f"sentry_t{os.getpid()}_"
EVERYTHING = Window(op=None, value=0, descending=True, offset=0, limit=1000)


@contextmanager
def sqlalchemy_storage(*, never_reuse_ids: bool = False) -> Iterator[SQLAlchemyStorage]:
    """A SQLAlchemyStorage on fresh tables, inside a pushed app context.

    SQLite hands out the highest deleted rowid again unless a table is ``AUTOINCREMENT``;
    ``never_reuse_ids`` declares the tables so, to compare ids with MemoryStorage (and
    PostgreSQL), whose ids are never reused.
    """
    flask_app = Flask(__name__)
    flask_app.config["SQLALCHEMY_DATABASE_URI"] = DATABASE_URL
    db = SQLAlchemy(flask_app)
    storage = SQLAlchemyStorage(db, table_prefix=TABLE_PREFIX)
    if never_reuse_ids:
        for table in storage.models.tables:
            table.dialect_options["sqlite"]["autoincrement"] = True
    context = flask_app.app_context()
    context.push()
    try:
        db.drop_all()
        if never_reuse_ids:
            # Created from the (changed) metadata, then taken over by the migrations.
            db.metadata.create_all(bind=db.engine, tables=storage.models.tables)
        storage.init_schema()
        yield storage
    finally:
        db.session.remove()
        db.drop_all()
        if not ON_SQLITE:
            with db.engine.begin() as connection:
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE_PREFIX}alembic_version"))
        db.engine.dispose()  # one engine per test: do not leave its connections open
        context.pop()


class TestMemoryStorage(StorageContract, TokenStorageContract):
    @pytest.fixture
    def storage(self) -> Iterator[MemoryStorage]:
        yield MemoryStorage()


class TestSQLAlchemyStorage(StorageContract, TokenStorageContract):
    @pytest.fixture
    def storage(self) -> Iterator[SQLAlchemyStorage]:
        with sqlalchemy_storage() as storage:
            yield storage


# -- MemoryStorage specifics ------------------------------------------------------------------
def test_memory_storage_is_safe_under_threads() -> None:
    storage = MemoryStorage()
    project = storage.create_project("P")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                tags = (("user", f"u{(n * 50 + i) % 7}"),)
                storage.save_event(project.id, make_event(group_hash=f"h{i % 3}", tags=tags))
                storage.create_note(1, f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    groups = storage.list_groups(project.id, s.GroupQuery(), EVERYTHING)
    assert sum(g.times_seen for g in groups) == 400
    assert len({e.id for g in groups for e in storage.list_events(g.id, EVERYTHING)}) == 400
    assert storage.get_group(1).num_comments == 400  # type: ignore[union-attr]
    assert all(g.user_count == 7 for g in groups)
    assert sum(storage.project_stats(project.id, 86400, 0, 2**40).values()) == 400


def test_memory_storage_records_cannot_write_through() -> None:
    storage = MemoryStorage()
    project = storage.create_project("P")
    event = make_event(metadata={"type": "E"}, data={"extra": {"a": [1]}}, user={"id": "1"})
    saved = storage.save_event(project.id, event)
    saved.group.metadata["type"] = "changed"  # type: ignore[index]
    saved.event.data["extra"]["a"].append(2)  # type: ignore[index]
    saved.event.user["id"] = "2"  # type: ignore[index]
    event.metadata["type"] = "changed too"  # type: ignore[index]
    assert storage.get_group(saved.group.id).metadata == {"type": "E"}  # type: ignore[union-attr]
    stored = storage.get_event(saved.event.id)
    assert stored is not None
    assert stored.data == {"extra": {"a": [1]}} and stored.user == {"id": "1"}


def test_memory_storage_refuses_naive_datetimes() -> None:
    storage = MemoryStorage()
    project = storage.create_project("P")
    with pytest.raises(ValueError, match="naive"):
        storage.save_event(project.id, make_event(timestamp=T0.replace(tzinfo=None)))
    assert storage.list_groups(project.id, s.GroupQuery(), EVERYTHING) == []
    assert storage.project_stats(project.id, 10, 0, 2**40) == {}


# -- SQLAlchemyStorage specifics ---------------------------------------------------------------
def test_sqlite_function_goes_to_the_storage_engine_only(tmp_path: Path) -> None:
    """The Unicode-aware lower() is added to the storage's engine (and to a connection it
    opened before the storage used it), never to the host's other engines."""
    lower = sa.text("SELECT sentry_api_lower('ÀB')")
    host_engine = sa.create_engine("sqlite://")
    flask_app = Flask(__name__)
    flask_app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'storage.db'}"
    db = SQLAlchemy(flask_app)
    storage = SQLAlchemyStorage(db)
    try:
        with flask_app.app_context():
            with db.engine.connect() as early:  # pooled, then the storage's first connection
                early.execute(sa.text("SELECT 1"))
            storage.init_schema()
            project = storage.create_project("P")
            storage.save_event(project.id, make_event(title="ÉCLAIR"))
            found = storage.list_groups(project.id, s.GroupQuery(text="éclair"), EVERYTHING)
            assert [group.title for group in found] == ["ÉCLAIR"]
            assert db.session.scalar(lower) == "àb"
            with db.engine.connect() as second:  # opened while the session holds the first
                assert second.scalar(lower) == "àb"
            db.session.remove()
        with host_engine.connect() as host:
            with pytest.raises(sa.exc.OperationalError, match="no such function"):
                host.execute(lower)
    finally:
        host_engine.dispose()
        with flask_app.app_context():
            db.engine.dispose()


# -- differential: MemoryStorage and SQLAlchemyStorage answer alike -----------------------------
OFFSETS = (0, 0.25, 0.5, 1, 1.75, 2, 3600, 7200.5, 86400)
HASHES = ("a", "b", "c", "d", "e")
VERSIONS = ("1.0", "2.0", "3.0")
TAG_KEYS = ("user", "browser", "level")

save_ops = st.tuples(
    st.just("save"),
    st.integers(0, 1),  # project
    st.sampled_from(HASHES),
    st.sampled_from(OFFSETS),
    st.sampled_from(s.LEVELS),
    st.sampled_from((None, "x.y in z", "a_b%c")),  # culprit
    st.sampled_from((None, "id:1", "id:2", "id:3")),  # user tag
    st.sampled_from((None, "chrome", "firefox")),  # browser tag
    st.sampled_from((None, *VERSIONS)),  # release
    st.integers(0, 40),  # event id (repeats are SDK retries)
)
flag_changes = st.sampled_from((None, True, False))
update_ops = st.tuples(
    st.just("update"),
    st.integers(0, 1),
    st.sampled_from((None, *s.GROUP_STATUSES)),  # status filter
    st.one_of(st.none(), st.lists(st.integers(1, 12), max_size=4).map(tuple)),  # ids
    st.builds(
        s.GroupChanges,
        status=st.sampled_from((None, *s.GROUP_STATUSES)),
        is_public=flag_changes,
        is_bookmarked=flag_changes,
        has_seen=flag_changes,
    ),
)
merge_ops = st.tuples(st.just("merge"), st.integers(0, 1), st.lists(st.integers(1, 12), max_size=4))
delete_ops = st.tuples(
    st.just("delete"), st.integers(0, 1), st.lists(st.integers(1, 12), max_size=3)
)
#: One save_events call: its saves, and whether it holds an event of a project that is gone.
batch_ops = st.tuples(st.just("batch"), st.lists(save_ops, min_size=1, max_size=8), st.booleans())
note_ops = st.tuples(st.just("note"), st.integers(0, 100))
release_details = st.builds(
    s.ReleaseChanges,
    ref=st.sampled_from((None, "abc", "def")),
    url=st.sampled_from((None, "https://ci.example/1")),
    date_released=st.sampled_from((None, T0, T0 + timedelta(seconds=90.5))),
    date_started=st.sampled_from((None, T0 - timedelta(hours=1))),
)
release_ops = st.tuples(
    st.sampled_from(("create_release", "update_release", "delete_release")),
    st.integers(0, 1),
    st.sampled_from(VERSIONS),
    release_details,
)
tag_key_ops = st.tuples(st.just("delete_tag_key"), st.integers(0, 1), st.sampled_from(TAG_KEYS))
operations = st.lists(
    st.one_of(
        save_ops,
        save_ops,
        save_ops,
        batch_ops,
        update_ops,
        merge_ops,
        delete_ops,
        note_ops,
        release_ops,
        tag_key_ops,
    ),
    min_size=1,
    max_size=30,
)


class _Ranks:
    """Row ids replaced by their rank: the n-th event (group) created is event (group) n.

    A conflicting ``INSERT ... ON CONFLICT DO NOTHING`` (an SDK retry) still draws a value
    from a PostgreSQL sequence, as does a group created for a retried event and rolled back,
    so its event and group ids have gaps that MemoryStorage's do not: ids are compared by
    rank. Ids only grow, and every event or group is first seen in the result of the
    ``save_event`` that created it, so the order first seen is the rank order.
    """

    def __init__(self) -> None:
        self._ranks: dict[str, dict[int, int]] = {"event": {}, "group": {}}

    def rank(self, kind: str, row_id: int | None) -> int | None:
        if row_id is None:
            return None
        ranks = self._ranks[kind]
        if row_id not in ranks:
            assert all(row_id > seen for seen in ranks), f"{kind} ids out of order"
            ranks[row_id] = len(ranks) + 1
        return ranks[row_id]

    def row_id(self, kind: str, rank: int) -> int:
        """The id of the ``rank``-th row created, or one no row has."""
        for row_id, known in self._ranks[kind].items():
            if known == rank:
                return row_id
        return s.MAX_ID - rank


class _Subject:
    """One storage of the differential test, its two projects, and its ids' ranks."""

    def __init__(self, storage: s.Storage) -> None:
        self.storage = storage
        self.ranks = _Ranks()
        created = [storage.create_project("Same"), storage.create_project("Same")]
        assert [p.slug for p in created] == ["same", "same-2"]
        self.projects = [p.id for p in created]

    def normal(self, record: t.Any) -> t.Any:
        """A record made comparable: fields that depend on the wall clock blanked, event
        and group ids replaced by their ranks.

        ``INSERT ... ON CONFLICT`` draws a new id even when it updates (PostgreSQL
        sequences, SQLite ``AUTOINCREMENT``), so release and tag value ids have gaps there
        and only their order is compared.
        """
        rank, replace = self.ranks.rank, dataclasses.replace
        if isinstance(record, s.Group):
            resolved = record.resolved_at is not None
            return replace(record, id=rank("group", record.id), resolved_at=resolved)  # type: ignore[arg-type]
        if isinstance(record, s.Event):
            ids = {"id": rank("event", record.id), "group_id": rank("group", record.group_id)}
            return replace(record, date_received=None, **ids)  # type: ignore[arg-type]
        if isinstance(record, s.Note):
            return replace(record, date_created=None, group_id=rank("group", record.group_id))  # type: ignore[arg-type]
        if isinstance(record, s.Project):
            return replace(record, date_created=None)  # type: ignore[arg-type]
        if isinstance(record, s.Release):
            return replace(record, date_created=None, id=0)  # type: ignore[arg-type]
        if isinstance(record, s.TagValue):
            return replace(record, id=0)
        if isinstance(record, s.TagKeySummary):
            return replace(record, top_values=tuple(self.normal(list(record.top_values))))
        if isinstance(record, s.SavedEvent):
            return replace(record, event=self.normal(record.event), group=self.normal(record.group))
        if isinstance(record, list):
            return [self.normal(item) for item in record]
        return record

    def group_id(self, rank: int) -> int:
        return self.ranks.row_id("group", rank)

    def call(self, method: t.Callable[..., t.Any], *args: t.Any) -> t.Any:
        try:
            return ("ok", self.normal(method(*args)))
        except LookupError as exc:
            return ("LookupError", type(exc).__name__)
        except s.Conflict as exc:
            return ("Conflict", exc.field)

    def saved(self, op: tuple[t.Any, ...]) -> tuple[int, s.NewEvent]:
        """The project id and event of a ``save`` op."""
        _, p, group_hash, offset, level, culprit, user, browser, release, seed = op
        tags = (("level", level),)
        tags += (("user", user),) if user else ()
        tags += (("browser", browser),) if browser else ()
        event = make_event(
            event_id=f"{seed:032x}",
            group_hash=group_hash,
            title=f"Title {group_hash.upper()}",
            message=f"message {group_hash}",
            timestamp=T0 + timedelta(seconds=offset),
            level=level,
            culprit=culprit,
            release=release,
            tags=tags,
            metadata={"hash": group_hash},
            data={"n": seed},
        )
        return self.projects[p], event

    def apply(self, op: tuple[t.Any, ...]) -> t.Any:
        """Run ``op``; the group ids it names are ranks (the n-th group created)."""
        storage, projects, call = self.storage, self.projects, self.call
        kind = op[0]
        if kind == "save":
            return call(storage.save_event, *self.saved(op))
        if kind == "batch":
            items = [self.saved(save) for save in op[1]]
            if op[2]:  # an event of a project that is gone, amid the others
                items.insert(len(items) // 2, (s.MAX_ID - 1, self.saved(op[1][0])[1]))
            return call(s.save_events, storage, items)
        if kind == "update":
            _, p, status, ranks, changes = op
            ids = None if ranks is None else tuple(self.group_id(r) for r in ranks)
            query = s.GroupQuery(status=status, ids=ids)
            return call(storage.update_groups, projects[p], query, changes)
        if kind == "merge":

            def merge(project_id: int, ids: list[int]) -> tuple[int | None, list[int | None]]:
                parent, children = storage.merge_groups(project_id, ids)
                rank = functools.partial(self.ranks.rank, "group")
                return rank(parent), [rank(child) for child in children]

            return call(merge, projects[op[1]], [self.group_id(r) for r in op[2]])
        if kind == "delete":
            return call(storage.delete_groups, projects[op[1]], [self.group_id(r) for r in op[2]])
        if kind == "note":
            existing = [g for g in range(1, 13) if storage.get_group(self.group_id(g)) is not None]
            if not existing:
                return None
            group_id = self.group_id(existing[op[1] % len(existing)])
            return call(storage.create_note, group_id, f"note {op[1]}")
        if kind == "create_release":
            return call(storage.create_release, projects[op[1]], op[2], op[3])
        if kind == "update_release":
            return call(storage.update_release, projects[op[1]], op[2], op[3])
        if kind == "delete_release":
            return call(storage.delete_release, projects[op[1]], op[2])
        if kind == "delete_tag_key":
            return call(storage.delete_tag_key, projects[op[1]], op[2])
        raise AssertionError(op)

    def observe(self) -> list[t.Any]:
        """Everything the Protocol can read, as comparable values."""
        storage, normal = self.storage, self.normal
        seen: list[t.Any] = [normal([storage.get_project(p) for p in self.projects])]
        seen.append(normal([storage.get_project_by_slug(slug) for slug in ("same", "same-2", "x")]))
        for project_id in self.projects:
            events = storage.list_project_events(project_id, EVERYTHING)
            seen.append(normal(events))
            for key in [e.id for e in events[:2] + events[-2:]]:
                for op in ("<=", "==", ">"):
                    for descending in (True, False):
                        window = Window(op, key, descending, offset=1, limit=2)  # type: ignore[arg-type]
                        seen.append(normal(storage.list_project_events(project_id, window)))
            for seed in range(0, 41, 4):
                event = storage.get_event_by_event_id(project_id, f"{seed:032x}")
                seen.append(normal(event))
        queries = [
            s.GroupQuery(),
            s.GroupQuery(status="unresolved"),
            s.GroupQuery(status="resolved"),
            s.GroupQuery(tags=(("user", "id:1"),)),
            s.GroupQuery(tags=(("user", "id:2"), ("level", "error"))),
            s.GroupQuery(text="title b"),
            s.GroupQuery(text="_B%"),
            s.GroupQuery(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3600)),
        ]
        group_ids: set[int] = set()
        for project_id in self.projects:
            for base in queries:
                for sort in s.GROUP_SORTS:
                    query = dataclasses.replace(base, sort=sort)
                    rows = storage.list_groups(project_id, query, EVERYTHING)
                    group_ids.update(g.id for g in rows)
                    seen.append(normal(rows))
                    keys = sorted({s.group_sort_key(g, sort) for g in rows})
                    for key in keys[:3] + keys[-2:]:
                        seen.append(storage.count_groups_with_key(project_id, query, key))
                        for op in ("<=", "==", ">"):
                            for descending in (True, False):
                                window = Window(op, key, descending, offset=1, limit=2)  # type: ignore[arg-type]
                                seen.append(normal(storage.list_groups(project_id, query, window)))
            releases = storage.list_releases(project_id, EVERYTHING)
            seen.append(normal(releases))
            seen.extend(normal(storage.get_release(project_id, v)) for v in VERSIONS)
            for resolution in s.STAT_RESOLUTIONS:
                seen.append(storage.project_stats(project_id, resolution, 0, 2**40))
            for key in TAG_KEYS:
                for group_id in (None, *sorted(group_ids)):
                    values = storage.list_tag_values(project_id, key, EVERYTHING, group_id)
                    seen.append(normal(values))
                    for count in sorted({v.times_seen for v in values}):
                        seen.append(
                            storage.count_tag_values_with_key(project_id, key, count, group_id)
                        )
                        window = Window("==", count, True, offset=1, limit=2)
                        seen.append(
                            normal(storage.list_tag_values(project_id, key, window, group_id))
                        )
        ids = sorted(group_ids) + [self.group_id(999)]  # and a group that does not exist
        for resolution in s.STAT_RESOLUTIONS:
            stats = storage.group_stats(ids, resolution, 0, 2**40)
            seen.append({self.ranks.rank("group", g): buckets for g, buckets in stats.items()})
        for group_id in ids:
            seen.append(normal(storage.get_group(group_id)))
            events = storage.list_events(group_id, EVERYTHING)
            seen.append(normal(events))
            seen.append(normal(storage.latest_event(group_id)))
            seen.append(normal(storage.oldest_event(group_id)))
            for event in events:
                previous, following = storage.adjacent_events(event)
                seen.append(
                    (self.ranks.rank("event", previous), self.ranks.rank("event", following))
                )
            seen.append(normal(storage.list_notes(group_id, EVERYTHING)))
            seen.append(normal(storage.group_tag_keys(group_id, 2)))
        return seen


RETRIED = (("a", 1), ("b", 1), ("b", 2), ("a", 3))


@settings(
    max_examples=int(os.environ.get("SENTRY_API_TEST_EXAMPLES", "10")),  # .ci/run: 30
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=operations)
# A retry of event 1 under a new hash: on PostgreSQL its event and group ids are drawn and
# rolled back, so the ids of event 2 and group "b" have gaps.
@example(ops=[("save", 0, h, 0, "error", None, None, None, None, n) for h, n in RETRIED])
# A batch: new groups first seen in reverse hash order, a retry of an event stored before it
# and one of an event in it, and an event of a project that is gone.
@example(
    ops=[
        ("save", 0, "c", 0, "error", None, "id:1", None, "1.0", 1),
        ("update", 0, None, None, s.GroupChanges(status="resolved")),
        (
            "batch",
            [
                ("save", 0, h, offset, level, None, user, None, "1.0", n)
                for h, offset, level, user, n in (
                    ("b", 2, "error", "id:1", 2),
                    ("a", 1, "fatal", None, 3),
                    ("c", 1, "warning", "id:2", 1),
                    ("c", 3, "info", "id:2", 4),
                    ("b", 2, "fatal", "id:2", 5),
                    ("b", 9, "error", None, 2),
                )
            ],
            True,
        ),
    ]
)
def test_memory_storage_matches_sqlalchemy_storage(ops: list[tuple[t.Any, ...]]) -> None:
    with sqlalchemy_storage(never_reuse_ids=True) as sql_storage:
        memory, sql = _Subject(MemoryStorage()), _Subject(sql_storage)
        assert memory.projects == sql.projects
        for op in ops:
            assert memory.apply(op) == sql.apply(op), op
        assert memory.observe() == sql.observe()


@pytest.mark.parametrize("run", range(2))
def test_concurrent_batches_store_each_event_once(tmp_path: Path, run: int) -> None:
    """Workers storing overlapping batches at once (a redelivered message stored by two
    workers, the same events in other orders, new groups among them) neither fail nor count
    an event twice."""
    url = f"sqlite:///{tmp_path / 'batches.db'}" if ON_SQLITE else DATABASE_URL
    flask_app = Flask(__name__)
    flask_app.config["SQLALCHEMY_DATABASE_URI"] = url
    if ON_SQLITE:
        flask_app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    db = SQLAlchemy(flask_app)
    storage = SQLAlchemyStorage(db, table_prefix=TABLE_PREFIX)
    with flask_app.app_context():
        db.drop_all()
        storage.init_schema()
        project = storage.create_project("P")
        db.session.remove()
    events = [
        make_event(
            group_hash=f"h{n % 7}",
            timestamp=T0 + timedelta(seconds=n),
            tags=(("user", f"id:{n % 5}"), ("browser", f"b{n % 3}")),
            release=f"{n % 2}.0",
        )
        for n in range(60)
    ]
    errors: list[BaseException] = []
    created: list[int] = []

    def work(n: int) -> None:
        # Each worker a different slice and order of the same events.
        mine = events[n * 5 :] + events[: n * 5]
        mine = mine[::-1] if n % 2 else mine
        try:
            with flask_app.app_context():
                for start in range(0, len(mine), 20):
                    batch = [(project.id, e) for e in mine[start : start + 20]]
                    saved = storage.save_events(batch)
                    created.extend(1 for r in saved if r is not None and r.created)
                db.session.remove()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(created) == len(events)
        with flask_app.app_context():
            groups = storage.list_groups(project.id, s.GroupQuery(), EVERYTHING)
            assert sorted(g.hash for g in groups) == [f"h{n}" for n in range(7)]
            assert sum(g.times_seen for g in groups) == len(events)
            assert all(g.user_count == 5 for g in groups)
            stored = storage.list_project_events(project.id, EVERYTHING)
            assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in events)
            assert sum(storage.project_stats(project.id, 86400, 0, 2**40).values()) == 60
            users = storage.list_tag_values(project.id, "user", EVERYTHING)
            assert sorted(v.times_seen for v in users) == [12] * 5
            releases = storage.list_releases(project.id, EVERYTHING)
            assert sorted(r.version for r in releases) == ["0.0", "1.0"]
            assert sum(r.new_groups for r in releases) == 7  # whichever event created each
    finally:
        with flask_app.app_context():
            db.session.remove()
            db.drop_all()
            if not ON_SQLITE:
                with db.engine.begin() as connection:
                    connection.execute(
                        sa.text(f"DROP TABLE IF EXISTS {TABLE_PREFIX}alembic_version")
                    )
            db.engine.dispose()
