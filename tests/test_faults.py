"""Faults: the database going away and coming back, and writes interrupted half-way.

* The database disappears under a running app: PostgreSQL behind a TCP proxy the test cuts
  and restores (the shared server is never stopped), SQLite as a database file that cannot
  be opened. Every request meanwhile is a ``503 {"detail": ...}`` with ``Retry-After`` (the
  web API and the ingestion endpoints alike), and the same app object answers 200 again once
  the database is back, without a restart.
* A write fails after its k-th statement, for every k: the bulk status update, a merge, a
  bulk delete and an event's ingestion. Nothing of it persists (every table is compared row
  for row), and the next request works normally.

The PostgreSQL tests run when ``SENTRY_API_TEST_DATABASE_URL`` names a PostgreSQL database
(skipped, saying so, otherwise: a laptop without a server passes the suite, and nothing is
written to a database the user did not name). They keep their tables under their own prefix
(``faults_``) and drop them after.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.pool import NullPool
from werkzeug.test import TestResponse

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import ProjectKey
from tests.helpers import DATABASE_URL
from tests.helpers import basic_auth
from tests.helpers import event_payload
from tests.helpers import make_app
from tests.helpers import sentry_auth

needs_postgresql = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"),
    reason="SENTRY_API_TEST_DATABASE_URL names no PostgreSQL database",
)
PREFIX = "faults_"


# -- helpers ---------------------------------------------------------------------------------
class TcpProxy:
    """127.0.0.1:<port> forwarded to ``target``; :meth:`cut` closes the listening socket and
    every connection (the database "goes away"), :meth:`restore` listens on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.acceptor = threading.Thread()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self.listener = listener
        self.acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.acceptor.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self.listener is listener:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        with self.lock:
            self.sockets.update((client, upstream))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        with self.lock:
            self.sockets.discard(sock)

    def cut(self) -> None:
        self.listener = None  # the accept loop closes it, within its 0.1 s timeout
        self.acceptor.join(timeout=5)
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:
            self._close(sock)

    def restore(self) -> None:
        assert self.listener is None
        self.start()


def post_event(client: FlaskClient, key: ProjectKey, event: dict[str, t.Any]) -> TestResponse:
    return client.post(
        f"/api/{key.project_id}/store/",
        data=gzip.compress(json.dumps(event).encode()),
        headers={**sentry_auth(key, client="faults/1.0"), "Content-Encoding": "gzip"},
    )


def fingerprinted(fingerprint: str, n: int, **fields: t.Any) -> dict[str, t.Any]:
    """The ``n``-th SDK event of the group ``fingerprint`` names."""
    defaults = {
        "fingerprint": [fingerprint],
        "level": "error",
        "release": "1.0",
        "tags": {"fp": fingerprint, "n": str(n % 3)},
        "user": {"id": f"user-{n % 2}"},
    }
    return event_payload(f"{fingerprint} happened ({n})", **{**defaults, **fields})


def assert_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"detail"} and body["detail"], body
    assert "Traceback" not in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0


def snapshot(app: Flask) -> dict[str, list[tuple[t.Any, ...]]]:
    """Every row of every storage table, read afresh from the database."""
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        db.session.remove()
        rows = {}
        with db.engine.connect() as connection:
            for table in get_state(app).storage.models.tables:
                result = connection.execute(sa.select(table))
                rows[table.name] = sorted(tuple(map(repr, row)) for row in result)
        return rows


def is_write(statement: str) -> bool:
    return statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")


@contextlib.contextmanager
def failing_after(
    app: Flask, writes: int | None, error: t.Callable[[t.Any], BaseException]
) -> t.Iterator[list[str]]:
    """Make the ``writes``-th INSERT/UPDATE/DELETE fail right after the database ran it
    (inside the still-open transaction); None only counts. Yields the statements run."""
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    seen: list[str] = []

    def after_execute(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if not is_write(statement):
            return
        seen.append(statement.split(None, 3)[:3][-1])
        if len(seen) == writes:
            raise error(conn.dialect.loaded_dbapi)

    sa.event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "after_cursor_execute", after_execute)


def connection_lost(dbapi: t.Any) -> BaseException:
    """What the driver raises when the server goes away in the middle of a transaction."""
    return dbapi.OperationalError("injected fault: server closed the connection unexpectedly")


def program_error(dbapi: t.Any) -> BaseException:
    """A bug, not a database error: the request must still roll back."""
    return RuntimeError("injected fault: unexpected error in the middle of a write")


# -- the database goes away and comes back ---------------------------------------------------
@pytest.fixture
def proxied_app(request: pytest.FixtureRequest) -> t.Iterator[tuple[Flask, TcpProxy, ProjectKey]]:
    """An app on PostgreSQL through a :class:`TcpProxy`; indirect parameters are
    ``SQLALCHEMY_ENGINE_OPTIONS``."""
    url = sa.engine.make_url(DATABASE_URL)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port)
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": proxied.render_as_string(hide_password=False),
            "SQLALCHEMY_ENGINE_OPTIONS": getattr(request, "param", {}),
            "SENTRY_API_TABLE_PREFIX": PREFIX,
        }
    )
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Flaky")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    try:
        yield app, proxy, key
    finally:
        if proxy.listener is None:
            proxy.restore()
        with app.app_context():
            db = app.extensions["sqlalchemy"]
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
        proxy.cut()


REQUESTS: dict[str, t.Callable[[FlaskClient, ProjectKey], TestResponse]] = {
    "read": lambda client, key: client.get(
        f"/api/0/projects/{key.project_id}/groups/", headers=basic_auth(key)
    ),
    "bulk update": lambda client, key: client.put(
        f"/api/0/projects/{key.project_id}/groups/?status=resolved",
        json={"status": "unresolved"},
        headers=basic_auth(key),
    ),
    "sdk event": lambda client, key: post_event(client, key, fingerprinted("flaky", 0)),
}


def exercise(client: FlaskClient, key: ProjectKey) -> list[TestResponse]:
    """One web API read, one web API write and one SDK event."""
    return [send(client, key) for send in REQUESTS.values()]


@needs_postgresql
def test_postgresql_going_away_is_503_and_recovers_without_restart(
    proxied_app: tuple[Flask, TcpProxy, ProjectKey], capsys: pytest.CaptureFixture[str]
) -> None:
    app, proxy, key = proxied_app
    client = app.test_client()
    assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]

    proxy.cut()
    started = time.monotonic()
    for _ in range(2):
        down = exercise(client, key)
        for response in down:
            assert_unavailable(response)
    assert down[2].headers["X-Sentry-Error"] == down[2].get_json()["detail"]
    down_seconds = time.monotonic() - started

    proxy.restore()
    started = time.monotonic()
    up = exercise(client, key)
    assert [r.status_code for r in up] == [200, 200, 200], [r.get_json() for r in up]
    up_seconds = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\n[faults] postgresql cut: 6 requests answered 503 in {down_seconds:.2f}s;"
            f" after restore 3/3 answered 200 in {up_seconds:.2f}s"
        )
    events = snapshot(app)[f"{PREFIX}event"]
    assert len(events) == 2  # the event sent before the cut and the one after


@needs_postgresql
@pytest.mark.parametrize("proxied_app", [{"pool_pre_ping": True}], indirect=True)
def test_postgresql_restart_while_idle_first_request_succeeds(
    proxied_app: tuple[Flask, TcpProxy, ProjectKey],
) -> None:
    """The server restarts while the app is idle: the connections in its pool are dead, yet
    with ``pool_pre_ping`` (the README's production setting, and the example app's) the
    first request afterwards, whichever it is, succeeds."""
    app, proxy, key = proxied_app
    client = app.test_client()
    statuses = {}
    for name, send in REQUESTS.items():
        assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]
        proxy.cut()
        proxy.restore()
        statuses[name] = send(client, key).status_code
    assert statuses == dict.fromkeys(REQUESTS, 200)


@needs_postgresql
@pytest.mark.parametrize("proxied_app", [{}], indirect=True)
def test_postgresql_restart_while_idle_without_pre_ping_costs_one_503(
    proxied_app: tuple[Flask, TcpProxy, ProjectKey],
) -> None:
    """Without ``pool_pre_ping`` the first request on a dead pooled connection fails, as a
    clean 503, and SQLAlchemy then discards the whole stale pool: the next one succeeds."""
    app, proxy, key = proxied_app
    client = app.test_client()
    for send in REQUESTS.values():
        assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]
        proxy.cut()
        proxy.restore()
        assert_unavailable(send(client, key))
        assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]


def test_sqlite_database_file_missing_is_503_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'errors.db'}",
            # A connection per request: the file is opened (or not) every time.
            "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": NullPool},
        }
    )
    with app.app_context():
        storage = get_state(app).storage
        key = storage.create_key(storage.create_project("Files").id, ROLE_STORE | ROLE_API)
    client = app.test_client()
    assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]

    folder.rename(tmp_path / "elsewhere")  # the file (and its folder) went away
    for response in exercise(client, key):
        assert_unavailable(response)
    assert not folder.exists()  # nothing was created in its place

    (tmp_path / "elsewhere").rename(folder)
    assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]

    (folder / "errors.db").rename(folder / "moved.db")
    (folder / "errors.db").mkdir()  # a path that cannot be opened as a database
    for response in exercise(client, key):
        assert_unavailable(response)
    (folder / "errors.db").rmdir()
    (folder / "moved.db").rename(folder / "errors.db")
    assert [r.status_code for r in exercise(client, key)] == [200, 200, 200]
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        events = db.metadata.tables["sentry_event"]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(events)) == 3


# -- a write interrupted half-way ------------------------------------------------------------
class Seeded(t.NamedTuple):
    app: Flask
    client: FlaskClient
    key: ProjectKey
    groups: dict[str, int]  # fingerprint -> group id


@pytest.fixture
def seeded(app: Flask, key: ProjectKey) -> Seeded:
    """Three groups (3, 2 and 1 events, tags, users, a release) with a note each."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a bug is a 500 here, as in production
    client = app.test_client()
    for fingerprint, events in (("alpha", 3), ("beta", 2), ("gamma", 1)):
        for n in range(events):
            assert post_event(client, key, fingerprinted(fingerprint, n)).status_code == 200
    listed = client.get(
        f"/api/0/projects/{key.project_id}/groups/?query=&sort=freq", headers=basic_auth(key)
    ).get_json()
    groups = {group["title"].split()[0]: int(group["id"]) for group in listed}
    assert sorted(groups) == ["alpha", "beta", "gamma"]
    for name, group_id in groups.items():
        response = client.post(
            f"/api/0/groups/{group_id}/notes/",
            json={"text": f"about {name}"},
            headers=basic_auth(key),
        )
        assert response.status_code == 201, response.get_json()
    return Seeded(app, client, key, groups)


FAULTS = [
    pytest.param(connection_lost, 503, id="connection-lost"),
    pytest.param(program_error, 500, id="program-error"),
]


def interrupt_every_write(
    seeded: Seeded,
    send: t.Callable[[], TestResponse],
    error: t.Callable[[t.Any], BaseException],
    status: int,
) -> tuple[TestResponse, int]:
    """Send the request again and again, failing its 1st, 2nd, ... write statement, until a
    run reaches its end without meeting the fault. After every failed run, the response is
    ``status`` with a JSON ``detail`` and the database is exactly as before. Returns the
    clean run's response and how many writes it made."""
    before = snapshot(seeded.app)
    writes = 0
    while True:
        with failing_after(seeded.app, writes + 1, error) as seen:
            response = send()
        if len(seen) <= writes:
            break  # the fault was never reached: this run went through
        writes += 1
        assert response.status_code == status, (writes, seen, response.get_data(as_text=True))
        assert set(response.get_json()) == {"detail"}
        after = snapshot(seeded.app)
        changed = [name for name in before if before[name] != after[name]]
        assert changed == [], f"failing write {writes} ({seen[-1]}) left changes in {changed}"
    assert writes >= 1, "the request made no write at all"
    return response, writes


def group_rows(seeded: Seeded) -> dict[int, tuple[str, int]]:
    with seeded.app.app_context():
        Group = get_state(seeded.app).storage.models.Group
        db = seeded.app.extensions["sqlalchemy"]
        db.session.remove()
        rows = db.session.execute(sa.select(Group.id, Group.status, Group.times_seen))
        return {row.id: (row.status, row.times_seen) for row in rows}


def report(capsys: pytest.CaptureFixture[str], what: str, writes: int) -> None:
    with capsys.disabled():
        print(f"\n[faults] {what}: failed at each of its {writes} write(s), nothing persisted")


@pytest.mark.parametrize(("error", "status"), FAULTS)
def test_interrupted_bulk_status_update_changes_nothing(
    seeded: Seeded, error: t.Any, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"/api/0/projects/{seeded.key.project_id}/groups/"
    auth = basic_auth(seeded.key)
    response, writes = interrupt_every_write(
        seeded,
        lambda: seeded.client.put(
            url + "?status=unresolved", json={"status": "resolved"}, headers=auth
        ),
        error,
        status,
    )
    assert response.status_code == 200 and response.get_json() == {"status": "resolved"}
    assert {status for status, _ in group_rows(seeded).values()} == {"resolved"}
    report(capsys, "bulk resolve", writes)

    ids = "&".join(f"id={group_id}" for group_id in seeded.groups.values())
    response, writes = interrupt_every_write(
        seeded,
        lambda: seeded.client.put(
            f"{url}?{ids}",
            json={"status": "unresolved", "isBookmarked": True, "hasSeen": True},
            headers=auth,
        ),
        error,
        status,
    )
    assert response.status_code == 200, response.get_json()
    assert {status for status, _ in group_rows(seeded).values()} == {"unresolved"}
    report(capsys, "bulk update by id", writes)


@pytest.mark.parametrize(("error", "status"), FAULTS)
def test_interrupted_merge_leaves_every_group_intact(
    seeded: Seeded, error: t.Any, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = "&".join(f"id={group_id}" for group_id in seeded.groups.values())
    response, writes = interrupt_every_write(
        seeded,
        lambda: seeded.client.put(
            f"/api/0/projects/{seeded.key.project_id}/groups/?{ids}",
            json={"merge": 1},
            headers=basic_auth(seeded.key),
        ),
        error,
        status,
    )
    assert response.status_code == 200, response.get_json()
    parent = seeded.groups["alpha"]
    assert response.get_json()["merge"]["parent"] == str(parent)
    assert group_rows(seeded) == {parent: ("unresolved", 6)}
    events = seeded.client.get(f"/api/0/groups/{parent}/events/", headers=basic_auth(seeded.key))
    assert len(events.get_json()) == 6
    notes = seeded.client.get(f"/api/0/groups/{parent}/notes/", headers=basic_auth(seeded.key))
    assert len(notes.get_json()) == 3
    report(capsys, "merge of three groups", writes)


@pytest.mark.parametrize(("error", "status"), FAULTS)
def test_interrupted_delete_removes_nothing(
    seeded: Seeded, error: t.Any, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    doomed = [seeded.groups["alpha"], seeded.groups["beta"]]
    response, writes = interrupt_every_write(
        seeded,
        lambda: seeded.client.delete(
            f"/api/0/projects/{seeded.key.project_id}/groups/?id={doomed[0]}&id={doomed[1]}",
            headers=basic_auth(seeded.key),
        ),
        error,
        status,
    )
    assert response.status_code == 204
    assert group_rows(seeded) == {seeded.groups["gamma"]: ("unresolved", 1)}
    report(capsys, "bulk delete of two groups", writes)

    response, writes = interrupt_every_write(
        seeded,
        lambda: seeded.client.delete(
            f"/api/0/groups/{seeded.groups['gamma']}/", headers=basic_auth(seeded.key)
        ),
        error,
        status,
    )
    assert response.status_code == 202
    assert group_rows(seeded) == {}
    assert all(rows == [] for name, rows in snapshot(seeded.app).items() if "group" in name)
    report(capsys, "delete of one group", writes)


@pytest.mark.parametrize(("error", "status"), FAULTS)
def test_interrupted_event_is_not_counted_and_its_retry_is_stored_once(
    seeded: Seeded, error: t.Any, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """An SDK retries an event whose request failed half-way: it ends up stored once and
    counted once, in an existing group and in a new one."""
    # "Resolved" makes the event a regression too: one more write to interrupt.
    beta_url = f"/api/0/groups/{seeded.groups['beta']}/"
    response = seeded.client.put(
        f"/api/0/projects/{seeded.key.project_id}/groups/?id={seeded.groups['beta']}",
        json={"status": "resolved"},
        headers=basic_auth(seeded.key),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"status": "resolved"}
    resolved = seeded.client.get(beta_url, headers=basic_auth(seeded.key)).get_json()
    assert resolved["status"] == "resolved"
    for fingerprint, count in (("beta", 3), ("delta", 1)):
        event = fingerprinted(fingerprint, 7, release="2.0", tags={"fp": fingerprint, "new": "tag"})
        response, writes = interrupt_every_write(
            seeded, lambda event=event: post_event(seeded.client, seeded.key, event), error, status
        )
        assert response.status_code == 200 and response.get_json() == {"id": event["event_id"]}
        assert response.headers.get("X-Sentry-Error") is None
        with seeded.app.app_context():
            stored = get_state(seeded.app).storage
            Event = stored.models.Event
            [group_id] = stored.session.scalars(
                sa.select(Event.group_id).where(Event.event_id == event["event_id"])
            ).all()
        assert group_rows(seeded)[group_id] == ("unresolved", count)
        if fingerprint == "beta":  # the regression path ran: resolved, then unresolved again
            assert group_id == seeded.groups["beta"]
            again = seeded.client.get(beta_url, headers=basic_auth(seeded.key)).get_json()
            assert again["status"] == "unresolved"
        report(
            capsys, f"event for {'an existing' if fingerprint == 'beta' else 'a new'} group", writes
        )
        # The retry of the stored event is a duplicate: nothing changes.
        before = snapshot(seeded.app)
        assert post_event(seeded.client, seeded.key, event).status_code == 200
        assert snapshot(seeded.app) == before
