"""Today's Sentry paths (SPEC §10): the organization, projects by slug, issues by id or short
id, events by SDK id, releases the way sentry-cli makes them, project keys, over HTTP."""

from __future__ import annotations

import re
import typing as t
import uuid
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import ReleaseChanges
from flask_sentry_api.storage import Storage
from tests.helpers import DATETIME_RE
from tests.helpers import FORBIDDEN
from tests.helpers import NOT_FOUND
from tests.helpers import add_event
from tests.helpers import add_group
from tests.helpers import basic_auth
from tests.helpers import event_payload
from tests.helpers import make_app
from tests.helpers import sentry_auth

ORG = "/api/0/organizations/sentry"
HOST = "http://testserver.local"
LINK_RE = re.compile(r'<([^>]*)>; rel="(previous|next)"; results="(true|false)"; cursor="([^"]*)"')

Headers = dict[str, str]


class Link(t.NamedTuple):
    url: str
    results: bool
    cursor: str


def links(response: t.Any) -> dict[str, Link]:
    """The ``Link`` header's previous and next links (both must be there)."""
    found = {
        rel: Link(url, results == "true", cursor)
        for url, rel, results, cursor in LINK_RE.findall(response.headers["Link"])
    }
    assert set(found) == {"previous", "next"}, response.headers["Link"]
    for link in found.values():
        assert link.url.endswith(f"cursor={link.cursor}")
    return found


def ok(response: t.Any, status: int = 200) -> t.Any:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def ids(response: t.Any) -> list[int]:
    return [int(row["id"]) for row in ok(response)]


def assert_status(response: t.Any, status: int, body: t.Any) -> None:
    assert response.status_code == status, (response.status_code, response.get_json())
    assert response.get_json() == body


def project_path(project: Project, by: str = "slug") -> str:
    return f"/api/0/projects/sentry/{project.slug if by == 'slug' else project.id}"


def hex_with_dashes(event_id: str) -> str:
    return str(uuid.UUID(event_id))


# -- the organization ----------------------------------------------------------------------


def test_organization_list_is_the_one_organization(
    client: FlaskClient, auth: Headers, project: Project
) -> None:
    response = client.get("/api/0/organizations/", headers=auth)
    body = ok(response)
    assert len(body) == 1
    assert body[0]["id"] == "1"
    assert body[0]["slug"] == "sentry"
    assert body[0]["name"] == "Sentry"
    assert DATETIME_RE.match(body[0]["dateCreated"])
    found = links(response)
    assert found["previous"].url.startswith(f"{HOST}/api/0/organizations/?&cursor=")
    assert found["next"].url.startswith(f"{HOST}/api/0/organizations/?&cursor=")
    assert not found["previous"].results and not found["next"].results
    # The one organization is the one its detail path reads.
    detail = ok(client.get(f"{ORG}/", headers=auth))
    assert detail == body[0]
    assert client.get("/api/0/organizations/").status_code == 401


def test_organization_list_pages_like_every_list(
    client: FlaskClient, auth: Headers, project: Project
) -> None:
    response = client.get("/api/0/organizations/?per_page=1", headers=auth)
    assert [org["slug"] for org in ok(response)] == ["sentry"]
    found = links(response)
    assert found["next"].url.startswith(f"{HOST}/api/0/organizations/?per_page=1&cursor=")
    assert not found["next"].results
    assert ok(client.get(found["next"].url, headers=auth)) == []
    assert client.get("/api/0/organizations/?per_page=0", headers=auth).status_code == 400
    assert_status(
        client.get("/api/0/organizations/?cursor=x", headers=auth),
        400,
        {"detail": "Invalid cursor parameter."},
    )


@pytest.fixture
def scene(storage: Storage, project: Project, other_project: Project) -> dict[str, t.Any]:
    """A group with an event and a release "1.0" in ``project``, and a group in another."""
    saved = add_event(storage, project, "a", tags=(("level", "error"),), release="1.0")
    other = add_event(storage, other_project, "a")
    return {
        "gid": saved.group.id,
        "sdk": saved.event.event_id,
        "eid": saved.event.id,
        "other_gid": other.group.id,
        "other_sdk": other.event.event_id,
        "pid": project.id,
    }


#: One GET per route family that names the organization.
ORG_GETS = [
    "/api/0/organizations/{org}/",
    "/api/0/organizations/{org}/projects/",
    "/api/0/organizations/{org}/issues/",
    "/api/0/organizations/{org}/issues/{gid}/",
    "/api/0/organizations/{org}/releases/",
    "/api/0/organizations/{org}/releases/1.0/",
    "/api/0/projects/{org}/web/",
    "/api/0/projects/{org}/{pid}/",
    "/api/0/projects/{org}/web/issues/",
    "/api/0/projects/{org}/web/groups/",
    "/api/0/projects/{org}/web/events/",
    "/api/0/projects/{org}/web/events/{sdk}/",
    "/api/0/projects/{org}/web/releases/",
    "/api/0/projects/{org}/web/releases/1.0/",
    "/api/0/projects/{org}/web/keys/",
    "/api/0/projects/{org}/web/stats/",
    "/api/0/projects/{org}/web/tags/level/values/",
]


@pytest.mark.parametrize("url", ORG_GETS)
def test_every_organization_path_serves_the_configured_slug(
    client: FlaskClient, auth: Headers, scene: dict[str, t.Any], url: str
) -> None:
    ok(client.get(url.format(org="sentry", **scene), headers=auth))


@pytest.mark.parametrize("org", ["acme", "sentr", "sentry-2", "SENTRY"])
@pytest.mark.parametrize("url", ORG_GETS)
def test_another_organization_is_404(
    client: FlaskClient, auth: Headers, scene: dict[str, t.Any], url: str, org: str
) -> None:
    assert_status(client.get(url.format(org=org, **scene), headers=auth), 404, NOT_FOUND)


ORG_CHANGES: list[tuple[str, str, dict[str, t.Any] | None]] = [
    ("PUT", "/api/0/organizations/acme/issues/", {"status": "resolved"}),
    ("PUT", "/api/0/organizations/acme/issues/{gid}/", {"status": "resolved"}),
    ("DELETE", "/api/0/organizations/acme/issues/{gid}/", None),
    ("DELETE", "/api/0/organizations/acme/issues/?id={gid}", None),
    ("PUT", "/api/0/projects/acme/web/issues/?id={gid}", {"status": "resolved"}),
    ("DELETE", "/api/0/projects/acme/web/groups/?id={gid}", None),
    ("PUT", "/api/0/projects/acme/web/", {"name": "Renamed"}),
    ("POST", "/api/0/organizations/acme/releases/", {"version": "9", "projects": ["web"]}),
    ("POST", "/api/0/projects/acme/web/releases/", {"version": "9"}),
    ("PUT", "/api/0/organizations/acme/releases/1.0/", {"ref": "abc"}),
    ("DELETE", "/api/0/organizations/acme/releases/1.0/", None),
    ("DELETE", "/api/0/projects/acme/web/releases/1.0/", None),
    ("DELETE", "/api/0/projects/acme/web/tags/level/", None),
]


@pytest.mark.parametrize(("method", "url", "body"), ORG_CHANGES)
def test_another_organization_changes_nothing(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    scene: dict[str, t.Any],
    method: str,
    url: str,
    body: dict[str, t.Any] | None,
) -> None:
    def state() -> list[t.Any]:
        return [
            ok(client.get(f"/api/0/projects/{project.id}/", headers=auth)),
            ok(client.get(f"/api/0/projects/{project.id}/groups/?query=", headers=auth)),
            ok(client.get(f"/api/0/projects/{project.id}/releases/", headers=auth)),
            ok(client.get(f"/api/0/projects/{project.id}/tags/level/values/", headers=auth)),
        ]

    before = state()
    response = client.open(url.format(**scene), method=method, headers=auth, json=body)
    assert_status(response, 404, NOT_FOUND)
    assert state() == before


def test_configured_organization_slug() -> None:
    app = make_app({"SENTRY_API_ORGANIZATION": "acme"})
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        auth = basic_auth(storage.create_key(project.id, ROLE_API))
        group_id = add_group(storage, project, "a")
    client = app.test_client()
    assert [org["slug"] for org in ok(client.get("/api/0/organizations/", headers=auth))] == [
        "acme"
    ]
    assert ok(client.get("/api/0/organizations/acme/", headers=auth))["slug"] == "acme"
    assert ok(client.get("/api/0/projects/acme/web/", headers=auth))["id"] == str(project.id)
    assert ids(client.get("/api/0/organizations/acme/issues/", headers=auth)) == [group_id]
    assert ids(client.get("/api/0/projects/acme/web/issues/", headers=auth)) == [group_id]
    for url in (
        "/api/0/organizations/sentry/",
        "/api/0/organizations/sentry/issues/",
        "/api/0/projects/sentry/web/",
        "/api/0/projects/sentry/web/issues/",
    ):
        assert_status(client.get(url, headers=auth), 404, NOT_FOUND)
    # Paths without the organization do not care about it.
    assert ok(client.get(f"/api/0/issues/{group_id}/", headers=auth))["id"] == str(group_id)


# -- projects ------------------------------------------------------------------------------


def test_organization_projects_are_the_credentials_project(
    client: FlaskClient,
    auth: Headers,
    other_auth: Headers,
    project: Project,
    other_project: Project,
) -> None:
    url = f"{ORG}/projects/"
    response = client.get(url, headers=auth)
    body = ok(response)
    assert [(p["id"], p["slug"], p["name"]) for p in body] == [
        (str(project.id), project.slug, project.name)
    ]
    assert body[0] == ok(client.get(f"/api/0/projects/{project.id}/", headers=auth))
    found = links(response)
    assert found["previous"].url.startswith(f"{HOST}{url}?&cursor=")
    assert not found["next"].results and not found["previous"].results
    assert [p["slug"] for p in ok(client.get(url, headers=other_auth))] == [other_project.slug]
    response = client.get(f"{url}?per_page=1", headers=auth)
    assert [p["slug"] for p in ok(response)] == [project.slug]
    assert links(response)["next"].url.startswith(f"{HOST}{url}?per_page=1&cursor=")
    assert client.get(f"{url}?per_page=-1", headers=auth).status_code == 400


@pytest.mark.parametrize("by", ["slug", "id"])
def test_project_details_by_slug_or_id(
    client: FlaskClient, auth: Headers, project: Project, by: str
) -> None:
    body = ok(client.get(f"{project_path(project, by)}/", headers=auth))
    assert body == ok(client.get(f"/api/0/projects/{project.id}/", headers=auth))
    assert (body["id"], body["slug"], body["name"]) == (str(project.id), "web", "Web")


@pytest.mark.parametrize("by", ["slug", "id"])
def test_project_put_by_slug_or_id(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project, by: str
) -> None:
    response = client.put(
        f"{project_path(project, by)}/", headers=auth, json={"name": "Shop", "isPublic": True}
    )
    body = ok(response)
    assert (body["name"], body["isPublic"], body["slug"]) == ("Shop", True, "web")
    stored = storage.get_project(project.id)
    assert stored is not None and (stored.name, stored.is_public) == ("Shop", True)
    # Invalid values and unknown fields are field errors and change nothing (as §6).
    for bad, field in (({"slug": "Not A Slug"}, "slug"), ({"owner": "x"}, "owner")):
        response = client.put(f"{project_path(project, by)}/", headers=auth, json=bad)
        assert response.status_code == 400
        assert list(response.get_json()) == [field]
    assert storage.get_project(project.id) == stored
    assert client.delete(f"{project_path(project, by)}/", headers=auth).status_code == 405


def test_project_renamed_slug_is_the_new_path(
    client: FlaskClient, auth: Headers, project: Project
) -> None:
    ok(client.put("/api/0/projects/sentry/web/", headers=auth, json={"slug": "shop"}))
    assert ok(client.get("/api/0/projects/sentry/shop/", headers=auth))["id"] == str(project.id)
    assert_status(client.get("/api/0/projects/sentry/web/", headers=auth), 404, NOT_FOUND)


@pytest.mark.parametrize(
    "suffix",
    ["", "issues/", "groups/", "events/", "releases/", "keys/", "stats/", "tags/level/values/"],
)
def test_unknown_and_other_projects(
    client: FlaskClient,
    auth: Headers,
    project: Project,
    other_project: Project,
    suffix: str,
) -> None:
    for name in ("nope", "99999", str(2**63), "x" * 300, "0"):
        response = client.get(f"/api/0/projects/sentry/{name}/{suffix}", headers=auth)
        assert_status(response, 404, NOT_FOUND)
    for name in (other_project.slug, str(other_project.id)):
        response = client.get(f"/api/0/projects/sentry/{name}/{suffix}", headers=auth)
        assert_status(response, 403, FORBIDDEN)


def test_other_projects_slug_changes_nothing(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    other_project: Project,
) -> None:
    other_group = add_group(storage, other_project, "x")
    base = f"/api/0/projects/sentry/{other_project.slug}"
    assert_status(client.put(f"{base}/", headers=auth, json={"name": "Mine"}), 403, FORBIDDEN)
    response = client.put(f"{base}/issues/", headers=auth, json={"status": "resolved"})
    assert_status(response, 403, FORBIDDEN)
    assert_status(client.delete(f"{base}/issues/?id={other_group}", headers=auth), 403, FORBIDDEN)
    response = client.post(f"{base}/releases/", headers=auth, json={"version": "1"})
    assert_status(response, 403, FORBIDDEN)
    assert storage.get_project(other_project.id) == other_project
    group = storage.get_group(other_group)
    assert group is not None and group.status == "unresolved"
    assert storage.get_release(other_project.id, "1") is None


# -- a project's issues --------------------------------------------------------------------


@pytest.fixture
def groups(storage: Storage, project: Project, other_group: int) -> list[int]:
    """Six groups of ``project`` (newest first; two share a last-seen second), one resolved,
    one muted (and a group of another project: ``other_group``)."""
    made = [
        add_group(storage, project, "g1", 1420837600, tags=(("level", "error"),)),
        add_group(storage, project, "g2", 1420837590, tags=(("level", "warning"),)),
        add_group(storage, project, "g3", 1420837590, title="TypeError: boom"),
        add_group(storage, project, "g4", 1420837580, status="resolved"),
        add_group(storage, project, "g5", 1420837570, status="muted"),
        add_group(storage, project, "g6", 1420837560),
    ]
    add_event(storage, project, "g6", 1420837561)  # g6 now has two events
    return made


@pytest.fixture
def other_group(storage: Storage, other_project: Project) -> int:
    """A group of another project, with the same hash and time as one of ``groups``."""
    return add_group(storage, other_project, "g1", 1420837600)


QUERIES = [
    "",
    "?statsPeriod=",
    "?query=&statsPeriod=",
    "?status=resolved&statsPeriod=",
    "?query=is:muted&statsPeriod=14d",
    "?query=level:error&statsPeriod=",
    "?query=boom&statsPeriod=",
    "?sort=freq&query=&statsPeriod=",
    "?sort=new&statsPeriod=",
    "?limit=2&statsPeriod=",
    "?limit=2&cursor=1420837590:1:0&statsPeriod=",
]


@pytest.mark.parametrize("query", QUERIES)
def test_project_issue_lists_are_the_2015_group_list(
    client: FlaskClient, auth: Headers, project: Project, groups: list[int], query: str
) -> None:
    old = client.get(f"/api/0/projects/{project.id}/groups/{query}", headers=auth)
    expected = ok(old)
    assert expected, query  # every query selects something (another project's group: none)
    for path in (
        "/api/0/projects/sentry/web/issues/",
        "/api/0/projects/sentry/web/groups/",
        f"/api/0/projects/sentry/{project.id}/issues/",
    ):
        response = client.get(f"{path}{query}", headers=auth)
        assert ok(response) == expected, path
        old_link = old.headers["Link"].replace(f"/api/0/projects/{project.id}/groups/", path)
        assert response.headers["Link"] == old_link
    assert ids(client.get(f"{ORG}/issues/{query}", headers=auth)) == [
        int(g["id"]) for g in expected
    ]


def test_organization_issue_list_is_the_project_list(
    client: FlaskClient, auth: Headers, project: Project, groups: list[int]
) -> None:
    for query in QUERIES:
        expected = ok(client.get(f"/api/0/projects/{project.id}/groups/{query}", headers=auth))
        assert ok(client.get(f"{ORG}/issues/{query}", headers=auth)) == expected, query


def walk(client: FlaskClient, auth: Headers, url: str, rel: str) -> tuple[list[int], list[str]]:
    """Follow ``rel`` links from ``url`` while they promise rows: the ids seen, the URLs."""
    seen: list[int] = []
    urls = [url]
    for _ in range(20):
        response = client.get(urls[-1], headers=auth)
        seen += ids(response)
        link = links(response)[rel]
        if not link.results:
            return seen, urls
        urls.append(link.url)
    raise AssertionError("the links never end")


@pytest.mark.parametrize(
    "path",
    ["/api/0/projects/sentry/web/issues/", "/api/0/projects/sentry/web/groups/", f"{ORG}/issues/"],
)
def test_cursor_paging_walks_every_issue_once(
    client: FlaskClient, auth: Headers, project: Project, groups: list[int], path: str
) -> None:
    everything = ids(client.get(f"/api/0/projects/{project.id}/groups/?query=", headers=auth))
    assert sorted(everything) == sorted(groups)
    forward, urls = walk(client, auth, f"{HOST}{path}?query=&limit=2", "next")
    assert forward == everything
    assert len(urls) == 3
    for url in urls[1:]:
        assert url.startswith(f"{HOST}{path}?query=&limit=2&cursor=")
    # ... and back from the last page, every row once more.
    last = client.get(urls[-1], headers=auth)
    back, urls = walk(client, auth, links(last)["previous"].url, "previous")
    for url in urls:
        assert url.startswith(f"{HOST}{path}?query=&limit=2&cursor=")
    assert sorted(back + ids(last)) == sorted(everything)
    assert len(back) + len(ids(last)) == len(everything)


@pytest.mark.parametrize(
    "path", ["/api/0/projects/sentry/web/issues/", "/api/0/projects/sentry/1/groups/"]
)
def test_project_issues_bulk_update_by_id(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    groups: list[int],
    path: str,
) -> None:
    path = path.replace("/1/", f"/{project.id}/")
    first, second, third = groups[:3]
    response = client.put(
        f"{path}?id={first}&id={second}", headers=auth, json={"status": "resolved"}
    )
    assert ok(response) == {"status": "resolved"}
    assert [storage.get_group(g).status for g in groups[:3]] == [
        "resolved",
        "resolved",
        "unresolved",
    ]
    response = client.put(f"{path}?id={third}", headers=auth, json={"isBookmarked": True})
    assert ok(response) == {"isBookmarked": True}
    assert storage.get_group(third).is_bookmarked is True
    assert storage.get_group(first).is_bookmarked is False
    # Flags need ids: never applied to the whole project.
    response = client.put(path, headers=auth, json={"isBookmarked": True})
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    assert storage.get_group(first).is_bookmarked is False


@pytest.mark.parametrize(
    "path",
    ["/api/0/projects/sentry/web/issues/", "/api/0/projects/sentry/web/groups/", f"{ORG}/issues/"],
)
def test_bulk_status_without_ids_applies_to_every_group(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    groups: list[int],
    other_group: int,
    path: str,
) -> None:
    response = client.put(path, headers=auth, json={"status": "resolved"})
    assert ok(response) == {"status": "resolved"}
    assert {storage.get_group(g).status for g in groups} == {"resolved"}
    assert storage.get_group(other_group).status == "unresolved"  # another project's
    # With a filter, only what it selects.
    response = client.put(f"{path}?status=resolved", headers=auth, json={"status": "muted"})
    assert ok(response) == {"status": "muted"}
    assert {storage.get_group(g).status for g in groups} == {"muted"}


@pytest.mark.parametrize(
    "path",
    ["/api/0/projects/sentry/web/issues/", "/api/0/projects/sentry/web/groups/", f"{ORG}/issues/"],
)
def test_bulk_delete(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    groups: list[int],
    other_group: int,
    path: str,
) -> None:
    response = client.delete(f"{path}?id={groups[0]}&id={groups[1]}&id={other_group}", headers=auth)
    assert response.status_code == 204 and response.data == b""
    assert storage.get_group(groups[0]) is None and storage.get_group(groups[1]) is None
    assert all(storage.get_group(g) is not None for g in groups[2:])
    assert storage.get_group(other_group) is not None  # another project's: left alone
    response = client.delete(path, headers=auth)
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    assert all(storage.get_group(g) is not None for g in groups[2:])


# -- the organization's issues -------------------------------------------------------------


@pytest.mark.parametrize(
    "params", ["?project={pid}", "?project=-1", "?project={pid}&project=-1", "?project=-1&query="]
)
def test_organization_issues_narrowed_to_the_own_project(
    client: FlaskClient, auth: Headers, project: Project, groups: list[int], params: str
) -> None:
    params = params.format(pid=project.id)
    query = "&query=" if "query=" in params else ""
    expected = ok(
        client.get(f"/api/0/projects/{project.id}/groups/?statsPeriod={query}", headers=auth)
    )
    response = client.get(f"{ORG}/issues/{params}&statsPeriod=", headers=auth)
    assert ok(response) == expected
    next_url = links(response)["next"].url
    assert next_url.startswith(f"{HOST}{ORG}/issues/{params}&statsPeriod=&cursor=")


def test_organization_issues_of_another_project_are_403(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    other_project: Project,
    groups: list[int],
) -> None:
    for params in (
        f"?project={other_project.id}",
        f"?project={project.id}&project={other_project.id}",
    ):
        assert_status(client.get(f"{ORG}/issues/{params}", headers=auth), 403, FORBIDDEN)
        response = client.put(f"{ORG}/issues/{params}", headers=auth, json={"status": "resolved"})
        assert_status(response, 403, FORBIDDEN)
        response = client.delete(f"{ORG}/issues/{params}&id={groups[0]}", headers=auth)
        assert_status(response, 403, FORBIDDEN)
    assert {storage.get_group(g).status for g in groups[:3]} == {"unresolved"}
    assert storage.get_group(groups[0]) is not None


@pytest.mark.parametrize("value", ["abc", "", "1.5", "-2", "0x1", str(2**64)])
def test_organization_issues_bad_project_parameter_is_400(
    client: FlaskClient, auth: Headers, storage: Storage, groups: list[int], value: str
) -> None:
    url = f"{ORG}/issues/?project={quote(value)}"
    for response in (
        client.get(url, headers=auth),
        client.put(url, headers=auth, json={"status": "resolved"}),
        client.delete(f"{url}&id={groups[0]}", headers=auth),
    ):
        assert response.status_code == 400, (value, response.status_code, response.get_json())
        assert list(response.get_json()) == ["detail"]
        assert "project" in response.get_json()["detail"]
    assert storage.get_group(groups[0]).status == "unresolved"


@pytest.mark.parametrize("params", ["?id={gid}", "?id={gid}&project={pid}", "?id={gid}&project=-1"])
def test_organization_issues_put_and_delete(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    groups: list[int],
    params: str,
) -> None:
    url = f"{ORG}/issues/" + params.format(gid=groups[0], pid=project.id)
    assert ok(client.put(url, headers=auth, json={"status": "resolved"})) == {"status": "resolved"}
    assert [storage.get_group(g).status for g in groups[:2]] == ["resolved", "unresolved"]
    response = client.put(url, headers=auth, json={"hasSeen": True})
    assert ok(response) == {"hasSeen": True}
    assert storage.get_group(groups[0]).has_seen is True
    response = client.delete(url, headers=auth)
    assert response.status_code == 204
    assert storage.get_group(groups[0]) is None
    assert storage.get_group(groups[1]) is not None


def test_organization_issues_without_credentials(client: FlaskClient, groups: list[int]) -> None:
    response = client.get(f"{ORG}/issues/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="api"'


# -- one issue -----------------------------------------------------------------------------


def issue_paths(group_id: int, short_id: str) -> list[str]:
    return [
        f"/api/0/issues/{group_id}/",
        f"/api/0/issues/{short_id}/",
        f"/api/0/issues/{short_id.lower()}/",
        f"{ORG}/issues/{group_id}/",
        f"{ORG}/issues/{short_id}/",
    ]


def test_issue_details_by_id_and_short_id(
    client: FlaskClient, auth: Headers, project: Project, groups: list[int]
) -> None:
    group_id = groups[1]
    expected = ok(client.get(f"/api/0/groups/{group_id}/", headers=auth))
    assert expected["shortId"] == f"WEB-{group_id}"
    for path in issue_paths(group_id, expected["shortId"]):
        assert ok(client.get(path, headers=auth)) == expected, path


@pytest.mark.parametrize("which", range(5))
def test_issue_put_by_any_path(
    client: FlaskClient, auth: Headers, storage: Storage, groups: list[int], which: int
) -> None:
    group_id = groups[0]
    path = issue_paths(group_id, f"WEB-{group_id}")[which]
    response = client.put(path, headers=auth, json={"status": "resolved", "isPublic": True})
    body = ok(response)
    assert (body["id"], body["status"], body["isPublic"]) == (str(group_id), "resolved", True)
    group = storage.get_group(group_id)
    assert group is not None and (group.status, group.is_public) == ("resolved", True)
    assert storage.get_group(groups[1]).status == "unresolved"
    response = client.put(path, headers=auth, json={"status": "bogus"})
    assert response.status_code == 400 and list(response.get_json()) == ["status"]
    assert storage.get_group(group_id).status == "resolved"


@pytest.mark.parametrize("which", range(5))
def test_issue_delete_by_any_path(
    client: FlaskClient, auth: Headers, storage: Storage, groups: list[int], which: int
) -> None:
    group_id = groups[0]
    path = issue_paths(group_id, f"WEB-{group_id}")[which]
    response = client.delete(path, headers=auth)
    assert response.status_code == 202
    assert storage.get_group(group_id) is None
    assert storage.get_group(groups[1]) is not None
    assert_status(client.get(path, headers=auth), 404, NOT_FOUND)


@pytest.mark.parametrize(
    "name",
    [
        "OTHER-{gid}",  # the right id, another project's slug
        "WEBX-{gid}",
        "WE-{gid}",
        "-{gid}",
        "WEB{gid}",
        "WEB-",
        "WEB-abc",
        "WEB--{gid}",
        "WEB-{gid}x",
        "WEB-0",
        "WEB-999999",
        f"WEB-{2**63}",
        f"WEB-{10**30}",
        "abc",
        "0",
        "-1",
        "999999",
        str(2**63),
        str(10**30),
        "%20{gid}",
        "{gid}%00",
    ],
)
def test_unknown_issue_names_are_404(
    client: FlaskClient, auth: Headers, groups: list[int], name: str
) -> None:
    name = name.format(gid=groups[0])
    for path in (
        f"/api/0/issues/{name}/",
        f"{ORG}/issues/{name}/",
        f"/api/0/issues/{name}/events/",
    ):
        assert_status(client.get(path, headers=auth), 404, NOT_FOUND)


def test_another_projects_issue_is_403(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    other_project: Project,
    other_group: int,
) -> None:
    assert storage.get_group(other_group).project_id == other_project.id
    for name in (str(other_group), f"OTHER-{other_group}"):
        for path in (
            f"/api/0/issues/{name}/",
            f"{ORG}/issues/{name}/",
            f"/api/0/issues/{name}/events/",
            f"/api/0/issues/{name}/events/latest/",
            f"/api/0/issues/{name}/notes/",
            f"/api/0/issues/{name}/tags/",
            f"/api/0/issues/{name}/stats/",
        ):
            assert_status(client.get(path, headers=auth), 403, FORBIDDEN)
        response = client.put(f"/api/0/issues/{name}/", headers=auth, json={"status": "resolved"})
        assert_status(response, 403, FORBIDDEN)
        assert_status(client.delete(f"/api/0/issues/{name}/", headers=auth), 403, FORBIDDEN)
        response = client.post(f"/api/0/issues/{name}/notes/", headers=auth, json={"text": "x"})
        assert_status(response, 403, FORBIDDEN)
    assert storage.get_group(other_group).status == "unresolved"
    assert storage.get_group(other_group).num_comments == 0


# -- an issue's events ---------------------------------------------------------------------


@pytest.fixture
def events(storage: Storage, project: Project, other_project: Project) -> dict[str, t.Any]:
    """Three events of group "a" (in time order), one of group "b" among them, and an
    event of another project."""
    first = add_event(storage, project, "a", 1420837500).event
    other_group = add_event(storage, project, "b", 1420837505).event
    second = add_event(storage, project, "a", 1420837510).event
    third = add_event(storage, project, "a", 1420837520).event
    elsewhere = add_event(storage, other_project, "a", 1420837530).event
    return {
        "group": first.group_id,
        "a": [first, second, third],
        "b": other_group,
        "elsewhere": elsewhere,
    }


def event_forms(event_id: str) -> list[str]:
    """The ways a client may write an SDK event id."""
    return [
        event_id,
        event_id.upper(),
        hex_with_dashes(event_id),
        hex_with_dashes(event_id).upper(),
    ]


def test_issue_events_list(client: FlaskClient, auth: Headers, events: dict[str, t.Any]) -> None:
    group_id = events["group"]
    old = client.get(f"/api/0/groups/{group_id}/events/?per_page=2", headers=auth)
    expected = ok(old)
    assert [int(e["id"]) for e in expected] == [events["a"][2].id, events["a"][1].id]
    for path in (f"/api/0/issues/{group_id}/events/", f"/api/0/issues/WEB-{group_id}/events/"):
        response = client.get(f"{path}?per_page=2", headers=auth)
        assert ok(response) == expected
        assert links(response)["next"].url.startswith(f"{HOST}{path}?per_page=2&cursor=")
        assert links(response)["next"].results
        assert ids(client.get(links(response)["next"].url, headers=auth)) == [events["a"][0].id]


@pytest.mark.parametrize("short", [False, True])
def test_issue_latest_and_oldest_event(
    client: FlaskClient, auth: Headers, events: dict[str, t.Any], short: bool
) -> None:
    group_id = events["group"]
    name = f"WEB-{group_id}" if short else str(group_id)
    first, second, third = events["a"]
    latest = ok(client.get(f"/api/0/issues/{name}/events/latest/", headers=auth))
    assert latest == ok(client.get(f"/api/0/groups/{group_id}/events/latest/", headers=auth))
    assert latest["id"] == str(third.id) and latest["eventID"] == third.event_id
    assert latest["previousEventID"] == str(second.id) and latest["nextEventID"] is None
    oldest = ok(client.get(f"/api/0/issues/{name}/events/oldest/", headers=auth))
    assert oldest == ok(client.get(f"/api/0/events/{first.id}/", headers=auth))
    assert oldest["id"] == str(first.id) and oldest["previousEventID"] is None
    assert oldest["nextEventID"] == str(second.id)


def test_issue_event_by_sdk_id(
    client: FlaskClient, auth: Headers, events: dict[str, t.Any]
) -> None:
    group_id = events["group"]
    first, second, third = events["a"]
    expected = ok(client.get(f"/api/0/events/{second.id}/", headers=auth))
    assert (expected["previousEventID"], expected["nextEventID"]) == (str(first.id), str(third.id))
    for form in event_forms(second.event_id):
        for name in (str(group_id), f"WEB-{group_id}"):
            body = ok(client.get(f"/api/0/issues/{name}/events/{form}/", headers=auth))
            assert body == expected, form


def test_issue_event_of_another_group_or_garbage_is_404(
    client: FlaskClient, auth: Headers, events: dict[str, t.Any]
) -> None:
    group_id = events["group"]
    names = [
        events["b"].event_id,  # same project, another group
        events["elsewhere"].event_id,  # another project
        uuid.uuid4().hex,  # nobody's
        events["a"][0].event_id[:-1],
        events["a"][0].event_id + "0",
        "g" * 32,
        str(events["a"][0].id),  # a row id is not an SDK id
        "newest",
        "LATEST",
        "%20" + events["a"][0].event_id,
    ]
    for name in names:
        response = client.get(f"/api/0/issues/{group_id}/events/{name}/", headers=auth)
        assert_status(response, 404, NOT_FOUND)


# -- notes, tags, stats under /issues/ -----------------------------------------------------


def test_issue_notes(
    client: FlaskClient, auth: Headers, storage: Storage, groups: list[int]
) -> None:
    group_id = groups[0]
    for path in (f"/api/0/issues/{group_id}/notes/", f"/api/0/issues/web-{group_id}/notes/"):
        assert ok(client.get(path, headers=auth)) == ok(
            client.get(f"/api/0/groups/{group_id}/notes/", headers=auth)
        )
    created = ok(
        client.post(f"/api/0/issues/WEB-{group_id}/notes/", headers=auth, json={"text": "Looking"}),
        201,
    )
    assert created["data"] == {"text": "Looking"} and created["type"] == "note"
    ok(client.post(f"/api/0/issues/{group_id}/notes/", headers=auth, json={"text": "Fixed"}), 201)
    listed = client.get(f"/api/0/issues/{group_id}/notes/?per_page=1", headers=auth)
    assert [n["data"]["text"] for n in ok(listed)] == ["Fixed"]
    assert links(listed)["next"].url.startswith(
        f"{HOST}/api/0/issues/{group_id}/notes/?per_page=1&cursor="
    )
    assert [n["data"]["text"] for n in ok(client.get(links(listed)["next"].url, headers=auth))] == [
        "Looking"
    ]
    assert storage.get_group(group_id).num_comments == 2
    response = client.post(f"/api/0/issues/{group_id}/notes/", headers=auth, json={"text": ""})
    assert response.status_code == 400 and list(response.get_json()) == ["text"]
    assert storage.get_group(group_id).num_comments == 2


def test_issue_tags_and_values(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project
) -> None:
    for level in ("error", "error", "warning"):
        group_id = add_group(storage, project, "a", tags=(("level", level), ("os", "linux")))
    expected = ok(client.get(f"/api/0/groups/{group_id}/tags/", headers=auth))
    assert {tag["key"] for tag in expected} >= {"level", "os"}
    for name in (str(group_id), f"WEB-{group_id}"):
        assert ok(client.get(f"/api/0/issues/{name}/tags/", headers=auth)) == expected
        response = client.get(f"/api/0/issues/{name}/tags/level/values/?per_page=1", headers=auth)
        old = client.get(f"/api/0/groups/{group_id}/tags/level/values/?per_page=1", headers=auth)
        assert ok(response) == ok(old)
        assert [(v["value"], v["count"]) for v in ok(response)] == [("error", 2)]
        assert links(response)["next"].url.startswith(
            f"{HOST}/api/0/issues/{name}/tags/level/values/?per_page=1&cursor="
        )
        assert links(response)["next"].results
        response = client.get(f"/api/0/issues/{name}/tags/nope/values/", headers=auth)
        old = client.get(f"/api/0/groups/{group_id}/tags/nope/values/", headers=auth)
        assert (response.status_code, response.get_json()) == (old.status_code, old.get_json())


def test_issue_stats(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project
) -> None:
    day = 1767225600
    for when in (day + 10, day + 20, day + 3700):
        group_id = add_group(storage, project, "a", when)
    params = f"?since={day}&until={day + 7199}&resolution=1h"
    expected = ok(client.get(f"/api/0/groups/{group_id}/stats/{params}", headers=auth))
    assert expected == [[day, 2], [day + 3600, 1]]
    for name in (str(group_id), f"WEB-{group_id}"):
        assert ok(client.get(f"/api/0/issues/{name}/stats/{params}", headers=auth)) == expected
    response = client.get(f"/api/0/issues/{group_id}/stats/?resolution=2h", headers=auth)
    assert response.status_code == 400


# -- a project's events --------------------------------------------------------------------


@pytest.mark.parametrize("by", ["slug", "id"])
def test_project_events_newest_first_and_paginated(
    client: FlaskClient, auth: Headers, project: Project, events: dict[str, t.Any], by: str
) -> None:
    first, second, third = events["a"]
    expected = [third.id, second.id, events["b"].id, first.id]
    path = f"{project_path(project, by)}/events/"
    assert ids(client.get(path, headers=auth)) == expected
    response = client.get(f"{path}?per_page=3", headers=auth)
    assert ids(response) == expected[:3]
    found = links(response)
    assert found["next"].results and not found["previous"].results
    assert found["next"].url.startswith(f"{HOST}{path}?per_page=3&cursor=")
    response = client.get(found["next"].url, headers=auth)
    assert ids(response) == expected[3:]
    assert not links(response)["next"].results
    assert ids(client.get(links(response)["previous"].url, headers=auth)) == expected[:3]
    body = ok(client.get(f"{path}?per_page=1", headers=auth))[0]
    assert body["eventID"] == third.event_id and body["groupID"] == str(third.group_id)


def test_project_events_of_an_empty_project(
    client: FlaskClient, auth: Headers, project: Project
) -> None:
    response = client.get("/api/0/projects/sentry/web/events/", headers=auth)
    assert ok(response) == []
    found = links(response)
    assert not found["next"].results and not found["previous"].results


@pytest.mark.parametrize("path", ["/api/0/projects/sentry/web/events/{id}/", "/api/0/events/{id}/"])
def test_event_by_sdk_id(
    client: FlaskClient, auth: Headers, events: dict[str, t.Any], path: str
) -> None:
    for event in (*events["a"], events["b"]):
        expected = ok(client.get(f"/api/0/events/{event.id}/", headers=auth))
        assert expected["eventID"] == event.event_id
        for form in event_forms(event.event_id):
            assert ok(client.get(path.format(id=form), headers=auth)) == expected, form


@pytest.mark.parametrize("path", ["/api/0/projects/sentry/web/events/{id}/", "/api/0/events/{id}/"])
def test_event_by_sdk_id_of_another_project_or_unknown_is_404(
    client: FlaskClient, auth: Headers, other_auth: Headers, events: dict[str, t.Any], path: str
) -> None:
    elsewhere = events["elsewhere"].event_id
    for name in (elsewhere, elsewhere.upper(), uuid.uuid4().hex, "x" * 32, "abc", "a" * 33):
        assert_status(client.get(path.format(id=name), headers=auth), 404, NOT_FOUND)
    if path.startswith("/api/0/events/"):
        # The other project's key reads it.
        assert ok(client.get(path.format(id=elsewhere), headers=other_auth))["eventID"] == elsewhere


def test_event_of_another_project_by_its_projects_slug_is_403(
    client: FlaskClient, auth: Headers, events: dict[str, t.Any]
) -> None:
    elsewhere = events["elsewhere"].event_id
    response = client.get(f"/api/0/projects/sentry/other/events/{elsewhere}/", headers=auth)
    assert_status(response, 403, FORBIDDEN)


def test_numeric_event_id_is_still_the_row_id(
    client: FlaskClient, auth: Headers, events: dict[str, t.Any]
) -> None:
    first, second, third = events["a"]
    body = ok(client.get(f"/api/0/events/{second.id}/", headers=auth))
    assert body["id"] == str(second.id) and body["eventID"] == second.event_id
    assert_status(
        client.get(f"/api/0/events/{events['elsewhere'].id}/", headers=auth), 403, FORBIDDEN
    )
    assert_status(client.get("/api/0/events/999999/", headers=auth), 404, NOT_FOUND)


def test_all_digit_sdk_event_id(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project
) -> None:
    # An SDK's event id is 32 hex digits, which may all be decimal digits.
    digits = "12345678901234567890123456789012"
    event = add_event(storage, project, "a", event_id=digits).event
    expected = ok(client.get(f"/api/0/events/{event.id}/", headers=auth))
    body = ok(client.get(f"/api/0/projects/sentry/web/events/{digits}/", headers=auth))
    assert body == expected
    assert ok(client.get(f"/api/0/issues/{event.group_id}/events/{digits}/", headers=auth)) == (
        expected
    )
    assert ok(client.get(f"/api/0/events/{digits}/", headers=auth)) == expected


# -- releases ------------------------------------------------------------------------------

RELEASE_BODY = {
    "version": "my-app@1.2.0+build.7",
    "ref": "6ba09a7c53235ee8a8fa5ee4c1ca8ca886e7fdbb",
    "url": "https://github.com/acme/my-app/releases/1.2.0",
    "dateReleased": "2026-12-04T03:23:25.517358384Z",  # sentry-cli writes nanoseconds
    "dateStarted": "2026-12-04T05:20:00+02:00",
    "projects": ["web"],
    "headCommits": [],
    "unknownField": 1,
}


def release_url(base: str, version: str) -> str:
    return f"{base}{quote(version, safe='')}/"


@pytest.mark.parametrize("base", ["/api/0/projects/sentry/web/releases/", f"{ORG}/releases/"])
def test_create_release_the_way_sentry_cli_does(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project, base: str
) -> None:
    response = client.post(base, headers=auth, json=RELEASE_BODY)
    body = ok(response, 201)
    assert body["version"] == RELEASE_BODY["version"]
    assert body["ref"] == RELEASE_BODY["ref"]
    assert body["url"] == RELEASE_BODY["url"]
    assert body["dateReleased"] == "2026-12-04T03:23:25.517Z"
    assert body["dateStarted"] == "2026-12-04T03:20:00Z"
    assert DATETIME_RE.match(body["dateCreated"])
    assert body["projects"] == [{"id": str(project.id), "name": "Web", "slug": "web"}]
    assert "unknownField" not in body and "headCommits" not in body
    stored = storage.get_release(project.id, RELEASE_BODY["version"])
    assert stored is not None and stored.ref == RELEASE_BODY["ref"]
    # Read back through both families of paths.
    for read in (base, "/api/0/projects/sentry/web/releases/", f"{ORG}/releases/"):
        assert ok(client.get(release_url(read, body["version"]), headers=auth)) == body
    old = release_url(f"/api/0/projects/{project.id}/releases/", body["version"])
    assert ok(client.get(old, headers=auth)) == body
    listed = ok(client.get(base, headers=auth))
    assert listed == [body]


@pytest.mark.parametrize("base", ["/api/0/projects/sentry/web/releases/", f"{ORG}/releases/"])
def test_creating_an_existing_release_again_is_208(
    client: FlaskClient, auth: Headers, project: Project, base: str
) -> None:
    created = ok(client.post(base, headers=auth, json={"version": "1.0", "projects": ["web"]}), 201)
    again = client.post(base, headers=auth, json={"version": "1.0", "projects": ["web"]})
    body = ok(again, 208)
    assert body["version"] == "1.0"
    assert body["dateCreated"] == created["dateCreated"]
    assert [r["version"] for r in ok(client.get(base, headers=auth))] == ["1.0"]


def test_release_fields_on_the_2015_path(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project
) -> None:
    url = f"/api/0/projects/{project.id}/releases/"
    response = client.post(url, headers=auth, json={"version": "1.0", "unknownField": 1})
    assert response.status_code == 400
    assert list(response.get_json()) == ["unknownField"]
    assert storage.get_release(project.id, "1.0") is None
    ok(client.post(url, headers=auth, json={"version": "1.0"}), 201)
    response = client.post(url, headers=auth, json={"version": "1.0"})
    assert response.status_code == 400
    assert list(response.get_json()) == ["version"]
    assert [r["version"] for r in ok(client.get(url, headers=auth))] == ["1.0"]


def test_organization_release_needs_projects(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project
) -> None:
    url = f"{ORG}/releases/"
    for body in ({"version": "1.0"}, {"version": "1.0", "projects": []}):
        response = client.post(url, headers=auth, json=body)
        assert response.status_code == 400, response.get_json()
        assert list(response.get_json()) == ["projects"]
        assert isinstance(response.get_json()["projects"], list)
    response = client.post(url, headers=auth, json={"version": "1.0", "projects": ["nope"]})
    assert response.status_code == 400 and list(response.get_json()) == ["projects"]
    response = client.post(url, headers=auth, json={"projects": ["web"]})
    assert response.status_code == 400 and "version" in response.get_json()
    assert storage.get_release(project.id, "1.0") is None
    assert ok(client.get(url, headers=auth)) == []


@pytest.mark.parametrize("name", ["slug", "id", "number"])
def test_organization_release_names_projects_by_slug_or_id(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project, name: str
) -> None:
    ref: t.Any = {"slug": project.slug, "id": str(project.id), "number": project.id}[name]
    response = client.post(
        f"{ORG}/releases/", headers=auth, json={"version": "2.0", "projects": [ref]}
    )
    body = ok(response, 201)
    assert body["projects"] == [{"id": str(project.id), "name": "Web", "slug": "web"}]
    assert storage.get_release(project.id, "2.0") is not None


@pytest.mark.parametrize("names", [["other"], ["web", "other"], ["other", "web"], ["{other_id}"]])
def test_organization_release_in_another_project_is_403(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    other_project: Project,
    names: list[str],
) -> None:
    projects = [name.format(other_id=other_project.id) for name in names]
    response = client.post(
        f"{ORG}/releases/", headers=auth, json={"version": "3.0", "projects": projects}
    )
    assert_status(response, 403, FORBIDDEN)
    assert storage.get_release(project.id, "3.0") is None
    assert storage.get_release(other_project.id, "3.0") is None


@pytest.fixture
def release(storage: Storage, project: Project) -> str:
    storage.create_release(
        project.id, "1.0", ReleaseChanges(ref="abc123", url="https://example.com/1.0")
    )
    return "1.0"


@pytest.mark.parametrize(
    "base",
    [
        "/api/0/projects/sentry/web/releases/",
        "/api/0/projects/sentry/{pid}/releases/",
        f"{ORG}/releases/",
        "/api/0/projects/{pid}/releases/",
    ],
)
def test_finalize_sets_date_released_only(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project, release: str, base: str
) -> None:
    url = release_url(base.format(pid=project.id), release)
    response = client.put(
        url, headers=auth, json={"dateReleased": "2026-12-04T03:23:25.517358384Z"}
    )
    body = ok(response)
    assert body["dateReleased"] == "2026-12-04T03:23:25.517Z"
    assert (body["ref"], body["url"], body["dateStarted"]) == (
        "abc123",
        "https://example.com/1.0",
        None,
    )
    assert ok(client.get(url, headers=auth)) == body
    stored = storage.get_release(project.id, release)
    assert stored is not None and stored.ref == "abc123"
    assert stored.date_released is not None and stored.date_released.year == 2026
    # Another PUT changes what it names and leaves dateReleased alone.
    body = ok(client.put(url, headers=auth, json={"ref": "def456"}))
    assert (body["ref"], body["dateReleased"]) == ("def456", "2026-12-04T03:23:25.517Z")
    response = client.put(release_url(base.format(pid=project.id), "9.9"), headers=auth, json={})
    assert_status(response, 404, NOT_FOUND)
    assert storage.get_release(project.id, "9.9") is None


def test_finalize_on_sentry_paths_ignores_unknown_fields(
    client: FlaskClient, auth: Headers, storage: Storage, release: str
) -> None:
    body = {"dateReleased": "2026-01-02T03:04:05Z", "projects": ["web"], "unknownField": 1}
    for base in ("/api/0/projects/sentry/web/releases/", f"{ORG}/releases/"):
        assert ok(client.put(f"{base}1.0/", headers=auth, json=body))["dateReleased"] == (
            "2026-01-02T03:04:05Z"
        )


def test_organization_release_get_and_delete(
    client: FlaskClient,
    auth: Headers,
    other_auth: Headers,
    storage: Storage,
    project: Project,
    other_project: Project,
    release: str,
) -> None:
    storage.create_release(other_project.id, "other-1", ReleaseChanges())
    url = f"{ORG}/releases/"
    listed = ok(client.get(url, headers=auth))
    assert [r["version"] for r in listed] == ["1.0"]
    assert [r["version"] for r in ok(client.get(url, headers=other_auth))] == ["other-1"]
    detail = ok(client.get(f"{url}1.0/", headers=auth))
    assert detail == listed[0] and detail["ref"] == "abc123"
    assert_status(client.get(f"{url}other-1/", headers=auth), 404, NOT_FOUND)
    assert_status(client.delete(f"{url}other-1/", headers=auth), 404, NOT_FOUND)
    assert storage.get_release(other_project.id, "other-1") is not None
    response = client.delete(f"{url}1.0/", headers=auth)
    assert response.status_code == 204 and response.data == b""
    assert storage.get_release(project.id, "1.0") is None
    assert_status(client.get(f"{url}1.0/", headers=auth), 404, NOT_FOUND)
    assert_status(client.delete(f"{url}1.0/", headers=auth), 404, NOT_FOUND)


@pytest.mark.parametrize("version", ["a\\b", "a/b", "LaTeSt", "..", "x" * 201, "\t1"])
def test_invalid_versions_on_sentry_paths_are_field_errors(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project, version: str
) -> None:
    for url, body in (
        (f"{ORG}/releases/", {"version": version, "projects": ["web"]}),
        ("/api/0/projects/sentry/web/releases/", {"version": version}),
    ):
        response = client.post(url, headers=auth, json=body)
        assert response.status_code == 400
        assert list(response.get_json()) == ["version"]
    assert ok(client.get(f"{ORG}/releases/", headers=auth)) == []


def test_odd_release_versions_round_trip_on_sentry_paths(
    client: FlaskClient, auth: Headers, project: Project
) -> None:
    for version in (
        "my-app@1.2.0+build.7",
        "1.0%2F2",
        "ü-1",
        "a:b",
        "1.0?x#y",
        "x" * 200,
        "v1.0 rc",  # spaces are Sentry's too (issue 12)
    ):
        response = client.post(
            f"{ORG}/releases/", headers=auth, json={"version": version, "projects": ["web"]}
        )
        assert ok(response, 201)["version"] == version
        for base in (f"{ORG}/releases/", "/api/0/projects/sentry/web/releases/"):
            assert ok(client.get(release_url(base, version), headers=auth))["version"] == version
        assert (
            client.delete(release_url(f"{ORG}/releases/", version), headers=auth).status_code == 204
        )


# -- keys ----------------------------------------------------------------------------------


def key_record(key: ProjectKey, host: str, path: str = "") -> dict[str, t.Any]:
    return {
        "id": key.public_key,
        "public": key.public_key,
        "secret": key.secret_key,
        "isActive": key.is_active,
        "rateLimit": None,
        "dsn": {
            "public": f"http://{key.public_key}@{host}{path}/{key.project_id}",
            "secret": f"http://{key.public_key}:{key.secret_key}@{host}{path}/{key.project_id}",
        },
    }


def test_project_keys(
    client: FlaskClient,
    auth: Headers,
    storage: Storage,
    project: Project,
    other_project: Project,
    key: ProjectKey,
) -> None:
    store_only = storage.create_key(project.id, ROLE_STORE)
    storage.set_key_active(store_only.public_key, False)
    store_only = storage.get_key(store_only.public_key)
    storage.create_key(other_project.id, ROLE_API)
    for by in ("slug", "id"):
        body = ok(client.get(f"{project_path(project, by)}/keys/", headers=auth))
        assert len(body) == 2
        for shown, stored in zip(body, (key, store_only), strict=True):
            expected = key_record(stored, "testserver.local")
            assert {name: shown[name] for name in expected} == expected
            assert isinstance(shown["name"], str) and shown["name"]
            assert DATETIME_RE.match(shown["dateCreated"])
        assert body[1]["isActive"] is False
        assert body[0]["roles"] == ["store", "api"] and body[1]["roles"] == ["store"]


def test_project_key_dsn_reaches_ingestion(
    client: FlaskClient, auth: Headers, storage: Storage, project: Project, key: ProjectKey
) -> None:
    dsn = ok(client.get("/api/0/projects/sentry/web/keys/", headers=auth))[0]["dsn"]["public"]
    parts = urlsplit(dsn)
    assert parts.username == key.public_key and parts.password is None
    store = (
        f"{parts.scheme}://{parts.hostname}{parts.path.rsplit('/', 1)[0]}/api/{project.id}/store/"
    )
    response = client.post(store, headers=sentry_auth(key), json=event_payload("From the DSN"))
    assert response.status_code == 200, response.get_json()
    assert [
        e["message"] for e in ok(client.get("/api/0/projects/sentry/web/events/", headers=auth))
    ] == ["From the DSN"]


def test_project_key_dsn_under_a_script_root_and_ingest_prefix() -> None:
    app: Flask = make_app({"SERVER_NAME": None, "SENTRY_API_INGEST_URL_PREFIX": "/ingest/api"})
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    client = app.test_client()
    base_url = "https://errors.example.com/mount/"
    response = client.get(
        "/api/0/projects/sentry/web/keys/", headers=basic_auth(key), base_url=base_url
    )
    [shown] = ok(response)
    assert shown["dsn"]["public"] == (
        f"https://{key.public_key}@errors.example.com/mount/ingest/{project.id}"
    )
    assert shown["dsn"]["secret"] == (
        f"https://{key.public_key}:{key.secret_key}@errors.example.com/mount/ingest/{project.id}"
    )
    # An SDK with that DSN posts to <DSN path>/api/<project>/store/.
    response = client.post(
        f"/ingest/api/{project.id}/store/",
        headers=sentry_auth(key),
        json=event_payload(),
        base_url=base_url,
    )
    assert response.status_code == 200, response.get_json()


def test_another_projects_keys_are_403(
    client: FlaskClient, auth: Headers, storage: Storage, other_project: Project
) -> None:
    secret = storage.create_key(other_project.id, ROLE_API).secret_key
    response = client.get(f"/api/0/projects/sentry/{other_project.slug}/keys/", headers=auth)
    assert_status(response, 403, FORBIDDEN)
    assert secret not in response.get_data(as_text=True)


# -- OPTIONS and the OpenAPI document ------------------------------------------------------

OPTIONS_CASES = [
    ("/api/0/organizations/", ["GET", "HEAD", "OPTIONS"]),
    (f"{ORG}/issues/", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
    (f"{ORG}/releases/", ["GET", "POST", "HEAD", "OPTIONS"]),
    (f"{ORG}/releases/1.0/", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
    ("/api/0/projects/sentry/web/", ["GET", "PUT", "HEAD", "OPTIONS"]),
    ("/api/0/projects/sentry/web/keys/", ["GET", "HEAD", "OPTIONS"]),
    ("/api/0/projects/sentry/web/events/", ["GET", "HEAD", "OPTIONS"]),
    ("/api/0/issues/WEB-1/", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
    ("/api/0/issues/1/events/latest/", ["GET", "HEAD", "OPTIONS"]),
    ("/api/0/issues/1/notes/", ["GET", "POST", "HEAD", "OPTIONS"]),
]


@pytest.mark.parametrize(("url", "methods"), OPTIONS_CASES)
def test_options_without_credentials(client: FlaskClient, url: str, methods: list[str]) -> None:
    response = client.options(url)
    body = ok(response)
    assert body["methods"] == methods
    assert response.headers["Allow"] == ", ".join(methods)
    assert body["renders"] == ["application/json"] and body["name"] and body["description"]


def test_methods_a_route_lacks_are_405(
    client: FlaskClient, auth: Headers, project: Project
) -> None:
    for method, url in (
        ("DELETE", "/api/0/projects/sentry/web/"),
        ("POST", "/api/0/projects/sentry/web/issues/"),
        ("PATCH", f"{ORG}/issues/"),
        ("POST", "/api/0/projects/sentry/web/keys/"),
        ("DELETE", "/api/0/organizations/"),
    ):
        response = client.open(url, method=method, headers=auth)
        assert_status(response, 405, {"detail": f'Method "{method}" not allowed.'})
        assert "GET" in response.headers["Allow"]


NEW_PATHS = {
    "/organizations/": ["get"],
    "/organizations/{organization_slug}/": ["get"],
    "/organizations/{organization_slug}/projects/": ["get"],
    "/organizations/{organization_slug}/issues/": ["get", "put", "delete"],
    "/organizations/{organization_slug}/issues/{issue_id}/": ["get", "put", "delete"],
    "/organizations/{organization_slug}/releases/": ["get", "post"],
    "/organizations/{organization_slug}/releases/{version}/": ["get", "put", "delete"],
    "/projects/{organization_slug}/{project_id_or_slug}/": ["get", "put"],
    "/projects/{organization_slug}/{project_id_or_slug}/issues/": ["get", "put", "delete"],
    "/projects/{organization_slug}/{project_id_or_slug}/groups/": ["get", "put", "delete"],
    "/projects/{organization_slug}/{project_id_or_slug}/events/": ["get"],
    "/projects/{organization_slug}/{project_id_or_slug}/events/{event_id}/": ["get"],
    "/projects/{organization_slug}/{project_id_or_slug}/releases/": ["get", "post"],
    "/projects/{organization_slug}/{project_id_or_slug}/releases/{version}/": [
        "get",
        "put",
        "delete",
    ],
    "/projects/{organization_slug}/{project_id_or_slug}/keys/": ["get"],
    "/projects/{organization_slug}/{project_id_or_slug}/stats/": ["get"],
    "/projects/{organization_slug}/{project_id_or_slug}/tags/{key}/": ["delete"],
    "/projects/{organization_slug}/{project_id_or_slug}/tags/{key}/values/": ["get"],
    "/issues/{issue_id}/": ["get", "put", "delete"],
    "/issues/{issue_id}/events/": ["get"],
    "/issues/{issue_id}/events/{event_id}/": ["get"],
    "/issues/{issue_id}/notes/": ["get", "post"],
    "/issues/{issue_id}/tags/": ["get"],
    "/issues/{issue_id}/tags/{key}/values/": ["get"],
    "/issues/{issue_id}/stats/": ["get"],
}


def test_every_new_route_is_in_the_openapi_document(client: FlaskClient) -> None:
    paths = ok(client.get("/api/0/openapi.json"))["paths"]
    for path, methods in NEW_PATHS.items():
        assert path in paths, path
        for method in methods:
            assert method in paths[path], (path, method)
            responses = paths[path][method]["responses"]
            assert {"200", "201", "202", "204"} & set(responses), (path, method)
        assert "options" in paths[path]
