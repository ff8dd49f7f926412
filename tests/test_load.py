"""Load: the example app under gunicorn (3 worker processes), hammered for a few seconds by
SDK events (with retried duplicates), bulk resolves, group deletes and paginated reads at
once; then the database is checked row by row.

Runs on a file SQLite (WAL mode, the example app's busy timeout) always, and on the
PostgreSQL database of ``SENTRY_API_TEST_DATABASE_URL`` when it is set (its own tables,
prefix ``load_``, dropped before and after). ``SENTRY_API_LOAD_SECONDS`` changes how long
the mixed traffic lasts (default 10 s).

What must hold afterwards:

* every request got its expected answer (no 500, no 503, no timeout) and every client
  thread finished (no deadlock, no hung worker), and the server logged no traceback;
* every event answered 200 is stored exactly once, in the one group of its fingerprint
  (fingerprints whose groups are deleted during the run are kept apart: for those, only
  "at most once");
* every group's count equals its stored events, and so do its tag and stats counters;
* nothing is left that belongs to no group.

Two more tests pin down races found this way: deleting a group while its events arrive,
and several workers creating the schema of an empty database at once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import gzip
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from tests.helpers import DATABASE_URL
from tests.helpers import example_app_under_gunicorn
from tests.helpers import sentry_auth

pytestmark = [pytest.mark.load, pytest.mark.live]

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "load_"
WORKERS = 3
CLIENT_THREADS = 6
SECONDS = float(os.environ.get("SENTRY_API_LOAD_SECONDS", "10"))
KEPT = [f"keep-{n}" for n in range(20)]  # never deleted: exact counts are checked
DOOMED = [f"doom-{n}" for n in range(4)]  # their groups are deleted during the run
#: How often each kind of request is made.
MIX = {"event": 55, "duplicate": 10, "resolve": 8, "delete": 7, "read": 20}
EXPECTED = {"event": 200, "duplicate": 200, "resolve": 200, "delete": 204, "read": 200}
DRIVER_ERROR = re.compile(r"^(?:sqlite3|psycopg)\.\S+: .*$", re.MULTILINE)


# -- the server ------------------------------------------------------------------------------
class Server(t.NamedTuple):
    url: str
    project_id: int
    public_key: str
    secret_key: str
    backend: str


def example_app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    import example_app

    monkeypatch.setenv("DATABASE_URL", database_url)
    return example_app.create_app(
        {"EXAMPLE_CREATE_DEMO_PROJECT": False, "SENTRY_API_TABLE_PREFIX": PREFIX}
    )


def drop_tables(app: Flask) -> None:
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        db.session.remove()
        storage = get_state(app).storage
        db.metadata.drop_all(bind=db.engine, tables=storage.models.tables)
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(f"DROP TABLE IF EXISTS {storage.table_prefix}alembic_version")
            )
        db.engine.dispose()


def prepare_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, t.Any]:
    """Fresh tables, the demo project and its key, made before any worker starts (so the
    workers do not race to create them: see the last test)."""
    app = example_app(database_url, monkeypatch)
    drop_tables(app)
    with app.app_context():
        storage = get_state(app).storage
        storage.init_schema()
        project = storage.create_project("Demo")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API, label="demo")
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # the example app's
    return project.id, key


def backends(
    *postgresql_marks: pytest.MarkDecorator, sqlite: t.Sequence[pytest.MarkDecorator] = ()
) -> list[t.Any]:
    return [
        pytest.param("sqlite", id="sqlite", marks=sqlite),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.skipif(
                    not DATABASE_URL.startswith("postgresql"),
                    reason="SENTRY_API_TEST_DATABASE_URL names no PostgreSQL database",
                ),
                *postgresql_marks,
            ],
        ),
    ]


def database_url_for(backend: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'load.db'}" if backend == "sqlite" else DATABASE_URL


@pytest.fixture
def served(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> t.Iterator[tuple[Server, str, Path]]:
    """(server, database URL, gunicorn log): the example app under gunicorn, on the backend
    named by the (indirect) parameter."""
    database_url = database_url_for(request.param, tmp_path)
    project_id, key = prepare_database(database_url, monkeypatch)
    log = tmp_path / "gunicorn.log"
    env = {"DATABASE_URL": database_url, "FLASK_SENTRY_API_TABLE_PREFIX": PREFIX}
    try:
        with example_app_under_gunicorn(log, env, workers=WORKERS) as (url, _):
            server = Server(url, project_id, key.public_key, key.secret_key, request.param)
            yield server, database_url, log
    finally:
        if request.param == "postgresql":
            drop_tables(example_app(database_url, monkeypatch))


# -- the traffic -----------------------------------------------------------------------------
class Outcome(t.NamedTuple):
    kind: str
    status: int  # -1: no answer (connection error, timeout); -2: a wrong answer
    seconds: float
    detail: str


class Traffic:
    """Client threads sending a random mix of requests until a deadline, and what they saw.

    Deletes race the events of the group they delete: an event stored just before the
    delete goes with the group, one just after makes a new group of its fingerprint.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        #: event_id -> fingerprint of every event sent (acknowledged or not).
        self.fingerprints: dict[str, str] = {}
        #: event_id -> gzipped body of every event answered 200 (duplicates are resent).
        self.acknowledged: dict[str, bytes] = {}
        self.duplicates_sent = 0
        self.deleted_groups: set[int] = set()
        self.pages_read = 0
        self.stop = threading.Event()
        self.store_auth = sentry_auth(server.public_key, client="load/1.0")

    @property
    def groups_url(self) -> str:
        return f"{self.server.url}/api/0/projects/{self.server.project_id}/groups/"

    # one request of each kind; each returns (status, detail) and checks its answer
    def _post(self, http: requests.Session, event_id: str, body: bytes) -> tuple[int, str]:
        response = http.post(
            f"{self.server.url}/api/{self.server.project_id}/store/",
            data=body,
            headers={**self.store_auth, "Content-Encoding": "gzip"},
            timeout=30,
        )
        if response.status_code == 200 and response.json() != {"id": event_id}:
            return -2, f"answered {response.text[:200]} for {event_id}"
        if response.status_code == 200:
            with self.lock:
                self.acknowledged[event_id] = body
        return response.status_code, response.text[:200]

    def event(
        self, http: requests.Session, rng: random.Random, fingerprint: str | None = None
    ) -> tuple[int, str]:
        if fingerprint is None:
            fingerprint = rng.choice(KEPT) if rng.random() < 0.8 else rng.choice(DOOMED)
        event_id = uuid.uuid4().hex
        event = {
            "event_id": event_id,
            "message": f"{fingerprint} failed",
            "fingerprint": [fingerprint],
            "level": rng.choice(["error", "warning"]),
            "release": f"1.{rng.randrange(3)}",
            "environment": "load",
            "tags": {"fp": fingerprint, "shard": str(rng.randrange(5))},
            "user": {"id": f"user-{rng.randrange(10)}"},
            "platform": "python",
        }
        with self.lock:
            self.fingerprints[event_id] = fingerprint
        return self._post(http, event_id, gzip.compress(json.dumps(event).encode()))

    def duplicate(self, http: requests.Session, rng: random.Random) -> tuple[int, str]:
        with self.lock:
            if not self.acknowledged:
                return 200, "nothing to repeat yet"
            event_id = rng.choice(list(self.acknowledged))
            self.duplicates_sent += 1
            body = self.acknowledged[event_id]
        return self._post(http, event_id, body)

    def resolve(self, http: requests.Session, rng: random.Random) -> tuple[int, str]:
        response = http.put(
            self.groups_url,
            params={"status": "unresolved"},
            json={"status": "resolved"},
            timeout=30,
        )
        if response.status_code == 200 and response.json() != {"status": "resolved"}:
            return -2, response.text[:200]
        return response.status_code, response.text[:200]

    def delete(
        self, http: requests.Session, rng: random.Random, fingerprint: str | None = None
    ) -> tuple[int, str]:
        fingerprint = fingerprint or rng.choice(DOOMED)
        found = http.get(self.groups_url, params={"query": f"fp:{fingerprint}"}, timeout=30)
        if found.status_code != 200:
            return found.status_code, "looking up: " + found.text[:200]
        if not found.json():
            return 204, "no group to delete"
        [group] = found.json()
        if not group["title"].startswith(fingerprint):
            return -2, f"fp:{fingerprint} found {group['title']!r}"
        response = http.delete(self.groups_url, params={"id": group["id"]}, timeout=30)
        if response.status_code == 204:
            with self.lock:
                self.deleted_groups.add(int(group["id"]))
        return response.status_code, response.text[:200]

    def read(self, http: requests.Session, rng: random.Random) -> tuple[int, str]:
        url = self.groups_url
        params: dict[str, t.Any] | None = {
            "query": rng.choice(["", "is:unresolved", "is:resolved", "keep"]),
            "sort": rng.choice(["date", "new", "freq", "priority"]),
            "limit": 7,
        }
        for _page in range(4):
            response = http.get(url, params=params, timeout=30)
            if response.status_code != 200:
                return response.status_code, response.text[:200]
            if not isinstance(response.json(), list):
                return -2, response.text[:200]
            with self.lock:
                self.pages_read += 1
            following = response.links.get("next", {})
            if following.get("results") != "true":
                break
            url, params = following["url"], None
        return 200, ""

    def client(
        self, seed: int, deadline: float, mix: t.Mapping[str, int], stop_on_error: bool = False
    ) -> None:
        rng = random.Random(seed)
        kinds, weights = zip(*mix.items(), strict=True)
        with requests.Session() as http:
            http.auth = (self.server.public_key, self.server.secret_key)
            while time.monotonic() < deadline and not self.stop.is_set():
                kind = rng.choices(kinds, weights)[0]
                started = time.monotonic()
                try:
                    status, detail = getattr(self, kind)(http, rng)
                except requests.RequestException as exc:
                    status, detail = -1, repr(exc)
                outcome = Outcome(kind, status, time.monotonic() - started, detail)
                with self.lock:
                    self.outcomes.append(outcome)
                if stop_on_error and status != EXPECTED[kind]:
                    self.stop.set()

    def run(
        self,
        clients: t.Sequence[t.Mapping[str, int]],
        seconds: float,
        *,
        stop_on_error: bool = False,
    ) -> tuple[float, bool]:
        """One thread per ``clients`` entry (its request mix) until ``seconds`` have passed;
        returns the wall time and whether every thread finished in time."""
        started = time.monotonic()
        pool = concurrent.futures.ThreadPoolExecutor(len(clients))
        futures = [
            pool.submit(self.client, seed, started + seconds, mix, stop_on_error)
            for seed, mix in enumerate(clients)
        ]
        done, pending = concurrent.futures.wait(futures, timeout=seconds + 45)
        pool.shutdown(wait=False, cancel_futures=True)
        for future in done:
            future.result()  # a bug in the client itself
        return time.monotonic() - started, not pending

    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != EXPECTED[o.kind]]

    def summary(self, wall: float) -> str:
        by_kind = collections.Counter(o.kind for o in self.outcomes)
        latencies = sorted(o.seconds for o in self.outcomes) or [0.0]
        errors = self.errors()
        return (
            f"{len(self.outcomes)} requests in {wall:.1f}s ({len(self.outcomes) / wall:.0f}/s,"
            f" {WORKERS} gunicorn workers); p50 {latencies[len(latencies) // 2] * 1000:.0f} ms,"
            f" p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms,"
            f" max {latencies[-1] * 1000:.0f} ms"
            f"\n  requests: {dict(by_kind)}; pages read: {self.pages_read}"
            f"\n  events acknowledged: {len(self.acknowledged)},"
            f" duplicates re-sent: {self.duplicates_sent}, groups deleted:"
            f" {len(self.deleted_groups)}; errors: {len(errors)}"
            f" {dict(collections.Counter((o.kind, o.status) for o in errors))}"
        )


# -- what was stored -------------------------------------------------------------------------
class Stored(t.NamedTuple):
    events: dict[str, list[int]]  # event_id -> group ids of its rows
    groups: dict[int, int]  # group id -> times_seen
    counters: dict[str, collections.Counter[int]]  # name -> group id -> count


def read_back(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Stored:
    app = example_app(database_url, monkeypatch)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        m = get_state(app).storage.models
        events: dict[str, list[int]] = collections.defaultdict(list)
        for event_id, group_id in db.session.execute(sa.select(m.Event.event_id, m.Event.group_id)):
            events[event_id].append(group_id)
        groups = {
            g: seen for g, seen in db.session.execute(sa.select(m.Group.id, m.Group.times_seen))
        }
        counters: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
        counters["events"].update(g for rows in events.values() for g in rows)
        for group_id, seen in db.session.execute(
            sa.select(m.GroupTagValue.group_id, m.GroupTagValue.times_seen).where(
                m.GroupTagValue.key == "fp"
            )
        ):
            counters["tag fp"][group_id] += seen
        for group_id, resolution, count in db.session.execute(
            sa.select(m.GroupStat.group_id, m.GroupStat.resolution, m.GroupStat.count)
        ):
            counters[f"stats {resolution}s"][group_id] += count
        db.session.remove()
        db.engine.dispose()
    return Stored(events, groups, counters)


def check_store(traffic: Traffic, stored: Stored, kept: t.Collection[str]) -> dict[str, t.Any]:
    """Everything wrong with what was stored (empty lists when all is well)."""
    acknowledged_kept = [e for e in traffic.acknowledged if traffic.fingerprints[e] in kept]
    groups_of = collections.defaultdict(set)
    for event_id, rows in stored.events.items():
        groups_of[traffic.fingerprints.get(event_id)].update(rows)
    return {
        "lost": [e for e in acknowledged_kept if e not in stored.events],
        "stored twice": [e for e, rows in stored.events.items() if len(rows) > 1],
        "stored, never acknowledged": [e for e in stored.events if e not in traffic.acknowledged],
        "fingerprints in several groups": [f for f in kept if len(groups_of[f]) > 1],
        "count mismatches": [
            (name, g, counter[g], seen)
            for name, counter in stored.counters.items()
            for g, seen in stored.groups.items()
            if counter[g] != seen
        ],
        "orphans": [
            (name, g)
            for name, counter in stored.counters.items()
            for g in counter
            if g not in stored.groups
        ],
    }


def report(capsys: pytest.CaptureFixture[str], title: str, *lines: str) -> None:
    with capsys.disabled():
        print(f"\n[{title}] " + "\n  ".join(lines))


# -- the tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("served", backends(), indirect=True)
def test_concurrent_ingestion_bulk_changes_and_reads(
    served: tuple[Server, str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, database_url, log = served
    # PostgreSQL cannot yet delete a group while its events arrive (see the next test).
    traffic = Traffic(server)
    with requests.Session() as http:
        for n, fingerprint in enumerate(KEPT + DOOMED):  # every group exists from the start
            assert traffic.event(http, random.Random(n), fingerprint)[0] == 200
    wall, finished = traffic.run([MIX] * CLIENT_THREADS, SECONDS)
    problems = check_store(traffic, read_back(database_url, monkeypatch), KEPT)
    server_log = log.read_text(errors="replace")
    report(
        capsys,
        f"load on {server.backend}, {CLIENT_THREADS} client threads",
        traffic.summary(wall),
        ", ".join(f"{name}: {len(found)}" for name, found in problems.items())
        + f"; all threads finished: {finished}",
        *(f"error: {outcome}" for outcome in traffic.errors()[:5]),
    )

    assert finished, "client threads still waiting: a deadlock or a hung worker"
    assert traffic.errors() == []
    assert "Traceback" not in server_log and "WORKER TIMEOUT" not in server_log, server_log
    assert problems == dict.fromkeys(problems, [])
    assert traffic.deleted_groups and traffic.duplicates_sent


@pytest.mark.parametrize("served", backends(), indirect=True)
def test_deleting_a_group_while_its_events_arrive(
    served: tuple[Server, str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Four clients send events of one fingerprint while two delete its group, over and
    over: every request succeeds, and what remains is consistent."""
    server, database_url, log = served
    traffic = Traffic(server)
    hot = "doom-hot"
    traffic.event = lambda http, rng, fingerprint=None: Traffic.event(traffic, http, rng, hot)  # type: ignore[method-assign]
    traffic.delete = lambda http, rng, fingerprint=None: Traffic.delete(traffic, http, rng, hot)  # type: ignore[method-assign]
    clients = [{"event": 1}] * 4 + [{"delete": 1}] * 2
    wall, finished = traffic.run(clients, 8, stop_on_error=True)
    problems = check_store(traffic, read_back(database_url, monkeypatch), ())
    report(
        capsys,
        f"delete while ingesting on {server.backend}",
        traffic.summary(wall),
        ", ".join(f"{name}: {len(found)}" for name, found in problems.items()),
        *(f"error: {outcome}" for outcome in traffic.errors()[:3]),
    )
    assert finished
    assert traffic.errors() == []
    assert problems == dict.fromkeys(problems, [])
    assert traffic.deleted_groups


def bare_boot_app(database_url: str) -> Flask:
    """A host app with the extension on the ``boot_`` tables, to drop them."""
    app = Flask("boot")
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SENTRY_API_TABLE_PREFIX="boot_")
    SQLAlchemy(app)
    SentryAPI(app)
    return app


#: One gunicorn worker booting the example app, held (up to 5 s) as it starts creating the
#: schema until every other one has got that far too: argv = worker number, workers, folder.
#: It leaves ``ready-N`` before waiting, ``done-N`` once ``init_schema()`` returned, and
#: ``passed-N``: how many workers were ready and how many done as it went on, and whether it
#: made or migrated the schema itself (the others find the tables at head once it has).
BOOT_WORKER = """
import json, pathlib, sys, time
from alembic import command
from alembic.runtime.migration import MigrationContext
from flask_sentry_api import SQLAlchemyStorage

number, workers, folder = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
real_init_schema, real_upgrade = SQLAlchemyStorage.init_schema, command.upgrade
real_stamp = MigrationContext.stamp
migrated = []

def count(pattern):
    return len(list(folder.glob(pattern)))

def init_schema(*args, **kwargs):
    (folder / f"ready-{number}").touch()
    deadline = time.monotonic() + 5
    while count("ready-*") < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = {"ready": count("ready-*"), "done": count("done-*")}
    try:
        return real_init_schema(*args, **kwargs)
    finally:
        (folder / f"done-{number}").touch()
        (folder / f"passed-{number}").write_text(json.dumps({**seen, "migrated": migrated}))

def upgrade(*args, **kwargs):
    migrated.append(True)
    return real_upgrade(*args, **kwargs)

def stamp(*args, **kwargs):  # an empty database is made at head, then stamped
    migrated.append(True)
    return real_stamp(*args, **kwargs)

SQLAlchemyStorage.init_schema, command.upgrade = init_schema, upgrade
MigrationContext.stamp = stamp
import example_app
example_app.create_app({"EXAMPLE_CREATE_DEMO_PROJECT": False})
"""


@pytest.mark.parametrize("backend", backends())
def test_workers_creating_the_schema_of_an_empty_database_at_once(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every gunicorn worker of the example app runs ``init_schema()`` as it boots. Three
    of them, started on an empty database at the same moment (each waits, up to 5 s, for
    the others to get there), must all boot.

    That they really overlapped is checked, not assumed: each worker went on only once all
    of them were ready and none had finished, so at that moment every worker was between
    the start and the end of its ``init_schema()``."""
    database_url = database_url_for(backend, tmp_path)
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_SENTRY_API_TABLE_PREFIX": "boot_"}
    boot_app = bare_boot_app(database_url)
    drop_tables(boot_app)
    try:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", BOOT_WORKER, str(n), str(WORKERS), str(tmp_path)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(WORKERS)
        ]
        outputs = [worker.communicate(timeout=60) for worker in workers]
        failures = [
            # the driver's error, at the root of the chain
            (DRIVER_ERROR.findall(err) or [err.strip()[-200:]])[0][:160]
            for worker, (_, err) in zip(workers, outputs, strict=True)
            if worker.returncode != 0
        ]
        passed = {path.name: json.loads(path.read_text()) for path in tmp_path.glob("passed-*")}
        report(
            capsys,
            f"schema race on {backend}",
            f"{WORKERS} workers, failed: {failures}",
            f"seen as each went on: {passed}",
        )
        assert failures == []
        # Each went on while all were ready and none done: their intervals overlap.
        assert {name: (seen["ready"], seen["done"]) for name, seen in passed.items()} == {
            f"passed-{n}": (WORKERS, 0) for n in range(WORKERS)
        }, "the workers did not create the schema at once"
        assert any(seen["migrated"] for seen in passed.values())
    finally:
        drop_tables(boot_app)
