"""Event trimming (SPEC §11): every bound, the ``_meta`` notes, work proportional to what is
kept (shown by counting, not timing), and the amplification and 100,000-tag attacks over HTTP."""

from __future__ import annotations

import gzip
import json
import typing as t
from collections.abc import Iterator
from datetime import datetime
from datetime import timezone

from flask.testing import FlaskClient

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
