"""Concurrent ingestion against a real threaded server: many events racing to create one
new group end in ONE group with the right count, and a retried event_id is stored once.

The database is a file SQLite with a busy timeout (the shared in-memory test database
cannot take concurrent requests), or ``SENTRY_API_TEST_DATABASE_URL`` when it is set.
"""

from __future__ import annotations

import gzip
import json
import threading
import typing as t
import uuid
from pathlib import Path

import pytest
import requests

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from tests.helpers import DATABASE_URL
from tests.helpers import LiveServer
from tests.helpers import envelope
from tests.helpers import make_app
from tests.helpers import sentry_auth

pytestmark = [pytest.mark.live, pytest.mark.load]

N = 16


class Server(t.NamedTuple):
    url: str
    project: Project
    key: ProjectKey

    def api(self, path: str, **params: str) -> t.Any:
        response = requests.get(
            f"{self.url}/api/0{path}",
            params=params,
            auth=(self.key.public_key, self.key.secret_key),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def server(tmp_path: Path) -> t.Iterator[Server]:
    if DATABASE_URL.startswith("sqlite"):
        app = make_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/c.db",
                "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 30}},
            }
        )
    else:
        app = make_app()
    app.config["SERVER_NAME"] = None
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Busy")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    try:
        with LiveServer(app) as live:
            yield Server(live.url, project, key)
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].session.remove()
            app.extensions["sqlalchemy"].drop_all()
            app.extensions["sqlalchemy"].engine.dispose()


def post_together(server: Server, events: list[dict[str, t.Any]]) -> list[tuple[int, t.Any]]:
    """Post every event from its own thread, all released at once by a barrier; half go to
    the store endpoint, half as envelopes, every body gzipped."""
    barrier = threading.Barrier(len(events))
    results: list[tuple[int, t.Any]] = [(0, None)] * len(events)
    auth = sentry_auth(server.key, client="race/1")

    def send(index: int) -> None:
        event = events[index]
        payload = json.dumps(event).encode()
        if index % 2:
            kind = "envelope"
            payload = envelope(({"type": "event"}, payload), header={})
        else:
            kind = "store"
        body = gzip.compress(payload)
        headers = {**auth, "Content-Encoding": "gzip"}
        url = f"{server.url}/api/{server.project.id}/{kind}/"
        barrier.wait(timeout=30)
        try:
            response = requests.post(url, data=body, headers=headers, timeout=60)
            results[index] = (response.status_code, response.json())
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            results[index] = (-1, repr(exc))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def report(capsys: pytest.CaptureFixture[str], name: str, **figures: t.Any) -> None:
    with capsys.disabled():
        shown = ", ".join(f"{key}={value}" for key, value in figures.items())
        print(f"\n[{name} on {DATABASE_URL.split(':')[0].split('+')[0]}] {shown}")


def test_racing_events_for_one_new_group(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    fingerprint = [f"race-{uuid.uuid4().hex}"]
    events = [
        {
            "event_id": uuid.uuid4().hex,
            "message": f"Race {i}",
            "fingerprint": fingerprint,
            "tags": {"worker": f"w{i}"},
            "user": {"id": f"u{i % 4}"},
        }
        for i in range(N)
    ]
    results = post_together(server, events)
    errors = [result for result in results if result[0] != 200]
    groups = server.api(f"/projects/{server.project.id}/groups/", query="")
    count = groups[0]["count"] if len(groups) == 1 else None
    report(capsys, "one new group", requests=N, errors=len(errors), groups=len(groups), count=count)

    assert errors == []
    assert sorted(body["id"] for _, body in results) == sorted(e["event_id"] for e in events)
    [group] = groups
    assert (group["count"], group["userCount"]) == (str(N), 4)
    stored = server.api(f"/groups/{group['id']}/events/")
    assert sorted(e["eventID"] for e in stored) == sorted(e["event_id"] for e in events)
    tags = {tag["key"]: tag for tag in server.api(f"/groups/{group['id']}/tags/")}
    assert (tags["worker"]["uniqueValues"], tags["worker"]["totalValues"]) == (N, N)
    assert (tags["level"]["uniqueValues"], tags["level"]["totalValues"]) == (1, N)


def test_one_event_id_sent_by_many_at_once_is_stored_once(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"event_id": uuid.uuid4().hex, "message": "Retried everywhere", "tags": {"x": "y"}}
    results = post_together(server, [dict(event) for _ in range(8)])
    errors = [result for result in results if result[0] != 200]
    groups = server.api(f"/projects/{server.project.id}/groups/", query="")
    count = groups[0]["count"] if len(groups) == 1 else None
    report(capsys, "one event_id", requests=8, errors=len(errors), groups=len(groups), count=count)

    assert errors == []
    assert {body["id"] for _, body in results} == {event["event_id"]}
    [group] = groups
    assert group["count"] == "1"
    assert [e["eventID"] for e in server.api(f"/groups/{group['id']}/events/")] == [
        event["event_id"]
    ]
    tags = {tag["key"]: tag for tag in server.api(f"/groups/{group['id']}/tags/")}
    assert tags["x"]["totalValues"] == 1
