"""Security (issue 6 §7, SPEC §3 and §10): one project's key or auth token reaches nothing
of another project on any route, a token reaches only what its scopes allow, a DSN's
public key alone or a revoked token is no credential, ingestion is scoped to the key's
project, secrets and tokens never reach logs or responses, error bodies carry no traceback
or SQL, and secrets are compared in constant time.

The route walk discovers the web API's rules from ``app.url_map``: a new route is walked
without anyone remembering to add it here, and one whose path parameter the walk cannot
fill fails the test instead of being skipped.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import hmac
import inspect
import json
import logging
import types
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
import sqlalchemy.exc
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter
from werkzeug.routing import Map
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

import flask_sentry_api.auth
import flask_sentry_api.ingest.auth
import flask_sentry_api.views.ingest
from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import SCOPES
from flask_sentry_api.storage import STAT_RESOLUTIONS
from flask_sentry_api.storage import AuthToken
from flask_sentry_api.storage import GroupChanges
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from flask_sentry_api.storage import Unavailable
from flask_sentry_api.storage import epoch_seconds
from flask_sentry_api.tokens import allows
from flask_sentry_api.tokens import hash_token
from flask_sentry_api.tokens import new_token
from tests.helpers import EVERYTHING
from tests.helpers import FORBIDDEN
from tests.helpers import INVALID_API_KEY
from tests.helpers import NOT_PROVIDED
from tests.helpers import basic_auth
from tests.helpers import envelope
from tests.helpers import near_misses
from tests.helpers import sentry_auth

WEB_PREFIX = "/api/0/"
#: The one organization's slug (``SENTRY_API_ORGANIZATION``'s default).
ORGANIZATION = "sentry"
#: Endpoints under the prefix that are public by design and not walked.
UNWALKED = {"sentry_api.index", "sentry_api.not_found"}
#: Verbs the walk sends (HEAD is GET without a body, OPTIONS needs no credentials).
WALKED_VERBS = ("GET", "POST", "PUT", "DELETE")
#: Every (endpoint, verb) of the web API as of issue 6: the walk must cover at least these.
EXPECTED_WALK = {
    ("project_details", "GET"),
    ("project_details", "PUT"),
    ("project_groups", "GET"),
    ("project_groups", "PUT"),
    ("project_groups", "DELETE"),
    ("group_details", "GET"),
    ("group_details", "PUT"),
    ("group_details", "DELETE"),
    ("group_events", "GET"),
    ("group_latest_event", "GET"),
    ("group_notes", "GET"),
    ("group_notes", "POST"),
    ("event_details", "GET"),
    ("group_stats", "GET"),
    ("group_tags", "GET"),
    ("group_tag_values", "GET"),
    ("project_stats", "GET"),
    ("project_releases", "GET"),
    ("project_releases", "POST"),
    ("release_details", "GET"),
    ("release_details", "DELETE"),
    ("project_tag_key", "DELETE"),
    ("project_tag_values", "GET"),
}
#: Every (endpoint, verb) of Sentry's later paths (SPEC §10), and the verb §10 added to a
#: 2015 endpoint: the walk must cover these too, so a route removed by mistake is caught.
EXPECTED_SENTRY_WALK = {
    ("release_details", "PUT"),
    ("sdk_event_details", "GET"),
    ("organizations", "GET"),
    ("organization_details", "GET"),
    ("organization_projects", "GET"),
    ("organization_issues", "GET"),
    ("organization_issues", "PUT"),
    ("organization_issues", "DELETE"),
    ("organization_issue_details", "GET"),
    ("organization_issue_details", "PUT"),
    ("organization_issue_details", "DELETE"),
    ("organization_releases", "GET"),
    ("organization_releases", "POST"),
    ("organization_release_details", "GET"),
    ("organization_release_details", "PUT"),
    ("organization_release_details", "DELETE"),
    ("org_project_details", "GET"),
    ("org_project_details", "PUT"),
    ("org_project_issues", "GET"),
    ("org_project_issues", "PUT"),
    ("org_project_issues", "DELETE"),
    ("org_project_groups", "GET"),
    ("org_project_groups", "PUT"),
    ("org_project_groups", "DELETE"),
    ("org_project_events", "GET"),
    ("org_project_event_details", "GET"),
    ("org_project_releases", "GET"),
    ("org_project_releases", "POST"),
    ("org_project_release_details", "GET"),
    ("org_project_release_details", "PUT"),
    ("org_project_release_details", "DELETE"),
    ("org_project_keys", "GET"),
    ("org_project_stats", "GET"),
    ("org_project_tag_key", "DELETE"),
    ("org_project_tag_values", "GET"),
    ("issue_details", "GET"),
    ("issue_details", "PUT"),
    ("issue_details", "DELETE"),
    ("issue_events", "GET"),
    ("issue_event_details", "GET"),
    ("issue_notes", "GET"),
    ("issue_notes", "POST"),
    ("issue_tags", "GET"),
    ("issue_tag_values", "GET"),
    ("issue_stats", "GET"),
}

T0 = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
STATS_START = epoch_seconds(T0) - 3 * 86400
STATS_END = epoch_seconds(T0) + 3 * 86400
TAG_KEYS = ("browser", "level", "release")


# -- credentials -------------------------------------------------------------------------


def issue_token(storage: t.Any, project_id: int, scopes: t.Iterable[str]) -> tuple[str, AuthToken]:
    """A new auth token of the project with ``scopes``: (the token, what is stored of it)."""
    token = new_token()
    stored = storage.create_token(
        project_id, hash_token(token), tuple(scopes), label=None, last_characters=token[-4:]
    )
    return token, stored


def bearer(token: str) -> dict[str, str]:
    """``Authorization: Bearer <token>`` (sentry-cli 3, every modern client)."""
    return {"Authorization": f"Bearer {token}"}


def basic_token(token: str) -> dict[str, str]:
    """The token as Basic username with an empty password (sentry-cli 2 ``--api-key``)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}


# -- seeding and snapshots ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Seeded:
    """A project with a key, two groups with events and notes, release "1.0" and tags."""

    project: Project
    key: ProjectKey
    group_ids: tuple[int, int]
    #: The events' row ids, oldest first; the first three are of the first group.
    event_ids: tuple[int, ...]
    #: The same events' 32-hex ids as the SDK sent them.
    sdk_event_ids: tuple[str, ...]

    @property
    def auth(self) -> dict[str, str]:
        return basic_auth(self.key)

    @property
    def short_id(self) -> str:
        """The first group's short id (``VICTIM-12``)."""
        return f"{self.project.slug.upper()}-{self.group_ids[0]}"

    def fills(self, rule: Rule, variant: int = 0) -> dict[str, t.Any]:
        """A value naming an existing object of the project for every path parameter of
        ``rule``. Variant 0 names the project by slug, the issue by id and an event by the
        SDK's id; variant 1 names them the other ways the paths allow: the project by
        numeric id, the issue by short id, an event by its dashed UUID or, under an issue,
        ``latest``. An ``<int:event_id>`` is the event's row id."""
        event_id: t.Any
        if isinstance(rule._converters.get("event_id"), IntegerConverter):
            event_id = self.event_ids[0]
        elif variant == 0:
            event_id = self.sdk_event_ids[0]  # an event of the first group
        elif "issue_id" in rule.arguments:
            event_id = "latest"
        else:
            event_id = str(uuid.UUID(self.sdk_event_ids[0]))
        first = self.group_ids[0]
        return {
            "organization_slug": ORGANIZATION,
            "project_id": self.project.id,
            "project_id_or_slug": self.project.slug if variant == 0 else str(self.project.id),
            "group_id": first,
            "issue_id": str(first) if variant == 0 else self.short_id,
            "event_id": event_id,
            "key": "browser",
            "version": "1.0",
        }

    def markers(self) -> list[str]:
        """Strings (lowercase) that only a response carrying the project's data holds."""
        key = self.key
        return [self.project.slug, key.public_key, key.secret_key, *self.sdk_event_ids]


def seed(storage: Storage, name: str) -> Seeded:
    project = storage.create_project(name)
    key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    storage.create_release(project.id, "1.0")
    event_ids = []
    sdk_event_ids = []
    groups = []
    for n, (group_hash, browser) in enumerate(
        [("a", "Firefox"), ("a", "Chrome"), ("a", "Firefox"), ("b", "Safari"), ("b", "Firefox")]
    ):
        saved = storage.save_event(
            project.id,
            NewEvent(
                event_id=uuid.uuid4().hex,
                group_hash=group_hash,
                timestamp=T0 + timedelta(minutes=10 * n),
                message=f"boom {group_hash}",
                title=f"ValueError: boom {group_hash}",
                culprit="app.views in index",
                release="1.0",
                user_ident=f"id:{n}",
                tags=(("browser", browser), ("level", "error"), ("release", "1.0")),
            ),
        )
        event_ids.append(saved.event.id)
        sdk_event_ids.append(saved.event.event_id)
        if saved.group.id not in groups:
            groups.append(saved.group.id)
    first, second = groups
    storage.create_note(first, "first note")
    storage.create_note(first, "second note")
    storage.create_note(second, "a note")
    # Vary the flags so both setting and clearing them would show.
    storage.update_groups(
        project.id, GroupQuery(ids=(second,)), GroupChanges(status="muted", is_bookmarked=True)
    )
    return Seeded(project, key, (first, second), tuple(event_ids), tuple(sdk_event_ids))


def snapshot(app: Flask, seeded: Seeded) -> dict[str, t.Any]:
    """Everything stored for the project, read in a fresh app context (fresh session)."""
    with app.app_context():
        storage = get_state(app).storage
        pid = seeded.project.id
        groups = storage.list_groups(pid, GroupQuery(), EVERYTHING)
        group_ids = sorted({*seeded.group_ids, *(group.id for group in groups)})
        return {
            "project": storage.get_project(pid),
            "key": storage.get_key(seeded.key.public_key),
            "keys": storage.list_keys(pid),
            "tokens": storage.list_tokens(pid),  # type: ignore[attr-defined]
            "groups": sorted(groups, key=lambda group: group.id),
            "group": {gid: storage.get_group(gid) for gid in group_ids},
            "events": {gid: storage.list_events(gid, EVERYTHING) for gid in group_ids},
            "project events": storage.list_project_events(pid, EVERYTHING),
            "event": {eid: storage.get_event(eid) for eid in seeded.event_ids},
            "latest": {gid: storage.latest_event(gid) for gid in group_ids},
            "notes": {gid: storage.list_notes(gid, EVERYTHING) for gid in group_ids},
            "releases": storage.list_releases(pid, EVERYTHING),
            "release 1.0": storage.get_release(pid, "1.0"),
            "tag values": {k: storage.list_tag_values(pid, k, EVERYTHING) for k in TAG_KEYS},
            "group tag keys": {gid: storage.group_tag_keys(gid, 100) for gid in group_ids},
            "group tag values": {
                (gid, k): storage.list_tag_values(pid, k, EVERYTHING, gid)
                for gid in group_ids
                for k in TAG_KEYS
            },
            "project stats": {
                res: storage.project_stats(pid, res, STATS_START, STATS_END)
                for res in STAT_RESOLUTIONS
            },
            "group stats": {
                res: storage.group_stats(group_ids, res, STATS_START, STATS_END)
                for res in STAT_RESOLUTIONS
            },
        }


def changed_parts(before: dict[str, t.Any], after: dict[str, t.Any]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


@pytest.fixture
def seeded(storage: Storage) -> Seeded:
    """Project A, whose data the other project's key attacks."""
    return seed(storage, "Victim")


# -- the route walk ----------------------------------------------------------------------


def view_class_of(app: Flask, endpoint: str) -> t.Any:
    return getattr(app.view_functions[endpoint], "view_class", None)


def walked_routes(app: Flask) -> list[tuple[Rule, list[str]]]:
    """Every web API rule with the verbs its view allows (HEAD and OPTIONS left out)."""
    routes = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        endpoint = rule.endpoint
        if not endpoint.startswith("sentry_api.") or not rule.rule.startswith(WEB_PREFIX):
            continue
        if endpoint in UNWALKED or "openapi" in endpoint or rule.rule == WEB_PREFIX:
            continue
        view_class = view_class_of(app, endpoint)
        assert view_class is not None and hasattr(view_class, "verbs"), (
            f"{rule.rule} ({endpoint}): cannot tell which verbs it allows"
        )
        verbs = [verb for verb in view_class.verbs() if verb not in ("HEAD", "OPTIONS")]
        assert set(verbs) <= set(WALKED_VERBS), f"{rule.rule}: verbs {verbs} not walked"
        routes.append((rule, verbs))
    return routes


def organization_scoped(rule: Rule) -> bool:
    """Whether the rule is an organization's path that names no issue: its view acts on
    the project the credential reaches, which repeated ``project=<id>`` narrows."""
    return rule.rule.startswith(f"{WEB_PREFIX}organizations/") and "issue_id" not in rule.arguments


def names_nothing(rule: Rule) -> bool:
    """Whether the rule's path names no object of a project (``/organizations/<org>/...``,
    whose views act on whatever the credential reaches)."""
    return set(rule.arguments) <= {"organization_slug"}


def attack_name(app: Flask, endpoint: str) -> str:
    """The 2015 endpoint whose attacks ``endpoint`` uses: the one served by the same view
    class, or by the nearest base class of its view (same methods, same bodies); else its
    own name."""
    by_class = {view_class_of(app, f"sentry_api.{name}"): name for name, _ in EXPECTED_WALK}
    for cls in view_class_of(app, endpoint).__mro__:
        if cls in by_class:
            return by_class[cls]
    return endpoint.removeprefix("sentry_api.")


def attacks(
    app: Flask, rule: Rule, verb: str, seeded: Seeded
) -> list[tuple[dict[str, t.Any], t.Any]]:
    """(query string, JSON body) pairs for a verb of a rule: for writes, requests that
    would change project A's data if the permission check were missing. On an
    organization's path, each is sent once naming A by ``project=<id>`` (the organization's
    narrowing) and once as is (then only A's ids in the query or body name A)."""
    first, second = seeded.group_ids
    both = {"id": [first, second]}
    flags = {"status": "resolved", "isBookmarked": True, "hasSeen": True, "isPublic": True}
    table: dict[tuple[str, str], list[tuple[dict[str, t.Any], t.Any]]] = {
        ("project_details", "PUT"): [
            # A slug of its own, so the control walk's many projects can all take theirs.
            ({}, {"name": "Hacked", "slug": f"hacked-{seeded.project.id}", "isPublic": True})
        ],
        ("project_groups", "PUT"): [
            (both, flags),
            ({}, {"status": "resolved"}),  # without ids: every group of the project
            ({"status": "muted"}, {"status": "unresolved"}),
            (both, {"merge": True}),
        ],
        ("project_groups", "DELETE"): [(both, None)],
        ("group_details", "PUT"): [({}, flags)],
        ("group_notes", "POST"): [({}, {"text": "pwned"})],
        ("project_releases", "POST"): [({}, {"version": "evil"})],
        ("release_details", "PUT"): [({}, {"dateReleased": "2020-01-01T00:00:00Z"})],
        ("organization_releases", "POST"): [
            ({}, {"version": "evil", "projects": [seeded.project.slug]}),
            ({}, {"version": "evil", "projects": [seeded.project.id]}),  # sentry-cli 3
        ],
    }
    default = [({}, {} if verb in ("PUT", "POST") else None)]
    found = table.get((attack_name(app, rule.endpoint), verb), default)
    if organization_scoped(rule):
        named = [({**query, "project": seeded.project.id}, body) for query, body in found]
        found = named + found
    return found


def route_paths(app: Flask, rule: Rule, seeded: Seeded) -> list[str]:
    """The rule's path naming the seeded project's objects, once per way of naming them
    (see :meth:`Seeded.fills`), without repeats."""
    adapter = app.url_map.bind("testserver.local")
    paths: list[str] = []
    for variant in (0, 1):
        fills = seeded.fills(rule, variant)
        unknown = set(rule.arguments) - set(fills)
        assert not unknown, f"{rule.rule}: no value to fill path parameter(s) {sorted(unknown)}"
        path = adapter.build(rule.endpoint, {name: fills[name] for name in rule.arguments})
        if path not in paths:
            paths.append(path)
    return paths


def send(
    client: FlaskClient, verb: str, path: str, auth: dict[str, str], query: t.Any, body: t.Any
) -> TestResponse:
    kwargs: dict[str, t.Any] = {"headers": auth, "query_string": query}
    if body is not None:
        kwargs["json"] = body
    return client.open(path, method=verb, **kwargs)


def label_of(verb: str, path: str, query: t.Any, body: t.Any) -> str:
    return f"{verb} {path} {query or ''} {body or ''}".strip()


def is_detail(response: TestResponse) -> bool:
    """Whether the body is an error's ``{"detail": "..."}`` and nothing else."""
    return (
        response.is_json
        and isinstance(response.json, dict)
        and list(response.json) == ["detail"]
        and isinstance(response.json["detail"], str)
    )


def walk(app: Flask, seeded: Seeded) -> t.Iterator[tuple[Rule, str, str, dict[str, t.Any], t.Any]]:
    """(rule, verb, path, query, body) of every request of the walk on ``seeded``'s data:
    every rule, every way of naming its objects, every verb, every attack."""
    for rule, verbs in walked_routes(app):
        for path in route_paths(app, rule, seeded):
            for verb in verbs:
                for query, body in attacks(app, rule, verb, seeded):
                    yield rule, verb, path, query, body


def test_walk_covers_every_route(app: Flask, seeded: Seeded) -> None:
    assert get_state(app).settings.organization == ORGANIZATION
    routes = walked_routes(app)
    walked = {
        (rule.endpoint.removeprefix("sentry_api."), verb)
        for rule, verbs in routes
        for verb in verbs
    }
    missing = (EXPECTED_WALK | EXPECTED_SENTRY_WALK) - walked
    assert not missing, f"the walk no longer reaches {sorted(missing)}"
    assert len(routes) >= len({endpoint for endpoint, _ in EXPECTED_WALK | EXPECTED_SENTRY_WALK})
    # Every skipped rule under the prefix is one that is public by design.
    walked_endpoints = {rule.endpoint for rule, _ in routes}
    skipped = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(WEB_PREFIX) and rule.endpoint not in walked_endpoints
    }
    assert {e for e in skipped if "openapi" not in e} == UNWALKED
    for rule, verbs in routes:
        paths = route_paths(app, rule, seeded)  # every path parameter can be filled
        # A project, an issue or an SDK event id is walked both ways it can be named.
        sdk_event = "event_id" in rule.arguments and not isinstance(
            rule._converters["event_id"], IntegerConverter
        )
        two_ways = sdk_event or bool({"project_id_or_slug", "issue_id"} & set(rule.arguments))
        assert len(paths) == (2 if two_ways else 1), (rule.rule, paths)
        for verb in verbs:
            # Every method needs a scope a token can hold.
            assert view_class_of(app, rule.endpoint).required_scope(verb) in SCOPES


def test_an_unfillable_path_parameter_fails_the_walk(app: Flask, seeded: Seeded) -> None:
    rule = Rule("/api/0/widgets/<int:widget_id>/", endpoint="sentry_api.group_details")
    Map([rule])  # binds the rule, as app.url_map binds the real ones
    with pytest.raises(
        AssertionError, match=r"no value to fill path parameter\(s\) \['widget_id'\]"
    ):
        route_paths(app, rule, seeded)


def assert_reaches_nothing(
    app: Flask, client: FlaskClient, seeded: Seeded, credentials: dict[str, dict[str, str]]
) -> None:
    """Every request of the walk, sent with each of another project's ``credentials``
    (by name), reaches nothing of project A: on a path that names A's objects it is a 403
    or 404 with a ``{"detail"}`` body; on one that names nothing it may also succeed for
    the credential's own project. Either way no response carries A's data, nothing of A
    changes, and every credential gets the same answer."""
    before = snapshot(app, seeded)
    markers = seeded.markers()
    problems = []
    walked = set()
    for rule, verb, path, query, body in walk(app, seeded):
        walked.add((rule.endpoint.removeprefix("sentry_api."), verb))
        request = label_of(verb, path, query, body)
        answers = {}
        for name, headers in credentials.items():
            response = send(client, verb, path, headers, query, body)
            label = f"{name}: {request}"
            status, data = response.status_code, response.get_data(as_text=True)
            answers[name] = (status, data)
            if status in (403, 404):
                if not is_detail(response):
                    problems.append(f"{label}: body {data[:200]!r}")
            elif not (names_nothing(rule) and 200 <= status < 300):
                problems.append(f"{label}: {status} {data[:200]!r}")
            leaked = [marker for marker in markers if marker in data.lower()]
            if leaked:
                problems.append(f"{label}: {status}, the body shows A's {leaked}")
        if len(set(answers.values())) > 1:
            problems.append(f"{request}: the credentials get different answers {answers}")
        changed = changed_parts(before, snapshot(app, seeded))
        if changed:
            problems.append(f"{request} ({', '.join(credentials)}): changed project A's {changed}")
            before = snapshot(app, seeded)
    assert not problems, "\n".join(problems)
    assert walked >= EXPECTED_WALK | EXPECTED_SENTRY_WALK


def test_other_projects_key_reaches_nothing_on_any_route(
    app: Flask, client: FlaskClient, seeded: Seeded, other_auth: dict[str, str]
) -> None:
    assert_reaches_nothing(app, client, seeded, {"key": other_auth})


def test_other_projects_token_reaches_nothing_on_any_route(
    app: Flask,
    client: FlaskClient,
    storage: Storage,
    seeded: Seeded,
    other_project: Project,
    other_auth: dict[str, str],
) -> None:
    """A token of another project, with every scope, sent as Bearer or as Basic
    ``<token>:``, is refused exactly like that project's key."""
    token, _ = issue_token(storage, other_project.id, SCOPES)
    credentials = {"bearer token": bearer(token), "basic token": basic_token(token)}
    assert_reaches_nothing(app, client, seeded, {**credentials, "key": other_auth})


def test_walk_requests_succeed_with_the_projects_own_credentials(
    app: Flask, storage: Storage, seeded: Seeded
) -> None:
    """The control for the walks: with project A's own key the same requests succeed and
    every write changes the snapshot. So the walk's 403/404s come from the permission
    check, not from a parameter naming nothing or a body the view would refuse anyway.

    The first request of each (route, verb) is sent a second time with a token of A that
    holds exactly the scope its method needs (Bearer, or Basic ``<token>:`` every other
    time): the scope that the refused tokens below lack is enough. Paths that can name
    their objects two ways alternate between them. Writes get a freshly seeded project
    each (earlier writes do not interfere); reads share ``seeded``, which none may change."""
    client = app.test_client()
    read_tokens = {scope: issue_token(storage, seeded.project.id, [scope])[0] for scope in SCOPES}
    shared_before = snapshot(app, seeded)
    problems = []
    n = 0
    for rule, verbs in walked_routes(app):
        view_class = view_class_of(app, rule.endpoint)
        for verb in verbs:
            scope = view_class.required_scope(verb)
            for index in range(len(attacks(app, rule, verb, seeded))):
                for with_token in (False, True) if index == 0 else (False,):
                    n += 1
                    own = seeded if verb == "GET" else seed(storage, f"Own {n}")
                    if not with_token:
                        credential, headers = "key", own.auth
                    else:
                        token = read_tokens[scope] if own is seeded else None
                        token = token or issue_token(storage, own.project.id, [scope])[0]
                        as_basic = n % 4 < 2
                        credential = f"{scope} token" + (" as Basic" if as_basic else "")
                        headers = basic_token(token) if as_basic else bearer(token)
                    before = shared_before if own is seeded else snapshot(app, own)
                    query, body = attacks(app, rule, verb, own)[index]
                    paths = route_paths(app, rule, own)
                    path = paths[n % len(paths)]
                    response = send(client, verb, path, headers, query, body)
                    label = f"{credential}: {label_of(verb, path, query, body)}"
                    if not 200 <= response.status_code < 300:
                        problems.append(f"{label}: {response.status_code} {response.data[:200]!r}")
                    changed = changed_parts(before, snapshot(app, own))
                    if verb == "GET" and changed:
                        problems.append(f"{label}: a read changed {changed}")
                        shared_before = snapshot(app, seeded)
                    if verb != "GET" and not changed:
                        problems.append(f"{label}: the snapshot does not see this write")
    assert not problems, "\n".join(problems)


def test_a_token_without_the_required_scope_is_refused_everywhere(
    app: Flask, client: FlaskClient, storage: Storage, seeded: Seeded
) -> None:
    """On every (route, verb), project A's own token holding every scope except those
    that satisfy the one the method needs gets a 403 and changes nothing (the control walk
    shows that the needed scope alone is enough)."""
    lacking: dict[str, dict[str, str]] = {}
    for scope in SCOPES:
        others = [other for other in SCOPES if not allows({other}, scope)]
        assert others and not allows(others, scope)
        token, _ = issue_token(storage, seeded.project.id, others)
        lacking[scope] = bearer(token) if len(lacking) % 2 else basic_token(token)
    before = snapshot(app, seeded)
    problems = []
    for rule, verb, path, query, body in walk(app, seeded):
        scope = view_class_of(app, rule.endpoint).required_scope(verb)
        response = send(client, verb, path, lacking[scope], query, body)
        label = f"without {scope}: {label_of(verb, path, query, body)}"
        if response.status_code != 403 or response.json != FORBIDDEN:
            problems.append(f"{label}: {response.status_code} {response.data[:200]!r}")
        if "WWW-Authenticate" in response.headers:
            problems.append(f"{label}: a 403 challenges {response.headers['WWW-Authenticate']}")
        changed = changed_parts(before, snapshot(app, seeded))
        if changed:
            problems.append(f"{label}: changed {changed}")
            before = snapshot(app, seeded)
    assert not problems, "\n".join(problems)


def assert_not_authenticated_anywhere(
    app: Flask, client: FlaskClient, seeded: Seeded, credentials: dict[str, tuple[str, dict]]
) -> None:
    """Every request of the walk, and the index, sent with each of ``credentials`` (name:
    (the scheme its challenge names, headers)), is a 401 that changes nothing."""
    before = snapshot(app, seeded)
    problems = []
    requests = [("GET", WEB_PREFIX, {}, None)]
    requests += [(verb, path, query, body) for _, verb, path, query, body in walk(app, seeded)]
    for verb, path, query, body in requests:
        for name, (scheme, headers) in credentials.items():
            response = send(client, verb, path, headers, query, body)
            label = f"{name}: {label_of(verb, path, query, body)}"
            challenge = response.headers.get("WWW-Authenticate")
            if response.status_code != 401 or response.json != INVALID_API_KEY:
                problems.append(f"{label}: {response.status_code} {response.data[:200]!r}")
            elif challenge != f'{scheme} realm="api"':
                problems.append(f"{label}: challenge {challenge!r}")
    assert not problems, "\n".join(problems)
    assert changed_parts(before, snapshot(app, seeded)) == []


def test_a_dsn_public_key_alone_is_no_credential(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    """The public key is in every DSN, so in every browser bundle: alone (Basic
    ``<public>:``, or as a Bearer token) it is a 401 everywhere."""
    public = seeded.key.public_key
    alone = base64.b64encode(f"{public}:".encode()).decode()
    credentials = {
        "public key as Basic": ("Basic", {"Authorization": f"Basic {alone}"}),
        "public key as Bearer": ("Bearer", bearer(public)),
    }
    assert_not_authenticated_anywhere(app, client, seeded, credentials)


def test_a_revoked_token_is_refused_everywhere(
    app: Flask, client: FlaskClient, storage: t.Any, seeded: Seeded
) -> None:
    token, stored = issue_token(storage, seeded.project.id, SCOPES)
    project_path = f"/api/0/projects/{ORGANIZATION}/{seeded.project.slug}/"
    for headers in (bearer(token), basic_token(token)):
        assert client.get(project_path, headers=headers).status_code == 200
    index = client.get(WEB_PREFIX, headers=bearer(token))
    assert index.json["auth"] == {"scopes": list(SCOPES), "project": str(seeded.project.id)}

    assert storage.delete_token(stored.id) is True
    credentials = {
        "revoked token": ("Bearer", bearer(token)),
        "revoked token as Basic": ("Basic", basic_token(token)),
    }
    assert_not_authenticated_anywhere(app, client, seeded, credentials)


def test_a_token_gains_no_scope_through_the_keys_it_can_read(
    app: Flask, client: FlaskClient, storage: Storage, seeded: Seeded
) -> None:
    """A token may list its project's keys with ``project:read`` (SPEC §10), and the list
    shows each key's secret (as Sentry's does). A project key with the Web API role holds
    every scope (SPEC §3), so a secret shown to a read-only token must not come back as a
    credential that may do what the token may not (in Sentry a DSN's keys are no web API
    credential at all)."""
    token, _ = issue_token(storage, seeded.project.id, ["project:read"])
    keys = client.get(
        f"/api/0/projects/{ORGANIZATION}/{seeded.project.slug}/keys/", headers=bearer(token)
    )
    assert keys.status_code == 200, keys.data
    writes = [
        ("DELETE", f"/api/0/issues/{seeded.group_ids[0]}/", None),  # event:admin
        ("PUT", f"/api/0/projects/{seeded.project.id}/", {"name": "Escalated"}),  # project:write
    ]
    for verb, path, body in writes:
        assert send(client, verb, path, bearer(token), {}, body).status_code == 403
    before = snapshot(app, seeded)
    gained = []
    for shown in keys.json:
        if not shown.get("secret"):
            continue
        pair = base64.b64encode(f"{shown['public']}:{shown['secret']}".encode()).decode()
        for verb, path, body in writes:
            response = send(client, verb, path, {"Authorization": f"Basic {pair}"}, {}, body)
            if 200 <= response.status_code < 300:
                gained.append(f"key {shown['public']} read with project:read: {verb} {path}")
    assert not gained, (
        "\n".join(gained) + f"\nchanged {changed_parts(before, snapshot(app, seeded))}"
    )


# -- auth before everything (SPEC §11) ---------------------------------------------------

#: A token no project has (well formed, so its lookup runs).
UNKNOWN_TOKEN = "sntryu_" + "0" * 64
#: What the hostile walk sends, for each kind of missing or bad credentials: (headers,
#: the 401's body, the scheme its challenge names).
BAD_CREDENTIALS: dict[str, tuple[dict[str, str], dict[str, str], str]] = {
    "no credentials": ({}, NOT_PROVIDED, "Basic"),
    "malformed header": ({"Authorization": "Basic !!!not-base64!!!"}, INVALID_API_KEY, "Basic"),
    "unknown token": (bearer(UNKNOWN_TOKEN), INVALID_API_KEY, "Bearer"),
}


def missing_fills(rule: Rule, variant: int) -> dict[str, t.Any]:
    """Path values that name nothing: variant 0 ids and names no object has, variant 1
    ids past every integer column (a 20-digit issue id)."""
    huge = variant == 1
    sdk_event = not isinstance(rule._converters.get("event_id"), IntegerConverter)
    number = 2**63 if huge else 987_654_321
    return {
        "organization_slug": ORGANIZATION,  # another organization is no endpoint at all
        "project_id": number,
        "project_id_or_slug": "9" * 20 if huge else "no-such-project",
        "group_id": number,
        "issue_id": "9" * 20 if huge else "NOPE-987654321",
        "event_id": "f" * 32 if sdk_event else number,
        "key": "no-such-key",
        "version": "9.9.9-missing",
    }


def hostile_requests(
    app: Flask, rule: Rule, verb: str, seeded: Seeded
) -> list[tuple[str, dict[str, t.Any], dict[str, t.Any]]]:
    """(path, query string, body arguments) of requests that a check other than the
    credentials' would refuse: every query parameter the method takes, repeated and
    invalid; a malformed JSON body or one of another media type; paths naming objects that
    do not exist or ids out of range. Every request has at least one of these faults."""
    adapter = app.url_map.bind("testserver.local")
    op = view_class_of(app, rule.endpoint).operation(verb)
    fields = op.query().fields if op is not None and op.query is not None else {}
    bad_query = {field.data_key or name: ["!bad", "!worse"] for name, field in fields.items()}
    bodies: list[dict[str, t.Any]] = [{}]
    if verb in ("PUT", "POST"):
        bodies = [
            {"data": b"{bad", "content_type": "application/json"},
            {"data": b"name=x", "content_type": "application/x-www-form-urlencoded"},
        ]
    existing = route_paths(app, rule, seeded)
    missing = [
        adapter.build(rule.endpoint, {n: missing_fills(rule, v)[n] for n in rule.arguments})
        for v in (0, 1)
    ]
    requests = []
    for path in dict.fromkeys(existing + missing):
        for n, body in enumerate(bodies):
            for query in ({}, bad_query):
                # Only requests with a fault: an existing object asked nicely is no test.
                if (path in missing and path not in existing) or query or body:
                    requests.append((path, query, body))
                    if n:  # one request of each body's kind is enough with a bad query
                        break
    return requests


def hostile_walk(app: Flask, seeded: Seeded) -> t.Iterator[tuple[str, str, dict, dict]]:
    for rule, verbs in walked_routes(app):
        for verb in verbs:
            for path, query, body in hostile_requests(app, rule, verb, seeded):
                yield verb, path, query, body


def test_without_valid_credentials_every_request_is_a_401_first(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    """SPEC §11: every request of the hostile walk (repeated and bad query parameters,
    malformed or non-JSON bodies, nonexistent objects, unknown slugs and short ids, ids out
    of range) gets the 401 before any 400, 404, 413 or 415 could tell a stranger what
    exists, whether it sends no credentials, a malformed header or an unknown token.

    The control sends the same requests with the project's own key: they are refused too,
    for their faults (a 4xx other than 401), so the 401s above did come first."""
    before = snapshot(app, seeded)
    problems = []
    control_statuses: dict[int, int] = {}
    sent = 0
    for verb, path, query, body in hostile_walk(app, seeded):
        label = label_of(verb, path, query, body.get("data", b"").decode())
        for name, (headers, expected, scheme) in BAD_CREDENTIALS.items():
            response = client.open(path, method=verb, headers=headers, query_string=query, **body)
            sent += 1
            if (response.status_code, response.get_json(silent=True)) != (401, expected):
                problems.append(f"{name}: {label}: {response.status_code} {response.data[:150]!r}")
            elif response.headers.get("WWW-Authenticate") != f'{scheme} realm="api"':
                problems.append(f"{name}: {label}: challenge {response.headers}")
        control = client.open(path, method=verb, headers=seeded.auth, query_string=query, **body)
        status = control.status_code
        control_statuses[status] = control_statuses.get(status, 0) + 1
        if not 400 <= status < 500 or status in (401, 403):
            problems.append(f"control: {label}: {status} {control.data[:150]!r}")
    assert not problems, "\n".join(problems)
    assert changed_parts(before, snapshot(app, seeded)) == []
    # Every kind of fault was met: a bad parameter or body, a missing object, a body of
    # another media type.
    assert {400, 404, 415} <= set(control_statuses), control_statuses
    assert sent >= 1000, sent


def test_what_needs_no_credentials(app: Flask, client: FlaskClient, seeded: Seeded) -> None:
    """The exceptions to auth first (SPEC §11): the index, OPTIONS (whatever the query and
    whether the path's objects exist), a 405 for a method the endpoint lacks, and the 404 of
    a path that is no endpoint at all."""
    problems = []
    index = client.get(WEB_PREFIX, query_string={"cursor": ["a", "b"]})
    assert (index.status_code, index.json) == (200, {"version": "0"})
    for rule, verbs in walked_routes(app):
        view_class = view_class_of(app, rule.endpoint)
        lacking = [verb for verb in ("POST", "PUT", "DELETE", "PATCH") if verb not in verbs]
        for verb in ("OPTIONS", *lacking):
            for path, query, _ in hostile_requests(app, rule, "GET", seeded):
                response = client.open(path, method=verb, query_string=query)
                label = f"{label_of(verb, path, query, None)}: {response.status_code}"
                if verb == "OPTIONS":
                    # A path value the document does not allow (the 20-digit issue id) is
                    # a malformed path: 404, as with credentials. Nothing else is checked.
                    malformed = "9" * 20 in path and "issue_id" in rule.arguments
                    if malformed and response.json != {"detail": "Not found"}:
                        problems.append(f"{label} {response.data[:150]!r}")
                    elif not malformed and response.json.get("methods") != view_class.verbs():
                        problems.append(f"{label} {response.data[:150]!r}")
                elif response.json != {"detail": f'Method "{verb}" not allowed.'}:
                    problems.append(f"{label} {response.data[:150]!r}")
                elif response.headers.get("Allow") != view_class.allow_header():
                    problems.append(f"{label}: Allow {response.headers.get('Allow')!r}")
    no_endpoint = [
        "/api/0/projects/abc/",
        "/api/0/projects/-1/groups/",
        "/api/0/organizations/another-org/issues/",
        f"/api/0/projects/another-org/{seeded.project.slug}/",
        "/api/0/groups/1/nothing-here/",
    ]
    for path in no_endpoint:
        response = client.get(path, query_string={"limit": ["x", "y"]})
        if (response.status_code, response.json) != (404, {"detail": "Not found"}):
            problems.append(f"GET {path}: {response.status_code} {response.data[:150]!r}")
    assert not problems, "\n".join(problems)


# -- ingestion ---------------------------------------------------------------------------


def store_body(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "message": "injected", "platform": "python"}).encode()


def envelope_body(event_id: str) -> bytes:
    return envelope(({"type": "event"}, store_body(event_id)), header={"event_id": event_id})


BODIES = {"store": store_body, "envelope": envelope_body}


def ingest_credentials(key: ProjectKey, where: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) carrying ``key`` the way SDKs do."""
    if where == "header":
        return sentry_auth(key), {}
    if where == "header with secret":
        return sentry_auth(key, secret=key.secret_key), {}
    if where == "authorization header":
        return {"Authorization": sentry_auth(key, secret=key.secret_key)["X-Sentry-Auth"]}, {}
    assert where == "query string"
    return {}, {"sentry_key": key.public_key, "sentry_version": "7"}


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize(
    "where", ["header", "header with secret", "authorization header", "query string"]
)
def test_other_projects_key_cannot_ingest(
    app: Flask,
    client: FlaskClient,
    storage: Storage,
    seeded: Seeded,
    other_project: Project,
    kind: str,
    where: str,
) -> None:
    intruder = storage.create_key(other_project.id, ROLE_STORE | ROLE_API)
    before = snapshot(app, seeded)
    other_before = storage.list_groups(other_project.id, GroupQuery(), EVERYTHING)
    headers, query = ingest_credentials(intruder, where)
    response = client.post(
        f"/api/{seeded.project.id}/{kind}/",
        data=BODIES[kind](uuid.uuid4().hex),
        headers=headers,
        query_string=query,
    )
    assert response.status_code == 403, response.data
    assert list(response.json) == ["detail"]
    assert response.headers["X-Sentry-Error"] == response.json["detail"]
    assert changed_parts(before, snapshot(app, seeded)) == []
    assert storage.list_groups(other_project.id, GroupQuery(), EVERYTHING) == other_before

    # Control: the same request with project A's own key is stored in A.
    headers, query = ingest_credentials(seeded.key, where)
    response = client.post(
        f"/api/{seeded.project.id}/{kind}/",
        data=BODIES[kind](uuid.uuid4().hex),
        headers=headers,
        query_string=query,
    )
    assert response.status_code == 200, response.data
    assert "groups" in changed_parts(before, snapshot(app, seeded))


def test_ingestion_without_valid_credentials_is_a_401_first(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    """SPEC §11 on the SDK endpoints: without a valid key, a bad protocol version, a body
    that is too large, not JSON, or in an unknown encoding, and a project that does not
    exist are all the 401, never the 400/403/404/413/415 a valid key would get."""
    pid = seeded.project.id
    unknown = "f" * 32
    header_auth = {
        "no credentials": {},
        "unknown key": sentry_auth(unknown),
        "unknown key, no version": {"X-Sentry-Auth": f"Sentry sentry_key={unknown}"},
        "unknown key, version 99": sentry_auth(unknown, version="99"),
        "wrong secret, no version": {
            "X-Sentry-Auth": f"Sentry sentry_key={seeded.key.public_key}, sentry_secret={'0' * 32}"
        },
    }
    faults: dict[str, tuple[str, dict[str, str], bytes]] = {
        "no fault": (f"/api/{pid}/store/", {}, store_body(uuid.uuid4().hex)),
        "not JSON": (f"/api/{pid}/store/", {}, b"\xff not json"),
        "unknown encoding": (f"/api/{pid}/envelope/", {"Content-Encoding": "zstd-x"}, b"xx"),
        "broken gzip": (f"/api/{pid}/store/", {"Content-Encoding": "gzip"}, b"not gzip"),
        "too large": (
            f"/api/{pid}/envelope/",
            {},
            b"x" * (get_state(app).settings.max_event_size + 1),
        ),
        "no such project": ("/api/987654321/store/", {}, store_body(uuid.uuid4().hex)),
        "project id out of range": (f"/api/{2**63}/envelope/", {}, b"{}"),
    }
    problems = []
    for auth_name, auth_headers in header_auth.items():
        for fault, (path, headers, body) in faults.items():
            response = client.post(path, data=body, headers={**headers, **auth_headers})
            if response.status_code != 401:
                problems.append(
                    f"{auth_name}, {fault}: {response.status_code} {response.data[:100]!r}"
                )
    assert not problems, "\n".join(problems)
    # Control: with the key, the version and each fault are refused for what they are.
    missing_version = {"X-Sentry-Auth": f"Sentry sentry_key={seeded.key.public_key}"}
    response = client.post(
        f"/api/{pid}/store/", data=store_body(uuid.uuid4().hex), headers=missing_version
    )
    assert response.status_code == 400, response.data
    assert response.json == {"detail": "Missing sentry_version in the authentication header."}
    controls = {}
    for fault, (path, headers, body) in faults.items():
        response = client.post(path, data=body, headers={**headers, **sentry_auth(seeded.key)})
        controls[fault] = response.status_code
    assert controls["no fault"] == 200
    assert all(400 <= status < 500 for fault, status in controls.items() if fault != "no fault"), (
        controls
    )


# -- secrets in logs and responses -------------------------------------------------------


def all_loggers_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
            if not logger.propagate:
                logger.addHandler(caplog.handler)  # removed in the test's finally


def is_row_dump(record: logging.LogRecord) -> bool:
    """SQLAlchemy's DEBUG records: every fetched row, verbatim (what ``echo="debug"`` shows).

    A host that turns these on logs every stored value, a key row's secret included (the
    storage has to read it to compare): that is the host's choice, not a leak of the
    extension. SQLAlchemy's INFO records (each statement and its parameters) stay checked,
    so a secret sent as a query parameter, e.g. ``WHERE secret_key = ?``, still fails."""
    return record.name.startswith("sqlalchemy.engine") and record.levelno == logging.DEBUG


def record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    texts += [record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    texts.append(repr(record.__dict__))
    return texts


def test_secrets_are_never_logged_or_echoed(
    app: Flask,
    storage: Storage,
    seeded: Seeded,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    pid = seeded.project.id
    key = seeded.key
    disabled = storage.create_key(pid, ROLE_STORE | ROLE_API)
    storage.set_key_active(disabled.public_key, False)
    api_only = storage.create_key(pid, ROLE_API)
    store_only = storage.create_key(pid, ROLE_STORE)
    wrong = "5ec2e75ec2e75ec2e75ec2e75ec2e75e"
    unknown_public = "abcdef0123456789abcdef0123456789"
    secrets = [key.secret_key, disabled.secret_key, api_only.secret_key, store_only.secret_key]
    secrets.append(wrong)
    tokens = [
        base64.b64encode(f"{public}:{secret}".encode()).decode()
        for public, secret in [
            (key.public_key, key.secret_key),
            (key.public_key, wrong),
            (unknown_public, key.secret_key),
            (disabled.public_key, disabled.secret_key),
            (store_only.public_key, store_only.secret_key),
        ]
    ]
    # Auth tokens: one with every scope, one with org:read only, one revoked; only their
    # hashes are stored (a hash in a log is fine, the token is not).
    token, _ = issue_token(storage, pid, SCOPES)
    narrow, _ = issue_token(storage, pid, ["org:read"])
    revoked, revoked_row = issue_token(storage, pid, SCOPES)
    assert storage.delete_token(revoked_row.id)  # type: ignore[attr-defined]
    auth_tokens = [token, narrow, revoked, *near_misses(token).values()]
    tokens += [base64.b64encode(f"{value}:".encode()).decode() for value in auth_tokens]
    org_project = f"/api/0/projects/{ORGANIZATION}/{seeded.project.slug}/"
    group, event = seeded.group_ids[0], seeded.event_ids[0]
    ingest_path = f"/api/{pid}/store/"

    def query_auth(k: ProjectKey, secret: str) -> dict[str, str]:
        return {"sentry_key": k.public_key, "sentry_version": "7", "sentry_secret": secret}

    def body() -> bytes:
        return store_body(uuid.uuid4().hex)

    good = basic_auth(key)
    responses: list[tuple[str, int, TestResponse]] = []

    def check(label: str, expected: int, response: TestResponse) -> None:
        responses.append((label, expected, response))

    try:
        all_loggers_at_debug(caplog)
        check("index", 200, client.get("/api/0/", headers=good))
        check("project", 200, client.get(f"/api/0/projects/{pid}/", headers=good))
        check("groups", 200, client.get(f"/api/0/projects/{pid}/groups/?query=", headers=good))
        check("event", 200, client.get(f"/api/0/events/{event}/", headers=good))
        check(
            "put group",
            200,
            client.put(f"/api/0/groups/{group}/", headers=good, json={"hasSeen": True}),
        )
        check(
            "note",
            201,
            client.post(f"/api/0/groups/{group}/notes/", headers=good, json={"text": "hi"}),
        )
        check(
            "wrong secret",
            401,
            client.get(f"/api/0/projects/{pid}/", headers=basic_auth(key, secret=wrong)),
        )
        check(
            "unknown key",
            401,
            client.get(
                f"/api/0/projects/{pid}/",
                headers=basic_auth(dataclasses.replace(key, public_key=unknown_public)),
            ),
        )
        check(
            "disabled key",
            401,
            client.get(f"/api/0/projects/{pid}/", headers=basic_auth(disabled)),
        )
        check(
            "store-only key on the web API",
            403,
            client.get(f"/api/0/projects/{pid}/", headers=basic_auth(store_only)),
        )
        # Credentials that are sent must be valid, even where none are needed (so
        # `sentry-cli info` notices a revoked token).
        check(
            "index wrong secret", 401, client.get("/api/0/", headers=basic_auth(key, secret=wrong))
        )
        check("token index", 200, client.get("/api/0/", headers=bearer(token)))
        check("token project", 200, client.get(org_project, headers=bearer(token)))
        check("token as Basic", 200, client.get(org_project, headers=basic_token(token)))
        check(
            "token put issue",
            200,
            client.put(f"/api/0/issues/{group}/", headers=bearer(token), json={"hasSeen": True}),
        )
        check(
            "token note",
            201,
            client.post(
                f"/api/0/issues/{group}/notes/", headers=basic_token(token), json={"text": "hi"}
            ),
        )
        check("token keys", 200, client.get(f"{org_project}keys/", headers=bearer(token)))
        check("token missing scope", 403, client.get(org_project, headers=bearer(narrow)))
        check("revoked token", 401, client.get(org_project, headers=bearer(revoked)))
        check("revoked token index", 401, client.get("/api/0/", headers=bearer(revoked)))
        check("revoked token as Basic", 401, client.get(org_project, headers=basic_token(revoked)))
        for name, miss in near_misses(token).items():
            check(f"token {name} off", 401, client.get(org_project, headers=bearer(miss)))
        check(
            "ingest header secret",
            200,
            client.post(ingest_path, data=body(), headers=sentry_auth(key, secret=key.secret_key)),
        )
        check(
            "ingest query secret",
            200,
            client.post(ingest_path, data=body(), query_string=query_auth(key, key.secret_key)),
        )
        check(
            "envelope header secret",
            200,
            client.post(
                f"/api/{pid}/envelope/",
                data=envelope_body(uuid.uuid4().hex),
                headers=sentry_auth(key, secret=key.secret_key),
            ),
        )
        check(
            "ingest wrong secret header",
            401,
            client.post(ingest_path, data=body(), headers=sentry_auth(key, secret=wrong)),
        )
        check(
            "ingest wrong secret query",
            401,
            client.post(ingest_path, data=body(), query_string=query_auth(key, wrong)),
        )
        check(
            "ingest disabled key",
            401,
            client.post(
                ingest_path, data=body(), headers=sentry_auth(disabled, secret=disabled.secret_key)
            ),
        )
        check(
            "ingest api-only key",
            403,
            client.post(
                ingest_path, data=body(), query_string=query_auth(api_only, api_only.secret_key)
            ),
        )

        def broken(*args: t.Any, **kwargs: t.Any) -> t.Any:
            raise RuntimeError("storage bug")

        def down(*args: t.Any, **kwargs: t.Any) -> t.Any:
            raise Unavailable("database unavailable: connection refused")

        with monkeypatch.context() as patch:
            patch.setattr(storage, "get_project", broken)
            patch.setattr(storage, "save_event", broken)
            patch.setattr(storage, "get_group", down)
            check("500", 500, client.get(f"/api/0/projects/{pid}/", headers=good))
            check(
                "ingest 500",
                500,
                client.post(ingest_path, data=body(), query_string=query_auth(key, key.secret_key)),
            )
            check("503", 503, client.get(f"/api/0/groups/{group}/", headers=good))
    finally:
        for logger in logging.root.manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and caplog.handler in logger.handlers:
                logger.removeHandler(caplog.handler)

    statuses = [(label, response.status_code) for label, _, response in responses]
    assert statuses == [(label, expected) for label, expected, _ in responses]
    # The capture works: the 500s were logged with their exception.
    assert sum("storage bug" in "".join(record_texts(r)) for r in caplog.records) >= 2

    # SQLAlchemy logged the statements (INFO), so the engine's records were captured too.
    assert any(
        r.name.startswith("sqlalchemy.engine") and not is_row_dump(r) for r in caplog.records
    )

    needles = secrets + tokens + auth_tokens
    leaks = []
    for record in caplog.records:
        if is_row_dump(record):
            continue
        for text in record_texts(record):
            leaks += [f"log {record.name}: {n}" for n in needles if n in text]
    for label, _, response in responses:
        raw = response.get_data(as_text=True)
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        # The keys endpoint shows the project's keys, secrets included, by design (SPEC §10,
        # what Sentry's shows); it must not show any token.
        shown = auth_tokens if label == "token keys" else needles
        leaks += [f"{label} body: {n}" for n in shown if n in raw]
        leaks += [f"{label} headers: {n}" for n in needles if n in headers]
    assert not leaks, "\n".join(sorted(set(leaks)))


# -- error bodies ------------------------------------------------------------------------


def sql_error(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
    raise sqlalchemy.exc.ProgrammingError("SELECT * FROM sentry_group", {}, Exception("boom"))


@pytest.mark.parametrize(
    "case", ["get group", "list groups", "update group", "bulk update", "note", "ingest"]
)
def test_error_bodies_carry_no_traceback_or_sql(
    app: Flask,
    storage: Storage,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    pid, group, auth = seeded.project.id, seeded.group_ids[0], seeded.auth
    requests: dict[str, tuple[str, t.Callable[[], TestResponse]]] = {
        "get group": ("get_group", lambda: client.get(f"/api/0/groups/{group}/", headers=auth)),
        "list groups": (
            "list_groups",
            lambda: client.get(f"/api/0/projects/{pid}/groups/", headers=auth),
        ),
        "update group": (
            "update_groups",
            lambda: client.put(f"/api/0/groups/{group}/", headers=auth, json={"hasSeen": True}),
        ),
        "bulk update": (
            "update_groups",
            lambda: client.put(
                f"/api/0/projects/{pid}/groups/", headers=auth, json={"status": "resolved"}
            ),
        ),
        "note": (
            "create_note",
            lambda: client.post(f"/api/0/groups/{group}/notes/", headers=auth, json={"text": "x"}),
        ),
        "ingest": (
            "save_event",
            lambda: client.post(
                f"/api/{pid}/store/",
                data=store_body(uuid.uuid4().hex),
                headers=ingest_credentials(seeded.key, "header")[0],
            ),
        ),
    }
    method, request = requests[case]
    monkeypatch.setattr(storage, method, sql_error)
    with caplog.at_level(logging.ERROR):
        response = request()
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json() == {"detail": "Internal Error"}
    assert response.get_data(as_text=True).strip() == '{"detail":"Internal Error"}'
    everything = response.get_data(as_text=True) + repr(dict(response.headers))
    for fragment in ("SELECT", "sentry_group", "boom", "Traceback", "ProgrammingError", 'File "'):
        assert fragment not in everything
    # Still logged for the operator.
    assert any(
        r.exc_info and "SELECT * FROM sentry_group" in str(r.exc_info[1]) for r in caplog.records
    )


# -- constant-time comparison ------------------------------------------------------------


def _identifiers(node: ast.AST) -> set[str]:
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            names.add(child.attr)
        elif isinstance(child, ast.arg):
            names.add(child.arg)
    return names


def secret_equality_comparisons(source: str) -> list[str]:
    """``==``/``!=``/``in`` comparisons whose operands involve a secret: a name containing
    "secret", or a local variable computed from one (followed per function)."""
    found = []
    tree = ast.parse(source)
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)] + [tree]:
        tainted: set[str] = set()
        changed = True
        while changed:
            changed = False
            for node in ast.walk(function):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value:
                    involved = _identifiers(node.value)
                    if any("secret" in n.lower() for n in involved) or involved & tainted:
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        new = set().union(*(_identifiers(target) for target in targets)) - tainted
                        if new:
                            tainted |= new
                            changed = True
        for node in ast.walk(function):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
                continue
            operands = _identifiers(node)
            if any("secret" in n.lower() for n in operands) or operands & tainted:
                found.append(ast.unparse(node))
    return sorted(set(found))


def compare_digest_calls(source: str) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "hmac.compare_digest":
            calls.append(ast.unparse(node))
    return calls


def test_the_taint_check_catches_plain_comparisons() -> None:
    # The checks below pass only because the modules are clean, not because the checker is
    # blind: here it must see every spelling.
    source = inspect.cleandoc(
        """
        def check(key, password):
            expected = key.secret_key.encode()
            given = password.encode()
            if given == expected:
                return True
            if key.secret_key != password:
                return False
            return key.public_key == password and key is not None
        """
    )
    assert secret_equality_comparisons(source) == [
        "given == expected",
        "key.secret_key != password",
    ]


@pytest.mark.parametrize(
    "module",
    [flask_sentry_api.auth, flask_sentry_api.views.ingest, flask_sentry_api.ingest.auth],
    ids=lambda module: module.__name__,
)
def test_secrets_are_never_compared_with_equality(module: types.ModuleType) -> None:
    assert secret_equality_comparisons(inspect.getsource(module)) == []


@pytest.mark.parametrize(
    # One key check (auth.check_key) serves the web API and ingestion.
    "module",
    [flask_sentry_api.auth],
    ids=lambda m: m.__name__,
)
def test_secrets_are_compared_with_compare_digest(module: types.ModuleType) -> None:
    assert module.hmac is hmac  # type: ignore[attr-defined]
    calls = compare_digest_calls(inspect.getsource(module))
    assert any("secret" in call for call in calls), calls


def test_compare_digest_runs_for_every_web_api_attempt(
    client: FlaskClient,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right secret, wrong secret and unknown key all pay for one compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: t.Any, b: t.Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    key, path = seeded.key, f"/api/0/projects/{seeded.project.id}/"
    unknown = dataclasses.replace(key, public_key="f" * 32)
    cases = [
        (basic_auth(key), 200),
        (basic_auth(key, secret="0" * 32), 401),
        (basic_auth(unknown), 401),
        (basic_auth(dataclasses.replace(key, public_key="x" * 300)), 401),
    ]
    for headers, status in cases:
        calls.clear()
        assert client.get(path, headers=headers).status_code == status
        assert len(calls) == 1, (headers, calls)
    # The whole given secret is compared with the whole stored one, right or wrong.
    stored = key.secret_key.encode()
    for given, status in [
        (key.secret_key, 200),
        ("0" * 32, 401),
        *((s, 401) for s in near_misses(key.secret_key).values()),
    ]:
        calls.clear()
        assert client.get(path, headers=basic_auth(key, secret=given)).status_code == status
        assert calls == [(given.encode(), stored)], given
    sentry = sentry_auth(key, secret=key.secret_key)
    calls.clear()
    response = client.post(
        f"/api/{seeded.project.id}/store/", data=store_body(uuid.uuid4().hex), headers=sentry
    )
    assert response.status_code == 200
    assert calls == [(key.secret_key.encode(), key.secret_key.encode())]


WEB_REQUESTS = [
    ("GET", "/api/0/projects/{pid}/", None),
    ("PUT", "/api/0/projects/{pid}/", {"name": "x"}),
    ("GET", "/api/0/projects/{pid}/groups/", None),
    ("DELETE", "/api/0/groups/{gid}/", None),
    ("GET", "/api/0/projects/999999/", None),
]


@pytest.mark.parametrize(("verb", "template", "body"), WEB_REQUESTS)
def test_unknown_key_and_wrong_secret_answer_identically(
    client: FlaskClient, seeded: Seeded, verb: str, template: str, body: t.Any
) -> None:
    path = template.format(pid=seeded.project.id, gid=seeded.group_ids[0])
    key = seeded.key
    wrong = "0" * 32
    unknown = dataclasses.replace(key, public_key="f" * 32)
    answers = [
        send(client, verb, path, headers, {}, body)
        for headers in (
            basic_auth(key, secret=wrong),
            basic_auth(unknown, secret=wrong),
            basic_auth(unknown),  # the right secret with an unknown public key
        )
    ]
    first = answers[0]
    assert first.status_code == 401
    for other in answers[1:]:
        assert other.status_code == first.status_code
        assert other.data == first.data
        assert list(other.headers.items()) == list(first.headers.items())


@pytest.mark.parametrize(("verb", "template", "body"), WEB_REQUESTS[:4])
def test_web_api_refuses_a_secret_one_character_off(
    app: Flask, client: FlaskClient, seeded: Seeded, verb: str, template: str, body: t.Any
) -> None:
    """The whole secret is checked: one of the right length that differs only in its last
    (or first, or middle) character is a 401 like any wrong secret, and changes nothing."""
    path = template.format(pid=seeded.project.id, gid=seeded.group_ids[0])
    before = snapshot(app, seeded)
    for name, secret in near_misses(seeded.key.secret_key).items():
        assert len(secret) == len(seeded.key.secret_key) and secret != seeded.key.secret_key
        response = send(client, verb, path, basic_auth(seeded.key, secret=secret), {}, body)
        assert response.status_code == 401, (name, response.data)
        assert response.json == INVALID_API_KEY
    assert changed_parts(before, snapshot(app, seeded)) == []
    # Control: the same request with the key's own secret goes through.
    response = send(client, verb, path, seeded.auth, {}, body)
    assert 200 <= response.status_code < 300, response.data


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("where", ["header", "query string"])
def test_ingest_unknown_key_and_wrong_secret_answer_identically(
    client: FlaskClient, seeded: Seeded, kind: str, where: str
) -> None:
    key = seeded.key
    answers = []
    for public, secret in [
        (key.public_key, "0" * 32),
        ("f" * 32, "0" * 32),
        ("f" * 32, key.secret_key),
    ]:
        headers = sentry_auth(public, secret=secret) if where == "header" else {}
        query = (
            {"sentry_key": public, "sentry_version": "7", "sentry_secret": secret}
            if where == "query string"
            else {}
        )
        answers.append(
            client.post(
                f"/api/{seeded.project.id}/{kind}/",
                data=BODIES[kind](uuid.uuid4().hex),
                headers=headers,
                query_string=query,
            )
        )
    first = answers[0]
    assert first.status_code == 401
    for other in answers[1:]:
        assert other.status_code == first.status_code
        assert other.data == first.data
        assert list(other.headers.items()) == list(first.headers.items())
