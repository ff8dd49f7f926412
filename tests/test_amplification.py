"""The amplification attack of issue 12 against a real gunicorn worker: twelve ~4 KB gzip
bodies, each inflating to an ``extra`` of a million empty arrays, sent with the store key;
then the events are read back through the web API.

Before trimming, each was stored as ~3 MB, the group's event list was 36 MB and the worker
peaked at 983 MB. Now every stored event must be within SPEC §11's bounds, the responses
small, and the one sync worker's peak memory (``VmHWM`` in ``/proc/<pid>/status``) at most
150 MB above what it held once warm: the memory bound the issue asks for.

Runs on a file SQLite always, and on the PostgreSQL database of
``SENTRY_API_TEST_DATABASE_URL`` when it is set (tables prefixed ``amp_``, dropped before
and after).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import typing as t
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from flask_sentry_api import get_state
from flask_sentry_api.ingest.trim import MAX_DEPTH
from flask_sentry_api.ingest.trim import MAX_ENTRIES
from flask_sentry_api.ingest.trim import MAX_EVENT_BYTES
from flask_sentry_api.ingest.trim import json_size
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import example_app_under_gunicorn
from tests.helpers import sentry_auth
from tests.test_load import backends
from tests.test_load import database_url_for
from tests.test_load import drop_tables

pytestmark = [pytest.mark.live, pytest.mark.load]

PREFIX = "amp_"
MILLION = 1_000_000
BODIES = 12
#: The issue's bound on the worker's memory growth across the attack.
MAX_GROWTH_MB = 150


def example_app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    import example_app

    monkeypatch.setenv("DATABASE_URL", database_url)
    return example_app.create_app(
        {"EXAMPLE_CREATE_DEMO_PROJECT": False, "SENTRY_API_TABLE_PREFIX": PREFIX}
    )


class Server(t.NamedTuple):
    url: str
    master: subprocess.Popen[bytes]
    project_id: int
    public_key: str
    secret_key: str


def worker_pid(master: subprocess.Popen[bytes]) -> int:
    """The gunicorn master's one worker process."""
    children: list[int] = []
    for task in Path(f"/proc/{master.pid}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    assert len(children) == 1, children
    return children[0]


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) of ``pid``, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024  # reported in kB
    return found


def amplified_body(endpoint: str) -> bytes:
    event = {
        "event_id": uuid.uuid4().hex,
        "message": "amplified",
        "platform": "javascript",
        "extra": {"a": [[]] * MILLION},
    }
    if endpoint == "envelope":
        return gzip.compress(envelope(event_item(event)))
    return gzip.compress(json.dumps(event).encode())


def bag_shape(value: t.Any, depth: int = 0) -> tuple[int, int]:
    """(deepest level, most entries of one object or array) of ``value``."""
    if not isinstance(value, (dict, list)):
        return depth, 0
    items = list(value.values()) if isinstance(value, dict) else value
    shapes = [bag_shape(item, depth + 1) for item in items]
    return (
        max([depth + 1, *(d for d, _ in shapes)]),
        max([len(items), *(n for _, n in shapes)]),
    )


def stored_data(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, t.Any]]:
    """The ``data`` column of every stored event, read from the database."""
    app = example_app(database_url, monkeypatch)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        models = get_state(app).storage.models  # type: ignore[attr-defined]
        rows = [row for (row,) in db.session.execute(sa.select(models.Event.data))]
        db.session.remove()
        db.engine.dispose()
    return rows


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> t.Iterator[tuple[Server, str]]:
    """(server, database URL): the example app under gunicorn with ONE sync worker (its
    memory is the measure), on the backend named by the (indirect) parameter."""
    database_url = database_url_for(request.param, tmp_path)
    app = example_app(database_url, monkeypatch)
    drop_tables(app)
    with app.app_context():
        storage = get_state(app).storage
        storage.init_schema()
        project = storage.create_project("Amplified")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()
    env = {"DATABASE_URL": database_url, "FLASK_SENTRY_API_TABLE_PREFIX": PREFIX}
    try:
        with example_app_under_gunicorn(tmp_path / "gunicorn.log", env) as (url, master):
            yield Server(url, master, project.id, key.public_key, key.secret_key), database_url
    finally:
        if request.param == "postgresql":
            drop_tables(example_app(database_url, monkeypatch))


@pytest.mark.parametrize("server", backends(), indirect=True)
def test_amplification_is_stored_trimmed_within_the_worker_memory_bound(
    server: tuple[Server, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, database_url = server
    ingest = f"{served.url}/api/{served.project_id}"
    store_headers = {**sentry_auth(served.public_key), "Content-Encoding": "gzip"}
    api = requests.Session()
    api.auth = (served.public_key, served.secret_key)

    # Warm up (imports, connection pool, first queries) so only the attack is measured.
    warm: dict[str, t.Any] = {
        "event_id": uuid.uuid4().hex,
        "message": "warm-up",
        "extra": {"w": [1]},
    }
    response = requests.post(
        f"{ingest}/store/", json=warm, headers=sentry_auth(served.public_key), timeout=30
    )
    assert response.status_code == 200, response.text
    assert api.get(f"{served.url}/api/0/projects/{served.project_id}/groups/").ok
    pid = worker_pid(served.master)
    before = memory_mb(pid)

    bodies = [amplified_body("envelope" if n % 2 else "store") for n in range(BODIES)]
    assert all(len(body) < 5000 for body in bodies)  # ~4 KB each, as in the attack
    for n, body in enumerate(bodies):
        endpoint = "envelope" if n % 2 else "store"
        response = requests.post(
            f"{ingest}/{endpoint}/", data=body, headers=store_headers, timeout=60
        )
        assert response.status_code == 200, response.text

    groups = api.get(f"{served.url}/api/0/projects/{served.project_id}/groups/").json()
    group = next(g for g in groups if g["title"] == "amplified")
    assert group["count"] == str(BODIES)
    listed = api.get(f"{served.url}/api/0/groups/{group['id']}/events/")
    assert listed.status_code == 200
    events = listed.json()
    details = [api.get(f"{served.url}/api/0/events/{event['id']}/") for event in events]

    after = memory_mb(pid)
    assert worker_pid(served.master) == pid  # the same worker throughout: nothing restarted
    growth = after["VmHWM"] - before["VmRSS"]
    print(f"worker memory (MB): before {before}, after {after}, peak growth {growth:.0f}")
    assert growth < MAX_GROWTH_MB, (before, after)  # was ~950 MB

    assert len(events) == BODIES
    assert len(listed.content) < 256 * 1024  # was 36 MB
    for response in details:
        assert response.status_code == 200
        assert len(response.content) <= MAX_EVENT_BYTES
        detail = response.json()
        assert detail["context"] == {"a": [[]] * MAX_ENTRIES}
        assert detail["_meta"]["context"] == {"a": {"": {"len": MILLION}}}

    data = [row for row in stored_data(database_url, monkeypatch) if "a" in row["extra"]]
    assert len(data) == BODIES
    for row in data:
        assert json_size(row) <= MAX_EVENT_BYTES
        depth, entries = bag_shape(row["extra"])
        assert depth <= MAX_DEPTH and entries <= MAX_ENTRIES
        assert row["_meta"]["extra"] == {"a": {"": {"len": MILLION}}}
