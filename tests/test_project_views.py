"""``/api/0/`` and ``/api/0/projects/<id>/`` (SPEC §4 and §6)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def test_index_matches_the_docs_page(client: FlaskClient) -> None:
    response = client.get("/api/0/")
    assert response.status_code == 200
    assert response.get_json() == {"version": "0"}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Language"] == "en"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_get_project(client: FlaskClient, project: Project, auth: dict[str, str]) -> None:
    body = client.get(f"/api/0/projects/{project.id}/", headers=auth).get_json()
    assert body["id"] == str(project.id)
    assert body["slug"] == "web"
    assert body["name"] == "Web"
    assert body["isPublic"] is False
    assert body["status"] == "active"
    assert ISO_Z.match(body["dateCreated"])
    assert body["options"] == {"sentry:origins": "*", "sentry:resolve_age": 0}


def test_put_partial_update(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    url = f"/api/0/projects/{project.id}/"
    body = client.put(url, headers=auth, json={"name": "Web frontend"}).get_json()
    assert body["name"] == "Web frontend"
    assert body["slug"] == "web"
    body = client.put(url, headers=auth, json={"slug": "front_end-2", "isPublic": True}).get_json()
    assert (body["name"], body["slug"], body["isPublic"]) == ("Web frontend", "front_end-2", True)
    stored = storage.get_project(project.id)
    assert (stored.name, stored.slug, stored.is_public) == ("Web frontend", "front_end-2", True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 12}, "name"),
        ({"slug": "Upper"}, "slug"),
        ({"slug": "has space"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"slug": "a" * 51}, "slug"),
        ({"isPublic": "maybe"}, "isPublic"),
        ({"isPublic": None}, "isPublic"),
        ({"owner": "me"}, "owner"),
        ({"name": "Fine", "platform": "python"}, "platform"),
        ({"name": "Fine", "slug": "NOT OK"}, "slug"),
    ],
)
def test_invalid_put_is_a_field_error_and_changes_nothing(
    client: FlaskClient,
    project: Project,
    auth: dict[str, str],
    storage: Storage,
    body: dict,
    field: str,
) -> None:
    before = storage.get_project(project.id)
    response = client.put(f"/api/0/projects/{project.id}/", headers=auth, json=body)
    assert response.status_code == 400
    errors = response.get_json()
    assert set(errors) == {field}
    assert isinstance(errors[field], list) and errors[field]
    assert storage.get_project(project.id) == before


def test_duplicate_slug_is_a_field_error(
    client: FlaskClient,
    project: Project,
    other_project: Project,
    auth: dict[str, str],
    storage: Storage,
) -> None:
    response = client.put(
        f"/api/0/projects/{project.id}/",
        headers=auth,
        json={"slug": other_project.slug, "name": "Renamed"},
    )
    assert response.status_code == 400
    assert response.get_json() == {"slug": ["This slug is already in use."]}
    assert storage.get_project(project.id).name == "Web"


def test_booleans_accept_sentry_spellings(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    url = f"/api/0/projects/{project.id}/"
    for value, expected in (
        ("1", True),
        ("0", False),
        ("true", True),
        ("false", False),
        (True, True),
    ):
        assert (
            client.put(url, headers=auth, json={"isPublic": value}).get_json()["isPublic"]
            is expected
        )


def test_projects_cannot_be_deleted_through_a_key(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    response = client.delete(f"/api/0/projects/{project.id}/", headers=auth)
    assert response.status_code == 405
    assert storage.get_project(project.id) is not None


def test_put_allowed_origins(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    url = f"/api/0/projects/{project.id}/"
    body = client.put(
        url,
        headers=auth,
        json={"options": {"sentry:origins": "https://a.example\n https://b.example \n"}},
    ).get_json()
    assert body["options"]["sentry:origins"] == "https://a.example\nhttps://b.example"
    assert storage.get_project(project.id).allowed_origins == (
        "https://a.example",
        "https://b.example",
    )
    response = client.put(url, headers=auth, json={"options": {"sentry:scrub_data": True}})
    assert response.status_code == 400
    assert response.get_json() == {"options": {"sentry:scrub_data": ["Unknown field."]}}
