"""Releases (issue 5): listing, creating, reading and deleting; ingestion creates them too."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from flask_sentry_api.storage import is_valid_release_version
from tests.helpers import event_payload
from tests.helpers import sentry_auth

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
        {"version": "a\\b"},
        {"version": "a\tb"},
        {"version": "a\x7fb"},
        {"version": " leading"},
        {"version": "trailing "},
        {"version": "   "},
        {"version": "x" * 201},
        {"version": ".."},
        {"version": "latest"},
        {"version": "LaTeSt"},
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


SPACED = "my app 1.0"
#: The three families of release paths: the 2015 one by project id, the project slug one,
#: the organization one.
RELEASE_PATHS = [
    "/api/0/projects/{project_id}/releases/",
    "/api/0/projects/sentry/web/releases/",
    "/api/0/organizations/sentry/releases/",
]


def release_url(base: str, project: Project, version: str) -> str:
    return base.format(project_id=project.id) + quote(version, safe="") + "/"


@pytest.mark.parametrize("base", RELEASE_PATHS)
def test_a_version_with_spaces_is_reachable_on_every_path(
    client: FlaskClient, project: Project, auth: dict[str, str], base: str
) -> None:
    # Sentry allows spaces in versions; the URL carries them percent-encoded.
    created = client.post(
        f"/api/0/projects/{project.id}/releases/", headers=auth, json={"version": SPACED}
    )
    assert created.status_code == 201, created.get_json()
    url = release_url(base, project, SPACED)
    assert "my%20app%201.0" in url
    detail = client.get(url, headers=auth)
    assert detail.status_code == 200
    assert detail.get_json() == created.get_json()
    updated = client.put(url, headers=auth, json={"ref": "abc"})
    assert updated.status_code == 200
    assert (updated.get_json()["version"], updated.get_json()["ref"]) == (SPACED, "abc")
    assert client.delete(url, headers=auth).status_code == 204
    assert client.get(url, headers=auth).status_code == 404
    assert client.get(f"/api/0/projects/{project.id}/releases/", headers=auth).get_json() == []


@pytest.mark.parametrize("version", ["latest", "LATEST", "..", "a\tb", "a\\b", " 1.0", "x" * 201])
def test_an_invalid_version_in_the_path_names_nothing(
    client: FlaskClient, project: Project, auth: dict[str, str], version: str
) -> None:
    for base in RELEASE_PATHS:
        url = release_url(base, project, version)
        assert client.get(url, headers=auth).status_code == 404
        assert client.delete(url, headers=auth).status_code == 404


def test_ingestion_creates_only_releases_the_api_can_reach(
    client: FlaskClient, project: Project, key: ProjectKey, auth: dict[str, str], storage: Storage
) -> None:
    """Issue 12: ``release="my app 1.0"`` (also ``latest``, ``..``, a tab) was stored and
    listed, but GET/DELETE of it were 404 forever."""
    sent = [SPACED, " 2.0 ", "latest", "LATEST", "..", ".", "a\tb", "a/b", "a\\b", "x" * 201]
    event_ids = {}
    for version in sent:
        payload = event_payload(f"from {version!r}", release=version)
        response = client.post(f"/api/{project.id}/store/", json=payload, headers=sentry_auth(key))
        assert response.status_code == 200, response.get_json()
        event_ids[version] = payload["event_id"]
    listed = client.get(f"/api/0/projects/{project.id}/releases/", headers=auth).get_json()
    assert sorted(r["version"] for r in listed) == ["2.0", SPACED]
    for release in listed:
        assert is_valid_release_version(release["version"])
        for base in RELEASE_PATHS:
            url = release_url(base, project, release["version"])
            assert client.get(url, headers=auth).get_json() == release
    for version, event_id in event_ids.items():
        stored = storage.get_event_by_event_id(project.id, event_id)
        assert stored is not None  # the event is kept either way
        if version.strip() in (SPACED, "2.0"):
            assert stored.release == version.strip()
            assert ("release", version.strip()) in stored.tags
            continue
        # Dropped from the event, noted the way Relay notes it.
        assert stored.release is None
        assert "release" not in dict(stored.tags)
        assert stored.data["_meta"]["release"] == {"": {"err": ["invalid_data"], "val": version}}
    # And every listed release can be deleted, on the organization's path too.
    for release in listed:
        url = release_url(RELEASE_PATHS[2], project, release["version"])
        assert client.delete(url, headers=auth).status_code == 204
    assert client.get(f"/api/0/projects/{project.id}/releases/", headers=auth).get_json() == []
