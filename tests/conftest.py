"""Shared fixtures: a host app (pytest-flask's ``app``/``client``), its storage, a project
with an API key, and a live HTTP server for tests that use real HTTP clients.

Tests run on in-memory SQLite, or on the database named by ``SENTRY_API_TEST_DATABASE_URL``
(e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), with clean tables per test.
"""

from __future__ import annotations

import base64
import os
import threading
import typing as t

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.serving import make_server

from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage

DATABASE_URL = os.environ.get("SENTRY_API_TEST_DATABASE_URL", "sqlite://")


def basic_auth(key: ProjectKey, secret: str | None = None) -> dict[str, str]:
    token = f"{key.public_key}:{key.secret_key if secret is None else secret}"
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def make_app(config: t.Mapping[str, t.Any] | None = None, **extension_args: t.Any) -> Flask:
    """A host app with Flask-SQLAlchemy and the extension, tables created empty."""
    app = Flask("host")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=DATABASE_URL,
        SERVER_NAME="testserver.local",
    )
    app.config.update(config or {})
    db = SQLAlchemy(app)
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


def _close_made_apps() -> None:
    """Close the pooled connections of the apps the test made besides the ``app`` fixture's,
    so none is left to the garbage collector (a ResourceWarning on PostgreSQL)."""
    while _made_apps:
        made = _made_apps.pop()
        with made.app_context():
            made.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture(autouse=True)
def _closes_made_apps() -> t.Iterator[None]:
    yield
    _close_made_apps()


@pytest.fixture
def app() -> t.Iterator[Flask]:
    app = make_app()
    _made_apps.remove(app)
    yield app
    _close_made_apps()
    with app.app_context():
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].drop_all()
        app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def storage(app: Flask) -> Storage:
    return get_state(app).storage


@pytest.fixture
def project(storage: Storage) -> Project:
    return storage.create_project("Web")


@pytest.fixture
def key(storage: Storage, project: Project) -> ProjectKey:
    return storage.create_key(project.id, ROLE_STORE | ROLE_API)


@pytest.fixture
def auth(key: ProjectKey) -> dict[str, str]:
    """Basic-auth headers of a key with the Web API role on ``project``."""
    return basic_auth(key)


@pytest.fixture
def other_project(storage: Storage) -> Project:
    return storage.create_project("Other")


@pytest.fixture
def other_auth(storage: Storage, other_project: Project) -> dict[str, str]:
    """Basic-auth headers of a key of another project."""
    return basic_auth(storage.create_key(other_project.id, ROLE_STORE | ROLE_API))


class LiveServer:
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


@pytest.fixture
def live_server_url(app: Flask) -> t.Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``app`` (threaded), for real clients."""
    app.config["SERVER_NAME"] = None
    with LiveServer(app) as server:
        yield server.url
