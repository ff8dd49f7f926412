"""The JSON error shape (SPEC §2): every response under the prefix is JSON, errors too."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from werkzeug.routing import IntegerConverter

from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Unavailable
from tests.helpers import basic_auth
from tests.helpers import make_app


def url(project: Project) -> str:
    return f"/api/0/projects/{project.id}/"


def test_malformed_json_is_400(client: FlaskClient, project: Project, auth: dict[str, str]) -> None:
    response = client.put(url(project), headers=auth, data="{bad", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("JSON parse error - ")


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe{}",
        b'{"name": NaN}',
        b"[" * 100000,
    ],
)
def test_unusable_json_is_400(
    client: FlaskClient, project: Project, auth: dict[str, str], body: bytes
) -> None:
    response = client.put(url(project), headers=auth, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("JSON parse error - ")


def test_non_json_content_type_is_415(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    response = client.put(
        url(project), headers=auth, data="name=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.get_json() == {
        "detail": "Unsupported media type 'application/x-www-form-urlencoded' in request."
    }


def test_empty_body_is_an_empty_object(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    response = client.put(url(project), headers=auth)
    assert response.status_code == 200
    assert response.get_json()["name"] == "Web"


def test_unknown_path_under_the_prefix_is_json_404(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for path in ("/api/0/nope/", "/api/0/projects/abc/", "/api/0/projects/1/unknown/"):
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert response.get_json() == {"detail": "Not found"}
        assert response.headers["Content-Type"] == "application/json"


def test_missing_trailing_slash_is_served_the_same(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    with_slash = client.get(url(project), headers=auth)
    without = client.get(url(project).rstrip("/"), headers=auth)
    assert without.status_code == 200
    assert without.get_json() == with_slash.get_json()


@pytest.mark.parametrize("method", ["PATCH", "POST", "DELETE"])
def test_method_not_allowed_is_405_with_allow(
    client: FlaskClient, project: Project, auth: dict[str, str], method: str
) -> None:
    response = client.open(url(project), method=method, headers=auth)
    assert response.status_code == 405
    assert response.get_json() == {"detail": f'Method "{method}" not allowed.'}
    assert response.headers["Allow"] == "GET, PUT, HEAD, OPTIONS"


#: Methods no endpoint has: WebDAV's, TRACE and CONNECT, and names no RFC defines.
UNKNOWN_METHODS = ["TRACE", "CONNECT", "PROPFIND", "MKCOL", "LINK", "FOO", "X-CUSTOM_1"]
#: A value for every path parameter of the package's rules (what they name need not exist:
#: a 405 comes before credentials and lookups).
PATH_VALUES = {
    "organization_slug": "sentry",
    "project_id": 1,
    "project_id_or_slug": "web",
    "group_id": 1,
    "issue_id": "WEB-1",
    "event_id": "f" * 32,
    "key": "browser",
    "version": "1.0",
    "asset": "swagger-ui.css",
}


def package_endpoints(app: Flask) -> list[tuple[str, t.Any]]:
    """A path of every endpoint of both blueprints (web API and ingestion) with its view
    class, except the web API's 404 for paths that are no endpoint."""
    adapter = app.url_map.bind("testserver.local")
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("sentry_api.", "sentry_api_ingest.")):
            continue
        if rule.endpoint == "sentry_api.not_found":
            continue
        values = {name: PATH_VALUES[name] for name in rule.arguments}
        if isinstance(rule._converters.get("event_id"), IntegerConverter):
            values["event_id"] = 1
        found.append(
            (adapter.build(rule.endpoint, values), app.view_functions[rule.endpoint].view_class)
        )
    return found


def test_every_method_an_endpoint_lacks_is_a_json_405(app: Flask, client: FlaskClient) -> None:
    """Every endpoint of the package, web API and ingestion, answers any method it lacks
    (unknown names included, which Werkzeug's routing would answer in HTML with every
    rule's methods in ``Allow``) with the JSON 405 and its own ``Allow``, with or without
    credentials."""
    endpoints = package_endpoints(app)
    assert len(endpoints) >= 40 and any("/store/" in path for path, _ in endpoints)
    problems = []
    for path, view_class in endpoints:
        standard = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        allowed = view_class.allow_header()
        lacking = [m for m in standard if m not in allowed.split(", ")] + UNKNOWN_METHODS
        for method in lacking:
            response = client.open(path, method=method)
            label = f"{method} {path}: {response.status_code}"
            # A HEAD answer has no body.
            body = None if method == "HEAD" else {"detail": f'Method "{method}" not allowed.'}
            if (response.status_code, response.get_json(silent=True)) != (405, body):
                problems.append(f"{label} {response.data[:100]!r}")
            elif response.headers.get("Allow") != allowed:
                problems.append(f"{label}: Allow {response.headers.get('Allow')!r} != {allowed!r}")
            elif response.headers["Content-Type"] != "application/json":
                problems.append(f"{label}: {response.headers['Content-Type']}")
    assert not problems, "\n".join(problems)


def test_unknown_methods_get_the_json_405_over_real_http(live_server_url: str) -> None:
    """Through a real HTTP server (request line parsed by the server, not the test
    client)."""
    host, port = live_server_url.removeprefix("http://").split(":")
    for path, allow in [
        ("/api/0/projects/1/", "GET, PUT, HEAD, OPTIONS"),
        ("/api/1/envelope/", "POST, OPTIONS"),
    ]:
        for method in ("TRACE", "PROPFIND", "FOO"):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                connection.request(method, path)
                response = connection.getresponse()
                body = json.loads(response.read())
            finally:
                connection.close()
            assert response.status == 405, (method, path)
            assert body == {"detail": f'Method "{method}" not allowed.'}
            assert response.getheader("Allow") == allow


def test_a_path_that_is_no_endpoint_is_a_404_whatever_the_method(client: FlaskClient) -> None:
    for method in ("GET", "TRACE", "FOO", "OPTIONS"):
        response = client.open("/api/0/no/such/endpoint/", method=method)
        assert (response.status_code, response.get_json()) == (404, {"detail": "Not found"})
        assert "Allow" not in response.headers


def test_every_response_has_allow_and_content_language(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    for response in (
        client.get("/api/0/"),
        client.get(url(project), headers=auth),
        client.get(url(project)),
        client.put(url(project), headers=auth, json={"bogus": 1}),
    ):
        assert response.headers["Content-Language"] == "en"
        assert response.headers["Content-Type"] == "application/json"
    assert client.get(url(project)).headers["Allow"] == "GET, PUT, HEAD, OPTIONS"
    assert client.get("/api/0/").headers["Allow"] == "GET, HEAD, OPTIONS"


def test_head_is_get_without_body(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    response = client.head(url(project), headers=auth)
    assert response.status_code == 200
    assert response.data == b""
    assert int(response.headers["Content-Length"]) == len(
        client.get(url(project), headers=auth).data
    )


def test_options_describes_the_endpoint(client: FlaskClient, project: Project) -> None:
    body = client.options(url(project)).get_json()
    assert body["name"] == "Project Details"
    assert body["methods"] == ["GET", "PUT", "HEAD", "OPTIONS"]
    assert body["renders"] == ["application/json"]
    assert body["parses"] == ["application/json"]
    assert "PUT" in body["description"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/0/issues/not-an-issue/",  # no short id (slug-number)
        "/api/0/issues/null,null/events/",
        f"/api/0/issues/{'9' * 20}/notes/",  # past every id
        f"/api/0/projects/sentry/{'s' * 200}/",  # a slug longer than any
        "/api/0/projects/1/tags/bad key!/values/",  # no tag key
        "/api/0/projects/sentry/web/events/not-hex/",
        "/api/0/issues/1/events/12345/",
    ],
)
def test_options_on_a_malformed_path_is_404(client: FlaskClient, path: str) -> None:
    """OPTIONS needs no credentials but checks the path's values as the OpenAPI document
    describes them: what no object could be named by is a 404, as on every other verb."""
    response = client.options(path)
    assert (response.status_code, response.get_json()) == (404, {"detail": "Not found"})


@pytest.mark.parametrize(
    "path",
    [
        "/api/0/issues/WEB-12/events/latest/",
        "/api/0/issues/12/",
        "/api/0/projects/sentry/no-such-project/events/" + "f" * 32 + "/",
        "/api/0/projects/1/tags/sentry:user/values/",
        "/api/0/events/" + "a" * 32 + "/",
        "/api/0/events/12/",
    ],
)
def test_options_on_a_well_formed_path_describes_it(client: FlaskClient, path: str) -> None:
    # Whether the objects exist is not checked: that would need credentials.
    response = client.options(path)
    assert response.status_code == 200, response.data
    assert "methods" in response.get_json()


def test_body_over_the_limit_is_413(project: Project) -> None:
    app = make_app({"SENTRY_API_MAX_BODY_SIZE": 100})
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        key = storage.create_key(project.id, 3)
    response = app.test_client().put(
        f"/api/0/projects/{project.id}/", headers=basic_auth(key), json={"name": "x" * 200}
    )
    assert response.status_code == 413
    assert "detail" in response.get_json()
    with app.app_context():
        assert get_state(app).storage.get_project(project.id).name == "Web"


def test_unexpected_exception_is_logged_and_answers_internal_error(
    app: Flask,
    project: Project,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    storage = get_state(app).storage

    def broken(project_id: int) -> Project:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(storage, "get_project", broken)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get(url(project), headers=auth)
    assert response.status_code == 500
    assert response.get_json() == {"detail": "Internal Error"}
    assert b"ZeroDivisionError" not in response.data
    assert any("ZeroDivisionError" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_storage_unavailable_is_503(
    app: Flask, project: Project, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = get_state(app).storage

    def down(project_id: int) -> Project:
        raise Unavailable("database unavailable: connection refused")

    monkeypatch.setattr(storage, "get_project", down)
    response = app.test_client().get(url(project), headers=auth)
    assert response.status_code == 503
    assert "detail" in response.get_json()
    assert "connection refused" not in response.get_json()["detail"]


def test_real_database_outage_is_503() -> None:
    # A real engine pointed at a port where nothing listens: the driver's connection error
    # must become a JSON 503, not a traceback.
    dead = Flask("dead")
    dead.config.update(
        TESTING=True, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/test"
    )
    SQLAlchemy(dead)
    SentryAPI(dead)
    # A public key of the storage's form (32 hex), so the storage is asked for it.
    credentials = {"Authorization": "Basic " + base64.b64encode(b"a" * 32 + b":b").decode()}
    response = dead.test_client().get("/api/0/projects/1/", headers=credentials)
    assert response.status_code == 503
    assert response.get_json() == {"detail": "Storage is unavailable, try again later."}
    assert response.headers["Retry-After"] == "5"
