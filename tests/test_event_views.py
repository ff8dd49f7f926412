"""A group's events, its latest event and one event with its neighbours (SPEC section 7.5),
over the HTTP test client."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from tests.helpers import DATETIME_RE
from tests.helpers import FORBIDDEN
from tests.helpers import HUGE_IDS
from tests.helpers import NOT_FOUND
from tests.helpers import UTC
from tests.helpers import add_event


@pytest.fixture
def events(storage, project):
    """Three events of one group, in time order, with another group's event among them."""
    first = add_event(storage, project, "a", 1420837500).event
    add_event(storage, project, "b", 1420837505)
    second = add_event(storage, project, "a", 1420837510).event
    third = add_event(storage, project, "a", 1420837520).event
    return first, second, third


def event_ids(response):
    assert response.status_code == 200, response.get_json()
    return [int(event["id"]) for event in response.get_json()]


def test_list_newest_first(client, auth, events):
    first, second, third = events
    response = client.get(f"/api/0/groups/{first.group_id}/events/", headers=auth)
    assert event_ids(response) == [third.id, second.id, first.id]


def test_list_paginated_with_link(client, auth, storage, project):
    made = [add_event(storage, project, "a", 1420837500 + i).event.id for i in range(5)]
    group_id = storage.get_event(made[0]).group_id
    url = f"/api/0/groups/{group_id}/events/?per_page=2"
    base = f"http://testserver.local/api/0/groups/{group_id}/events/?per_page=2&cursor="
    response = client.get(url, headers=auth)
    assert event_ids(response) == [made[4], made[3]]
    assert response.headers["Link"] == (
        f'<{base}{made[4]}:0:1>; rel="previous"; results="false"; cursor="{made[4]}:0:1", '
        f'<{base}{made[2]}:0:0>; rel="next"; results="true"; cursor="{made[2]}:0:0"'
    )
    response = client.get(f"{base}{made[2]}:0:0", headers=auth)
    assert event_ids(response) == [made[2], made[1]]
    response = client.get(f"{base}{made[0]}:0:0", headers=auth)
    assert event_ids(response) == [made[0]]
    assert 'rel="next"; results="false"' in response.headers["Link"]
    response = client.get(f"{base}{made[2]}:0:1", headers=auth)
    assert event_ids(response) == [made[4], made[3]]
    response = client.get(f"/api/0/groups/{group_id}/events/?limit=3", headers=auth)
    assert event_ids(response) == made[:1:-1]


@pytest.mark.parametrize(
    "params", ["per_page=0", "per_page=-1", "per_page=x", "limit=0", "cursor=1:0", "cursor=a:0:0"]
)
def test_list_bad_paging_parameters(client, auth, events, params):
    response = client.get(f"/api/0/groups/{events[0].group_id}/events/?{params}", headers=auth)
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    if params.startswith("cursor"):
        assert response.get_json() == {"detail": "Invalid cursor parameter."}


def test_list_page_size_is_clamped(client, auth, storage, project):
    group_id = add_event(storage, project, "a", 1420837000).group.id
    for i in range(1, 101):
        add_event(storage, project, "a", 1420837000 + i)
    url = f"/api/0/groups/{group_id}/events/"
    assert len(event_ids(client.get(url, headers=auth))) == 100
    assert len(event_ids(client.get(f"{url}?per_page=1000", headers=auth))) == 100


def test_latest_is_the_newest(client, auth, events):
    first, second, third = events
    response = client.get(f"/api/0/groups/{first.group_id}/events/latest/", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == str(third.id) and body["eventID"] == third.event_id
    assert (body["previousEventID"], body["nextEventID"]) == (str(second.id), None)


def test_latest_of_a_group_without_events_is_404(client, auth, storage, events):
    group_id = events[0].group_id
    Event = storage.models.Event
    storage.session.execute(sa.delete(Event).where(Event.group_id == group_id))
    storage.session.commit()
    response = client.get(f"/api/0/groups/{group_id}/events/latest/", headers=auth)
    assert response.status_code == 404
    assert response.content_type == "application/json"
    assert list(response.get_json()) == ["detail"]


def test_event_neighbours(client, auth, events):
    first, second, third = events
    expected = [
        (first, None, str(second.id)),
        (second, str(first.id), str(third.id)),
        (third, str(second.id), None),
    ]
    for event, previous, following in expected:
        body = client.get(f"/api/0/events/{event.id}/", headers=auth).get_json()
        assert body["id"] == str(event.id)
        assert (body["previousEventID"], body["nextEventID"]) == (previous, following)


def test_event_object_fields(client, auth, storage, project):
    data = {
        "extra": {"answer": 42},
        "contexts": {"os": {"name": "Linux"}},
        "sdk": {"name": "sentry.python", "version": "2.0.0"},
        "fingerprint": ["{{ default }}", "db"],
        "entries": [{"type": "message", "data": {"message": "Disk full"}}],
    }
    event = add_event(
        storage,
        project,
        "a",
        datetime(2015, 1, 9, 21, 6, 30, 125999, tzinfo=UTC),
        event_id="a" * 32,
        message="Disk full",
        title="Disk full",
        culprit="app.views in index",
        level="warning",
        logger="root",
        platform="python",
        release="1.0",
        environment="prod",
        user={"id": "1", "email": "a@example.com"},
        tags=(("level", "warning"), ("release", "1.0")),
        data=data,
    ).event
    expected = {
        "id": str(event.id),
        "eventID": "a" * 32,
        "groupID": str(event.group_id),
        "message": "Disk full",
        "title": "Disk full",
        "culprit": "app.views in index",
        "level": "warning",
        "logger": "root",
        "platform": "python",
        "dateCreated": "2015-01-09T21:06:30.125Z",
        "release": "1.0",
        "environment": "prod",
        "user": {"id": "1", "email": "a@example.com"},
        "tags": [{"key": "level", "value": "warning"}, {"key": "release", "value": "1.0"}],
        "context": {"answer": 42},
        "contexts": {"os": {"name": "Linux"}},
        "sdk": {"name": "sentry.python", "version": "2.0.0"},
        "fingerprints": ["{{ default }}", "db"],
        "entries": [{"type": "message", "data": {"message": "Disk full"}}],
    }
    detail = client.get(f"/api/0/events/{event.id}/", headers=auth).get_json()
    latest = client.get(f"/api/0/groups/{event.group_id}/events/latest/", headers=auth).get_json()
    (listed,) = client.get(f"/api/0/groups/{event.group_id}/events/", headers=auth).get_json()
    for body in (detail, latest, listed):
        assert {name: body.get(name) for name in expected} == expected
        assert DATETIME_RE.match(body["dateReceived"])
    assert (detail["previousEventID"], detail["nextEventID"]) == (None, None)
    assert detail == latest


def test_event_without_optional_data(client, auth, storage, project):
    event = add_event(storage, project).event
    body = client.get(f"/api/0/events/{event.id}/", headers=auth).get_json()
    assert body["user"] is None and body["tags"] == [] and body["entries"] == []
    assert body["context"] == {} and body["fingerprints"] == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/0/events/{event}/",
        "/api/0/groups/{group}/events/",
        "/api/0/groups/{group}/events/latest/",
    ],
)
def test_scoping(client, auth, other_auth, events, url):
    url = url.format(event=events[0].id, group=events[0].group_id)
    response = client.get(url, headers=other_auth)
    assert (response.status_code, response.get_json()) == (403, FORBIDDEN)
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.get_json() == {"detail": "Authentication credentials were not provided."}
    missing = client.get(
        url.replace(f"/{events[0].id}/", "/999999/").replace(f"/{events[0].group_id}/", "/999999/"),
        headers=auth,
    )
    assert (missing.status_code, missing.get_json()) == (404, NOT_FOUND)


# Ids no table can hold: 32-bit on PostgreSQL (INTEGER columns), 64-bit on SQLite.


@pytest.mark.parametrize("event_id", HUGE_IDS)
def test_huge_event_id_is_404(client, auth, event_id):
    response = client.get(f"/api/0/events/{event_id}/", headers=auth)
    assert (response.status_code, response.get_json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("is_prev", ["0", "1"])
def test_cursor_beyond_32_bits(client, auth, events, is_prev):
    url = f"/api/0/groups/{events[0].group_id}/events/?cursor={2**31}:0:{is_prev}"
    response = client.get(url, headers=auth)
    assert event_ids(response) == ([e.id for e in events[::-1]] if is_prev == "0" else [])
