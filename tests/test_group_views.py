"""The group list (search, sorts, stats, fields, paging limits), bulk PUT/DELETE and one group
over the HTTP test client, checked against SPEC sections 2, 3, 5 and 7."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from flask_sentry_api import get_state
from flask_sentry_api.pagination import Window
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import GroupChanges
from flask_sentry_api.storage import GroupQuery
from tests.helpers import FORBIDDEN
from tests.helpers import UTC
from tests.helpers import add_event
from tests.helpers import add_group
from tests.helpers import basic_auth
from tests.helpers import make_app

GROUPS = "/api/0/projects/{}/groups/"


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [int(group["id"]) for group in response.get_json()]


def statuses(storage, *group_ids):
    return [storage.get_group(group_id).status for group_id in group_ids]


@pytest.fixture
def three(storage, project):
    """An unresolved, a resolved and a muted group, newest first in that order."""
    return (
        add_group(storage, project, "u", 1420837590),
        add_group(storage, project, "r", 1420837580, status="resolved"),
        add_group(storage, project, "m", 1420837570, status="muted"),
    )


# -- GET: status filters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", "u"),
        ("?query=", "urm"),
        ("?status=resolved", "r"),
        ("?status=muted", "m"),
        ("?query=is:resolved", "r"),
        ("?query=is:ignored", "m"),
        ("?status=resolved&query=is:muted", "m"),
        ("?status=resolved&query=", "r"),
        ("?status=", "u"),
    ],
)
def test_list_status_filter(client, auth, project, three, params, expected):
    by_name = dict(zip("urm", three, strict=True))
    response = client.get(GROUPS.format(project.id) + params, headers=auth)
    assert ids(response) == [by_name[name] for name in expected]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ("query=is:bogus", "query"),
        ("status=bogus", "status"),
        ("status=ignored&query=is:nope", "query"),
        ("sort=oldest", "sort"),
        ("statsPeriod=7d", "statsPeriod"),
        ("since=yesterday", "since"),
        ("until=1e999", "until"),
    ],
)
def test_list_bad_parameter_is_400_naming_it(client, auth, project, params, param):
    response = client.get(f"{GROUPS.format(project.id)}?{params}", headers=auth)
    assert response.status_code == 400
    assert list(response.get_json()) == ["detail"]
    assert f'"{param}"' in response.get_json()["detail"]


# -- GET: search -----------------------------------------------------------------------------


@pytest.fixture
def searchable(storage, project):
    tags = (("level", "error"), ("release", "1.0"), ("user", "id:1"))
    other_tags = (("level", "warning"), ("release", "2.0 beta"), ("server_name", "web 1"))
    made = {
        "t": add_group(storage, project, "t", 60, title="TypeError: Boom", tags=tags),
        "m": add_group(storage, project, "m", 50, message="Disk FULL", tags=other_tags),
        "c": add_group(storage, project, "c", 40, culprit="app.views in index"),
        "p": add_group(storage, project, "p", 30, title="100% done"),
        "n": add_group(storage, project, "n", 20, title="100 done"),
        "u": add_group(storage, project, "u", 10, title="a_b"),
        "x": add_group(storage, project, "x", 5, title="axb"),
    }
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level:error", "t"),
        ("level:warning", "m"),
        ('release:"1.0"', "t"),
        ("release:1.0", "t"),
        ("user:id:1", "t"),
        ("user:id:2", ""),
        ('release:"2.0 beta"', "m"),
        ('server_name:"web 1"', "m"),
        ("level:error release:2.0", ""),
        # free text: case-insensitive on title, message and culprit
        ("boom", "t"),
        ("typeerror: BOOM", "t"),
        ("disk full", "m"),
        ("VIEWS IN", "c"),
        ("title", "mc"),
        ("level:error boom", "t"),
        ("level:error disk", ""),
        # LIKE wildcards are literal
        ("%", "p"),
        ("100%", "p"),
        ("a_b", "u"),
        ("nowhere", ""),
    ],
)
def test_list_search(client, auth, project, searchable, query, expected):
    params = {"query": query}
    response = client.get(GROUPS.format(project.id), query_string=params, headers=auth)
    assert ids(response) == [searchable[name] for name in expected]


TIMES = (1420837533, 1420837590, 1420840000)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("since=1420837590", [2, 1]),
        ("until=1420837590", [1, 0]),
        ("since=1420837534&until=1420839999", [1]),
        ("since=2015-01-09T21:06:30Z", [2, 1]),
        ("until=2015-01-09T21:06:29.999Z", [0]),
        ("since=2015-01-09T22:06:30%2B01:00&until=2015-01-09T21:06:30Z", [1]),
        ("since=1420840001", []),
    ],
)
def test_list_since_until(client, auth, storage, project, params, expected):
    made = [add_group(storage, project, f"g{i}", ts) for i, ts in enumerate(TIMES)]
    response = client.get(f"{GROUPS.format(project.id)}?{params}", headers=auth)
    assert ids(response) == [made[i] for i in expected]


# -- GET: sorts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [(None, "ABC"), ("date", "ABC"), ("new", "CBA"), ("freq", "BCA"), ("priority", "BAC")],
)
def test_list_sort_orders(client, auth, storage, project, sort, expected):
    base = 1_600_000_000
    # A: first 1000, last 5000, 2 events -> priority log(2) * 600 + 5000 ~ 5416
    made = {"A": add_group(storage, project, "A", base + 1000)}
    add_event(storage, project, "A", base + 5000)
    # B: first 2000, last 3900, 20 events -> priority log(20) * 600 + 3900 ~ 5697
    for i in range(20):
        made["B"] = add_event(storage, project, "B", base + 2000 + i * 100).group.id
    # C: first = last = 3000, 3 events -> priority log(3) * 600 + 3000 ~ 3659
    for _ in range(3):
        made["C"] = add_event(storage, project, "C", base + 3000).group.id
    params = {"sort": sort} if sort else {}
    response = client.get(GROUPS.format(project.id), query_string=params, headers=auth)
    assert ids(response) == [made[name] for name in expected]


@pytest.mark.parametrize("sort", ["date", "new", "freq", "priority"])
def test_list_sort_ties_broken_by_id_descending(client, auth, storage, project, sort):
    made = [add_group(storage, project, f"g{i}", 1420837590) for i in range(3)]
    response = client.get(f"{GROUPS.format(project.id)}?sort={sort}", headers=auth)
    assert ids(response) == made[::-1]


# -- GET: stats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "size", "count"), [(None, 3600, 24), ("24h", 3600, 24), ("14d", 86400, 14)]
)
def test_list_stats_series(client, auth, storage, project, period, size, count):
    now = int(time.time())
    offsets = [0, size, 5 * size, 5 * size]
    for offset in offsets:
        add_event(storage, project, "g", now - offset)
    before = int(time.time())
    params = {"statsPeriod": period} if period else {}
    response = client.get(GROUPS.format(project.id), query_string=params, headers=auth)
    after = int(time.time())
    (group,) = response.get_json()
    series = group["stats"][period or "24h"]
    assert list(group["stats"]) == [period or "24h"]
    assert len(series) == count
    assert [b for b, _ in series] == [series[0][0] + i * size for i in range(count)]
    last = series[-1][0]
    assert last % size == 0 and last <= after and before < last + size
    expected: dict[int, int] = {}
    for offset in offsets:
        bucket = (now - offset) - (now - offset) % size
        expected[bucket] = expected.get(bucket, 0) + 1
    assert series == [[b, expected.get(b, 0)] for b, _ in series]
    assert sum(c for _, c in series) == 4


def test_list_empty_stats_period_omits_stats(client, auth, storage, project):
    add_group(storage, project)
    response = client.get(f"{GROUPS.format(project.id)}?statsPeriod=", headers=auth)
    assert "stats" not in response.get_json()[0]


# -- the group object ------------------------------------------------------------------------


def test_group_object_fields(client, auth, storage, project):
    fields = {
        "title": "TypeError: boom",
        "culprit": "app.views in index",
        "logger": "root",
        "type": "error",
        "metadata": {"type": "TypeError", "value": "boom"},
    }
    first = datetime(2015, 1, 9, 21, 6, 30, 123456, tzinfo=UTC)
    add_event(storage, project, "g", first, tags=(("user", "id:1"),), **fields)
    add_event(storage, project, "g", 1420837600, tags=(("user", "id:2"),), **fields)
    group_id = add_event(storage, project, "g", 1420837599, tags=(("user", "id:1"),), **fields)
    group_id = group_id.group.id
    expected = {
        "id": str(group_id),
        "shortId": f"WEB-{group_id}",
        "title": "TypeError: boom",
        "culprit": "app.views in index",
        "permalink": f"http://testserver.local/api/0/groups/{group_id}/",
        "level": "error",
        "logger": "root",
        "status": "unresolved",
        "isPublic": False,
        "isBookmarked": False,
        "hasSeen": False,
        "count": "3",
        "userCount": 2,
        "firstSeen": "2015-01-09T21:06:30.123Z",
        "lastSeen": "2015-01-09T21:06:40Z",
        "project": {"id": str(project.id), "name": "Web", "slug": "web"},
        "metadata": {"type": "TypeError", "value": "boom"},
        "type": "error",
        "numComments": 0,
    }
    listed = client.get(GROUPS.format(project.id), headers=auth).get_json()[0]
    detail = client.get(f"/api/0/groups/{group_id}/", headers=auth).get_json()
    for body in (listed, detail):
        assert {name: body.get(name) for name in expected} == expected
        assert type(body["userCount"]) is int and type(body["numComments"]) is int
        assert len(body["stats"]["24h"]) == 24


# -- bulk PUT --------------------------------------------------------------------------------


def put(client, auth, project, params="", body=None):
    return client.put(f"{GROUPS.format(project.id)}{params}", json=body, headers=auth)


def test_bulk_put_status_without_ids_changes_the_whole_project(
    client, auth, storage, project, three
):
    response = put(client, auth, project, "", {"status": "resolved"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "resolved"}
    assert statuses(storage, *three) == ["resolved"] * 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("?status=unresolved", ["resolved", "resolved", "muted"]),
        ("?query=is:muted", ["unresolved", "resolved", "resolved"]),
        ("?query=title%20m", ["unresolved", "resolved", "resolved"]),
        ("?status=muted&query=is:unresolved", ["resolved", "resolved", "muted"]),
    ],
)
def test_bulk_put_filters_restrict(client, auth, storage, project, three, params, expected):
    assert put(client, auth, project, params, {"status": "resolved"}).status_code == 200
    assert statuses(storage, *three) == expected


def test_bulk_put_ids_select_only_those(client, auth, storage, project, three):
    u, r, m = three
    response = put(client, auth, project, f"?id={u}&id={m}", {"status": "ignored"})
    assert response.get_json() == {"status": "muted"}
    assert statuses(storage, u, r, m) == ["muted", "resolved", "muted"]


def test_bulk_put_other_projects_ids_are_204(client, auth, storage, project, other_project):
    mine = add_group(storage, project, "a")
    theirs = add_group(storage, other_project, "a")
    response = put(client, auth, project, f"?id={theirs}", {"status": "resolved"})
    assert response.status_code == 204 and response.data == b""
    assert statuses(storage, mine, theirs) == ["unresolved", "unresolved"]


@pytest.mark.parametrize(
    "params", ["?id[]={g}", "?id={g}&foo=1", "?sort=date", "?cursor=", "?id={g}&limit=1"]
)
def test_bulk_put_unknown_parameter_is_400(client, auth, storage, project, params):
    group = add_group(storage, project)
    response = put(client, auth, project, params.format(g=group), {"status": "resolved"})
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    assert statuses(storage, group) == ["unresolved"]


@pytest.mark.parametrize(
    "body",
    [
        {"isBookmarked": True},
        {"hasSeen": True},
        {"isPublic": False},
        {"merge": True},
        {"status": "resolved", "isBookmarked": True},
    ],
)
def test_bulk_put_flags_need_ids(client, auth, storage, project, body):
    group = add_group(storage, project)
    before = storage.get_group(group)
    response = put(client, auth, project, "", body)
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    assert storage.get_group(group) == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("1", True), ("0", False), ("true", True), ("false", False)],
)
@pytest.mark.parametrize(
    ("name", "attribute"),
    [("isBookmarked", "is_bookmarked"), ("hasSeen", "has_seen"), ("isPublic", "is_public")],
)
def test_bulk_put_booleans(client, auth, storage, project, name, attribute, value, expected):
    group = add_group(storage, project)
    storage.update_groups(project.id, GroupQuery(), GroupChanges(**{attribute: not expected}))
    response = put(client, auth, project, f"?id={group}", {name: value})
    assert response.status_code == 200
    assert response.get_json() == {name: expected}
    assert getattr(storage.get_group(group), attribute) is expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "closed"}, "status"),
        ({"status": 1}, "status"),
        ({"isBookmarked": "maybe"}, "isBookmarked"),
        ({"status": "resolved", "assignedTo": "me"}, "assignedTo"),
        ({"status": "resolved", "hasSeen": "yes"}, "hasSeen"),
    ],
)
def test_bulk_put_bad_body_is_a_field_error(client, auth, storage, project, body, field):
    group = add_group(storage, project)
    response = put(client, auth, project, f"?id={group}", body)
    assert response.status_code == 400
    assert list(response.get_json()) == [field]
    assert statuses(storage, group) == ["unresolved"]


def test_bulk_put_resolving_stamps_resolved_at_only_once(client, auth, storage, project):
    old = add_group(storage, project, "old", status="resolved")
    new = add_group(storage, project, "new")
    stamped = storage.get_group(old).resolved_at
    assert stamped is not None and storage.get_group(new).resolved_at is None
    time.sleep(0.01)
    assert put(client, auth, project, "", {"status": "resolved"}).status_code == 200
    assert storage.get_group(old).resolved_at == stamped
    assert storage.get_group(new).resolved_at is not None
    assert storage.get_group(new).resolved_at > stamped
    assert put(client, auth, project, "", {"status": "unresolved"}).status_code == 200
    assert [storage.get_group(g).resolved_at for g in (old, new)] == [None, None]


def test_bulk_put_merge(client, auth, storage, project):
    small = add_group(storage, project, "small", 1420837000)
    for ts in (1420837100, 1420837200, 1420837300):
        big = add_event(storage, project, "big", ts).group.id
    for ts in (1420837400, 1420837500):
        mid = add_event(storage, project, "mid", ts).group.id
    response = put(client, auth, project, f"?id={small}&id={big}&id={mid}", {"merge": True})
    assert response.status_code == 200
    body = response.get_json()
    assert body["merge"]["parent"] == str(big)
    assert sorted(body["merge"]["children"]) == sorted([str(small), str(mid)])
    assert storage.get_group(small) is None and storage.get_group(mid) is None
    parent = client.get(f"/api/0/groups/{big}/", headers=auth).get_json()
    assert parent["count"] == "6"
    assert (parent["firstSeen"], parent["lastSeen"]) == (
        "2015-01-09T20:56:40Z",
        "2015-01-09T21:05:00Z",
    )
    events = client.get(f"/api/0/groups/{big}/events/", headers=auth).get_json()
    assert len(events) == 6 and {e["groupID"] for e in events} == {str(big)}


@pytest.mark.parametrize("params", ["?id={a}", "?id={a}&id={a}"])
def test_bulk_put_merge_needs_two_ids(client, auth, storage, project, params):
    a = add_group(storage, project, "a")
    add_group(storage, project, "b")
    response = put(client, auth, project, params.format(a=a), {"merge": True})
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    assert len(ids(client.get(GROUPS.format(project.id), headers=auth))) == 2


@pytest.mark.parametrize("bad", ["abc", "1.5", "-1", "", "0x1", "99999999999999999999"])
def test_bulk_non_integer_id_is_400(client, auth, storage, project, bad):
    group = add_group(storage, project)
    for method in (client.put, client.delete):
        response = method(
            f"{GROUPS.format(project.id)}?id={group}&id={bad}",
            json={"status": "resolved"},
            headers=auth,
        )
        assert response.status_code == 400 and '"id"' in response.get_json()["detail"]
    assert statuses(storage, group) == ["unresolved"]


def test_bulk_too_many_ids_is_400():
    app = make_app({"SENTRY_API_MAX_BULK_IDS": 3})
    try:
        with app.app_context():
            storage = get_state(app).storage
            project = storage.create_project("Web")
            auth = basic_auth(storage.create_key(project.id, ROLE_API))
            made = [add_group(storage, project, f"g{i}") for i in range(4)]
        client, url = app.test_client(), GROUPS.format(project.id)
        four = url + "?" + "&".join(f"id={g}" for g in made)
        for method in (client.put, client.delete):
            response = method(four, json={"status": "resolved"}, headers=auth)
            assert response.status_code == 400 and '"id"' in response.get_json()["detail"]
        with app.app_context():
            assert statuses(storage, *made) == ["unresolved"] * 4
        three = url + "?" + "&".join(f"id={g}" for g in made[:3])
        assert client.put(three, json={"status": "resolved"}, headers=auth).status_code == 200
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].session.remove()
            app.extensions["sqlalchemy"].drop_all()
            app.extensions["sqlalchemy"].engine.dispose()


# -- bulk DELETE -----------------------------------------------------------------------------


def test_bulk_delete(client, auth, storage, project, other_project):
    a, b = add_group(storage, project, "a"), add_group(storage, project, "b")
    event = add_event(storage, project, "a").event.id
    storage.create_note(a, "hi")
    theirs = add_group(storage, other_project, "a")
    url = GROUPS.format(project.id)
    assert client.delete(url, headers=auth).status_code == 400
    assert client.delete(f"{url}?status=unresolved", headers=auth).status_code == 400
    response = client.delete(f"{url}?id={a}&id={theirs}", headers=auth)
    assert response.status_code == 204 and response.data == b""
    assert storage.get_group(a) is None and storage.get_event(event) is None
    window = Window(op=None, value=0, descending=True, offset=0, limit=10)
    assert storage.list_notes(a, window) == []
    assert storage.get_group(b) is not None and storage.get_group(theirs) is not None


@pytest.mark.parametrize("params", ["?id[]={g}", "?id={g}&foo=bar", "?id={g}&cursor="])
def test_bulk_delete_unknown_parameter_is_400(client, auth, storage, project, params):
    group = add_group(storage, project)
    response = client.delete(GROUPS.format(project.id) + params.format(g=group), headers=auth)
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]
    assert storage.get_group(group) is not None


# -- scoping and ids ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_group_list_scoping(client, auth, other_auth, storage, project, method):
    group = add_group(storage, project)
    # Another project's groups are a 403; a project that does not exist, a 404 (SPEC §3).
    for url, headers, answer in [
        (GROUPS.format(project.id), other_auth, (403, FORBIDDEN)),
        (GROUPS.format(999999), auth, (404, {"detail": "Not found"})),
    ]:
        response = getattr(client, method)(
            f"{url}?id={group}", json={"status": "resolved"}, headers=headers
        )
        assert (response.status_code, response.get_json()) == answer
    assert statuses(storage, group) == ["unresolved"]


@pytest.mark.parametrize("method", ["put", "delete"])
def test_bulk_id_beyond_32_bits_selects_nothing(client, auth, storage, project, method):
    group = add_group(storage, project)
    url = f"{GROUPS.format(project.id)}?id={2**31}"
    response = getattr(client, method)(url, json={"status": "resolved"}, headers=auth)
    assert response.status_code == 204
    assert statuses(storage, group) == ["unresolved"]
