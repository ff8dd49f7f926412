"""The group list's ``Link`` header (SPEC section 5): the docs' worked example and walk over
the test client, the URL it is built from, full walks both ways, and the same links read
by the real ``requests`` library from a live HTTP server."""

from __future__ import annotations

import re

import pytest
import requests

from tests.helpers import add_event
from tests.helpers import add_group

A_SEEN, B_SEEN, C_SEEN = 1420837590, 1420837533, 1420837600
GROUPS = "/api/0/projects/{}/groups/"
BASE = "http://testserver.local/api/0/projects/1/groups/"
LINK_RE = re.compile(r'<([^<>]*)>; rel="(\w+)"; results="(true|false)"; cursor="([^"]*)"')


def link(base, rel, cursor, results):
    flag = "true" if results else "false"
    return f'<{base}{cursor}>; rel="{rel}"; results="{flag}"; cursor="{cursor}"'


def header(base, prev, prev_results, next_, next_results):
    return (
        f"{link(base, 'previous', prev, prev_results)}, {link(base, 'next', next_, next_results)}"
    )


def page(client, auth, url):
    """(group ids, {rel: (url, results, cursor)}) of one page; both links must be there."""
    response = client.get(url, headers=auth)
    assert response.status_code == 200, response.get_json()
    found = LINK_RE.findall(response.headers["Link"])
    assert [rel for _, rel, _, _ in found] == ["previous", "next"]
    assert response.headers["Link"] == ", ".join(
        f'<{u}>; rel="{rel}"; results="{results}"; cursor="{cursor}"'
        for u, rel, results, cursor in found
    )
    links = {rel: (u, results == "true", cursor) for u, rel, results, cursor in found}
    for u, _, cursor in links.values():
        assert u.endswith(f"&cursor={cursor}")
    return [int(group["id"]) for group in response.get_json()], links


@pytest.fixture
def a_b(storage, project):
    assert project.id == 1
    return add_group(storage, project, "A", A_SEEN), add_group(storage, project, "B", B_SEEN)


def test_docs_worked_example_exact_header(client, auth, a_b):
    response = client.get("/api/0/projects/1/groups/?limit=1", headers=auth)
    assert [int(group["id"]) for group in response.get_json()] == [a_b[0]]
    assert response.headers["Link"] == (
        "<http://testserver.local/api/0/projects/1/groups/?limit=1&cursor=1420837590:0:1>; "
        'rel="previous"; results="false"; cursor="1420837590:0:1", '
        "<http://testserver.local/api/0/projects/1/groups/?limit=1&cursor=1420837533:0:0>; "
        'rel="next"; results="true"; cursor="1420837533:0:0"'
    )


def test_docs_walk(client, auth, storage, project, a_b):
    a, b = a_b
    base = BASE + "?limit=1&cursor="
    first_header = header(base, "1420837590:0:1", False, "1420837533:0:0", True)

    rows, links = page(client, auth, BASE + "?limit=1")
    assert rows == [a]
    response = client.get(links["next"][0], headers=auth)
    assert [int(g["id"]) for g in response.get_json()] == [b]
    assert response.headers["Link"] == header(base, "1420837533:0:1", True, "1420837533:1:0", False)

    response = client.get(base + "1420837533:0:1", headers=auth)
    assert [int(g["id"]) for g in response.get_json()] == [a]
    assert response.headers["Link"] == first_header

    response = client.get(base + "1420837590:0:1", headers=auth)
    assert response.get_json() == []
    assert response.headers["Link"] == header(base, "1420837590:0:1", False, "1420837590:0:0", True)

    c = add_group(storage, project, "C", C_SEEN)
    rows, _ = page(client, auth, base + "1420837590:0:1")
    assert rows == [c]


@pytest.mark.parametrize("listing", ["groups", "events"])
def test_explicit_zero_cursor_is_the_first_page(client, auth, storage, project, a_b, listing):
    """``cursor=0:0:0`` (value 0: no bound, as in Sentry) gives the first page: the same rows
    and the same links as no cursor, with nothing before it."""
    if listing == "groups":
        base = f"/api/0/projects/{project.id}/groups/?"
    else:  # a second paged list: the events of group A, newest first
        add_event(storage, project, "A", A_SEEN - 60)
        add_event(storage, project, "A", A_SEEN - 30)
        base = f"/api/0/groups/{a_b[0]}/events/?"
    for size, more in (("limit=1", True), ("", False)):
        first = client.get(base + size, headers=auth)
        zero = client.get(base + size + ("&" if size else "") + "cursor=0:0:0", headers=auth)
        assert first.status_code == zero.status_code == 200, zero.get_json()
        assert zero.get_json() == first.get_json() and first.get_json()
        assert zero.headers["Link"] == first.headers["Link"]
        links = {
            rel: (results, cursor)
            for _, rel, results, cursor in LINK_RE.findall(zero.headers["Link"])
        }
        assert list(links) == ["previous", "next"]
        assert links["previous"][0] == "false"
        assert links["next"][0] == ("true" if more else "false")


def test_no_other_parameters_gives_question_mark_ampersand(client, auth, a_b):
    rows, links = page(client, auth, "/api/0/projects/1/groups/")
    assert rows == [a_b[0], a_b[1]]
    assert links == {
        "previous": (BASE + "?&cursor=1420837590:0:1", False, "1420837590:0:1"),
        "next": (BASE + "?&cursor=1420837533:1:0", False, "1420837533:1:0"),
    }
    rows, links = page(client, auth, "/api/0/projects/1/groups/?cursor=")
    assert links["previous"][0] == BASE + "?&cursor=1420837590:0:1"


def test_empty_list_still_has_both_links(client, auth, project):
    response = client.get("/api/0/projects/1/groups/", headers=auth)
    assert response.get_json() == []
    assert response.headers["Link"] == header(BASE + "?&cursor=", "0:0:1", False, "0:0:0", False)


def test_other_parameters_are_kept_and_encoded(client, auth, a_b):
    url = (
        "/api/0/projects/1/groups/?cursor=1420837590:0:0&query=title+A&tag=a"
        "&limit=1&tag=b%20c&tag=%C3%A9%26%3D&empty="
    )
    response = client.get(url, headers=auth)
    assert response.status_code == 200
    # Repeated keys stay together in first-seen key order, as Django's QueryDict.urlencode().
    base = BASE + "?query=title%20A&tag=a&tag=b%20c&tag=%C3%A9%26%3D&limit=1&empty=&cursor="
    assert response.headers["Link"].startswith(f"<{base}")
    assert response.headers["Link"].count(f"<{base}") == 2


def test_walk_forward_and_back_with_shared_sort_values(client, auth, storage, project):
    made = [
        add_group(storage, project, f"g{i}", (1420837000, 1420838000, 1420839000)[i % 3])
        for i in range(30)
    ]
    seen = {group_id: storage.get_group(group_id).last_seen for group_id in made}
    expected = sorted(made, key=lambda group_id: (seen[group_id], group_id), reverse=True)

    forward, pages = [], 0
    url = "/api/0/projects/1/groups/?limit=4"
    while True:
        rows, links = page(client, auth, url)
        forward += rows
        pages += 1
        assert pages <= 8
        url, more, _ = links["next"]
        if not more:
            break
    assert forward == expected and pages == 8

    rows, links = page(client, auth, url)  # the last page's next link: beyond the end
    assert rows == []
    backward, pages = [], 0
    url, more, _ = links["previous"]
    while more:
        rows, links = page(client, auth, url)
        assert 0 < len(rows) <= 4
        backward = rows + backward
        pages += 1
        assert pages <= 8
        url, more, _ = links["previous"]
    assert backward == expected


# -- page size and cursor validation ------------------------------------------------------


def test_list_page_size_default_and_clamp(client, auth, storage, project):
    made = [add_group(storage, project, f"g{i}", 1420837000 + i) for i in range(101)]
    url = GROUPS.format(project.id)
    for params, expected in [
        ("", made[:0:-1]),
        ("?limit=101", made[:0:-1]),
        ("?limit=99999999999999999999999", made[:0:-1]),
        ("?limit=2", [made[100], made[99]]),
        ("?per_page=3", made[100:97:-1]),
        ("?limit=2&per_page=2", [made[100], made[99]]),
    ]:
        rows, _ = page(client, auth, url + params)
        assert rows == expected, params


@pytest.mark.parametrize(
    "cursor", ["abc", "1:0", "1:0:0:0", "1:-1:0", "a:0:0", "1:0:2", "1:x:0", ":0:0", "1:0:"]
)
def test_list_invalid_cursor(client, auth, project, cursor):
    response = client.get(f"{GROUPS.format(project.id)}?cursor={cursor}", headers=auth)
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Invalid cursor parameter."}


@pytest.mark.parametrize("params", ["limit=0", "limit=-1", "limit=abc", "limit=", "per_page=0"])
def test_list_bad_page_size_is_400_naming_it(client, auth, project, params):
    response = client.get(f"{GROUPS.format(project.id)}?{params}", headers=auth)
    assert response.status_code == 400
    name = params.split("=")[0]
    assert response.get_json() == {
        "detail": f'Invalid value for parameter "{name}": must be a positive integer.'
    }


# -- real HTTP -------------------------------------------------------------------------------


@pytest.mark.live
def test_requests_reads_the_links(live_server_url, auth, a_b):
    a, b = a_b
    groups = f"{live_server_url}/api/0/projects/1/groups/"
    response = requests.get(groups, params={"limit": 1}, headers=auth, timeout=10)
    assert response.status_code == 200
    assert [int(g["id"]) for g in response.json()] == [a]
    assert response.links == {
        "previous": {
            "url": f"{groups}?limit=1&cursor=1420837590:0:1",
            "rel": "previous",
            "results": "false",
            "cursor": "1420837590:0:1",
        },
        "next": {
            "url": f"{groups}?limit=1&cursor=1420837533:0:0",
            "rel": "next",
            "results": "true",
            "cursor": "1420837533:0:0",
        },
    }

    following = requests.get(response.links["next"]["url"], headers=auth, timeout=10)
    assert [int(g["id"]) for g in following.json()] == [b]
    assert following.links["next"]["results"] == "false"
    assert following.links["previous"]["cursor"] == "1420837533:0:1"

    back = requests.get(following.links["previous"]["url"], headers=auth, timeout=10)
    assert [int(g["id"]) for g in back.json()] == [a]
    assert back.links == response.links


@pytest.mark.live
def test_requests_without_parameters(live_server_url, auth, a_b):
    groups = f"{live_server_url}/api/0/projects/1/groups/"
    response = requests.get(groups, headers=auth, timeout=10)
    assert response.links["previous"]["url"] == f"{groups}?&cursor=1420837590:0:1"
    assert response.links["next"]["url"] == f"{groups}?&cursor=1420837533:1:0"
    following = requests.get(response.links["next"]["url"], headers=auth, timeout=10)
    assert following.status_code == 200 and following.json() == []
