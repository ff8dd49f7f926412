"""Hostile input, named (issue 6): every case gets a clear 4xx JSON answer and leaves the
stored data exactly as it was. Runs on SQLite and PostgreSQL alike (PostgreSQL rejects
NUL characters and lone surrogates, so those must never reach it)."""

from __future__ import annotations

import base64
import dataclasses
import typing as t
import uuid
from datetime import datetime
from datetime import timezone

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from tests.helpers import basic_auth


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: str
    status: int
    body: bytes | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Send the project key's Basic credentials (False: only ``headers``).
    authenticated: bool = True


P = "/api/0/projects/1"
G = "/api/0/groups/1"
CASES = [
    # bodies
    Case("oversize body", "PUT", f"{P}/", 413, b'{"name": "' + b"x" * 2_000_000 + b'"}'),
    Case("deeply nested JSON", "PUT", f"{P}/", 400, b"[" * 50_000 + b"]" * 50_000),
    Case("deeply nested object", "PUT", f"{P}/", 400, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    Case("non-UTF-8 body", "PUT", f"{P}/", 400, b'{"name": "\xff\xfe"}'),
    Case("NUL in a JSON string", "PUT", f"{P}/", 400, b'{"name": "a\\u0000b"}'),
    Case("lone surrogate escape", "PUT", f"{P}/", 400, b'{"name": "\\ud800"}'),
    Case("NaN literal", "PUT", f"{P}/", 400, b'{"isPublic": NaN}'),
    Case("JSON array body", "PUT", f"{G}/", 400, b'[{"status": "resolved"}]'),
    Case("form body", "PUT", f"{G}/", 415, b"status=resolved", "application/x-www-form-urlencoded"),
    Case("unknown field", "PUT", f"{G}/", 400, b'{"status": "resolved", "owner": "x"}'),
    Case("note with NUL", "POST", f"{G}/notes/", 400, b'{"text": "\\u0000"}'),
    Case("huge note", "POST", f"{G}/notes/", 400, b'{"text": "' + b"n" * 20_000 + b'"}'),
    Case("bulk body wrong types", "PUT", f"{P}/groups/?id=1", 400, b'{"status": 1, "merge": "x"}'),
    # numbers
    Case("huge limit", "GET", f"{P}/groups/?limit=" + "9" * 5000, 200),
    Case("float limit", "GET", f"{P}/groups/?limit=1.5", 400),
    Case("zero per_page", "GET", f"{G}/events/?per_page=0", 400),
    Case("huge cursor value", "GET", f"{P}/groups/?cursor=" + "9" * 40 + ":0:0", 400),
    Case("huge cursor offset", "GET", f"{P}/groups/?cursor=1:99999999999:0", 400),
    Case("cursor with junk", "GET", f"{P}/groups/?cursor=1:0:0%3E", 400),
    Case("negative group id", "GET", "/api/0/groups/-1/", 404),
    Case("float group id", "GET", "/api/0/groups/1.5/", 404),
    Case("64-bit overflow id", "DELETE", "/api/0/groups/99999999999999999999999/", 404),
    Case("negative bulk id", "PUT", f"{P}/groups/?id=-1", 400, b'{"status": "resolved"}'),
    Case("float bulk id", "DELETE", f"{P}/groups/?id=1.5", 400),
    Case("overflow bulk id", "DELETE", f"{P}/groups/?id=" + "9" * 30, 400),
    Case("bad since", "GET", f"{P}/groups/?since=1e999", 400),
    Case("stats until before since", "GET", f"{P}/stats/?since=100&until=50", 400),
    # search
    Case(
        "SQL in free text",
        "GET",
        f"{P}/groups/?query=%27%3B%20DROP%20TABLE%20sentry_group%3B--",
        200,
    ),
    Case("SQL in tag value", "GET", f"{P}/groups/?query=level%3A%22x%27%20OR%201%3D1--%22", 200),
    Case("LIKE wildcards", "GET", f"{P}/groups/?query=%25_%25", 200),
    Case("NUL in query", "GET", f"{P}/groups/?query=a%00b", 400),
    Case("NUL in tag value", "GET", f"{P}/groups/?query=level%3Aa%00", 400),
    Case("NUL in tag key path", "GET", f"{P}/tags/a%00b/values/", 404),
    Case("NUL in release path", "GET", f"{P}/releases/a%00b/", 404),
    Case("overlong query", "GET", f"{P}/groups/?query=" + "a" * 5000, 400),
    Case("unterminated quote", "GET", f"{P}/groups/?query=release%3A%22abc", 400),
    Case("unknown is: value", "GET", f"{P}/groups/?query=is%3Aeverything", 400),
    Case(
        "SQL in bulk query",
        "PUT",
        f"{P}/groups/?query=%27%20OR%201%3D1--",
        200,
        b'{"status": "muted"}',
    ),
    # parameters
    Case("repeated status", "GET", f"{P}/groups/?status=resolved&status=unresolved", 400),
    Case("repeated cursor", "GET", f"{P}/groups/?cursor=1:0:0&cursor=2:0:0", 400),
    Case("limit and per_page disagree", "GET", f"{P}/groups/?limit=1&per_page=5", 400),
    Case("id[] on bulk update", "PUT", f"{P}/groups/?id[]=1", 400, b'{"status": "resolved"}'),
    Case("unknown bulk parameter", "DELETE", f"{P}/groups/?id=1&project=2", 400),
    Case("too many ids", "DELETE", f"{P}/groups/?" + "&".join(f"id={n}" for n in range(5000)), 400),
    # credentials
    Case(
        "Basic header not base64",
        "GET",
        f"{P}/",
        401,
        headers={"Authorization": "Basic ***"},
        authenticated=False,
    ),
    Case(
        "Basic credentials with NUL",
        "GET",
        f"{P}/",
        401,
        headers={"Authorization": "Basic " + base64.b64encode(b"a\x00b:c").decode()},
        authenticated=False,
    ),
    Case(
        "oversize Basic header",
        "GET",
        f"{P}/",
        401,
        headers={"Authorization": "Basic " + base64.b64encode(b"k" * 60_000 + b":s").decode()},
        authenticated=False,
    ),
    Case("oversize other header", "GET", f"{P}/", 200, headers={"X-Padding": "p" * 60_000}),
]


def snapshot(storage: Storage, project: Project) -> t.Any:
    from flask_sentry_api.pagination import Window

    groups = storage.list_groups(project.id, GroupQuery(), Window(None, 0, True, 0, 1000))
    return (
        storage.get_project(project.id),
        [dataclasses.replace(g, score=0) for g in groups],
        [storage.list_events(g.id, Window(None, 0, True, 0, 1000)) for g in groups],
        [storage.list_notes(g.id, Window(None, 0, True, 0, 1000)) for g in groups],
    )


@pytest.fixture
def seeded(storage: Storage, project: Project) -> None:
    for n in range(3):
        storage.save_event(
            project.id,
            NewEvent(
                event_id=uuid.uuid4().hex,
                group_hash=f"h{n}",
                timestamp=datetime(2026, 5, 1, 12, n, tzinfo=timezone.utc),
                message=f"error {n}",
                title=f"ValueError: {n}",
                tags=(("level", "error"),),
            ),
        )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(
    client: FlaskClient,
    storage: Storage,
    project: Project,
    key: ProjectKey,
    seeded: None,
    case: Case,
) -> None:
    before = snapshot(storage, project)
    headers = {**(basic_auth(key) if case.authenticated else {}), **case.headers}
    if case.content_type and case.body is not None:
        headers["Content-Type"] = case.content_type
    response = client.open(case.url, method=case.method, headers=headers, data=case.body)
    assert response.status_code == case.status, response.data[:300]
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    if case.status >= 400:
        assert body and all(isinstance(v, (str, list)) for v in body.values()), body
        assert "Traceback" not in response.get_data(as_text=True)
    if case.method != "GET" or case.status >= 400:
        # Rejected, or (SQL in a bulk query) just free text that matches nothing.
        assert snapshot(storage, project) == before
