"""Helpers shared by the test modules: the database under test, host apps, credentials
(HTTP Basic for the web API, ``X-Sentry-Auth`` for ingestion), stored events and groups,
SDK payloads, a live HTTP server and a statement recorder.

Fixtures live in ``conftest.py``; everything a test module imports lives here.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import typing as t
import uuid
import zlib
from datetime import datetime
from datetime import timezone
from pathlib import Path

import requests
import sentry_sdk
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sentry_sdk.envelope import Envelope as SdkEnvelope
from sentry_sdk.transport import Transport
from werkzeug.serving import make_server

from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.pagination import Window
from flask_sentry_api.storage import GroupChanges
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from flask_sentry_api.testing import make_event

UTC = timezone.utc


def _worker_database_url(url: str) -> str:
    """``url``, or under a pytest-xdist worker on PostgreSQL, ``url`` with that worker's own
    schema of the same database first on its search path: workers run at once and every
    test recreates the same tables, so each keeps them apart."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not url.startswith("postgresql"):
        return url
    schema = f"sentry_api_tests_{worker}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    worker_url = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return worker_url.render_as_string(hide_password=False)


#: The database the tests run on: in-memory SQLite unless ``SENTRY_API_TEST_DATABASE_URL``
#: names another (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Test modules
#: and the servers they start read it from the environment too, so it is written back.
DATABASE_URL = _worker_database_url(os.environ.get("SENTRY_API_TEST_DATABASE_URL", "sqlite://"))
if DATABASE_URL != "sqlite://":
    os.environ["SENTRY_API_TEST_DATABASE_URL"] = DATABASE_URL
ON_POSTGRES = DATABASE_URL.startswith("postgresql")

FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found"}
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
#: Bad credentials of any kind: wrong secret, unknown key or token, malformed header.
INVALID_API_KEY = {"detail": "Invalid api key"}
#: A date-time as the API writes it: UTC, optional milliseconds, a ``Z``.
DATETIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z\Z")
#: Ids past every integer column's range (int32, int64 and beyond).
HUGE_IDS = [2**31, 2**63, 10**20]
#: A storage window that reads every row, newest first.
EVERYTHING = Window(op=None, value=0, descending=True, offset=0, limit=10_000)


# -- credentials -----------------------------------------------------------------------------


def basic_auth(key: ProjectKey, secret: str | None = None) -> dict[str, str]:
    """HTTP Basic headers of ``key`` for the web API (``secret`` instead of its own)."""
    token = f"{key.public_key}:{key.secret_key if secret is None else secret}"
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def sentry_auth(
    key: ProjectKey | str,
    *,
    secret: str | None = None,
    version: str = "7",
    client: str = "tests/1.0",
) -> dict[str, str]:
    """The ``X-Sentry-Auth`` header SDKs send to the ingestion endpoints. ``key`` is a key
    or its public key; ``secret`` is sent as ``sentry_secret`` when given."""
    public_key = key if isinstance(key, str) else key.public_key
    fields = f"sentry_key={public_key}, sentry_version={version}, sentry_client={client}"
    if secret is not None:
        fields += f", sentry_secret={secret}"
    return {"X-Sentry-Auth": f"Sentry {fields}"}


def near_misses(secret: str) -> dict[str, str]:
    """Wrong secrets of the same length that differ from ``secret`` in one character only:
    the last, the first, the middle. A check that compares a prefix, a suffix or a few
    characters lets one of them through."""

    def other(char: str) -> str:
        return "0" if char != "0" else "1"

    middle = len(secret) // 2
    return {
        "last character": secret[:-1] + other(secret[-1]),
        "first character": other(secret[0]) + secret[1:],
        "middle character": secret[:middle] + other(secret[middle]) + secret[middle + 1 :],
    }


# -- apps ------------------------------------------------------------------------------------


#: The Flask-SQLAlchemy instance of every :func:`make_app` app, as a host's app factory
#: shares one across its apps: the storage's models are declared on it once per prefix.
db = SQLAlchemy()


def make_app(config: t.Mapping[str, t.Any] | None = None, **extension_args: t.Any) -> Flask:
    """A host app with Flask-SQLAlchemy and the extension, tables created empty."""
    app = Flask("host")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=DATABASE_URL,
        SERVER_NAME="testserver.local",
    )
    app.config.update(config or {})
    db.init_app(app)
    SentryAPI(app, **extension_args)
    with app.app_context():
        db.drop_all()
        get_state(app).storage.init_schema()
    return close_after_test(app)


#: Every app with a database built during the current test, to be closed after it.
_made_apps: list[Flask] = []


def close_after_test(app: Flask) -> Flask:
    """Dispose of ``app``'s database engine when the current test ends."""
    _made_apps.append(app)
    return app


def close_made_apps() -> None:
    """Close the pooled connections of the apps the test made besides the ``app`` fixture's,
    so none is left to the garbage collector (a ResourceWarning on PostgreSQL)."""
    while _made_apps:
        made = _made_apps.pop()
        with made.app_context():
            made.extensions["sqlalchemy"].engine.dispose()


def forget_made_app(app: Flask) -> None:
    """Leave ``app`` for its owner (the ``app`` fixture) to close."""
    _made_apps.remove(app)


class LiveServer:
    """A real, threaded HTTP server on 127.0.0.1 serving ``app`` while in a ``with``."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def captured_statements(app: Flask, action: t.Callable[[], object]) -> list[tuple[str, t.Any]]:
    """(SQL, parameters) of every statement ``app``'s engine sends while ``action`` runs."""
    engine = app.extensions["sqlalchemy"].engine
    seen: list[tuple[str, t.Any]] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, parameters: t.Any, *args: t.Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


# -- stored data -----------------------------------------------------------------------------


def at(ts: float | datetime) -> datetime:
    """``ts`` (epoch seconds, or already a datetime) as an aware UTC datetime."""
    return ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)


def add_event(
    storage: Storage,
    project: Project,
    group: str = "a",
    ts: float | datetime | None = None,
    **fields: t.Any,
) -> t.Any:
    """Store an event of group ``group`` (its hash) seen at ``ts`` (default: now); returns
    what ``save_event`` returns (``.event``, ``.group``). ``fields`` override the event's."""
    values = {
        "group_hash": group,
        "timestamp": at(ts) if ts is not None else datetime.now(UTC),
        "message": f"message {group}",
        "title": f"title {group}",
        "culprit": None,
    }
    return storage.save_event(project.id, make_event(**{**values, **fields}))


def add_group(
    storage: Storage,
    project: Project,
    group: str = "a",
    ts: float | datetime | None = None,
    *,
    status: str | None = None,
    **fields: t.Any,
) -> int:
    """The id of group ``group`` after one more event in it (see :func:`add_event`), set to
    ``status`` when given."""
    group_id: int = add_event(storage, project, group, ts, **fields).group.id
    if status:
        storage.update_groups(project.id, GroupQuery(ids=(group_id,)), GroupChanges(status=status))
    return group_id


# -- SDK payloads ----------------------------------------------------------------------------


def event_payload(message: str = "Something happened", **fields: t.Any) -> dict[str, t.Any]:
    """An event as an SDK sends it to the store endpoint (JSON-ready), a fresh event_id."""
    return {"event_id": uuid.uuid4().hex, "message": message, "platform": "python", **fields}


def envelope(
    *items: tuple[dict[str, t.Any], bytes],
    header: dict[str, t.Any] | None = None,
    length: bool = True,
) -> bytes:
    """An envelope of ``(item headers, payload)`` items; each item header gets the payload's
    ``length`` unless ``length`` is false."""
    lines = [json.dumps({"sent_at": "2026-01-01T00:00:00Z"} if header is None else header).encode()]
    for headers, payload in items:
        lines += [json.dumps({**headers, "length": len(payload)} if length else headers).encode()]
        lines.append(payload)
    return b"\n".join(lines) + b"\n"


def event_item(event: dict[str, t.Any]) -> tuple[dict[str, t.Any], bytes]:
    """An envelope item carrying ``event``."""
    return {"type": "event"}, json.dumps(event).encode()


class KeepEnvelopes(Transport):
    """A sentry-sdk transport that keeps the envelopes instead of sending them."""

    def __init__(self, options: dict[str, t.Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[SdkEnvelope] = []

    def capture_envelope(self, envelope: SdkEnvelope) -> None:
        self.envelopes.append(envelope)


def sdk_envelopes(action: t.Callable[[t.Any], None], **options: t.Any) -> list[SdkEnvelope]:
    """The envelopes a real sentry-sdk client sends while ``action(scope)`` runs;
    ``options`` go to the client."""
    client = sentry_sdk.Client(
        "http://public@127.0.0.1:1/1",
        transport=KeepEnvelopes,
        default_integrations=False,
        **options,
    )
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            action(scope)
        client.flush()
        assert isinstance(client.transport, KeepEnvelopes)
        return client.transport.envelopes
    finally:
        client.close()


MB = 1 << 20


@functools.cache
def zero_bomb(wbits: int, megabytes: int) -> bytes:
    """A valid zlib (wbits 15) or gzip (31) stream of ``megabytes`` MiB of zeros, built
    with zlib.compressobj over zero chunks: after the first chunk each sync-flushed chunk
    compresses to the same block, so it is repeated rather than recompressed."""
    zeros, is_gzip = bytes(MB), wbits > 16
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH) == block
    final = compressor.flush(zlib.Z_FINISH)
    check = 0 if is_gzip else 1
    for _ in range(megabytes):
        check = zlib.crc32(zeros, check) if is_gzip else zlib.adler32(zeros, check)
    size = (megabytes * MB) & 0xFFFFFFFF
    trailer = struct.pack("<II", check, size) if is_gzip else struct.pack(">I", check)
    return first + block * (megabytes - 1) + final[: -len(trailer)] + trailer


# -- the example app under gunicorn ------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


def gunicorn_options(workers: int = 1) -> list[str]:
    """gunicorn's command-line options for a test server on a free port."""
    import gunicorn.config

    options = ["-w", str(workers), "-b", "127.0.0.1:0", "--timeout", "30"]
    options += ["--graceful-timeout", "5"]
    flags = {flag for setting in gunicorn.config.KNOWN_SETTINGS for flag in setting.cli or ()}
    if "--no-control-socket" in flags:
        # Recent gunicorns open a control socket in ~/.gunicorn, shared by every instance.
        options.append("--no-control-socket")
    return options


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def example_app_under_gunicorn(
    log: Path,
    env: t.Mapping[str, str],
    *,
    workers: int = 1,
    options: t.Sequence[str] = (),
) -> t.Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(URL, master process) of ``example_app:create_app()`` served by ``workers`` sync
    workers, once every worker has booted and the API answers; ``env`` is added to this
    process's (``DATABASE_URL``, ``FLASK_SENTRY_API_*`` settings)."""
    with log.open("wb") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *gunicorn_options(workers), *options]
            + ["example_app:create_app()"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _wait_until_serving(master, log, workers), master
    finally:
        stop_gunicorn(master)


def _wait_until_serving(master: subprocess.Popen[bytes], log: Path, workers: int) -> str:
    deadline = time.monotonic() + 60  # workers import the app at once on a busy CI box
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if master.poll() is not None:
            raise AssertionError(f"gunicorn exited with {master.returncode}:\n{text}")
        match = LISTENING.search(text)
        if match and text.count("Booting worker") >= workers:
            try:
                if requests.get(match.group(1) + "/api/0/", timeout=10).status_code == 200:
                    return match.group(1)
            except (requests.ConnectionError, requests.Timeout):
                pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not start:\n" + log.read_text(errors="replace"))
