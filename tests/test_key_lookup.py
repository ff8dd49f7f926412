"""A host's key lookup (SPEC §3): keys of its own format on ingestion and the web API, and
keys naming a project the storage lacks, with both shipped storages."""

from __future__ import annotations

import logging
import typing as t
import uuid
from datetime import datetime
from datetime import timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_sentry_api import get_state
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from tests.helpers import INVALID_API_KEY
from tests.helpers import basic_auth
from tests.helpers import captured_statements
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import event_payload
from tests.helpers import forget_made_app
from tests.helpers import make_app
from tests.helpers import sentry_auth

#: Key forms a host may well use: none is the storage's 32 hex digits.
HOST_KEYS = [
    "pk_live-abc.123",
    "Pk_Live-ABC.123",  # case is kept: a different key from the one above
    "k",
    "x" * 128,
    str(uuid.UUID(int=7)),
    "base64url_padded==",
    "tilde~bang!dollar$amp&paren()star*plus+semi;",
]
SECRET = "host-secret"
MISSING_PROJECT = 999


class HostKeys(dict[str, ProjectKey]):
    """A host's own key table; :meth:`lookup` is what the extension is given, and
    :attr:`looked_up` what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[str] = []

    def add(
        self, public_key: str, project_id: int, roles: int = ROLE_STORE | ROLE_API
    ) -> ProjectKey:
        key = ProjectKey(
            id=len(self) + 1,
            project_id=project_id,
            public_key=public_key,
            secret_key=SECRET,
            roles=ROLE_STORE | ROLE_API,
            is_active=True,
            date_added=datetime(2026, 1, 1, tzinfo=timezone.utc),
        )
        self[public_key] = key
        return key

    def lookup(self, public_key: str) -> ProjectKey | None:
        self.looked_up.append(public_key)
        return self.get(public_key)


@pytest.fixture
def host_keys() -> HostKeys:
    return HostKeys()


@pytest.fixture(params=["sqlalchemy", "memory"])
def app(request: pytest.FixtureRequest, host_keys: HostKeys) -> t.Iterator[Flask]:
    """A host app whose keys come from ``host_keys``, on each shipped storage."""
    storage = MemoryStorage() if request.param == "memory" else None
    app = make_app(storage=storage, key_lookup=host_keys.lookup)
    # Closed here, after pytest-flask has left its request context (as conftest's app).
    forget_made_app(app)
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()


def store(
    client: FlaskClient, project_id: int, headers: dict[str, str] | None = None, **args: str
) -> tuple[t.Any, str]:
    """POST one event to the envelope endpoint; the response and the event's id."""
    event = event_payload()
    response = client.post(
        f"/api/{project_id}/envelope/",
        data=envelope(event_item(event)),
        headers=headers or {},
        query_string=args,
    )
    return response, event["event_id"]


def read_event(client: FlaskClient, key: ProjectKey, event_id: str) -> t.Any:
    return client.get(f"/api/0/events/{event_id}/", headers=basic_auth(key))


def test_host_key_of_any_form_ingests_and_reads(
    client: FlaskClient, host_keys: HostKeys, project: Project
) -> None:
    for public_key in HOST_KEYS:
        key = host_keys.add(public_key, project.id)
        # As sentry-sdk sends it (X-Sentry-Auth, no secret), with raven's secret, and as a
        # browser does (the query string).
        for headers, args in [
            (sentry_auth(public_key), {}),
            (sentry_auth(public_key, secret=SECRET), {}),
            ({}, {"sentry_key": public_key}),
        ]:
            response, event_id = store(client, project.id, headers, **args)
            assert response.status_code == 200, (public_key, response.get_json())
            # The web API, with HTTP Basic auth by the same key, reads the event back.
            read = read_event(client, key, event_id)
            assert read.status_code == 200, public_key
            assert read.get_json()["eventID"] == event_id


def test_host_key_is_looked_up_as_sent(
    client: FlaskClient, host_keys: HostKeys, project: Project
) -> None:
    host_keys.add("pk_live-abc", project.id)
    response, _ = store(client, project.id, sentry_auth("PK_LIVE-ABC"))
    assert response.status_code == 401
    assert response.get_json() == INVALID_API_KEY
    # 32 hex digits are the storage's form, case-blind: looked up in lower case.
    hex_key = host_keys.add("ab" * 16, project.id)
    assert store(client, project.id, sentry_auth("AB" * 16))[0].status_code == 200
    assert (
        client.get(f"/api/0/projects/{project.id}/", headers=basic_auth(hex_key)).status_code == 200
    )


def test_malformed_key_is_an_unknown_key_without_a_lookup(
    client: FlaskClient, host_keys: HostKeys, project: Project
) -> None:
    for public_key in ["x" * 129, "pk live", "pk:live", "pk/live", "pk@live", "pk'live", "clé"]:
        key = host_keys.add(public_key, project.id)
        response, _ = store(client, project.id, {}, sentry_key=public_key)
        assert (response.status_code, response.get_json()) == (401, INVALID_API_KEY)
        web = client.get(f"/api/0/projects/{project.id}/", headers=basic_auth(key))
        assert (web.status_code, web.get_json()) == (401, INVALID_API_KEY)
        assert public_key not in host_keys.looked_up


# -- a key naming a project the storage does not have --------------------------------------


@pytest.mark.parametrize("public_key", ["pk_orphan", "0f" * 16])
def test_key_of_a_missing_project_is_an_unknown_key(
    client: FlaskClient,
    host_keys: HostKeys,
    storage: Storage,
    project: Project,
    caplog: pytest.LogCaptureFixture,
    public_key: str,
) -> None:
    # Before: a 500 on the memory storage, and on SQLAlchemy a 200 for an event stored
    # under no project, which the web API could never show.
    key = host_keys.add(public_key, MISSING_PROJECT)
    unknown, _ = store(client, MISSING_PROJECT, sentry_auth("pk_never_issued"))
    with caplog.at_level(logging.WARNING, logger="flask_sentry_api"):
        response, event_id = store(client, MISSING_PROJECT, sentry_auth(key.public_key))
        with_secret, _ = store(client, MISSING_PROJECT, sentry_auth(key, secret=SECRET))
    # The same answer as a key never issued: no 500, and nothing stored.
    for answer in (response, with_secret):
        assert (answer.status_code, answer.get_json()) == (401, INVALID_API_KEY)
        assert answer.headers["X-Sentry-Error"] == unknown.headers["X-Sentry-Error"]
    assert (unknown.status_code, unknown.get_json()) == (401, INVALID_API_KEY)
    assert storage.get_event_by_event_id(MISSING_PROJECT, event_id) is None
    # The host hears of its mistake.
    assert f"key {public_key} of project {MISSING_PROJECT}" in caplog.text

    # The web API: the same 401, on the missing project and on an existing one, and for
    # a project id past any storage's range.
    huge = host_keys.add(public_key + "-huge", 2**63)
    for project_id, sent in [(MISSING_PROJECT, key), (project.id, key), (project.id, huge)]:
        web = client.get(f"/api/0/projects/{project_id}/", headers=basic_auth(sent))
        assert (web.status_code, web.get_json()) == (401, INVALID_API_KEY)


def test_key_of_another_project_is_still_refused(
    client: FlaskClient, host_keys: HostKeys, storage: Storage, project: Project
) -> None:
    other = storage.create_project("Other")
    host_keys.add("pk_other", other.id)
    response, event_id = store(client, project.id, sentry_auth("pk_other"))
    assert response.status_code == 403
    assert storage.get_event_by_event_id(project.id, event_id) is None


# -- a host lookup's bugs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (RuntimeError("key table offline"), "key table offline"),
        ({"project_id": 1}, "must return a flask_sentry_api.ProjectKey or None, got dict"),
    ],
)
def test_broken_lookup_is_a_logged_internal_error(
    caplog: pytest.LogCaptureFixture, answer: object, logged: str
) -> None:
    def lookup(public_key: str) -> t.Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    app = make_app({"PROPAGATE_EXCEPTIONS": False}, key_lookup=lookup)
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        response, _ = store(client, 1, sentry_auth("pk_live"))
        web = client.get("/api/0/projects/1/", headers=basic_auth(HostKeys().add("pk_live", 1)))
    for answer_ in (response, web):
        assert (answer_.status_code, answer_.get_json()) == (500, {"detail": "Internal Error"})
    assert caplog.text.count(logged) == 2


# -- the storage's own keys ----------------------------------------------------------------


@pytest.mark.parametrize("storage_kind", ["sqlalchemy", "memory"])
def test_storage_keys_without_a_lookup(storage_kind: str) -> None:
    app = make_app(storage=MemoryStorage() if storage_kind == "memory" else None)
    storage = get_state(app).storage
    with app.app_context():
        project = storage.create_project("Web")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    client = app.test_client()
    # Upper-case hex still names the stored key, on both paths.
    assert store(client, project.id, sentry_auth(key.public_key.upper()))[0].status_code == 200
    response, event_id = store(client, project.id, sentry_auth(key))
    assert response.status_code == 200
    assert read_event(client, key, event_id).status_code == 200
    # Another form can be no stored key: the same 401 as any unknown key.
    for public_key in ("pk_live-abc.123", key.public_key + "0"):
        response, _ = store(client, project.id, sentry_auth(public_key))
        assert (response.status_code, response.get_json()) == (401, INVALID_API_KEY)
        fake = ProjectKey(0, project.id, public_key, key.secret_key, 3, True, key.date_added)
        web = client.get(f"/api/0/projects/{project.id}/", headers=basic_auth(fake))
        assert (web.status_code, web.get_json()) == (401, INVALID_API_KEY)


def test_storage_is_not_asked_for_a_key_it_cannot_have() -> None:
    app = make_app()
    storage = get_state(app).storage
    with app.app_context():
        project = storage.create_project("Web")
    client = app.test_client()
    with app.app_context():
        sent = captured_statements(
            app, lambda: store(client, project.id, sentry_auth("pk_live-abc.123"))
        )
    assert sent == []
