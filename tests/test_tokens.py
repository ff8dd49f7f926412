"""Auth tokens (SPEC §10): the pure functions of ``tokens.py``, and tokens over HTTP (Bearer
and Basic ``<token>:``), their scopes, revocation, hashed storage and injected lookups."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import typing as t
from datetime import datetime
from datetime import timezone

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_sentry_api import get_state
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import SCOPES
from flask_sentry_api.storage import AuthToken
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from flask_sentry_api.storage import TokenStorage
from flask_sentry_api.tokens import allows
from flask_sentry_api.tokens import check_scopes
from flask_sentry_api.tokens import hash_token
from flask_sentry_api.tokens import new_token
from tests.helpers import FORBIDDEN
from tests.helpers import NOT_PROVIDED
from tests.helpers import add_event
from tests.helpers import add_group
from tests.helpers import basic_auth
from tests.helpers import make_app

#: What the web API answers a public key it does not know: an unknown or revoked token gets
#: the same answer (SPEC §2, §10), only its challenge names the scheme the request tried.
UNKNOWN_KEY = {
    "Authorization": "Basic " + base64.b64encode(("f" * 32 + ":" + "0" * 32).encode()).decode()
}
TOKEN_RE = re.compile(r"^sntryu_[0-9a-f]{64}\Z")

Issue = t.Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic_token(token: str) -> dict[str, str]:
    """sentry-cli 2's ``--api-key``: the token as the Basic username, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}


HEADERS: dict[str, t.Callable[[str], dict[str, str]]] = {"Bearer": bearer, "Basic": basic_token}


def store_token(
    storage: Storage, project: Project, scopes: t.Sequence[str] = SCOPES, label: str | None = None
) -> str:
    """A fresh token for ``project`` stored (as its hash) in ``storage``."""
    token = new_token()
    assert isinstance(storage, TokenStorage)
    storage.create_token(
        project.id, hash_token(token), tuple(scopes), label=label, last_characters=token[-4:]
    )
    return token


def token_id(storage: Storage, token: str) -> int:
    assert isinstance(storage, TokenStorage)
    stored = storage.get_token(hash_token(token))
    assert stored is not None
    return stored.id


@pytest.fixture
def issue(storage: Storage, project: Project) -> Issue:
    """Issue a token for ``project`` with the given scopes (default all)."""

    def issue(*scopes: str) -> str:
        return store_token(storage, project, scopes or SCOPES)

    return issue


def assert_invalid(client: FlaskClient, response: t.Any, scheme: str) -> None:
    """A 401 for bad credentials: the unknown key's body, challenging in ``scheme``."""
    assert response.status_code == 401, response.get_json()
    assert response.headers["WWW-Authenticate"] == f'{scheme} realm="api"'
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)
    unknown_key = client.get("/api/0/projects/1/", headers=UNKNOWN_KEY)
    assert unknown_key.status_code == 401
    assert body == unknown_key.get_json()


def assert_forbidden(response: t.Any) -> None:
    assert response.status_code == 403, response.get_json()
    assert response.get_json() == FORBIDDEN
    assert "WWW-Authenticate" not in response.headers


# -- pure functions ------------------------------------------------------------------------


def test_new_tokens_look_like_sentry_user_tokens_and_are_unique() -> None:
    tokens = [new_token() for _ in range(200)]
    for token in tokens:
        assert TOKEN_RE.match(token), token
    assert len(set(tokens)) == len(tokens)
    # 64 random hex digits: no two share even a long prefix of their random part.
    assert len({token[7:23] for token in tokens}) == len(tokens)


def test_hash_is_the_sha256_hex_digest() -> None:
    token = new_token()
    digest = hash_token(token)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hash_token(token) == digest  # deterministic
    assert hash_token(token[:-1] + ("0" if token[-1] != "0" else "1")) != digest
    assert token not in digest and token[7:] not in digest


#: Which single granted scope satisfies each required one (SPEC §10; releases may be
#: managed with project:write, as in Sentry).
SATISFIED_BY = {
    "project:read": {"project:read", "project:write", "project:admin"},
    "project:write": {"project:write", "project:admin"},
    "project:admin": {"project:admin"},
    "project:releases": {"project:releases", "project:write", "project:admin"},
    "event:read": {"event:read", "event:write", "event:admin"},
    "event:write": {"event:write", "event:admin"},
    "event:admin": {"event:admin"},
    # The organization's listings show the projects: reading a project is enough (SPEC §10:
    # "GET → *:read of its kind (issues/events event:read, the rest project:read)").
    "org:read": {"org:read", "project:read", "project:write", "project:admin"},
}


@pytest.mark.parametrize("required", SCOPES)
@pytest.mark.parametrize("granted", SCOPES)
def test_allows_follows_the_scope_hierarchy(required: str, granted: str) -> None:
    assert allows({granted}, required) is (granted in SATISFIED_BY[required])
    assert allows([granted], required) is (granted in SATISFIED_BY[required])


def test_allows_with_several_or_no_scopes() -> None:
    assert all(allows(SCOPES, scope) for scope in SCOPES)
    assert not any(allows((), scope) for scope in SCOPES)
    assert not any(allows(frozenset(), scope) for scope in SCOPES)
    granted = {"event:read", "project:releases"}
    assert allows(granted, "event:read") and allows(granted, "project:releases")
    assert not allows(granted, "event:write")
    assert not allows(granted, "project:read")  # releases do not imply reading projects
    assert not allows(granted, "project:write")
    assert not allows({"event:admin"}, "project:read")  # kinds do not mix
    assert not allows({"project:admin"}, "event:read")
    assert not allows({"event:admin", "project:releases"}, "org:read")


def test_check_scopes_orders_and_deduplicates() -> None:
    assert check_scopes(["org:read", "event:read", "project:read", "event:read"]) == (
        "project:read",
        "event:read",
        "org:read",
    )
    assert check_scopes(reversed(SCOPES)) == SCOPES
    assert check_scopes(iter(["project:releases"])) == ("project:releases",)
    assert check_scopes([]) == ()
    assert isinstance(check_scopes(["event:read"]), tuple)


@pytest.mark.parametrize(
    "scopes",
    [["project:read", "project:delete"], ["event:read", "EVENT:READ"], [""], ["org:write"]],
)
def test_check_scopes_refuses_unknown_scopes(scopes: list[str]) -> None:
    with pytest.raises(ValueError, match="unknown scope") as raised:
        check_scopes(scopes)
    unknown = next(scope for scope in scopes if scope not in SCOPES)
    assert repr(unknown) in str(raised.value)


# -- tokens over HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", HEADERS)
def test_token_authenticates_with_bearer_and_basic(
    client: FlaskClient, project: Project, issue: Issue, scheme: str
) -> None:
    headers = HEADERS[scheme](issue())
    for url in (f"/api/0/projects/{project.id}/", f"/api/0/projects/sentry/{project.slug}/"):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["id"] == str(project.id)
        assert response.get_json()["slug"] == project.slug


@pytest.mark.parametrize("scheme", HEADERS)
def test_token_of_one_project_cannot_reach_another(
    client: FlaskClient,
    storage: Storage,
    project: Project,
    other_project: Project,
    issue: Issue,
    scheme: str,
) -> None:
    headers = HEADERS[scheme](issue())
    other_group = add_group(storage, other_project, "x")
    assert_forbidden(client.get(f"/api/0/projects/{other_project.id}/", headers=headers))
    assert_forbidden(client.get(f"/api/0/projects/sentry/{other_project.slug}/", headers=headers))
    assert_forbidden(client.get(f"/api/0/issues/{other_group}/", headers=headers))
    response = client.put(
        f"/api/0/groups/{other_group}/", headers=headers, json={"status": "resolved"}
    )
    assert_forbidden(response)
    assert storage.get_group(other_group).status == "unresolved"


@pytest.mark.parametrize("scheme", HEADERS)
def test_unknown_token_is_401_naming_the_scheme_tried(
    client: FlaskClient, project: Project, issue: Issue, scheme: str
) -> None:
    real = issue()
    url = f"/api/0/projects/{project.id}/"
    one_off = real[:-1] + ("0" if real[-1] != "0" else "1")
    for token in (new_token(), one_off, real[:-1], real.upper(), "abc", "x" * 300):
        assert_invalid(client, client.get(url, headers=HEADERS[scheme](token)), scheme)
    assert client.get(url, headers=HEADERS[scheme](real)).status_code == 200


@pytest.mark.parametrize("scheme", HEADERS)
def test_revoked_token_is_401(
    client: FlaskClient, storage: Storage, project: Project, issue: Issue, scheme: str
) -> None:
    token, kept = issue(), issue()
    url = f"/api/0/projects/sentry/{project.slug}/issues/"
    assert client.get(url, headers=HEADERS[scheme](token)).status_code == 200
    assert isinstance(storage, TokenStorage)
    assert storage.delete_token(token_id(storage, token)) is True
    assert_invalid(client, client.get(url, headers=HEADERS[scheme](token)), scheme)
    assert_invalid(client, client.get("/api/0/", headers=HEADERS[scheme](token)), scheme)
    # Revoking one token leaves the others working.
    assert client.get(url, headers=HEADERS[scheme](kept)).status_code == 200


def test_no_credentials_on_a_new_path_is_the_basic_challenge(
    client: FlaskClient, project: Project
) -> None:
    response = client.get(f"/api/0/projects/sentry/{project.slug}/issues/")
    assert response.status_code == 401
    assert response.get_json() == NOT_PROVIDED
    assert response.headers["WWW-Authenticate"] == 'Basic realm="api"'


@pytest.mark.parametrize("roles", [ROLE_STORE, ROLE_API, ROLE_STORE | ROLE_API])
def test_dsn_public_key_alone_is_not_a_credential(
    client: FlaskClient, storage: Storage, project: Project, roles: int
) -> None:
    key = storage.create_key(project.id, roles)
    for url in (f"/api/0/projects/{project.id}/", f"/api/0/projects/sentry/{project.slug}/"):
        assert_invalid(client, client.get(url, headers=basic_token(key.public_key)), "Basic")
        assert_invalid(client, client.get(url, headers=bearer(key.public_key)), "Bearer")
    assert_invalid(client, client.get("/api/0/", headers=basic_token(key.public_key)), "Basic")
    # The same key with its secret is a credential (when it has the api role).
    expected = 200 if roles & ROLE_API else 403
    assert client.get(f"/api/0/projects/{project.id}/", headers=basic_auth(key)).status_code == (
        expected
    )


# -- scopes --------------------------------------------------------------------------------


class Route(t.NamedTuple):
    method: str
    url: str
    scope: str
    body: dict[str, t.Any] | None = None


#: One request per kind of operation, and the scope SPEC §10 says it needs.
ROUTES = [
    Route("GET", "/api/0/projects/{pid}/", "project:read"),
    Route("GET", "/api/0/projects/sentry/{slug}/", "project:read"),
    Route("PUT", "/api/0/projects/sentry/{slug}/", "project:write", {"name": "Renamed"}),
    Route("PUT", "/api/0/projects/{pid}/", "project:write", {"isPublic": True}),
    Route("GET", "/api/0/projects/sentry/{slug}/issues/", "event:read"),
    Route("GET", "/api/0/projects/{pid}/groups/", "event:read"),
    Route("GET", "/api/0/organizations/sentry/issues/", "event:read"),
    Route(
        "PUT",
        "/api/0/projects/sentry/{slug}/issues/?id={gid}",
        "event:write",
        {"status": "resolved"},
    ),
    Route("PUT", "/api/0/organizations/sentry/issues/", "event:write", {"status": "resolved"}),
    Route("DELETE", "/api/0/projects/sentry/{slug}/groups/?id={gid}", "event:admin"),
    Route("DELETE", "/api/0/organizations/sentry/issues/?id={gid}", "event:admin"),
    Route("GET", "/api/0/issues/{gid}/", "event:read"),
    Route("GET", "/api/0/issues/{short}/", "event:read"),
    Route("PUT", "/api/0/issues/{gid}/", "event:write", {"status": "resolved"}),
    Route("PUT", "/api/0/groups/{gid}/", "event:write", {"isBookmarked": True}),
    Route("DELETE", "/api/0/issues/{gid}/", "event:admin"),
    Route("DELETE", "/api/0/organizations/sentry/issues/{gid}/", "event:admin"),
    Route("GET", "/api/0/issues/{gid}/events/", "event:read"),
    Route("GET", "/api/0/issues/{gid}/events/latest/", "event:read"),
    Route("GET", "/api/0/issues/{gid}/events/{sdk}/", "event:read"),
    Route("GET", "/api/0/events/{sdk}/", "event:read"),
    Route("GET", "/api/0/events/{eid}/", "event:read"),
    Route("GET", "/api/0/projects/sentry/{slug}/events/", "event:read"),
    Route("GET", "/api/0/projects/sentry/{slug}/events/{sdk}/", "event:read"),
    Route("GET", "/api/0/issues/{gid}/notes/", "event:read"),
    Route("POST", "/api/0/issues/{gid}/notes/", "event:write", {"text": "a note"}),
    Route("POST", "/api/0/groups/{gid}/notes/", "event:write", {"text": "a note"}),
    Route("GET", "/api/0/issues/{gid}/tags/", "event:read"),
    Route("GET", "/api/0/issues/{gid}/stats/", "event:read"),
    Route("GET", "/api/0/projects/sentry/{slug}/releases/", "project:read"),
    Route("GET", "/api/0/organizations/sentry/releases/1.0/", "project:read"),
    Route(
        "POST",
        "/api/0/organizations/sentry/releases/",
        "project:releases",
        {"version": "2.0", "projects": ["{slug}"]},
    ),
    Route(
        "POST", "/api/0/projects/sentry/{slug}/releases/", "project:releases", {"version": "2.0"}
    ),
    Route("POST", "/api/0/projects/{pid}/releases/", "project:releases", {"version": "2.0"}),
    Route("PUT", "/api/0/projects/sentry/{slug}/releases/1.0/", "project:releases", {"ref": "abc"}),
    Route("PUT", "/api/0/organizations/sentry/releases/1.0/", "project:releases", {"url": "u"}),
    Route("DELETE", "/api/0/organizations/sentry/releases/1.0/", "project:releases"),
    Route("DELETE", "/api/0/projects/{pid}/releases/1.0/", "project:releases"),
    Route("GET", "/api/0/projects/sentry/{slug}/keys/", "project:read"),
    Route("GET", "/api/0/projects/sentry/{slug}/stats/", "project:read"),
    Route("GET", "/api/0/projects/sentry/{slug}/tags/level/values/", "project:read"),
    # org:read, or any project read scope (see test_organization_reads_need_project_read).
    Route("GET", "/api/0/organizations/", "org:read"),
    Route("GET", "/api/0/organizations/sentry/", "org:read"),
    Route("GET", "/api/0/organizations/sentry/projects/", "org:read"),
]

ORGANIZATION_READS = [
    "/api/0/organizations/",
    "/api/0/organizations/sentry/",
    "/api/0/organizations/sentry/projects/",
]


class Scene(t.NamedTuple):
    values: dict[str, t.Any]

    def url(self, route: Route) -> str:
        return route.url.format(**self.values)

    def body(self, route: Route) -> dict[str, t.Any] | None:
        if route.body is None:
            return None
        return {
            name: [item.format(**self.values) for item in value]
            if isinstance(value, list)
            else value
            for name, value in route.body.items()
        }


@pytest.fixture
def scene(storage: Storage, project: Project) -> Scene:
    """A group with a tagged event in a release, and a release "1.0" of the project."""
    saved = add_event(storage, project, "a", tags=(("level", "error"),), release="1.0")
    return Scene(
        {
            "pid": project.id,
            "slug": project.slug,
            "gid": saved.group.id,
            "short": f"{project.slug.upper()}-{saved.group.id}",
            "eid": saved.event.id,
            "sdk": saved.event.event_id,
        }
    )


def snapshot(client: FlaskClient, scene: Scene, headers: dict[str, str]) -> list[t.Any]:
    """What a refused request must leave alone: the project, group, notes and releases."""
    values = scene.values
    return [
        client.get(f"/api/0/projects/{values['pid']}/", headers=headers).get_json(),
        client.get(
            f"/api/0/projects/{values['pid']}/groups/?query=&statsPeriod=", headers=headers
        ).get_json(),
        client.get(f"/api/0/groups/{values['gid']}/notes/", headers=headers).get_json(),
        client.get(f"/api/0/projects/{values['pid']}/releases/", headers=headers).get_json(),
    ]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: f"{route.method} {route.url}")
def test_a_token_without_the_scope_is_403_and_changes_nothing(
    client: FlaskClient, auth: dict[str, str], issue: Issue, scene: Scene, route: Route
) -> None:
    lacking = [scope for scope in SCOPES if not allows({scope}, route.scope)]
    token = issue(*lacking)
    before = snapshot(client, scene, auth)
    for headers in (bearer(token), basic_token(token)):
        response = client.open(
            scene.url(route), method=route.method, headers=headers, json=scene.body(route)
        )
        assert_forbidden(response)
    assert snapshot(client, scene, auth) == before


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: f"{route.method} {route.url}")
def test_a_token_with_just_the_scope_is_served(
    client: FlaskClient, issue: Issue, scene: Scene, route: Route
) -> None:
    token = issue(route.scope)
    response = client.open(
        scene.url(route), method=route.method, headers=bearer(token), json=scene.body(route)
    )
    assert response.status_code in (200, 201, 202, 204), response.get_json()


def test_organization_reads_need_project_read(
    client: FlaskClient, project: Project, issue: Issue
) -> None:
    # SPEC §10: "GET → *:read of its kind (issues/events event:read, the rest
    # project:read)": a token made for sentry-cli with project:read and project:releases
    # lists its organization and projects.
    for scopes in (("project:read",), ("project:read", "project:releases"), ("project:write",)):
        headers = bearer(issue(*scopes))
        for url in ORGANIZATION_READS:
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (scopes, url, response.get_json())
        projects = client.get("/api/0/organizations/sentry/projects/", headers=headers)
        assert [p["slug"] for p in projects.get_json()] == [project.slug]


def test_organization_reads_without_any_read_scope_are_403(
    client: FlaskClient, issue: Issue
) -> None:
    headers = bearer(issue("event:read", "event:write", "event:admin", "project:releases"))
    for url in ORGANIZATION_READS:
        assert_forbidden(client.get(url, headers=headers))


def test_read_only_event_token_cannot_resolve_an_issue(
    client: FlaskClient, storage: Storage, project: Project, issue: Issue
) -> None:
    group_id = add_group(storage, project, "a")
    token = issue("event:read", "project:read")
    headers = bearer(token)
    assert client.get(f"/api/0/issues/{group_id}/", headers=headers).status_code == 200
    for url in (f"/api/0/issues/{group_id}/", f"/api/0/organizations/sentry/issues/{group_id}/"):
        assert_forbidden(client.put(url, headers=headers, json={"status": "resolved"}))
        assert_forbidden(client.delete(url, headers=headers))
    assert_forbidden(
        client.put(
            f"/api/0/projects/sentry/{project.slug}/issues/",
            headers=headers,
            json={"status": "muted"},
        )
    )
    group = storage.get_group(group_id)
    assert group is not None and group.status == "unresolved"
    # event:write may change it, but not delete it (that is event:admin).
    writer = bearer(issue("event:write"))
    response = client.put(f"/api/0/issues/{group_id}/", headers=writer, json={"status": "resolved"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "resolved"
    assert storage.get_group(group_id).status == "resolved"
    assert_forbidden(client.delete(f"/api/0/issues/{group_id}/", headers=writer))
    assert storage.get_group(group_id) is not None
    admin = bearer(issue("event:admin"))
    assert client.delete(f"/api/0/issues/{group_id}/", headers=admin).status_code == 202
    assert storage.get_group(group_id) is None


@pytest.mark.parametrize("scope", ["project:write", "project:admin", "project:releases"])
def test_release_management_with_project_write_or_releases(
    client: FlaskClient, storage: Storage, project: Project, issue: Issue, scope: str
) -> None:
    headers = bearer(issue(scope))
    base = f"/api/0/projects/sentry/{project.slug}/releases/"
    response = client.post(base, headers=headers, json={"version": "1.0"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["version"] == "1.0"
    org = "/api/0/organizations/sentry/releases/"
    response = client.post(
        org, headers=headers, json={"version": "2.0", "projects": [project.slug]}
    )
    assert response.status_code == 201, response.get_json()
    response = client.put(f"{base}1.0/", headers=headers, json={"ref": "abc"})
    assert response.status_code == 200 and response.get_json()["ref"] == "abc"
    assert client.delete(f"{org}2.0/", headers=headers).status_code == 204
    assert storage.get_release(project.id, "1.0").ref == "abc"
    assert storage.get_release(project.id, "2.0") is None


def test_project_read_token_cannot_create_releases(
    client: FlaskClient, storage: Storage, project: Project, issue: Issue
) -> None:
    headers = bearer(issue("project:read", "event:admin"))
    assert_forbidden(
        client.post(
            f"/api/0/projects/sentry/{project.slug}/releases/",
            headers=headers,
            json={"version": "1"},
        )
    )
    assert storage.get_release(project.id, "1") is None


def test_project_keys_keep_every_scope(
    client: FlaskClient, storage: Storage, project: Project, auth: dict[str, str], scene: Scene
) -> None:
    for route in ROUTES:
        if route.method == "GET":
            response = client.get(scene.url(route), headers=auth)
            assert response.status_code == 200, (route, response.get_json())


# -- the index ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", HEADERS)
def test_index_reports_the_tokens_project_and_scopes(
    client: FlaskClient, storage: Storage, project: Project, issue: Issue, scheme: str
) -> None:
    everything = issue()
    body = client.get("/api/0/", headers=HEADERS[scheme](everything)).get_json()
    assert body == {"version": "0", "auth": {"project": str(project.id), "scopes": list(SCOPES)}}
    some = issue("org:read", "event:read", "project:releases")
    response = client.get("/api/0/", headers=HEADERS[scheme](some))
    assert response.status_code == 200
    assert response.get_json() == {
        "version": "0",
        "auth": {
            "project": str(project.id),
            "scopes": ["project:releases", "event:read", "org:read"],
        },
    }
    assert isinstance(storage, TokenStorage)
    storage.delete_token(token_id(storage, some))
    assert_invalid(client, client.get("/api/0/", headers=HEADERS[scheme](some)), scheme)
    assert_invalid(client, client.get("/api/0/", headers=HEADERS[scheme](new_token())), scheme)


def test_index_without_credentials(client: FlaskClient, issue: Issue) -> None:
    issue()
    response = client.get("/api/0/")
    assert response.status_code == 200
    assert response.get_json() == {"version": "0"}
    assert "WWW-Authenticate" not in response.headers


# -- storage -------------------------------------------------------------------------------


def test_tokens_are_never_stored_in_clear(app: Flask, storage: Storage, project: Project) -> None:
    result = app.test_cli_runner().invoke(
        args=["sentry-api", "create-token", str(project.id), "--label", "ci", "--json"]
    )
    assert result.exit_code == 0, result.output
    token = t.cast(str, json.loads(result.stdout)["token"])
    assert TOKEN_RE.match(token)
    assert isinstance(storage, TokenStorage)
    [stored] = storage.list_tokens()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.last_characters == token[-4:]
    assert stored.project_id == project.id and stored.label == "ci"
    assert stored.scopes == SCOPES
    assert token not in repr(stored) and token[7:] not in repr(stored)
    # Nothing in any table holds the token, or its random part.
    engine = app.extensions["sqlalchemy"].engine
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).all()
            assert token[7:] not in repr(rows), table
            assert token[7:].upper() not in repr(rows), table


# -- host-injected token lookups -----------------------------------------------------------

#: Tokens the host knows (``HOST_TOKENS[token]``), for the import-string lookup below.
HOST_TOKENS: dict[str, AuthToken] = {}
LOOKED_UP: list[str] = []


def host_token_lookup(token: str) -> AuthToken | None:
    LOOKED_UP.append(token)
    return HOST_TOKENS.get(token)


@pytest.fixture
def host_tokens() -> t.Iterator[dict[str, AuthToken]]:
    HOST_TOKENS.clear()
    LOOKED_UP.clear()
    yield HOST_TOKENS
    HOST_TOKENS.clear()
    LOOKED_UP.clear()


def host_token(project_id: int, *scopes: str) -> AuthToken:
    return AuthToken(
        id=1,
        project_id=project_id,
        token_hash="held by the host",
        scopes=scopes,
        date_created=datetime.now(timezone.utc),
    )


def check_host_lookup_decides(app: Flask) -> None:
    """The lookup the host injected is asked, and the storage never is."""
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        group_id = add_group(storage, project, "a")
        stored_token = store_token(storage, project)
    HOST_TOKENS["host-token-1"] = host_token(project.id, "event:read")
    client = app.test_client()
    url = f"/api/0/issues/{group_id}/"
    # A token only the storage knows is refused: the host's lookup decides.
    assert_invalid(client, client.get(url, headers=bearer(stored_token)), "Bearer")
    assert stored_token in LOOKED_UP
    response = client.get(url, headers=bearer("host-token-1"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == str(group_id)
    assert client.get(url, headers=basic_token("host-token-1")).status_code == 200
    assert LOOKED_UP[-1] == "host-token-1"
    # The host token's scopes are honoured.
    assert_forbidden(client.put(url, headers=bearer("host-token-1"), json={"status": "resolved"}))
    with app.app_context():
        assert get_state(app).storage.get_group(group_id).status == "unresolved"
    assert client.get("/api/0/", headers=bearer("host-token-1")).get_json() == {
        "version": "0",
        "auth": {"project": str(project.id), "scopes": ["event:read"]},
    }
    del HOST_TOKENS["host-token-1"]  # revoked by the host, which tells the cache (README)
    get_state(app).credentials.clear()
    assert_invalid(client, client.get(url, headers=bearer("host-token-1")), "Bearer")


def test_token_lookup_argument_is_used_instead_of_the_storage(
    host_tokens: dict[str, AuthToken],
) -> None:
    app = make_app(token_lookup=host_token_lookup)
    assert get_state(app).token_lookup is host_token_lookup
    check_host_lookup_decides(app)


def test_token_lookup_from_an_import_string(host_tokens: dict[str, AuthToken]) -> None:
    app = make_app({"SENTRY_API_TOKEN_LOOKUP": "tests.test_tokens:host_token_lookup"})
    assert get_state(app).token_lookup is host_token_lookup
    check_host_lookup_decides(app)


# -- a storage that keeps no tokens --------------------------------------------------------

_TOKEN_METHODS = frozenset(
    name for name in dir(TokenStorage) if not name.startswith("_") and name not in dir(object)
)


class KeysOnlyStorage:
    """A storage with the Storage protocol's methods only (a host's own storage that
    predates tokens): it forwards to a MemoryStorage and hides the token methods."""

    def __init__(self, inner: MemoryStorage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> t.Any:
        if name in _TOKEN_METHODS:
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_storage_without_tokens_refuses_tokens_but_keeps_keys() -> None:
    assert _TOKEN_METHODS == {"create_token", "get_token", "list_tokens", "delete_token"}
    inner = MemoryStorage()
    keys_only = KeysOnlyStorage(inner)
    assert isinstance(keys_only, Storage)
    assert not isinstance(keys_only, TokenStorage)
    app = make_app(storage=keys_only)
    project = inner.create_project("Web")
    key = inner.create_key(project.id, ROLE_STORE | ROLE_API)
    hidden = store_token(inner, project)  # known to the wrapped storage only
    client = app.test_client()
    url = f"/api/0/projects/sentry/{project.slug}/"
    for token in (hidden, new_token()):
        assert_invalid(client, client.get(url, headers=bearer(token)), "Bearer")
        assert_invalid(client, client.get(url, headers=basic_token(token)), "Basic")
        assert_invalid(client, client.get("/api/0/", headers=bearer(token)), "Bearer")
    response = client.get(url, headers=basic_auth(key))
    assert response.status_code == 200
    assert response.get_json()["id"] == str(project.id)
    runner = app.test_cli_runner()
    for args in (["create-token", str(project.id)], ["list-tokens"], ["revoke-token", "1"]):
        result = runner.invoke(args=["sentry-api", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "keeps no auth tokens" in result.output
        assert "KeysOnlyStorage" in result.output
        assert "sntryu_" not in result.output
    assert len(inner.list_tokens()) == 1  # nothing created behind the wrapper's back
