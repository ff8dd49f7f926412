"""Tags (issue 5): a group's keys and top values, value lists, deleting a key, and what
reading them costs (aggregates kept at ingestion, not a scan of events)."""

from __future__ import annotations

import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from tests.helpers import captured_statements

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def save(
    storage: Storage,
    project: Project,
    tags: dict[str, str],
    group_hash: str = "g",
    minutes: int = 0,
) -> None:
    storage.save_event(
        project.id,
        NewEvent(
            event_id=uuid.uuid4().hex,
            group_hash=group_hash,
            timestamp=T0 + timedelta(minutes=minutes),
            message="m",
            title="m",
            tags=tuple(tags.items()),
        ),
    )


@pytest.fixture
def tagged(storage: Storage, project: Project) -> None:
    for n in range(6):
        save(
            storage,
            project,
            {"browser": "firefox" if n < 4 else "chrome", "user": f"id:{n % 3}"},
            minutes=n,
        )
    save(storage, project, {"browser": "safari"}, group_hash="other")


def test_group_tags(client: FlaskClient, auth: dict[str, str], tagged: None) -> None:
    body = client.get("/api/0/groups/1/tags/", headers=auth).get_json()
    by_key = {tag["key"]: tag for tag in body}
    assert set(by_key) == {"browser", "user"}
    browser = by_key["browser"]
    assert browser["name"] == "Browser"
    assert browser["uniqueValues"] == 2
    assert browser["totalValues"] == 6
    assert [(v["value"], v["count"]) for v in browser["topValues"]] == [
        ("firefox", 4),
        ("chrome", 2),
    ]
    assert browser["topValues"][0]["firstSeen"] == "2026-03-01T12:00:00Z"
    assert browser["topValues"][0]["lastSeen"] == "2026-03-01T12:03:00Z"
    assert by_key["user"]["uniqueValues"] == 3


def test_group_and_project_tag_values(
    client: FlaskClient, project: Project, auth: dict[str, str], tagged: None
) -> None:
    group_values = client.get("/api/0/groups/1/tags/browser/values/", headers=auth).get_json()
    assert [(v["value"], v["count"]) for v in group_values] == [("firefox", 4), ("chrome", 2)]
    assert set(group_values[0]) == {"key", "name", "value", "count", "firstSeen", "lastSeen"}
    project_values = client.get(
        f"/api/0/projects/{project.id}/tags/browser/values/", headers=auth
    ).get_json()
    assert [(v["value"], v["count"]) for v in project_values] == [
        ("firefox", 4),
        ("chrome", 2),
        ("safari", 1),
    ]


def test_tag_values_paginate_with_ties(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    for n in range(7):
        save(storage, project, {"host": f"web{n}"})  # seven values seen once each: one long tie
    url = f"/api/0/projects/{project.id}/tags/host/values/?per_page=3"
    seen: list[str] = []
    for _ in range(5):
        response = client.get(url, headers=auth)
        seen += [v["value"] for v in response.get_json()]
        next_link = response.headers["Link"].split(", ")[1]
        if 'results="false"' in next_link:
            break
        url = next_link.split(">")[0].lstrip("<")
    assert sorted(seen) == [f"web{n}" for n in range(7)]
    assert len(seen) == 7


def test_unknown_key_is_404(
    client: FlaskClient, project: Project, auth: dict[str, str], tagged: None
) -> None:
    assert client.get("/api/0/groups/1/tags/nope/values/", headers=auth).status_code == 404
    assert (
        client.get(f"/api/0/projects/{project.id}/tags/nope/values/", headers=auth).status_code
        == 404
    )
    assert (
        client.get(
            f"/api/0/projects/{project.id}/tags/{'x' * 40}/values/", headers=auth
        ).status_code
        == 404
    )


def test_delete_tag_key(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage, tagged: None
) -> None:
    assert (
        client.delete(f"/api/0/projects/{project.id}/tags/browser/", headers=auth).status_code
        == 204
    )
    assert (
        client.get(f"/api/0/projects/{project.id}/tags/browser/values/", headers=auth).status_code
        == 404
    )
    keys = [tag["key"] for tag in client.get("/api/0/groups/1/tags/", headers=auth).get_json()]
    assert keys == ["user"]
    assert (
        client.delete(f"/api/0/projects/{project.id}/tags/browser/", headers=auth).status_code
        == 404
    )


def test_scoping(
    client: FlaskClient,
    project: Project,
    other_auth: dict[str, str],
    auth: dict[str, str],
    tagged: None,
) -> None:
    assert client.get("/api/0/groups/1/tags/", headers=other_auth).status_code == 403
    assert client.get("/api/0/groups/1/tags/browser/values/", headers=other_auth).status_code == 403
    assert (
        client.get(
            f"/api/0/projects/{project.id}/tags/browser/values/", headers=other_auth
        ).status_code
        == 403
    )
    assert (
        client.delete(f"/api/0/projects/{project.id}/tags/browser/", headers=other_auth).status_code
        == 403
    )
    assert (
        client.get(f"/api/0/projects/{project.id}/tags/browser/values/", headers=auth).status_code
        == 200
    )


def statements_during(app: Flask, action: t.Callable[[], object]) -> list[str]:
    return [statement for statement, _ in captured_statements(app, action)]


@pytest.mark.parametrize("events", [3, 300])
def test_reading_tags_and_stats_costs_the_same_whatever_the_event_count(
    app: Flask,
    client: FlaskClient,
    project: Project,
    auth: dict[str, str],
    storage: Storage,
    events: int,
) -> None:
    for n in range(events):
        save(storage, project, {"browser": f"b{n % 3}", "user": f"id:{n % 5}"}, minutes=n % 60)
    tag_reads = statements_during(app, lambda: storage.group_tag_keys(1, 10))
    stats_reads = statements_during(app, lambda: storage.project_stats(project.id, 3600, 0, 2**40))
    group_stats_reads = statements_during(app, lambda: storage.group_stats([1], 3600, 0, 2**40))
    counts = (len(tag_reads), len(stats_reads), len(group_stats_reads))
    print(f"\n{events} events: queries for group tags, project stats, group stats = {counts}")
    assert len(tag_reads) == 2
    assert len(stats_reads) == 1 and len(group_stats_reads) == 1
    for statement in tag_reads + stats_reads + group_stats_reads:
        assert "sentry_event" not in statement  # aggregates, never a scan of events
    whole_request = statements_during(
        app, lambda: client.get("/api/0/groups/1/tags/", headers=auth)
    )
    assert len(whole_request) <= 5  # key, group, project, and the two tag reads
