"""Shared fixtures: a host app (pytest-flask's ``app``/``client``), its storage, a project
with an API key, and a live HTTP server for tests that use real HTTP clients.

Tests run on in-memory SQLite, or on the database named by ``SENTRY_API_TEST_DATABASE_URL``
(e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), with clean tables per test;
load tests run only when ``SENTRY_API_TEST_LOAD`` is set.
Test modules import their helpers from ``tests.helpers``, not from here.
"""

from __future__ import annotations

import os
import typing as t

import pytest
from flask import Flask

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from tests.helpers import LiveServer
from tests.helpers import basic_auth
from tests.helpers import close_made_apps
from tests.helpers import forget_made_app
from tests.helpers import make_app

#: Load tests (``@pytest.mark.load``: several gunicorn workers, floods of concurrent
#: requests) take minutes on a laptop: they run when this variable is set (``.ci/run`` sets it).
LOAD_TESTS_ENV = "SENTRY_API_TEST_LOAD"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(LOAD_TESTS_ENV):
        return
    skip_load = pytest.mark.skip(
        reason=f"load test (several server processes): set {LOAD_TESTS_ENV}=1 to run it"
    )
    for item in items:
        if item.get_closest_marker("load"):
            item.add_marker(skip_load)


@pytest.fixture(autouse=True)
def _closes_made_apps() -> t.Iterator[None]:
    yield
    close_made_apps()


@pytest.fixture
def app() -> t.Iterator[Flask]:
    app = make_app()
    forget_made_app(app)
    yield app
    close_made_apps()
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


@pytest.fixture
def live_server_url(app: Flask) -> t.Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``app`` (threaded), for real clients."""
    app.config["SERVER_NAME"] = None
    with LiveServer(app) as server:
        yield server.url
