"""Event trimming (SPEC §11): every bound, the ``_meta`` notes and how the events API serves
them, work proportional to what is kept (shown by counting, not timing), and the
amplification, 100,000-tag and six-million-array attacks over HTTP (the worker-memory bound
of the amplification attack is in ``test_amplification.py``)."""

from __future__ import annotations

import gzip
import json
import typing as t
import uuid
from collections.abc import Iterator
from datetime import datetime
from datetime import timezone

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from flask_sentry_api import get_state
from flask_sentry_api.ingest import trim
from flask_sentry_api.ingest.normalize import normalize_event
from flask_sentry_api.ingest.trim import MAX_DEPTH
from flask_sentry_api.ingest.trim import MAX_ENTRIES
from flask_sentry_api.ingest.trim import MAX_EVENT_BYTES
from flask_sentry_api.ingest.trim import MAX_FRAMES
from flask_sentry_api.ingest.trim import MAX_STRING
from flask_sentry_api.ingest.trim import MAX_TAGS
from flask_sentry_api.ingest.trim import Meta
from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from tests.helpers import basic_auth
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import event_payload
from tests.helpers import sentry_auth

RECEIVED = datetime(2026, 1, 1, tzinfo=timezone.utc)
MILLION = 1_000_000


def normalize(payload: dict[str, t.Any]) -> NewEvent:
    return normalize_event(payload, received=RECEIVED)


class CountingList(list[t.Any]):
    """A list that counts how many of its items were read by iteration."""

    reads = 0

    def __iter__(self) -> Iterator[t.Any]:
        for item in super().__iter__():
            self.reads += 1
            yield item


def depth_of(value: t.Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    return 0


# -- bags ------------------------------------------------------------------------------------


def test_a_million_entries_are_not_visited() -> None:
    huge = CountingList([[]] * MILLION)
    meta = Meta()
    result = trim.clean({"a": huge}, meta)
    assert result == {"a": [[]] * MAX_ENTRIES}
    assert huge.reads <= MAX_ENTRIES + 1
    assert meta.to_json() == {"a": {"": {"len": MILLION}}}


def test_extra_keeps_fifty_entries_per_container_with_meta() -> None:
    event = normalize(
        {
            "message": "m",
            "extra": {"a": [[]] * MILLION, "b": {str(i): i for i in range(60)}},
        }
    )
    extra = event.data["extra"]
    assert len(extra["a"]) == MAX_ENTRIES and len(extra["b"]) == MAX_ENTRIES
    assert event.data["_meta"]["extra"] == {"a": {"": {"len": MILLION}}, "b": {"": {"len": 60}}}


def test_bags_keep_five_levels() -> None:
    deep: t.Any = "bottom"
    for _ in range(20):
        deep = {"d": deep}
    event = normalize(
        {
            "message": "m",
            "extra": deep,
            "contexts": {"app": deep},
            "request": {"url": "http://x", "data": deep},
            "breadcrumbs": [{"message": "b", "data": deep}],
            "exception": [{"type": "E", "stacktrace": {"frames": [{"vars": deep}]}}],
        }
    )
    data = event.data
    entries = {entry["type"]: entry["data"] for entry in data["entries"]}
    bags = [
        data["extra"],
        data["contexts"],
        entries["request"]["data"],
        entries["breadcrumbs"]["values"][0]["data"],
        entries["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"],
    ]
    for bag in bags:
        assert depth_of(bag) <= MAX_DEPTH
        assert trim.DEPTH_MARK in json.dumps(bag)
    meta = data["_meta"]
    assert meta["extra"]["d"]["d"]["d"]["d"]["d"] == {"": {"rem": "depth"}}
    assert "data" in meta["request"] and "data" in meta["breadcrumbs"]["values"]["0"]
    frame = meta["exception"]["values"]["0"]["stacktrace"]["frames"]["0"]
    assert "vars" in frame


def test_strings_keep_8192_characters() -> None:
    long = "x" * 10_000
    event = normalize({"message": long, "extra": {"s": long}, "sdk": {"name": long}})
    assert len(event.data["extra"]["s"]) == MAX_STRING
    assert len(event.data["sdk"]["name"]) == MAX_STRING
    assert len(event.message) == MAX_STRING
    message = event.data["entries"][0]["data"]
    assert len(message["formatted"]) == MAX_STRING
    meta = event.data["_meta"]
    assert meta["extra"]["s"] == {"": {"len": 10_000}}
    assert meta["sdk"]["name"] == {"": {"len": 10_000}}
    assert meta["message"]["formatted"] == {"": {"len": 10_000}}


def test_exception_values_are_bounded_and_noted() -> None:
    event = normalize({"exception": [{"type": "E", "value": "v" * 20_000}]})
    exc = event.data["entries"][0]["data"]["values"][0]
    assert len(exc["value"]) <= MAX_STRING
    assert event.data["_meta"]["exception"]["values"]["0"]["value"] == {"": {"len": 20_000}}


def test_an_event_without_cuts_has_no_meta() -> None:
    event = normalize({"message": "m", "extra": {"a": [1, 2]}, "tags": {"t": "v"}})
    assert "_meta" not in event.data


# -- frames and tags -------------------------------------------------------------------------


def test_stack_traces_keep_the_first_and_last_125_frames() -> None:
    frames = [{"function": f"f{i}"} for i in range(1000)]
    event = normalize({"exception": [{"type": "E", "stacktrace": {"frames": frames}}]})
    stack = event.data["entries"][0]["data"]["values"][0]["stacktrace"]
    kept = [frame["function"] for frame in stack["frames"]]
    assert len(kept) == MAX_FRAMES
    assert kept[:2] == ["f0", "f1"] and kept[124:126] == ["f124", "f875"] and kept[-1] == "f999"
    meta = event.data["_meta"]["exception"]["values"]["0"]["stacktrace"]["frames"]
    assert meta == {"": {"len": 1000}}


def test_an_event_keeps_200_tags() -> None:
    tags = {f"k{i}": "v" for i in range(100_000)}
    event = normalize({"message": "m", "tags": tags})
    assert len(event.tags) == MAX_TAGS
    assert event.tags[0] == ("level", "error")  # derived tags come first
    assert event.data["_meta"]["tags"] == {"": {"len": 100_000}}


def test_tags_with_long_keys_or_values_are_dropped() -> None:
    event = normalize({"message": "m", "tags": {"k" * 33: "v", "long": "v" * 201, "ok": "v" * 200}})
    assert dict(event.tags) == {"level": "error", "ok": "v" * 200}
    assert event.data["_meta"]["tags"] == {"": {"len": 3}}


def test_tags_are_read_only_up_to_the_limit() -> None:
    pulled = 0

    def pairs() -> Iterator[tuple[str, str]]:
        nonlocal pulled
        for i in range(MILLION):
            pulled += 1
            yield f"k{i}", "v"

    assert len(trim.keep_tags(pairs(), sent=MILLION)) == MAX_TAGS
    assert pulled == MAX_TAGS + 1


# -- event size ------------------------------------------------------------------------------


def test_the_largest_bags_are_dropped_until_the_event_fits() -> None:
    big = {str(i): "x" * 8000 for i in range(MAX_ENTRIES)}  # ~400 KB
    event = normalize(
        {
            "message": "m",
            "extra": big,
            "contexts": {"app": {"name": "small"}},
            "breadcrumbs": [{"message": "b", "data": {"k": "v" * 100}}] * 10,
        }
    )
    assert trim.json_size(event.data) <= MAX_EVENT_BYTES
    assert event.data["extra"] == {}
    assert event.data["contexts"] == {"app": {"name": "small"}}
    note = event.data["_meta"]["extra"]
    assert note[""]["rem"] == "size" and note[""]["len"] > MAX_EVENT_BYTES
    assert list(note) == [""]  # what was noted inside the dropped bag is gone too


def test_frame_vars_are_dropped_before_frames() -> None:
    frames = [{"function": f"f{i}", "vars": {"v": "x" * 4000}} for i in range(100)]
    event = normalize({"exception": [{"type": "E", "stacktrace": {"frames": frames}}]})
    assert trim.json_size(event.data) <= MAX_EVENT_BYTES
    stack = event.data["entries"][0]["data"]["values"][0]["stacktrace"]
    assert len(stack["frames"]) == 100
    dropped = [frame for frame in stack["frames"] if frame["vars"] is None]
    assert dropped and len(dropped) < 100
    frames_meta = event.data["_meta"]["exception"]["values"]["0"]["stacktrace"]["frames"]
    assert {note["vars"][""]["rem"] for note in frames_meta.values()} == {"size"}


def test_a_hopeless_event_drops_whole_frame_lists_last() -> None:
    frames = [{"function": "f" * 300, "filename": "g" * 300} for _ in range(MAX_FRAMES)]
    exceptions = [{"type": "E", "stacktrace": {"frames": frames}}] * 5
    event = normalize({"exception": exceptions})
    assert trim.json_size(event.data) <= MAX_EVENT_BYTES
    values = event.data["entries"][0]["data"]["values"]
    kept = [exc for exc in values if exc["stacktrace"]["frames"]]
    assert len(values) == 5 and 0 < len(kept) < 5
    notes = event.data["_meta"]["exception"]["values"]
    assert sum(
        note["stacktrace"]["frames"][""]["rem"] == "size" for note in notes.values()
    ) == 5 - len(kept)


# -- over HTTP -------------------------------------------------------------------------------


def stored_event(client: FlaskClient, project: Project, key: ProjectKey) -> tuple[int, t.Any]:
    auth = basic_auth(key)
    groups = client.get(f"/api/0/projects/{project.id}/groups/", headers=auth).json
    assert isinstance(groups, list) and len(groups) == 1
    group_id = int(groups[0]["id"])
    response = client.get(f"/api/0/groups/{group_id}/events/?full=true", headers=auth)
    assert response.status_code == 200
    events = response.json
    assert isinstance(events, list) and len(events) == 1
    assert len(response.get_data()) <= MAX_EVENT_BYTES + 64 * 1024
    return group_id, events[0]


def test_the_gzip_amplification_body_is_stored_trimmed(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    event = event_payload("amplified", extra={"a": [[]] * MILLION})
    body = gzip.compress(json.dumps(event).encode())
    assert len(body) < 20_000
    headers = {**sentry_auth(key), "Content-Encoding": "gzip"}
    response = client.post(f"/api/{project.id}/store/", data=body, headers=headers)
    assert response.status_code == 200, response.json
    _, stored = stored_event(client, project, key)
    assert stored["context"]["a"] == [[]] * MAX_ENTRIES


def test_an_envelope_with_100000_tags_stores_200(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    event = event_payload("tagged", tags={f"k{i}": f"v{i}" for i in range(100_000)})
    body = gzip.compress(envelope(event_item(event)))
    headers = {**sentry_auth(key), "Content-Encoding": "gzip"}
    response = client.post(f"/api/{project.id}/envelope/", data=body, headers=headers)
    assert response.status_code == 200, response.json
    group_id, stored = stored_event(client, project, key)
    assert len(stored["tags"]) <= MAX_TAGS
    tags = client.get(f"/api/0/groups/{group_id}/tags/", headers=basic_auth(key)).json
    assert isinstance(tags, list) and len(tags) <= MAX_TAGS


# -- _meta in the events API and the attacks of issue 12 -------------------------------------

NO_CUTS: dict[str, t.Any] = {
    "entries": {},
    "context": None,
    "contexts": None,
    "message": None,
    "release": None,
    "sdk": None,
    "tags": None,
    "user": None,
}


def within_bag_bounds(value: t.Any, depth: int = 0) -> bool:
    """No object or array in ``value`` has more than MAX_ENTRIES entries or sits deeper
    than MAX_DEPTH levels."""
    if isinstance(value, (dict, list)):
        items = list(value.values()) if isinstance(value, dict) else value
        return (
            depth < MAX_DEPTH
            and len(items) <= MAX_ENTRIES
            and all(within_bag_bounds(item, depth + 1) for item in items)
        )
    return True


def event_views(client: FlaskClient, project: Project, key: ProjectKey) -> list[t.Any]:
    """The project's only event as every event endpoint serves it."""
    auth = basic_auth(key)
    [group] = client.get(f"/api/0/projects/{project.id}/groups/", headers=auth).json
    [listed] = client.get(f"/api/0/groups/{group['id']}/events/", headers=auth).json
    paths = [
        f"/api/0/events/{listed['id']}/",
        f"/api/0/groups/{group['id']}/events/latest/",
        f"/api/0/issues/{group['id']}/events/{listed['eventID']}/",
        f"/api/0/projects/sentry/{project.id}/events/{listed['eventID']}/",
        f"/api/0/projects/sentry/{project.id}/events/",
    ]
    bodies = [listed]
    for path in paths:
        response = client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.json)
        body = response.json
        bodies.extend(body if isinstance(body, list) else [body])
    return bodies


def test_an_event_without_cuts_is_served_with_empty_meta(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    # Like Sentry's event serializer: `_meta` is always there, its parts null when uncut.
    event = event_payload("small", extra={"a": [1, 2]}, tags={"t": "v"})
    response = client.post(f"/api/{project.id}/store/", json=event, headers=sentry_auth(key))
    assert response.status_code == 200, response.json
    for body in event_views(client, project, key):
        assert body["_meta"] == NO_CUTS


def test_meta_is_served_on_every_event_endpoint(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    long = "x" * (MAX_STRING + 100)
    event = event_payload(
        long,
        extra={"a": [[]] * 1000, "deep": {"1": {"2": {"3": {"4": {"5": "six"}}}}}},
        contexts={"app": {str(i): i for i in range(60)}},
        sdk={"name": "sdk", "packages": [{"name": str(i)} for i in range(70)]},
        user={"id": "u", "data": {str(i): i for i in range(80)}},
        tags={f"k{i}": "v" for i in range(300)},
        exception=[{"type": "E", "value": long}],
        request={"url": "http://x/", "data": {str(i): i for i in range(90)}},
    )
    response = client.post(f"/api/{project.id}/store/", json=event, headers=sentry_auth(key))
    assert response.status_code == 200, response.json
    for body in event_views(client, project, key):
        meta = body["_meta"]
        assert meta["context"] == {
            "a": {"": {"len": 1000}},
            "deep": {"1": {"2": {"3": {"4": {"": {"rem": "depth"}}}}}},
        }
        assert body["context"]["deep"]["1"]["2"]["3"]["4"] == trim.DEPTH_MARK
        assert meta["contexts"] == {"app": {"": {"len": 60}}}
        assert meta["sdk"] == {"packages": {"": {"len": 70}}}
        assert meta["user"] == {"data": {"": {"len": 80}}}
        assert meta["tags"] == {"": {"len": 300}}
        assert meta["message"] is None  # an error's message is its exception's
        kinds = [entry["type"] for entry in body["entries"]]
        by_kind = {kinds[int(index)]: note["data"] for index, note in meta["entries"].items()}
        assert by_kind["exception"] == {"values": {"0": {"value": {"": {"len": len(long)}}}}}
        assert by_kind["request"] == {"data": {"": {"len": 90}}}
        assert by_kind["message"]["formatted"] == {"": {"len": len(long)}}


def test_served_meta_matches_the_openapi_document(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    event = event_payload(
        "m" * 10_000,
        extra={"a": [[]] * 100, "deep": [[[[[[1]]]]]]},
        tags={f"k{i}": "v" for i in range(300)},
        exception=[{"type": "E", "stacktrace": {"frames": [{"function": "f"}] * 300}}],
        release="latest",  # no release can have this version: dropped, with a note
    )
    response = client.post(f"/api/{project.id}/store/", json=event, headers=sentry_auth(key))
    assert response.status_code == 200, response.json
    document = client.get("/api/0/openapi.json").json
    auth = basic_auth(key)
    [group] = client.get(f"/api/0/projects/{project.id}/groups/", headers=auth).json
    listed = client.get(f"/api/0/groups/{group['id']}/events/", headers=auth).json
    details = client.get(f"/api/0/events/{listed[0]['id']}/", headers=auth).json
    assert details["_meta"]["entries"] and details["_meta"]["context"]
    assert details["release"] is None
    assert details["_meta"]["release"] == {"": {"err": ["invalid_data"], "val": "latest"}}
    for body, name in ((details, "EventDetails"), (listed, "Event")):
        schema = {"$ref": f"#/components/schemas/{name}"}
        if isinstance(body, list):
            schema = {"type": "array", "items": schema}
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = list(validator.iter_errors(body))
        assert not errors, errors[0]
    documented = document["components"]["schemas"]["Event"]
    assert "_meta" in documented["required"]
    # A served note the document does not allow is caught: the check can fail.
    wrong = {**details, "_meta": {**details["_meta"], "tags": {"": {"len": "many"}}}}
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/EventDetails", "components": document["components"]}
    )
    assert list(validator.iter_errors(wrong))


def test_a_cut_message_is_noted_on_the_message(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    event = event_payload("m" * 10_000)
    response = client.post(f"/api/{project.id}/store/", json=event, headers=sentry_auth(key))
    assert response.status_code == 200, response.json
    for body in event_views(client, project, key):
        assert len(body["message"]) <= MAX_STRING
        assert body["_meta"]["message"] == {"": {"len": 10_000}}
        [(index, note)] = body["_meta"]["entries"].items()
        assert body["entries"][int(index)]["type"] == "message"
        assert note["data"]["formatted"] == {"": {"len": 10_000}}


def tag_rows(app: Flask, group_id: int) -> int:
    with app.app_context():
        models = get_state(app).storage.models  # type: ignore[attr-defined]
        session = app.extensions["sqlalchemy"].session
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(models.GroupTagValue)
                .where(models.GroupTagValue.group_id == group_id)
            )
        )


def test_100000_tags_make_at_most_200_tag_rows(
    app: Flask, client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    # The attack's 456 KB body: 100,000 distinct tags (as pairs, the other form SDKs send).
    event = event_payload("tagged", tags=[[f"k{i}", uuid.uuid4().hex[:4]] for i in range(100_000)])
    body = gzip.compress(json.dumps(event).encode())
    assert 400_000 < len(body) < 1024 * 1024
    headers = {**sentry_auth(key), "Content-Encoding": "gzip"}
    response = client.post(f"/api/{project.id}/store/", data=body, headers=headers)
    assert response.status_code == 200, response.json
    group_id, stored = stored_event(client, project, key)
    assert len(stored["tags"]) == MAX_TAGS
    assert stored["_meta"]["tags"] == {"": {"len": 100_000}}
    assert tag_rows(app, group_id) <= MAX_TAGS
    tags = client.get(f"/api/0/groups/{group_id}/tags/", headers=basic_auth(key))
    assert isinstance(tags.json, list) and len(tags.json) <= MAX_TAGS
    assert len(tags.get_data()) < 256 * 1024


def test_six_million_empty_arrays_are_refused_before_parsing(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    """The attack's 17.5 KB body (20-27 s to ingest before): its parse alone would take
    ~485 MB, so it is refused from its bytes (``ingest.body.parse_cost``) with a 413."""
    text = '{"message": "six million", "extra": {"a": [' + ",".join(["[]"] * 6 * MILLION) + "]}}"
    body = gzip.compress(text.encode())
    del text
    assert len(body) < 20_000
    headers = {**sentry_auth(key), "Content-Encoding": "gzip"}
    response = client.post(f"/api/{project.id}/store/", data=body, headers=headers)
    assert response.status_code == 413, response.get_data()
    assert "too many JSON values" in response.json["detail"]
    groups = client.get(f"/api/0/projects/{project.id}/groups/", headers=basic_auth(key)).json
    assert groups == []
