"""The package inside a host app that has its own ways: Flask-WTF's CSRFProtect (initialised
before or after the package), catch-all error handlers, and the package's version.

The API and ingestion authenticate with keys and tokens, never cookies, so CSRF protection
leaves them alone while the host's own forms keep needing their token; and whatever error
handlers the host registers, errors under the API stay JSON while the host's own pages keep
the host's handlers.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask import got_request_exception
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException

import flask_sentry_api
from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from tests.helpers import DATABASE_URL
from tests.helpers import basic_auth
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import event_payload
from tests.helpers import sentry_auth

ROOT = Path(__file__).resolve().parent.parent
HOST_PAGE = re.compile(r"<h1>host error (\d+)</h1>")


class Host(t.NamedTuple):
    app: Flask
    project: Project
    key: ProjectKey


class HostCSRF(CSRFProtect):
    """A host's own subclass of Flask-WTF's extension."""


def build_host(
    *,
    csrf: str | None = None,
    csrf_class: type[CSRFProtect] = CSRFProtect,
    registration: str = "extension",
    handlers: str | None = None,
) -> Flask:
    """A host app with its own models' database, a form route and an erroring route.

    ``csrf``: ``"before"`` or ``"after"`` the package, when the host has CSRFProtect.
    ``csrf_class``: CSRFProtect or a subclass.
    ``registration``: ``"extension"`` (SentryAPI) or ``"blueprint"`` (register_blueprint).
    ``handlers``: the host's catch-all error handlers (see :func:`add_host_handlers`).
    """
    app = Flask("host")
    app.config.update(
        TESTING=True,
        SECRET_KEY="the host's session secret",
        SQLALCHEMY_DATABASE_URI=DATABASE_URL,
        SERVER_NAME="testserver.local",
    )
    db = SQLAlchemy(app)
    protect = csrf_class()
    if csrf == "before":
        protect.init_app(app)
    if registration == "extension":
        SentryAPI(app)
    else:
        app.register_blueprint(flask_sentry_api.blueprint)
    if csrf == "after":
        protect.init_app(app)
    if handlers is not None:
        add_host_handlers(app, handlers)

    @app.get("/host/token")
    def token() -> str:
        return generate_csrf()

    @app.post("/host/form")
    def form() -> str:
        return "saved"

    @app.get("/host/boom")
    def boom() -> str:
        raise RuntimeError("the host's own bug")

    with app.app_context():
        db.drop_all()
        get_state(app).storage.init_schema()
    return app


def add_host_handlers(app: Flask, kind: str) -> None:
    """The host's HTML error page, for every ``Exception``, every ``HTTPException``, or
    each status code."""

    def page(error: Exception) -> tuple[str, int, dict[str, str]]:
        code = error.code if isinstance(error, HTTPException) and error.code else 500
        return f"<h1>host error {code}</h1>", code, {"Content-Type": "text/html"}

    if kind == "Exception":
        app.register_error_handler(Exception, page)
    elif kind == "HTTPException":
        app.register_error_handler(HTTPException, page)
    else:
        for code in (400, 401, 403, 404, 405, 413, 429, 500):
            app.register_error_handler(code, page)


@pytest.fixture
def make_host() -> t.Iterator[t.Callable[..., Host]]:
    made: list[Flask] = []

    def make(**options: t.Any) -> Host:
        app = build_host(**options)
        made.append(app)
        with app.app_context():
            storage = get_state(app).storage
            project = storage.create_project("Web")
            key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
        return Host(app, project, key)

    yield make
    for app in made:
        with app.app_context():
            app.extensions["sqlalchemy"].session.remove()
            app.extensions["sqlalchemy"].drop_all()
            app.extensions["sqlalchemy"].engine.dispose()


def post_envelope(host: Host) -> t.Any:
    body = envelope(event_item(event_payload("from an SDK")))
    return host.app.test_client().post(
        f"/api/{host.project.id}/envelope/",
        data=body,
        headers={**sentry_auth(host.key), "Content-Type": "application/x-sentry-envelope"},
    )


# -- CSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("csrf", "registration", "csrf_class"),
    [
        ("before", "extension", CSRFProtect),
        ("after", "extension", CSRFProtect),
        ("before", "blueprint", CSRFProtect),
        ("after", "blueprint", CSRFProtect),
        ("after", "extension", HostCSRF),
    ],
)
def test_api_writes_and_sdk_events_pass_a_hosts_csrf_protection(
    make_host: t.Callable[..., Host],
    csrf: str,
    registration: str,
    csrf_class: type[CSRFProtect],
) -> None:
    host = make_host(csrf=csrf, registration=registration, csrf_class=csrf_class)
    client = host.app.test_client()
    auth = basic_auth(host.key)
    pid = host.project.id

    # The host's protection is on: its own form is refused without the token...
    refused = client.post("/host/form", data={"name": "x"})
    assert refused.status_code == 400
    assert b"CSRF token is missing" in refused.data

    renamed = client.put(f"/api/0/projects/{pid}/", headers=auth, json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.data
    assert renamed.get_json()["name"] == "Renamed"
    release = client.post(f"/api/0/projects/{pid}/releases/", headers=auth, json={"version": "1.0"})
    assert release.status_code == 201, release.data
    deleted = client.delete(f"/api/0/projects/{pid}/releases/1.0/", headers=auth)
    assert deleted.status_code == 204, deleted.data

    sent = post_envelope(host)
    assert sent.status_code == 200, sent.data
    listed = client.get(f"/api/0/projects/{pid}/groups/", headers=auth)
    assert [group["title"] for group in listed.get_json()] == ["from an SDK"]

    # ... and accepted with it, after the API requests.
    token = client.get("/host/token").get_data(as_text=True)
    accepted = client.post("/host/form", data={"name": "x", "csrf_token": token})
    assert accepted.status_code == 200
    assert accepted.data == b"saved"


def test_csrf_exemption_does_not_skip_authentication(make_host: t.Callable[..., Host]) -> None:
    host = make_host(csrf="after")
    client = host.app.test_client()
    response = client.put(f"/api/0/projects/{host.project.id}/", json={"name": "Renamed"})
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}
    ingest = host.app.test_client().post(
        f"/api/{host.project.id}/envelope/",
        data=envelope(event_item(event_payload())),
        headers=sentry_auth("0" * 32),
    )
    assert ingest.status_code == 401
    assert ingest.get_json() == {"detail": "Invalid api key"}


def test_another_extension_under_the_csrf_key_is_left_alone(
    make_host: t.Callable[..., Host],
) -> None:
    class OtherCSRF:
        """Not Flask-WTF: its ``exempt`` takes view functions only."""

        def exempt(self, view: t.Any) -> t.Any:
            raise AssertionError(f"exempt called with {view!r}")

    host = make_host()
    host.app.extensions["csrf"] = OtherCSRF()
    response = host.app.test_client().put(
        f"/api/0/projects/{host.project.id}/", headers=basic_auth(host.key), json={"name": "X"}
    )
    assert response.status_code == 200, response.data


# -- error handlers --------------------------------------------------------------------------

HANDLER_KINDS = ["Exception", "HTTPException", "codes"]


@pytest.mark.parametrize("kind", HANDLER_KINDS)
def test_api_errors_stay_json_under_host_catch_all_handlers(
    make_host: t.Callable[..., Host], kind: str
) -> None:
    host = make_host(handlers=kind)
    host.app.config["PROPAGATE_EXCEPTIONS"] = False
    client = host.app.test_client()
    auth = basic_auth(host.key)
    pid = host.project.id
    json_headers = {**auth, "Content-Type": "application/json"}
    cases: dict[str, tuple[t.Any, int, dict[str, str]]] = {
        "malformed JSON": (
            client.post(f"/api/0/projects/{pid}/releases/", headers=json_headers, data="{"),
            400,
            {},
        ),
        "no credentials": (client.get(f"/api/0/projects/{pid}/"), 401, {}),
        "unknown path": (
            client.get("/api/0/no/such/path/", headers=auth),
            404,
            {"detail": "Not found"},
        ),
        "unknown project": (
            client.get("/api/0/projects/987654/", headers=auth),
            404,
            {"detail": "Not found"},
        ),
        "method": (
            client.patch(f"/api/0/projects/{pid}/", headers=auth, json={}),
            405,
            {"detail": 'Method "PATCH" not allowed.'},
        ),
        "ingest bad key": (
            client.post(
                f"/api/{pid}/envelope/",
                data=envelope(event_item(event_payload())),
                headers=sentry_auth("0" * 32),
            ),
            401,
            {"detail": "Invalid api key"},
        ),
        "ingest method": (client.get(f"/api/{pid}/store/", headers=sentry_auth(host.key)), 405, {}),
    }
    host.app.config["MAX_CONTENT_LENGTH"] = 64  # Werkzeug's own 413, an HTTPException
    cases["host's MAX_CONTENT_LENGTH"] = (
        client.post(f"/api/0/projects/{pid}/releases/", headers=auth, json={"version": "x" * 100}),
        413,
        {},
    )
    for name, (response, status, body) in cases.items():
        assert response.status_code == status, (name, response.data)
        assert response.mimetype == "application/json", (name, response.data)
        assert "detail" in response.get_json(), name
        if body:
            assert response.get_json() == body, name


@pytest.mark.parametrize("kind", HANDLER_KINDS)
@pytest.mark.parametrize("where", ["web API", "ingestion"])
def test_a_bug_under_the_api_is_a_logged_json_500_under_host_handlers(
    make_host: t.Callable[..., Host],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    where: str,
) -> None:
    host = make_host(handlers=kind)
    host.app.config["PROPAGATE_EXCEPTIONS"] = False
    storage = get_state(host.app).storage

    def broken(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise ZeroDivisionError("a bug in the storage")

    monkeypatch.setattr(storage, "get_project", broken)
    monkeypatch.setattr(storage, "save_event", broken)
    reported: list[BaseException] = []

    def report(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        reported.append(exception)

    got_request_exception.connect(report, host.app)
    try:
        with caplog.at_level(logging.ERROR):
            if where == "web API":
                response = host.app.test_client().get(
                    f"/api/0/projects/{host.project.id}/", headers=basic_auth(host.key)
                )
            else:
                response = post_envelope(host)
    finally:
        got_request_exception.disconnect(report, host.app)
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json() == {"detail": "Internal Error"}
    assert b"ZeroDivisionError" not in response.data
    # Logged with its traceback as Flask logs an unhandled exception, and reported to
    # got_request_exception listeners (error reporters such as sentry-sdk).
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ZeroDivisionError]
    assert len(logged) == 1
    assert logged[0].name == host.app.logger.name
    assert [type(error) for error in reported] == [ZeroDivisionError]


def test_a_bug_still_propagates_when_the_app_propagates_exceptions(
    make_host: t.Callable[..., Host], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = make_host(handlers="Exception")  # TESTING: Flask re-raises bugs to the test client
    storage = get_state(host.app).storage

    def broken(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise ZeroDivisionError("a bug in the storage")

    monkeypatch.setattr(storage, "get_project", broken)
    with pytest.raises(ZeroDivisionError):
        host.app.test_client().get(
            f"/api/0/projects/{host.project.id}/", headers=basic_auth(host.key)
        )


@pytest.mark.parametrize("kind", HANDLER_KINDS)
def test_host_routes_keep_the_hosts_handlers(make_host: t.Callable[..., Host], kind: str) -> None:
    host = make_host(handlers=kind)
    host.app.config["PROPAGATE_EXCEPTIONS"] = False
    client = host.app.test_client()
    for path, status in (("/host/missing", 404), ("/host/boom", 500)):
        response = client.get(path)
        assert response.status_code == status, path
        assert response.mimetype == "text/html", path
        match = HOST_PAGE.search(response.get_data(as_text=True))
        assert match is not None and int(match.group(1)) == status, path


# -- version ---------------------------------------------------------------------------------


def test_version_is_the_installed_distributions() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", flask_sentry_api.__version__)
    assert flask_sentry_api.__version__ == importlib.metadata.version("flask-sentry-api")


def test_setup_py_reads_the_version_from_the_package() -> None:
    result = subprocess.run(
        [sys.executable, "setup.py", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == flask_sentry_api.__version__
