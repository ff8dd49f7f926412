"""The blinker signals a host connects to (``issue_created``, ``issue_regressed``,
``issue_resolved``, ``event_stored``): what each request sends, with which sender and keyword
arguments, only after the change is committed, and that a failing receiver changes no answer.

Every test runs on the SQL storage (the ``app`` fixture) and on :class:`MemoryStorage`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import typing as t

import pytest
from blinker import NamedSignal
from flask import Flask
from werkzeug.test import TestResponse

import flask_sentry_api
from flask_sentry_api import SentryAPI
from flask_sentry_api import event_stored
from flask_sentry_api import get_state
from flask_sentry_api import issue_created
from flask_sentry_api import issue_regressed
from flask_sentry_api import issue_resolved
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Event
from flask_sentry_api.storage import Group
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from tests.helpers import basic_auth
from tests.helpers import event_payload
from tests.helpers import sentry_auth

SIGNALS = (issue_created, issue_regressed, issue_resolved, event_stored)
HOST = "http://testserver.local"


class Host:
    """An app with the extension, a project with a key, and the signals each request sent."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.storage: Storage = get_state(app).storage
        with app.app_context():
            self.project: Project = self.storage.create_project("Web")
            self.key: ProjectKey = self.storage.create_key(self.project.id, ROLE_STORE | ROLE_API)
        self.auth = basic_auth(self.key)
        self.sent: list[tuple[str, t.Any, dict[str, t.Any]]] = []

    @contextlib.contextmanager
    def recording(self) -> t.Iterator[None]:
        """Record every signal sent from this app while in the ``with``."""
        with contextlib.ExitStack() as stack:
            for signal in SIGNALS:
                stack.enter_context(signal.connected_to(self._recorder(signal), sender=self.app))
            yield

    def _recorder(self, signal: NamedSignal) -> t.Callable[..., None]:
        def record(sender: t.Any, **kwargs: t.Any) -> None:
            self.sent.append((signal.name, sender, kwargs))

        return record

    def names(self) -> list[str]:
        names = [name for name, _, _ in self.sent]
        self.sent.clear()
        return names

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> TestResponse:
        headers = sentry_auth(self.key) if headers is None else headers
        return self.client.post(f"/api/{self.project.id}/store/", data=body, headers=headers)

    def store(self, event: dict[str, t.Any]) -> None:
        response = self.post(json.dumps(event).encode())
        assert response.status_code == 200, response.json
        assert response.json == {"id": event["event_id"]}

    def group_id(self, event_id: str) -> int:
        response = self.client.get(f"/api/0/events/{event_id}/", headers=self.auth)
        assert response.status_code == 200, response.json
        return int(response.json["groupID"])

    def put(self, path: str, body: dict[str, t.Any]) -> TestResponse:
        return self.client.put(f"/api/0{path}", json=body, headers=self.auth)


def memory_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask("memory_host")
    app.config.update(TESTING=True, SERVER_NAME="testserver.local", **(config or {}))
    SentryAPI(app, storage=MemoryStorage())
    return app


@pytest.fixture(params=["sqlalchemy", "memory"])
def host(request: pytest.FixtureRequest) -> Host:
    if request.param == "memory":
        return Host(memory_app())
    return Host(request.getfixturevalue("app"))


def test_signals_are_exported_blinker_signals() -> None:
    for signal in SIGNALS:
        assert isinstance(signal, NamedSignal)
        assert getattr(flask_sentry_api, signal.name.replace("-", "_")) is signal
        assert signal.name.replace("-", "_") in flask_sentry_api.__all__


def test_first_event_creates_an_issue_and_later_ones_do_not(host: Host) -> None:
    first = event_payload("Database is down", level="fatal", culprit="app.db in connect")
    with host.recording():
        host.store(first)
        assert host.names() == ["event-stored", "issue-created"]
        host.store(first)  # an SDK's retry stores nothing: no signal
        assert host.names() == []
        host.store(event_payload("Database is down"))
        host.store(event_payload("Another problem"))
        sent = list(host.sent)
        assert host.names() == ["event-stored", "event-stored", "issue-created"]
    stored, created = sent[0], sent[2]
    assert created[2]["group"].title == "Another problem"
    assert stored[2]["group"].times_seen == 2 and stored[2]["group"].title == "Database is down"


def test_issue_created_sender_and_arguments(host: Host) -> None:
    event = event_payload("Payment failed", level="warning", culprit="shop.pay in charge")
    with host.recording():
        host.store(event)
    [(_, stored_sender, stored), (name, sender, kwargs)] = host.sent
    assert name == "issue-created"
    assert sender is host.app and stored_sender is host.app
    assert stored == kwargs
    assert set(kwargs) == {"project", "group", "event", "permalink"}
    project, group, saved = kwargs["project"], kwargs["group"], kwargs["event"]
    assert isinstance(project, Project) and project.slug == "web"
    assert isinstance(group, Group) and isinstance(saved, Event)
    assert (group.title, group.culprit, group.level, group.status) == (
        "Payment failed",
        "shop.pay in charge",
        "warning",
        "unresolved",
    )
    assert (saved.event_id, saved.group_id) == (event["event_id"], group.id)
    assert group.id == host.group_id(event["event_id"])
    assert kwargs["permalink"] == f"{HOST}/api/0/groups/{group.id}/"
    # The permalink is the group's as the API serialises it.
    response = host.client.get(f"/api/0/groups/{group.id}/", headers=host.auth)
    assert response.json["permalink"] == kwargs["permalink"]


def test_permalink_follows_the_template() -> None:
    template = "{base_url}/app/{project_slug}/issues/{group_id}/"
    host = Host(memory_app({"SENTRY_API_PERMALINK_TEMPLATE": template}))
    with host.recording():
        host.store(event_payload("Templated"))
    group = host.sent[-1][2]["group"]
    assert host.sent[-1][2]["permalink"] == f"{HOST}/app/web/issues/{group.id}/"


def test_event_of_a_resolved_issue_is_a_regression(host: Host) -> None:
    first = event_payload("Flaky job")
    host.store(first)
    group_id = host.group_id(first["event_id"])
    assert host.put(f"/groups/{group_id}/", {"status": "resolved"}).status_code == 200
    with host.recording():
        host.store(event_payload("Flaky job"))
        sent = list(host.sent)
        assert host.names() == ["event-stored", "issue-regressed"]
        host.store(event_payload("Flaky job"))  # reopened already: no second regression
        assert host.names() == ["event-stored"]
    group = sent[1][2]["group"]
    assert (group.id, group.status, group.resolved_at, group.times_seen) == (
        group_id,
        "unresolved",
        None,
        2,
    )
    assert sent[1][1] is host.app and set(sent[1][2]) == {"project", "group", "event", "permalink"}


def test_event_of_a_muted_issue_is_no_regression(host: Host) -> None:
    first = event_payload("Noisy")
    host.store(first)
    group_id = host.group_id(first["event_id"])
    assert host.put(f"/groups/{group_id}/", {"status": "muted"}).status_code == 200
    with host.recording():
        host.store(event_payload("Noisy"))
    assert host.names() == ["event-stored"]


def test_resolving_one_issue_sends_issue_resolved_once(host: Host) -> None:
    first = event_payload("To resolve")
    host.store(first)
    group_id = host.group_id(first["event_id"])
    with host.recording():
        response = host.put(f"/groups/{group_id}/", {"status": "resolved", "isBookmarked": True})
        assert response.status_code == 200 and response.json["status"] == "resolved"
        sent = list(host.sent)
        assert host.names() == ["issue-resolved"]
        # Resolved already: nothing changed, nothing sent; the same for other changes.
        assert host.put(f"/groups/{group_id}/", {"status": "resolved"}).status_code == 200
        assert host.put(f"/groups/{group_id}/", {"hasSeen": True}).status_code == 200
        assert host.put(f"/groups/{group_id}/", {"status": "unresolved"}).status_code == 200
        assert host.names() == []
    [(_, sender, kwargs)] = sent
    assert sender is host.app
    assert set(kwargs) == {"project", "groups", "permalinks", "count"}
    assert kwargs["project"].id == host.project.id and kwargs["count"] == 1
    [group] = kwargs["groups"]
    assert (group.id, group.status, group.is_bookmarked) == (group_id, "resolved", True)
    assert group.resolved_at is not None
    assert kwargs["permalinks"] == (f"{HOST}/api/0/groups/{group_id}/",)


def test_bulk_resolve_by_id_names_the_groups_it_changed(host: Host) -> None:
    ids = []
    for title in ("one", "two", "three", "four"):
        event = event_payload(title)
        host.store(event)
        ids.append(host.group_id(event["event_id"]))
    assert host.put(f"/groups/{ids[1]}/", {"status": "resolved"}).status_code == 200
    assert host.put(f"/groups/{ids[2]}/", {"status": "muted"}).status_code == 200
    named = "&".join(f"id={group_id}" for group_id in ids[:3])
    with host.recording():
        path = f"/projects/{host.project.id}/groups/?{named}"
        response = host.put(path, {"status": "resolved"})
        assert response.status_code == 200 and response.json == {"status": "resolved"}
    [(name, sender, kwargs)] = host.sent
    assert (name, sender, kwargs["count"]) == ("issue-resolved", host.app, 2)
    assert sorted(group.id for group in kwargs["groups"]) == [ids[0], ids[2]]
    assert {group.status for group in kwargs["groups"]} == {"resolved"}
    assert len(kwargs["permalinks"]) == 2
    # The fourth group was not named, and is untouched.
    response = host.client.get(f"/api/0/groups/{ids[3]}/", headers=host.auth)
    assert response.json["status"] == "unresolved"


def test_bulk_resolve_by_filter_is_counted_not_listed(host: Host) -> None:
    # A selection by filters may reach a whole project: counted, never loaded.
    for title in ("alpha", "beta", "gamma"):
        host.store(event_payload(title))
    with host.recording():
        path = f"/projects/{host.project.id}/groups/?query=alpha"
        assert host.put(path, {"status": "resolved"}).status_code == 200
        response = host.put("/organizations/sentry/issues/", {"status": "resolved"})
        assert response.status_code == 200
        # Everything is resolved now: resolving again changes nothing and sends nothing.
        path = f"/projects/{host.project.id}/groups/"
        assert host.put(path, {"status": "resolved"}).status_code == 200
    assert [(name, kwargs["count"], kwargs["groups"]) for name, _, kwargs in host.sent] == [
        ("issue-resolved", 1, ()),
        ("issue-resolved", 2, ()),
    ]
    assert all(sender is host.app for _, sender, _ in host.sent)


def test_bulk_resolve_of_unresolved_only_counts_those(host: Host) -> None:
    for title in ("first", "second"):
        host.store(event_payload(title))
    with host.recording():
        path = f"/projects/{host.project.id}/groups/?status=unresolved"
        assert host.put(path, {"status": "resolved"}).status_code == 200
        assert host.put(path, {"status": "resolved"}).status_code == 200
    assert [kwargs["count"] for _, _, kwargs in host.sent] == [2]


def test_bulk_resolve_on_the_organization_path_names_its_groups(host: Host) -> None:
    event = event_payload("Org issue")
    host.store(event)
    group_id = host.group_id(event["event_id"])
    with host.recording():
        response = host.put(f"/organizations/sentry/issues/?id={group_id}", {"status": "resolved"})
        assert response.status_code == 200
        response = host.put(f"/projects/sentry/web/issues/?id={group_id}", {"status": "resolved"})
        assert response.status_code == 200
    [(name, _, kwargs)] = host.sent
    assert [group.id for group in kwargs["groups"]] == [group_id]


def test_failed_requests_send_nothing(host: Host) -> None:
    body = json.dumps(event_payload("Refused")).encode()
    wrong = sentry_auth("0" * 32)
    event = event_payload("Stored")
    host.store(event)
    group_id = host.group_id(event["event_id"])
    with host.recording():
        assert host.post(body, {}).status_code == 401
        assert host.post(body, wrong).status_code == 401
        assert host.post(b"{not json").status_code == 400
        assert host.put(f"/groups/{group_id}/", {"status": "solved"}).status_code == 400
        path = f"/projects/{host.project.id}/groups/?id={group_id}"
        assert host.put(path, {"status": "resolved", "merge": 1}).status_code == 400
        response = host.client.put(f"/api/0/groups/{group_id}/", json={"status": "resolved"})
        assert response.status_code == 401
    assert host.names() == []
    group = host.client.get(f"/api/0/groups/{group_id}/", headers=host.auth).json
    assert group["status"] == "unresolved"


def test_oversized_event_sends_nothing() -> None:
    host = Host(memory_app({"SENTRY_API_MAX_EVENT_SIZE": 200}))
    with host.recording():
        response = host.post(json.dumps(event_payload("x" * 500)).encode())
        assert response.status_code == 413
    assert host.names() == []


def test_receivers_of_another_app_hear_nothing(host: Host) -> None:
    other = memory_app()
    heard: list[str] = []
    with issue_created.connected_to(lambda sender, **kwargs: heard.append("x"), sender=other):
        host.store(event_payload("Not yours"))
    assert heard == []


def test_a_failing_receiver_keeps_the_event_and_the_success(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: t.Any, **kwargs: t.Any) -> None:
        raise RuntimeError("the webhook is down")

    event = event_payload("Kept anyway")
    with event_stored.connected_to(broken, sender=host.app), host.recording():
        with caplog.at_level(logging.ERROR, logger="flask_sentry_api"):
            host.store(event)  # 200 with the event's id
    # The other receivers were still called, the later signal still sent.
    assert host.names() == ["event-stored", "issue-created"]
    assert any(
        "event-stored" in record.getMessage() and record.exc_info is not None
        for record in caplog.records
    )
    assert host.group_id(event["event_id"]) > 0


def test_a_failing_resolve_receiver_keeps_the_answer(host: Host) -> None:
    def broken(sender: t.Any, **kwargs: t.Any) -> None:
        raise RuntimeError("mail server down")

    event = event_payload("Resolve me")
    host.store(event)
    group_id = host.group_id(event["event_id"])
    with issue_resolved.connected_to(broken, sender=host.app):
        response = host.put(f"/groups/{group_id}/", {"status": "resolved"})
    assert response.status_code == 200 and response.json["status"] == "resolved"


def test_receivers_run_after_the_commit(app: Flask) -> None:
    # A receiver that rolls the session back cannot lose what it is told about.
    host = Host(app)
    db = app.extensions["sqlalchemy"]
    seen: list[str] = []

    def rollback(sender: Flask, event: Event, **kwargs: t.Any) -> None:
        db.session.rollback()
        seen.append(event.event_id)

    event = event_payload("Committed first")
    with event_stored.connected_to(rollback, sender=app):
        host.store(event)
    assert seen == [event["event_id"]]
    assert host.group_id(event["event_id"]) > 0


def test_no_receiver_no_project_read(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ingestion's hot path: with nobody connected, storing reads no project for the signals.
    host = Host(app)
    calls: list[int] = []
    storage = get_state(app).storage
    original = storage.get_project

    def counting(project_id: int) -> Project | None:
        calls.append(project_id)
        return original(project_id)

    monkeypatch.setattr(storage, "get_project", counting)
    host.store(event_payload("Quiet"))
    quiet = len(calls)
    with issue_created.connected_to(lambda sender, **kwargs: None, sender=app):
        host.store(event_payload("Heard"))
    assert len(calls) == quiet + 1
