"""The endpoints under ``/api/0/groups/<id>/``: the group itself (SPEC section 7.4) and its
notes (section 7.6), over the HTTP test client."""

from __future__ import annotations

import pytest

from tests.helpers import DATETIME_RE
from tests.helpers import EVERYTHING
from tests.helpers import FORBIDDEN
from tests.helpers import HUGE_IDS
from tests.helpers import NOT_FOUND
from tests.helpers import add_event
from tests.helpers import add_group


@pytest.fixture
def group_id(storage, project):
    return add_group(storage, project)


def notes_url(group_id):
    return f"/api/0/groups/{group_id}/notes/"


def num_comments(client, auth, group_id):
    return client.get(f"/api/0/groups/{group_id}/", headers=auth).get_json()["numComments"]


def test_post_creates_a_note(client, auth, storage, group_id):
    response = client.post(notes_url(group_id), json={"text": "Looking into it"}, headers=auth)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "user", "type", "data", "dateCreated"}
    assert body["id"].isdigit()
    assert (body["user"], body["type"], body["data"]) == (None, "note", {"text": "Looking into it"})
    assert DATETIME_RE.match(body["dateCreated"])
    (note,) = storage.list_notes(group_id, EVERYTHING)
    assert (str(note.id), note.text) == (body["id"], "Looking into it")
    listed = client.get(notes_url(group_id), headers=auth).get_json()
    assert listed == [body]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n\t"}, "text"),
        ({}, "text"),
        ({"text": None}, "text"),
        ({"text": 5}, "text"),
        ({"text": ["a"]}, "text"),
        ({"text": "ok", "user": "me"}, "user"),
    ],
)
def test_post_invalid_body_is_a_field_error(client, auth, storage, group_id, body, field):
    response = client.post(notes_url(group_id), json=body, headers=auth)
    assert response.status_code == 400
    errors = response.get_json()
    assert list(errors) == [field] and isinstance(errors[field], list) and errors[field]
    assert storage.list_notes(group_id, EVERYTHING) == []
    assert num_comments(client, auth, group_id) == 0


def test_post_missing_text_message(client, auth, group_id):
    response = client.post(notes_url(group_id), json={}, headers=auth)
    assert response.get_json() == {"text": ["Missing data for required field."]}
    response = client.post(notes_url(group_id), json={"text": "a", "foo": 1}, headers=auth)
    assert response.get_json() == {"foo": ["Unknown field."]}


def test_post_bad_content(client, auth, storage, group_id):
    response = client.post(
        notes_url(group_id), data="text=hi", content_type="text/plain", headers=auth
    )
    assert response.status_code == 415
    assert response.get_json() == {"detail": "Unsupported media type 'text/plain' in request."}
    response = client.post(
        notes_url(group_id), data='{"text": ', content_type="application/json", headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("JSON parse error - ")
    assert storage.list_notes(group_id, EVERYTHING) == []


def test_list_newest_first_and_paginated(client, auth, group_id):
    made = []
    for text in ("one", "two", "three"):
        response = client.post(notes_url(group_id), json={"text": text}, headers=auth)
        made.append(int(response.get_json()["id"]))
    assert num_comments(client, auth, group_id) == 3

    response = client.get(notes_url(group_id), headers=auth)
    assert [note["data"]["text"] for note in response.get_json()] == ["three", "two", "one"]

    base = f"http://testserver.local{notes_url(group_id)}?per_page=2&cursor="
    response = client.get(f"{notes_url(group_id)}?per_page=2", headers=auth)
    assert [int(note["id"]) for note in response.get_json()] == [made[2], made[1]]
    assert response.headers["Link"] == (
        f'<{base}{made[2]}:0:1>; rel="previous"; results="false"; cursor="{made[2]}:0:1", '
        f'<{base}{made[0]}:0:0>; rel="next"; results="true"; cursor="{made[0]}:0:0"'
    )
    response = client.get(f"{base}{made[0]}:0:0", headers=auth)
    assert [int(note["id"]) for note in response.get_json()] == [made[0]]
    assert 'rel="next"; results="false"' in response.headers["Link"]


@pytest.mark.parametrize("params", ["per_page=0", "per_page=abc", "cursor=x", "cursor=1:2:3"])
def test_list_bad_paging_parameters(client, auth, group_id, params):
    response = client.get(f"{notes_url(group_id)}?{params}", headers=auth)
    assert response.status_code == 400 and list(response.get_json()) == ["detail"]


def test_notes_on_an_empty_group(client, auth, group_id):
    response = client.get(notes_url(group_id), headers=auth)
    assert response.get_json() == []
    assert response.headers["Link"].count('results="false"') == 2


@pytest.mark.parametrize("method", ["get", "post"])
def test_scoping(client, auth, other_auth, storage, group_id, method):
    call = getattr(client, method)
    response = call(notes_url(group_id), json={"text": "sneaky"}, headers=other_auth)
    assert (response.status_code, response.get_json()) == (403, FORBIDDEN)
    anonymous = call(notes_url(group_id), json={"text": "sneaky"})
    assert anonymous.status_code == 401
    assert anonymous.get_json() == {"detail": "Authentication credentials were not provided."}
    missing = call(notes_url(999999), json={"text": "lost"}, headers=auth)
    assert (missing.status_code, missing.get_json()) == (404, NOT_FOUND)
    assert storage.list_notes(group_id, EVERYTHING) == []
    assert num_comments(client, auth, group_id) == 0


def test_cursor_beyond_32_bits(client, auth, storage, group_id):
    note = storage.create_note(group_id, "hi")
    response = client.get(f"{notes_url(group_id)}?cursor={2**31}:0:0", headers=auth)
    assert response.status_code == 200
    assert [int(n["id"]) for n in response.get_json()] == [note.id]


# -- one group -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "changed"),
    [
        ({"status": "resolved"}, {"status": "resolved", "isResolved": True}),
        ({"status": "ignored"}, {"status": "muted"}),
        ({"isBookmarked": True, "hasSeen": "1"}, {"isBookmarked": True, "hasSeen": True}),
        ({"isPublic": "true"}, {"isPublic": True}),
        ({}, {}),
    ],
)
def test_group_put_partial(client, auth, storage, project, body, changed):
    group = add_group(storage, project)
    before = client.get(f"/api/0/groups/{group}/", headers=auth).get_json()
    response = client.put(f"/api/0/groups/{group}/", json=body, headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {**before, **changed}
    assert client.get(f"/api/0/groups/{group}/", headers=auth).get_json() == response.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "resolved", "foo": 1}, "foo"),
        ({"status": "resolved", "isBookmarked": "maybe"}, "isBookmarked"),
        ({"status": "closed", "hasSeen": True}, "status"),
        ({"merge": True}, "merge"),
    ],
)
def test_group_put_invalid_changes_nothing(client, auth, storage, project, body, field):
    group = add_group(storage, project)
    before = storage.get_group(group)
    response = client.put(f"/api/0/groups/{group}/", json=body, headers=auth)
    assert response.status_code == 400 and list(response.get_json()) == [field]
    assert storage.get_group(group) == before


def test_group_delete(client, auth, storage, project):
    group = add_group(storage, project)
    event = add_event(storage, project).event.id
    storage.create_note(group, "hi")
    response = client.delete(f"/api/0/groups/{group}/", headers=auth)
    assert response.status_code == 202 and response.data == b""
    assert storage.get_group(group) is None and storage.get_event(event) is None
    assert client.get(f"/api/0/groups/{group}/", headers=auth).get_json() == NOT_FOUND


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_group_scoping(client, auth, other_auth, storage, project, method):
    group = add_group(storage, project)
    before = storage.get_group(group)
    url = f"/api/0/groups/{group}/"
    response = getattr(client, method)(url, json={"status": "resolved"}, headers=other_auth)
    assert (response.status_code, response.get_json()) == (403, FORBIDDEN)
    missing = getattr(client, method)("/api/0/groups/999999/", json={}, headers=auth)
    assert (missing.status_code, missing.get_json()) == (404, NOT_FOUND)
    anonymous = getattr(client, method)(url, json={"status": "resolved"})
    assert anonymous.status_code == 401
    assert anonymous.get_json() == {"detail": "Authentication credentials were not provided."}
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="api"'
    assert storage.get_group(group) == before


# Ids no table can hold: 32-bit on PostgreSQL (INTEGER columns), 64-bit on SQLite.


@pytest.mark.parametrize("group_id", HUGE_IDS)
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_huge_group_id_in_path_is_404(client, auth, method, group_id):
    response = getattr(client, method)(f"/api/0/groups/{group_id}/", json={}, headers=auth)
    assert (response.status_code, response.get_json()) == (404, NOT_FOUND)


def test_post_on_a_group_deleted_meanwhile_is_404(client, auth, storage, project, monkeypatch):
    # Issue 12: the group is found, then deleted before the note is written (a concurrent
    # DELETE). PostgreSQL answered 500 (ForeignKeyViolation); it must be a 404.
    group_id = add_group(storage, project)
    create_note = storage.create_note

    def deleted_first(gid, text):
        assert storage.delete_groups(project.id, [gid]) == 1
        return create_note(gid, text)

    monkeypatch.setattr(storage, "create_note", deleted_first)
    response = client.post(notes_url(group_id), json={"text": "too late"}, headers=auth)
    assert response.status_code == 404, response.get_json()
    assert storage.get_group(group_id) is None
    assert storage.list_notes(group_id, EVERYTHING) == []
