"""A pytest plugin for a host app's tests: a project, a key, credentials and stored events.

Opt in from the host's root ``conftest.py`` (nothing is loaded in a project that does not)::

    pytest_plugins = ["flask_sentry_api.pytest_plugin"]

The fixtures build on pytest-flask's ``app`` fixture, which the host defines: its app with
the extension initialised and the storage's tables created, fresh for each test (the plugin
creates rows, it never deletes them). Every name starts with ``sentry_api_`` so none
shadows a fixture of the host's own:

* ``sentry_api_storage``: the app's :class:`~flask_sentry_api.Storage`.
* ``sentry_api_project``: a new project.
* ``sentry_api_key``: a key of that project with the ``store`` and ``api`` roles.
* ``sentry_api_auth``: that key's HTTP Basic headers for the web API, for
  ``client.get(url, headers=sentry_api_auth)``.
* ``sentry_api_client``: a test client sending those headers with every request (a
  request's own ``headers=`` still win).
* ``sentry_api_dsn``: that key's DSN, on the host the test client uses.
* ``sentry_api_make_event``: ``make_event(message, **fields)`` posts an event the way an SDK
  does, through the app's real ingestion endpoint, and returns it as the web API shows it.

Storage calls run inside an app context (the database storage needs one), pushed only when
the test has none for this app.
"""

from __future__ import annotations

import base64
import contextlib
import typing as t
import uuid

import pytest
from flask import Flask
from flask import current_app
from flask import has_app_context
from flask import url_for
from flask.testing import FlaskClient

from . import __version__
from .schemas import format_dsn
from .state import EXTENSION_KEY
from .state import get_state
from .storage import ROLE_API
from .storage import ROLE_STORE
from .storage import Project
from .storage import ProjectKey
from .storage import Storage

__all__ = [
    "MakeEvent",
    "sentry_api_auth",
    "sentry_api_client",
    "sentry_api_dsn",
    "sentry_api_key",
    "sentry_api_make_event",
    "sentry_api_project",
    "sentry_api_storage",
]

#: The ``sentry_client`` the plugin's events are sent as.
CLIENT_NAME = f"flask-sentry-api-pytest/{__version__}"


class MakeEvent(t.Protocol):
    """What ``sentry_api_make_event`` is: store an event, return it as the API shows it."""

    def __call__(self, message: str = ..., **fields: t.Any) -> dict[str, t.Any]: ...


def _app_context(app: Flask) -> t.ContextManager[object]:
    """An app context for ``app``: the test's own when it has one (pytest-flask pushes a
    request context), else a new one.

    A second context would give Flask-SQLAlchemy a second session, which on in-memory
    SQLite shares the test's one connection and rolls it back when it is removed.
    """
    # _get_current_object() is the proxy's documented way to the app (typed as the app).
    if has_app_context() and t.cast(t.Any, current_app)._get_current_object() is app:
        return contextlib.nullcontext()
    return app.app_context()


def _url(app: Flask, endpoint: str, **values: t.Any) -> str:
    """The path of ``endpoint`` in ``app``, wherever the host mounted the blueprints."""
    with app.test_request_context():
        return url_for(endpoint, **values)


@pytest.fixture
def sentry_api_storage(app: Flask) -> Storage:
    """The storage of the host's ``app``, whatever storage the host configured."""
    if EXTENSION_KEY not in app.extensions:
        pytest.fail(
            "flask_sentry_api.pytest_plugin: the `app` fixture's app does not have the"
            " extension initialised; call SentryAPI(app) (or sentry_api.init_app(app), or"
            " app.register_blueprint(flask_sentry_api.blueprint)) in the app the `app`"
            " fixture returns.",
            pytrace=False,
        )
    return get_state(app).storage


@pytest.fixture
def sentry_api_project(app: Flask, sentry_api_storage: Storage) -> Project:
    """A new project named "Tests" (slug ``tests``, or ``tests-2``... if taken)."""
    with _app_context(app):
        return sentry_api_storage.create_project("Tests")


@pytest.fixture
def sentry_api_key(
    app: Flask, sentry_api_storage: Storage, sentry_api_project: Project
) -> ProjectKey:
    """A key of ``sentry_api_project`` with the ``store`` (SDK) and ``api`` (web API) roles."""
    with _app_context(app):
        return sentry_api_storage.create_key(
            sentry_api_project.id, ROLE_STORE | ROLE_API, label="pytest"
        )


@pytest.fixture
def sentry_api_auth(sentry_api_key: ProjectKey) -> dict[str, str]:
    """HTTP Basic headers of ``sentry_api_key`` for the web API (``/api/0/``)."""
    token = f"{sentry_api_key.public_key}:{sentry_api_key.secret_key}"
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


@pytest.fixture
def sentry_api_client(app: Flask, sentry_api_auth: dict[str, str]) -> FlaskClient:
    """A test client of ``app`` (its ``test_client_class``) sending ``sentry_api_auth`` with
    every request. pytest-flask's ``client`` stays unauthenticated."""
    client = app.test_client()
    # The builder copies environ_base first and the request's headers over it, so a test can
    # still send other credentials with headers={"Authorization": ...}.
    client.environ_base["HTTP_AUTHORIZATION"] = sentry_api_auth["Authorization"]
    return client


@pytest.fixture
def sentry_api_dsn(app: Flask, sentry_api_key: ProjectKey) -> str:
    """The DSN of ``sentry_api_key``: ``http://<public key>@localhost/<project id>`` (the
    host is ``SERVER_NAME`` when set, the path follows ``SENTRY_API_INGEST_URL_PREFIX``)."""
    project_id = sentry_api_key.project_id
    with app.test_request_context():
        store = url_for("sentry_api_ingest.store", project_id=project_id, _external=True)
    # An SDK posts to <DSN's path>/api/<project id>/store/: a DSN reaches only a prefix
    # that ends in /api.
    tail = f"/api/{project_id}/store/"
    if not store.endswith(tail):
        pytest.fail(
            f"sentry_api_dsn: SDKs cannot reach ingestion at {store} (a DSN addresses"
            " <path>/api/<project id>/store/); make SENTRY_API_INGEST_URL_PREFIX end in /api.",
            pytrace=False,
        )
    return format_dsn(store[: -len(tail)], sentry_api_key.public_key, project_id)


@pytest.fixture
def sentry_api_make_event(
    app: Flask, sentry_api_key: ProjectKey, sentry_api_auth: dict[str, str]
) -> MakeEvent:
    """``make_event(message="Something broke", **fields)``: post an event for
    ``sentry_api_project`` to the app's store endpoint, as an SDK does, and return it as
    ``GET /api/0/events/<event id>/`` shows it (``groupID`` names its issue).

    ``fields`` are the SDK event's own fields (``level``, ``tags``, ``release``,
    ``environment``, ``exception``, ``fingerprint``, ``timestamp``, ``event_id``, ...); events
    with the same message and no exception share an issue. A refused event fails the test
    with the response, whatever refused it (a rate limit, a host ``before_request``...).
    """
    ingest = {
        "X-Sentry-Auth": (
            f"Sentry sentry_key={sentry_api_key.public_key}, sentry_version=7,"
            f" sentry_client={CLIENT_NAME}"
        )
    }

    def make_event(message: str = "Something broke", **fields: t.Any) -> dict[str, t.Any]:
        payload = {"event_id": uuid.uuid4().hex, "platform": "python", "message": message}
        payload.update(fields)
        client = app.test_client()
        store = _url(app, "sentry_api_ingest.store", project_id=sentry_api_key.project_id)
        sent = client.post(store, json=payload, headers=ingest)
        if sent.status_code != 200:
            pytest.fail(
                f"sentry_api_make_event: POST {store} answered {sent.status}:"
                f" {sent.get_data(as_text=True)[:500]}",
                pytrace=False,
            )
        event_id = t.cast(dict[str, t.Any], sent.get_json())["id"]
        details = _url(app, "sentry_api.sdk_event_details", event_id=event_id)
        shown = client.get(details, headers=sentry_api_auth)
        if shown.status_code != 200:
            pytest.fail(
                f"sentry_api_make_event: GET {details} answered {shown.status}:"
                f" {shown.get_data(as_text=True)[:500]}",
                pytrace=False,
            )
        return t.cast(dict[str, t.Any], shown.get_json())

    return make_event
