"""The JSON error shape (SPEC §2): every response under the prefix is JSON, errors too."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

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
    response = dead.test_client().get("/api/0/projects/1/", headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 503
    assert response.get_json() == {"detail": "Storage is unavailable, try again later."}
    assert response.headers["Retry-After"] == "5"
