"""Releases (issue 5): listing, creating, reading and deleting; ingestion creates them too."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def event(group_hash: str, release: str | None, at: datetime) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4().hex,
        group_hash=group_hash,
        timestamp=at,
        message="boom",
        title="Error: boom",
        release=release,
    )


def test_events_create_releases_with_first_last_and_new_groups(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    storage.save_event(project.id, event("a", "1.0", NOW - timedelta(hours=2)))
    storage.save_event(project.id, event("a", "1.0", NOW - timedelta(hours=1)))
    storage.save_event(project.id, event("b", "1.0", NOW - timedelta(hours=3)))
    storage.save_event(project.id, event("a", "2.0", NOW))  # old group, new release
    body = client.get(f"/api/0/projects/{project.id}/releases/", headers=auth).get_json()
    assert [r["version"] for r in body] == ["2.0", "1.0"]
    first = body[1]
    assert first["newGroups"] == 2
    assert first["firstEvent"] == (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["lastEvent"] == (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body[0]["newGroups"] == 0
    assert set(first) == {
        "version",
        "shortVersion",
        "ref",
        "url",
        "dateCreated",
        "dateReleased",
        "dateStarted",
        "firstEvent",
        "lastEvent",
        "newGroups",
        "projects",
    }
    assert first["projects"] == [
        {"id": str(project.id), "name": project.name, "slug": project.slug}
    ]
    assert (first["ref"], first["url"], first["dateReleased"], first["dateStarted"]) == (None,) * 4


def test_create_and_read_and_delete(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    url = f"/api/0/projects/{project.id}/releases/"
    created = client.post(url, headers=auth, json={"version": "my-app@1.2.0+build.7"})
    assert created.status_code == 201
    assert created.get_json()["version"] == "my-app@1.2.0+build.7"
    assert created.get_json()["firstEvent"] is None and created.get_json()["newGroups"] == 0
    detail = client.get(url + "my-app@1.2.0+build.7/", headers=auth)
    assert detail.status_code == 200
    assert detail.get_json() == created.get_json()
    assert client.delete(url + "my-app@1.2.0+build.7/", headers=auth).status_code == 204
    assert client.get(url + "my-app@1.2.0+build.7/", headers=auth).status_code == 404
    assert client.delete(url + "my-app@1.2.0+build.7/", headers=auth).status_code == 404


def test_duplicate_version_is_400(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    url = f"/api/0/projects/{project.id}/releases/"
    assert client.post(url, headers=auth, json={"version": "1.0"}).status_code == 201
    response = client.post(url, headers=auth, json={"version": "1.0"})
    assert response.status_code == 400
    assert response.get_json() == {"version": ["A release with this version already exists."]}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"version": ""},
        {"version": "a/b"},
        {"version": "has space"},
        {"version": "x" * 201},
        {"version": ".."},
        {"version": "latest"},
        {"version": 12},
        {"version": "1.0", "owner": "abc"},
        {"version": "1.0", "dateReleased": "yesterday"},
    ],
)
def test_invalid_versions_are_field_errors(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage, body: dict
) -> None:
    response = client.post(f"/api/0/projects/{project.id}/releases/", headers=auth, json=body)
    assert response.status_code == 400
    assert set(response.get_json()) <= {"version", "owner", "dateReleased"}
    assert client.get(f"/api/0/projects/{project.id}/releases/", headers=auth).get_json() == []


def test_pagination_newest_first(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    url = f"/api/0/projects/{project.id}/releases/"
    for n in range(5):
        client.post(url, headers=auth, json={"version": f"v{n}"})
    first = client.get(url + "?per_page=2", headers=auth)
    assert [r["version"] for r in first.get_json()] == ["v4", "v3"]
    next_url = first.headers["Link"].split(", ")[1].split(">")[0].lstrip("<")
    second = client.get(next_url, headers=auth)
    assert [r["version"] for r in second.get_json()] == ["v2", "v1"]


def test_scoping(
    client: FlaskClient, project: Project, other_auth: dict[str, str], auth: dict[str, str]
) -> None:
    url = f"/api/0/projects/{project.id}/releases/"
    client.post(url, headers=auth, json={"version": "1.0"})
    assert client.get(url, headers=other_auth).status_code == 403
    assert client.post(url, headers=other_auth, json={"version": "2.0"}).status_code == 403
    assert client.delete(url + "1.0/", headers=other_auth).status_code == 403
    assert client.get(url + "1.0/", headers=auth).status_code == 200
    assert client.options(url).get_json()["methods"] == ["GET", "POST", "HEAD", "OPTIONS"]
