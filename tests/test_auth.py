"""Project-key Basic auth (SPEC §3): 401 vs 403, roles, disabled keys, scoping."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import SCOPES
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from tests.helpers import INVALID_API_KEY
from tests.helpers import NOT_PROVIDED
from tests.helpers import basic_auth


def project_url(project: Project) -> str:
    return f"/api/0/projects/{project.id}/"


def assert_not_authenticated(
    response: object, scheme: str = "Basic", body: dict[str, str] = INVALID_API_KEY
) -> None:
    """A 401 challenging in ``scheme``; ``body`` is SPEC §2's text for bad credentials
    unless told otherwise."""
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.get_json() == body  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"] == f'{scheme} realm="api"'  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "application/json"  # type: ignore[attr-defined]


def test_valid_key_reads_its_project(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    response = client.get(project_url(project), headers=auth)
    assert response.status_code == 200
    assert response.get_json()["id"] == str(project.id)


def test_no_credentials(client: FlaskClient, project: Project) -> None:
    assert_not_authenticated(client.get(project_url(project)), body=NOT_PROVIDED)
    # An empty header is no credential either.
    response = client.get(project_url(project), headers={"Authorization": ""})
    assert_not_authenticated(response, body=NOT_PROVIDED)


def test_unknown_key_and_wrong_secret_are_indistinguishable(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    unknown = client.get(
        project_url(project),
        headers=basic_auth(
            ProjectKey(0, project.id, "f" * 32, key.secret_key, 3, True, key.date_added)
        ),
    )
    wrong_secret = client.get(project_url(project), headers=basic_auth(key, secret="0" * 32))
    assert_not_authenticated(unknown)
    assert_not_authenticated(wrong_secret)
    assert unknown.data == wrong_secret.data
    assert dict(unknown.headers) == dict(wrong_secret.headers)


def test_public_key_form(client: FlaskClient, project: Project, key: ProjectKey) -> None:
    """The storage's keys are 32 hex digits, matched case-blind (as ingestion does); any
    other username is an unknown key, the same 401 whatever its form."""
    upper = dataclasses.replace(key, public_key=key.public_key.upper())
    assert client.get(project_url(project), headers=basic_auth(upper)).status_code == 200
    unknown = client.get(project_url(project), headers=basic_auth(key, secret="0" * 32))
    for public_key in ("pk_live-abc.123", key.public_key + "0", "x" * 129, "clé"):
        other = dataclasses.replace(key, public_key=public_key)
        response = client.get(project_url(project), headers=basic_auth(other))
        assert_not_authenticated(response)
        assert response.data == unknown.data


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic ",
        "Bearer abc",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b":").decode(),
        "Digest username=x",
        "Sentry sentry_key=abc",
        "Bearer",
    ],
)
def test_malformed_authorization_headers_are_401(
    client: FlaskClient, project: Project, header: str
) -> None:
    response = client.get(project_url(project), headers={"Authorization": header})
    # The challenge names the scheme the request tried.
    assert_not_authenticated(response, "Bearer" if header.startswith("Bearer ") else "Basic")


def test_disabled_key(
    client: FlaskClient, project: Project, key: ProjectKey, storage: Storage
) -> None:
    storage.set_key_active(key.public_key, False)
    response = client.get(project_url(project), headers=basic_auth(key))
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Key is disabled"}
    assert response.headers["WWW-Authenticate"] == 'Basic realm="api"'


def test_key_without_web_api_role(client: FlaskClient, project: Project, storage: Storage) -> None:
    store_only = storage.create_key(project.id, ROLE_STORE)
    response = client.get(project_url(project), headers=basic_auth(store_only))
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Key does not allow API access"}
    assert "WWW-Authenticate" not in response.headers  # a challenge would not help


def test_other_projects_resource_is_403(
    client: FlaskClient, other_project: Project, auth: dict[str, str], storage: Storage
) -> None:
    response = client.put(project_url(other_project), headers=auth, json={"name": "Mine now"})
    assert response.status_code == 403
    assert response.get_json() == {"detail": "You do not have permission to perform this action."}
    assert storage.get_project(other_project.id).name == "Other"


def test_nonexistent_project_is_404_and_another_project_403(
    client: FlaskClient, auth: dict[str, str], other_project: Project
) -> None:
    """SPEC §3: another project's existing resource is a 403, a nonexistent object a 404,
    for a valid key (without one, both are the same 401)."""
    for path in ("/api/0/projects/999999/", "/api/0/projects/999999/groups/"):
        response = client.get(path, headers=auth)
        assert (response.status_code, response.get_json()) == (404, {"detail": "Not found"})
        anonymous = client.get(path)
        assert (anonymous.status_code, anonymous.get_json()) == (401, NOT_PROVIDED)
    other = client.get(project_url(other_project), headers=auth)
    assert other.status_code == 403
    assert client.get(project_url(other_project)).get_json() == NOT_PROVIDED


def test_index_and_options_need_no_credentials(client: FlaskClient, project: Project) -> None:
    assert client.get("/api/0/").status_code == 200
    response = client.options(project_url(project))
    assert response.status_code == 200
    assert response.get_json()["methods"] == ["GET", "PUT", "HEAD", "OPTIONS"]


def test_index_reports_what_valid_credentials_allow(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    body = client.get("/api/0/", headers=basic_auth(key)).get_json()
    assert body == {
        "version": "0",
        "auth": {"project": str(project.id), "roles": ["store", "api"], "scopes": list(SCOPES)},
    }
    # Credentials that are sent must be valid, as on every endpoint.
    assert_not_authenticated(client.get("/api/0/", headers=basic_auth(key, secret="x")))


def test_realm_is_configurable(project: Project) -> None:
    from tests.helpers import make_app

    app = make_app({"SENTRY_API_AUTH_REALM": "errors"})
    response = app.test_client().get("/api/0/projects/1/")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="errors"'


def test_secret_is_never_echoed(client: FlaskClient, project: Project, key: ProjectKey) -> None:
    for response in (
        client.get(project_url(project), headers=basic_auth(key)),
        client.get(project_url(project), headers=basic_auth(key, secret="wrong")),
        client.get("/api/0/", headers=basic_auth(key)),
    ):
        assert key.secret_key.encode() not in response.data


def test_api_role_alone_is_enough(client: FlaskClient, project: Project, storage: Storage) -> None:
    api_only = storage.create_key(project.id, ROLE_API)
    assert client.get(project_url(project), headers=basic_auth(api_only)).status_code == 200
