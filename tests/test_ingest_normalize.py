"""Tests for flask_sentry_api.ingest.normalize on real raven and sentry-sdk events."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest
import raven
import sentry_sdk
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from raven.transport.base import Transport as RavenTransport

from flask_sentry_api.errors import BadRequest
from flask_sentry_api.ingest.body import decode_store_payload
from flask_sentry_api.ingest.body import read_body
from flask_sentry_api.ingest.envelope import parse_envelope
from flask_sentry_api.ingest.normalize import normalize_event
from flask_sentry_api.storage import NewEvent
from flask_sentry_api.tokens import new_token
from tests.helpers import sdk_envelopes

HERE = __name__
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


# -- real SDK events --------------------------------------------------------------------


def sdk_events(action: Callable[[Any], None], **options: Any) -> list[dict[str, Any]]:
    """Events sentry-sdk 2.x sends while ``action(scope)`` runs, parsed from the wire bytes."""
    envelopes = sdk_envelopes(
        action, release="web@1.2.3", environment="staging", server_name="web-1", **options
    )
    events = [parse_envelope(envelope.serialize()).event_payload() for envelope in envelopes]
    return [event for event in events if event is not None]


def raven_events(action: Callable[[raven.Client], None], **options: Any) -> list[dict[str, Any]]:
    """Events raven-python 6.10 posts while ``action(client)`` runs, decoded from the body."""
    bodies: list[tuple[bytes, str]] = []

    class Wire(RavenTransport):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
            bodies.append((data, headers["Content-Encoding"]))

    client = raven.Client(
        "http://public:secret@127.0.0.1:1/1",
        transport=Wire,
        install_sys_hook=False,
        install_logging_hook=False,
        enable_breadcrumbs=False,
        release="web@1.2.3",
        environment="staging",
        name="web-1",
        **options,
    )
    action(client)
    events = []
    for data, encoding in bodies:
        stream = io.BytesIO(data)
        raw = read_body(stream, content_encoding=encoding, max_body=10**7, max_inflated=10**7)
        events.append(decode_store_payload(raw))
    return events


def received_now() -> datetime:
    return datetime.now(timezone.utc)


def normalize(payload: Any, received: datetime = RECEIVED) -> NewEvent:
    event = normalize_event(payload, received=received)
    assert_json(event)
    return event


def assert_json(event: NewEvent) -> None:
    text = json.dumps(dataclasses.asdict(event), default=str, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates either


def lookup_missing() -> None:
    data: dict[str, int] = {}
    data["missing"]


def parse_number() -> None:
    int("not a number")


def lookup_elsewhere() -> None:
    data: dict[str, int] = {}
    data["missing"]


def wrap_error() -> None:
    try:
        lookup_missing()
    except KeyError as exc:
        raise RuntimeError("wrapped\nsecond line") from exc


def sdk_capture(func: Callable[[], None], **scope_data: Any) -> Callable[[Any], None]:
    def action(scope: Any) -> None:
        for key, value in scope_data.get("tags", {}).items():
            scope.set_tag(key, value)
        if "user" in scope_data:
            scope.set_user(scope_data["user"])
        if "fingerprint" in scope_data:
            scope.fingerprint = scope_data["fingerprint"]
        try:
            func()
        except Exception:
            sentry_sdk.capture_exception()

    return action


def raven_capture(func: Callable[[], None], **kwargs: Any) -> Callable[[raven.Client], None]:
    def action(client: raven.Client) -> None:
        try:
            func()
        except Exception:
            client.captureException(**kwargs)

    return action


def test_sentry_sdk_exception() -> None:
    [payload] = sdk_events(
        sdk_capture(lookup_missing, tags={"region": "eu"}, user={"id": 42, "email": "a@b.c"})
    )
    event = normalize(payload, received_now())
    assert event.event_id == payload["event_id"]
    assert event.title == "KeyError: 'missing'"
    assert event.message == "KeyError: 'missing'"
    assert event.culprit == f"{HERE} in lookup_missing"
    assert event.level == "error"
    assert event.type == "error"
    assert event.metadata == {"type": "KeyError", "value": "'missing'"}
    assert event.platform == "python"
    assert (event.release, event.environment) == ("web@1.2.3", "staging")
    assert event.user == {"id": "42", "email": "a@b.c"}
    assert event.user_ident == "id:42"
    assert event.tags == (
        ("level", "error"),
        ("server_name", "web-1"),
        ("release", "web@1.2.3"),
        ("environment", "staging"),
        ("user", "id:42"),
        ("region", "eu"),
    )
    assert abs(event.timestamp - received_now()) < timedelta(minutes=1)
    assert event.timestamp.tzinfo is timezone.utc

    [entry] = [e for e in event.data["entries"] if e["type"] == "exception"]
    [value] = entry["data"]["values"]
    assert value["type"] == "KeyError"
    assert value["mechanism"] == {"type": "generic", "handled": True}
    innermost = value["stacktrace"]["frames"][-1]
    assert innermost["function"] == "lookup_missing"
    assert innermost["module"] == HERE
    assert innermost["in_app"] is True
    assert innermost["context_line"].strip() == 'data["missing"]'
    assert innermost["abs_path"] == __file__
    assert isinstance(innermost["lineno"], int)
    assert innermost["pre_context"] and innermost["post_context"] is not None
    assert event.data["sdk"]["name"] == "sentry.python"
    assert event.data["type"] == "error"
    assert event.data["metadata"] == event.metadata
    assert event.data["server_name"] == "web-1"
    assert "trace" in event.data["contexts"]
    assert event.data["fingerprint"] is None


def test_sentry_sdk_chained_exception_uses_the_outer_one() -> None:
    [payload] = sdk_events(sdk_capture(wrap_error))
    assert [v["type"] for v in payload["exception"]["values"]] == ["KeyError", "RuntimeError"]
    event = normalize(payload, received_now())
    assert event.title == "RuntimeError: wrapped"
    assert event.metadata == {"type": "RuntimeError", "value": "wrapped\nsecond line"}
    assert event.culprit == f"{HERE} in wrap_error"


def test_sentry_sdk_message() -> None:
    def action(scope: Any) -> None:
        sentry_sdk.capture_message("disk almost full\nsee /var", level="warning")

    [payload] = sdk_events(action)
    event = normalize(payload, received_now())
    assert event.title == "disk almost full"
    assert event.message == "disk almost full\nsee /var"
    assert event.level == "warning"
    assert event.type == "default"
    assert event.metadata == {"title": "disk almost full"}
    assert event.culprit is None
    assert event.data["entries"][0] == {
        "type": "message",
        "data": {
            "message": "disk almost full\nsee /var",
            "params": None,
            "formatted": "disk almost full\nsee /var",
        },
    }


def test_sentry_sdk_attached_stacktrace_gives_a_culprit() -> None:
    def action(scope: Any) -> None:
        sentry_sdk.capture_message("with stack")

    [payload] = sdk_events(action, attach_stacktrace=True)
    event = normalize(payload, received_now())
    assert "threads" in [entry["type"] for entry in event.data["entries"]]
    assert event.culprit == f"{HERE} in action"


def test_raven_exception() -> None:
    [payload] = raven_events(raven_capture(lookup_missing), tags={"region": "eu"})
    assert payload["level"] == 40
    event = normalize(payload, received_now())
    assert event.event_id == payload["event_id"]
    assert event.title == "KeyError: 'missing'"
    assert event.message == "KeyError: 'missing'"
    assert event.culprit == f"{HERE} in lookup_missing"
    assert event.level == "error"
    assert event.type == "error"
    assert event.metadata == {"type": "KeyError", "value": "'missing'"}
    assert event.platform == "python"
    assert dict(event.tags) == {
        "level": "error",
        "server_name": "web-1",
        "release": "web@1.2.3",
        "environment": "staging",
        "region": "eu",
    }
    # raven repeats "Type: value" as the message: no separate message entry for that.
    assert [entry["type"] for entry in event.data["entries"]] == ["exception"]
    assert event.data["sdk"] == {"name": "raven-python", "version": "6.10.0"}
    assert event.data["modules"]


def test_raven_message_with_params_and_user() -> None:
    def action(client: raven.Client) -> None:
        client.user_context({"username": "ann", "ip_address": "10.0.0.1"})
        client.captureMessage("hello %s", params=("world",), level="warning")

    [payload] = raven_events(action)
    assert "sentry.interfaces.Message" in payload
    event = normalize(payload, received_now())
    assert event.message == "hello 'world'"  # raven sends repr()'d params
    assert event.title == "hello 'world'"
    assert event.level == "warning"
    assert event.type == "default"
    assert event.user_ident == "username:ann"
    assert ("user", "username:ann") in event.tags
    [entry] = [e for e in event.data["entries"] if e["type"] == "message"]
    assert entry["data"] == {
        "message": "hello %s",
        "params": ["'world'"],
        "formatted": "hello 'world'",
    }


def test_raven_integer_levels() -> None:
    def action(client: raven.Client) -> None:
        for level in (10, 20, 30, 40, 50):
            client.captureMessage("m", data={"level": level})

    levels = [normalize(p, received_now()).level for p in raven_events(action)]
    assert levels == ["debug", "info", "warning", "error", "fatal"]


# -- grouping of real events ------------------------------------------------------------


def sdk_hash(func: Callable[[], None], **scope_data: Any) -> str:
    [payload] = sdk_events(sdk_capture(func, **scope_data))
    return normalize(payload, received_now()).group_hash


def raven_hash(func: Callable[[], None], **kwargs: Any) -> str:
    [payload] = raven_events(raven_capture(func, **kwargs))
    return normalize(payload, received_now()).group_hash


@pytest.mark.parametrize("hash_of", [sdk_hash, raven_hash])
def test_real_grouping(hash_of: Callable[..., str]) -> None:
    base = hash_of(lookup_missing)
    assert hash_of(lookup_missing) == base  # the same bug again
    assert hash_of(lookup_elsewhere) != base  # same type, another place
    assert hash_of(parse_number) != base  # another type and place
    assert hash_of(wrap_error) != base  # chained


def test_real_fingerprints() -> None:
    base = sdk_hash(lookup_missing)
    extended = sdk_hash(lookup_missing, fingerprint=["{{ default }}", "x"])
    assert extended != base
    assert sdk_hash(lookup_missing, fingerprint=["{{ default }}"]) == base
    assert sdk_hash(lookup_missing, fingerprint=["a"]) == sdk_hash(parse_number, fingerprint=["a"])
    assert raven_hash(lookup_missing, fingerprint=["a"]) == sdk_hash(
        parse_number, fingerprint=["a"]
    )
    assert raven_hash(lookup_missing, fingerprint=["{{ default }}", "x"]) == extended


def test_raven_and_sentry_sdk_group_the_same_bug_together() -> None:
    # raven marks no frame in-app and sentry-sdk marks these in-app; both end up hashing
    # the same frames of this file.
    assert raven_hash(lookup_missing) == sdk_hash(lookup_missing)


# -- field rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("debug", "debug"),
        ("INFO", "info"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("error", "error"),
        ("fatal", "fatal"),
        ("critical", "fatal"),
        (" Warning ", "warning"),
        (10, "debug"),
        (20, "info"),
        (30, "warning"),
        (40, "error"),
        (50, "fatal"),
        ("30", "warning"),
        (30.0, "warning"),
        (None, "error"),
        ("verbose", "error"),
        (25, "error"),
        (True, "error"),
        ([], "error"),
        (float("inf"), "error"),
    ],
)
def test_levels(level: Any, expected: str) -> None:
    assert normalize({"level": level}).level == expected


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [
        ("fc6d8c0c43fc4630ad850ee518f1b9d0", "fc6d8c0c43fc4630ad850ee518f1b9d0"),
        ("FC6D8C0C43FC4630AD850EE518F1B9D0", "fc6d8c0c43fc4630ad850ee518f1b9d0"),
        ("fc6d8c0c-43fc-4630-ad85-0ee518f1b9d0", "fc6d8c0c43fc4630ad850ee518f1b9d0"),
    ],
)
def test_event_ids(event_id: str, expected: str) -> None:
    assert normalize({"event_id": event_id}).event_id == expected


def test_missing_event_id_gets_one() -> None:
    first, second = normalize({}).event_id, normalize({"event_id": None}).event_id
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2024-05-01T11:00:00Z", datetime(2024, 5, 1, 11, tzinfo=timezone.utc)),
        ("2024-05-01T11:00:00", datetime(2024, 5, 1, 11, tzinfo=timezone.utc)),
        ("2024-05-01T11:00:00.25Z", datetime(2024, 5, 1, 11, 0, 0, 250000, timezone.utc)),
        ("2024-05-01T11:00:00.123456789Z", datetime(2024, 5, 1, 11, 0, 0, 123456, timezone.utc)),
        ("2024-05-01 13:00:00+02:00", datetime(2024, 5, 1, 11, tzinfo=timezone.utc)),
        ("2024-05-01T06:30:00-0430", datetime(2024, 5, 1, 11, tzinfo=timezone.utc)),
        (1714561200, datetime(2024, 5, 1, 11, tzinfo=timezone.utc)),
        (1714561200.5, datetime(2024, 5, 1, 11, 0, 0, 500000, timezone.utc)),
        ("1714561200", datetime(2024, 5, 1, 11, tzinfo=timezone.utc)),
        ("2024-05-01T12:00:59Z", datetime(2024, 5, 1, 12, 0, 59, tzinfo=timezone.utc)),
        # Clamped to the receive time: too far ahead, too old, unusable.
        ("2024-05-01T12:01:01Z", RECEIVED),
        ("2024-03-01T12:00:00Z", RECEIVED),
        (0, RECEIVED),
        (-1e30, RECEIVED),
        (1e30, RECEIVED),
        (float("nan"), RECEIVED),
        ("yesterday", RECEIVED),
        ("2024-13-01T00:00:00Z", RECEIVED),
        ("2024-05-01T11:00:00+25:00", RECEIVED),
        ("0001-01-01T00:00:00+01:00", RECEIVED),
        (True, RECEIVED),
        ([], RECEIVED),
        (None, RECEIVED),
    ],
)
def test_timestamps(timestamp: Any, expected: datetime) -> None:
    event = normalize({"timestamp": timestamp})
    assert event.timestamp == expected
    assert event.timestamp.utcoffset() == timedelta(0)


def test_naive_received_is_utc() -> None:
    naive = datetime(2024, 5, 1, 12)
    assert normalize_event({}, received=naive).timestamp == RECEIVED


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"tags": {"a": "1", "b": 2, "c": 1.5, "d": True}},
            [("a", "1"), ("b", "2"), ("c", "1.5"), ("d", "True")],
        ),
        ({"tags": [["a", "1"], ["b", "2"], ["a", "3"]]}, [("a", "1"), ("b", "2")]),
        ({"tags": [["a", "1"], ["bad"], "x", ["b", "2", "3"], None]}, [("a", "1")]),
        ({"tags": {"k" * 32: "v", "k" * 33: "v"}}, [("k" * 32, "v")]),
        ({"tags": {"a": "v" * 300}}, []),  # SPEC §11: a longer value drops the tag
        ({"tags": {"a": "", "b": None, "c": "  ", " ": "x"}}, []),
        ({"tags": {"with space": "x", "ok:key.1-2_3": "y"}}, [("ok:key.1-2_3", "y")]),
        ({"tags": {"a": {"x": [1]}}}, [("a", '{"x": [1]}')]),
        ({"tags": "nope"}, []),
        ({"tags": {"a": " padded "}}, [("a", "padded")]),
    ],
)
def test_event_tags(payload: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert list(normalize(payload).tags) == [("level", "error"), *expected]


def test_derived_tags_come_first_and_win() -> None:
    event = normalize(
        {
            "level": "info",
            "logger": "app.db",
            "server_name": "h1",
            "release": "1.0",
            "environment": "prod",
            "user": {"email": "a@b.c"},
            "tags": {"release": "fake", "level": "fake", "site": "s"},
        }
    )
    assert event.tags == (
        ("level", "info"),
        ("logger", "app.db"),
        ("server_name", "h1"),
        ("release", "1.0"),
        ("environment", "prod"),
        ("user", "email:a@b.c"),
        ("site", "s"),
    )


@pytest.mark.parametrize(
    ("user", "ident"),
    [
        ({"id": 7, "username": "u", "email": "e", "ip_address": "1.2.3.4"}, "id:7"),
        ({"username": "u", "email": "e"}, "username:u"),
        ({"email": "e", "ip_address": "1.2.3.4"}, "email:e"),
        ({"ip_address": "1.2.3.4"}, "ip:1.2.3.4"),
        ({"ip_address": "{{auto}}"}, None),
        ({"name": "Ann"}, None),
        ({}, None),
        ({"id": ""}, None),
    ],
)
def test_user_ident(user: dict[str, Any], ident: str | None) -> None:
    assert normalize({"user": user}).user_ident == ident


def test_legacy_user_key() -> None:
    event = normalize({"sentry.interfaces.User": {"id": "9", "data": {"plan": "pro"}}})
    assert event.user == {"id": "9", "data": {"plan": "pro"}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"logentry": {"formatted": "done", "message": "d %s", "params": [1]}}, "done"),
        (
            {"logentry": {"message": "user %s failed %d times", "params": ["ann", 3]}},
            "user ann failed 3 times",
        ),
        ({"logentry": {"message": "user %(name)s", "params": {"name": "ann"}}}, "user ann"),
        ({"logentry": {"message": "100% done", "params": ["x"]}}, "100% done"),
        ({"logentry": {"message": "%s %s", "params": ["one"]}}, "%s %s"),
        ({"logentry": {"message": "%*d", "params": [10**9, 1]}}, "%*d"),
        ({"logentry": {"message": "%0999999999d", "params": [1]}}, "%0999999999d"),
        ({"logentry": {"message": "%c", "params": [10**10]}}, "%c"),
        ({"logentry": {"message": "no params %s"}}, "no params %s"),
        ({"logentry": {"message": "%s", "params": "not a list"}}, "%s"),
        ({"logentry": "plain logentry"}, "plain logentry"),
        ({"logentry": {}, "message": "fallback"}, "fallback"),
        ({"message": "plain"}, "plain"),
        ({"message": {"formatted": "obj formatted"}}, "obj formatted"),
        ({"message": {"message": "obj %s", "params": ["x"]}}, "obj x"),
        ({"message": 42}, "42"),
        ({"message": "   "}, ""),
        ({}, ""),
    ],
)
def test_messages(payload: dict[str, Any], message: str) -> None:
    event = normalize(payload)
    assert event.message == message
    assert event.title == (message.splitlines()[0] if message else "<unlabeled event>")


def test_format_refuses_huge_expansions() -> None:
    template = "%(a)s" * 100
    event = normalize({"logentry": {"message": template, "params": {"a": "x" * 100_000}}})
    assert event.message == template


def test_title_rules() -> None:
    long = "word " * 100
    event = normalize({"message": f"\n\n  {long}\nsecond line"})
    assert len(event.title) == 100 and event.title.endswith("...")
    assert event.message.startswith("word")
    assert normalize({"message": "x" * 10_000}).message == "x" * 8189 + "..."
    error = normalize({"exception": [{"type": "E", "value": "v" * 300 + "\nmore"}]})
    assert error.title == "E: " + "v" * 97 + "..."
    assert normalize({"exception": [{"type": "E"}]}).title == "E"
    assert normalize({"exception": [{"value": "just a value"}]}).title == "Error: just a value"


@pytest.mark.parametrize(
    "exception",
    [
        {"values": [{"type": "E", "value": "v"}]},
        [{"type": "E", "value": "v"}],
        {"type": "E", "value": "v"},
        {"values": [None, {"type": "E", "value": "v"}]},
    ],
)
def test_exception_shapes(exception: Any) -> None:
    for key in ("exception", "sentry.interfaces.Exception"):
        event = normalize({key: exception})
        assert (event.type, event.title) == ("error", "E: v")


def test_empty_exceptions_are_not_errors() -> None:
    for exception in ({"values": []}, {"values": None}, [], [{}], {"values": [{"module": "m"}]}):
        event = normalize({"exception": exception, "message": "m"})
        assert (event.type, event.title) == ("default", "m")


def test_legacy_exception_with_separate_stacktrace() -> None:
    event = normalize(
        {
            "sentry.interfaces.Exception": {"type": "E", "value": "v"},
            "sentry.interfaces.Stacktrace": {
                "frames": [{"module": "app", "function": "f", "in_app": True}]
            },
        }
    )
    [entry] = event.data["entries"]
    assert entry["data"]["values"][0]["stacktrace"]["frames"][0]["function"] == "f"
    assert event.culprit == "app in f"


@pytest.mark.parametrize(
    ("payload", "culprit"),
    [
        ({"culprit": "sent by the client"}, "sent by the client"),
        ({"culprit": "c" * 300}, "c" * 197 + "..."),
        ({"request": {"url": "http://x/y"}}, "http://x/y"),
        (
            {
                "exception": [
                    {
                        "type": "E",
                        "stacktrace": {
                            "frames": [
                                {"module": "app.a", "function": "outer", "in_app": True},
                                {"module": "app.b", "function": "inner", "in_app": True},
                                {"module": "lib.c", "function": "deep", "in_app": False},
                            ]
                        },
                    }
                ],
                "request": {"url": "http://x/y"},
            },
            "app.b in inner",
        ),
        (
            {"exception": [{"type": "E", "stacktrace": {"frames": [{"filename": "a.js"}]}}]},
            "a.js",
        ),
        ({"stacktrace": {"frames": [{"abs_path": "/a.py", "function": "f"}]}}, "/a.py in f"),
        ({}, None),
    ],
)
def test_culprits(payload: dict[str, Any], culprit: str | None) -> None:
    assert normalize(payload).culprit == culprit


def test_attribute_lengths_and_defaults() -> None:
    event = normalize(
        {
            "release": "r" * 200,
            "environment": "e" * 100,
            "server_name": "  s  ",
            "logger": "",
            "platform": 7,
        }
    )
    assert event.release == "r" * 200
    assert "_meta" not in event.data
    assert event.environment == "e" * 64
    assert event.data["server_name"] == "s"
    assert event.logger is None
    assert event.platform == "7"
    assert normalize({}).platform == "other"
    assert normalize({"release": {"a": 1}}).release is None


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("1.0", "1.0"),
        ("my app 1.0", "my app 1.0"),  # Sentry allows spaces: reachable as my%20app%201.0
        ("  web@2.0+build.7\n", "web@2.0+build.7"),  # trimmed, as Relay does
        ("...", "..."),
        ("\u00fc" * 200, "\u00fc" * 200),
        (2.5, "2.5"),
        ("   ", None),
        ("", None),
        (None, None),
    ],
)
def test_valid_releases_are_kept(sent: Any, stored: str | None) -> None:
    event = normalize({"release": sent})
    assert event.release == stored
    assert ("release", stored) in event.tags if stored else "release" not in dict(event.tags)
    assert "_meta" not in event.data


@pytest.mark.parametrize(
    "sent",
    ["latest", "LATEST", ".", "..", "a\tb", "a\x0bb", "a/b", "a\\b", "del\x7f", "r" * 201],
)
def test_an_invalid_release_is_dropped_with_a_meta_note(sent: str) -> None:
    # Issue 12: these were stored and listed, but .../releases/<version>/ never found them.
    event = normalize({"release": sent, "tags": {"site": "s"}})
    assert event.release is None
    assert "release" not in dict(event.tags) and ("site", "s") in event.tags
    assert event.data["_meta"] == {"release": {"": {"err": ["invalid_data"], "val": sent}}}


def test_the_meta_note_of_a_huge_invalid_release_is_bounded() -> None:
    event = normalize({"release": "/" * 100_000})
    note = event.data["_meta"]["release"][""]
    assert note["err"] == ["invalid_data"]
    assert len(note["val"]) == 8192 and note["val"].endswith("...")


def test_entries_and_data() -> None:
    event = normalize(
        {
            "message": "m",
            "request": {
                "url": "http://x/y",
                "method": "post",
                "headers": {"Host": "x", "X-N": 1},
                "query_string": "a=1",
                "data": {"f": [1, 2]},
            },
            "breadcrumbs": {
                "values": [
                    {"message": "clicked", "timestamp": 1714561200, "category": "ui"},
                    {"message": "iso", "timestamp": "2024-05-01T11:00:00Z"},
                ]
            },
            "template": {"filename": "t.html", "lineno": 3},
            "extra": {"x": 1},
            "contexts": {"os": {"name": "Linux"}, "bad": "dropped"},
            "sdk": {"name": "s", "version": "1"},
            "fingerprint": ["{{ default }}", 1],
            "modules": {"django": "1.8", "bad": {"x": 1}},
            "transaction": "/y",
        }
    )
    types = [entry["type"] for entry in event.data["entries"]]
    assert types == ["message", "template", "request", "breadcrumbs"]
    request = event.data["entries"][2]["data"]
    assert request["method"] == "POST"
    assert request["headers"] == [["Host", "x"], ["X-N", "1"]]
    crumbs = event.data["entries"][3]["data"]["values"]
    assert [c["timestamp"] for c in crumbs] == ["2024-05-01T11:00:00Z", "2024-05-01T11:00:00Z"]
    assert crumbs[0]["type"] == "default"
    assert event.data["extra"] == {"x": 1}
    assert event.data["contexts"] == {"os": {"name": "Linux"}}
    assert event.data["sdk"] == {"name": "s", "version": "1"}
    assert event.data["fingerprint"] == ["{{ default }}", "1"]
    assert event.data["modules"] == {"django": "1.8"}
    assert event.data["transaction"] == "/y"


def test_frames_keep_their_fields_and_are_trimmed() -> None:
    frames = [{"function": f"f{i}", "lineno": i, "in_app": True} for i in range(1000)]
    event = normalize({"exception": [{"type": "E", "stacktrace": {"frames": frames}}]})
    stack = event.data["entries"][0]["data"]["values"][0]["stacktrace"]
    assert len(stack["frames"]) == 250
    assert stack["framesOmitted"] == [125, 875]
    assert stack["frames"][-1]["function"] == "f999"
    assert set(stack["frames"][0]) == {
        "filename",
        "abs_path",
        "module",
        "function",
        "lineno",
        "colno",
        "in_app",
        "context_line",
        "pre_context",
        "post_context",
        "vars",
    }


def test_bad_characters_and_depth_are_sanitised() -> None:
    deep: Any = "bottom"
    for _ in range(500):
        deep = {"d": deep}
    event = normalize(
        {
            "message": "nul\x00 and lone \ud800 surrogate",
            "tags": {"a": "x\x00y"},
            "extra": {"deep": deep, "inf": float("inf")},
            "exception": [{"type": "E", "stacktrace": {"frames": [{"vars": {"v": deep}}]}}],
        }
    )
    message = event.data["entries"][0]["data"]["formatted"]
    assert message == "nul\ufffd and lone \ufffd surrogate"
    assert ("a", "x\ufffdy") in event.tags
    assert event.data["extra"]["inf"] is None
    assert "..." in json.dumps(event.data["extra"])
    assert json.dumps(event.data).count('"d"') < 30


def test_checksum_groups() -> None:
    one = normalize({"checksum": "c" * 32, "message": "a"})
    two = normalize({"checksum": "c" * 32, "message": "b"})
    assert one.group_hash == two.group_hash == "c" * 32


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ([], "expected a JSON object"),
        ("event", "expected a JSON object"),
        ({"event_id": "xyz"}, "event_id"),
        ({"event_id": "g" * 32}, "event_id"),
        ({"event_id": "a" * 33}, "event_id"),
        ({"event_id": 12}, "event_id"),
        ({"event_id": ["a" * 32]}, "event_id"),
        ({"exception": "boom"}, "exception interface"),
        ({"exception": {"values": "boom"}}, "values must be a list"),
        ({"exception": {"values": ["boom"]}}, "values[0] is not an object"),
        ({"exception": [{"type": "E"}, 3]}, "values[1] is not an object"),
        ({"exception": [{"type": "E", "stacktrace": []}]}, "values[0].stacktrace"),
        ({"exception": [{"type": "E", "stacktrace": {"frames": {}}}]}, "frames must be a list"),
        ({"exception": [{"type": "E", "stacktrace": {"frames": ["f"]}}]}, "frames[0]"),
        ({"stacktrace": "s"}, "Invalid stacktrace"),
        ({"stacktrace": {"frames": "s"}}, "frames must be a list"),
        ({"sentry.interfaces.Stacktrace": {"frames": [1]}}, "frames[0]"),
        ({"threads": {"values": [1]}}, "threads interface"),
        ({"threads": {"values": [{"stacktrace": {"frames": 1}}]}}, "threads interface"),
        ({"user": "ann"}, "user interface"),
        ({"user": ["ann"]}, "user interface"),
        ({"request": "GET /"}, "request interface"),
        ({"sentry.interfaces.Http": []}, "request interface"),
        ({"breadcrumbs": "b"}, "breadcrumbs interface"),
        ({"breadcrumbs": {"values": {}}}, "breadcrumbs interface"),
        ({"breadcrumbs": [1]}, "breadcrumbs interface"),
        ({"logentry": ["m"]}, "logentry"),
        ({"message": ["m"]}, "message"),
        ({"sentry.interfaces.Message": True}, "logentry"),
        ({"template": "t"}, "template interface"),
        ({"csp": 1}, "csp interface"),
    ],
)
def test_bad_payloads(payload: Any, detail: str) -> None:
    with pytest.raises(BadRequest) as info:
        normalize_event(payload, received=RECEIVED)
    assert type(info.value) is BadRequest
    assert detail in info.value.detail


# -- anything JSON ----------------------------------------------------------------------

FIELDS = [
    "event_id", "timestamp", "level", "logger", "platform", "server_name", "release",
    "environment", "message", "logentry", "exception", "values", "stacktrace", "frames",
    "threads", "breadcrumbs", "request", "user", "tags", "extra", "contexts", "sdk",
    "fingerprint", "culprit", "transaction", "modules", "checksum", "type", "value",
    "module", "function", "filename", "abs_path", "lineno", "in_app", "vars", "mechanism",
    "params", "formatted", "id", "email", "username", "ip_address", "url", "method",
    "headers", "data", "template", "csp", "pre_context", "context_line",
    "sentry.interfaces.Exception", "sentry.interfaces.Message", "sentry.interfaces.Http",
    "sentry.interfaces.User", "sentry.interfaces.Stacktrace",
]  # fmt: skip

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["error", "%s %d", "{{ default }}", "2024-05-01T11:30:00Z", "a" * 32])
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
anything = leaves | json_values


def some(**fields: Any) -> Any:
    """Objects holding any subset of ``fields`` (so most shapes are right, some not)."""
    return st.fixed_dictionaries({}, optional=fields)


frames = some(
    module=leaves,
    function=leaves,
    filename=leaves,
    abs_path=leaves,
    lineno=leaves,
    in_app=st.booleans() | leaves,
    context_line=leaves,
    pre_context=st.lists(leaves, max_size=3) | leaves,
    vars=anything,
)
# Repeating a branch of one_of makes it likelier: mostly right shapes, sometimes wrong.
stacktraces = st.one_of(*[some(frames=st.lists(frames, max_size=4))] * 4, anything)
exception_values = some(
    type=st.one_of(*[st.text(min_size=1, max_size=10)] * 3, leaves),
    value=anything,
    module=leaves,
    mechanism=anything,
    stacktrace=stacktraces,
)
events = some(
    event_id=st.one_of(*[st.sampled_from(["a" * 32, "A" * 8 + "-" + "b" * 24])] * 4, leaves),
    timestamp=leaves,
    level=leaves,
    logger=leaves,
    platform=leaves,
    server_name=leaves,
    release=leaves,
    environment=anything,
    culprit=leaves,
    checksum=leaves,
    exception=some(values=st.lists(exception_values, max_size=3))
    | st.lists(exception_values, max_size=3)
    | exception_values,
    stacktrace=stacktraces,
    threads=some(values=st.lists(some(id=leaves, current=leaves, stacktrace=stacktraces))),
    logentry=some(message=leaves, params=anything, formatted=leaves) | anything,
    message=anything,
    tags=st.dictionaries(st.text(max_size=40), anything, max_size=4)
    | st.lists(st.lists(leaves, min_size=2, max_size=2) | anything, max_size=4)
    | anything,
    user=some(id=leaves, username=leaves, email=leaves, ip_address=leaves, data=anything),
    request=some(url=leaves, method=leaves, headers=anything, data=anything, env=anything),
    breadcrumbs=some(values=st.lists(some(message=leaves, timestamp=leaves, data=anything))),
    fingerprint=st.lists(anything, max_size=3) | anything,
    extra=anything,
    contexts=anything,
    sdk=anything,
    modules=anything,
)

# Errors only come out when every interface is right: a separate, mostly-valid strategy.
error_events = st.fixed_dictionaries(
    {"exception": some(values=st.lists(exception_values, min_size=1, max_size=3))},
    optional={
        "level": leaves,
        "message": leaves,
        "culprit": leaves,
        "fingerprint": st.lists(anything, max_size=3),
        "tags": st.dictionaries(st.text(max_size=40), anything, max_size=4),
        "request": some(url=leaves),
    },
)


def check_any(payload: Any) -> None:
    try:
        event = normalize_event(payload, received=RECEIVED)
    except BadRequest:
        return
    assert_json(event)
    assert len(event.event_id) == 32 and len(event.group_hash) == 32
    assert event.level in ("debug", "info", "warning", "error", "fatal")
    assert event.type in ("error", "default")
    assert event.title and len(event.title) <= 255
    assert event.culprit is None or len(event.culprit) <= 200
    assert all(len(k) <= 32 and len(v) <= 200 for k, v in event.tags)
    assert len(dict(event.tags)) == len(event.tags)


@settings(max_examples=300, deadline=None)
@given(events | error_events)
def test_event_shaped_json_gives_an_event_or_bad_request(payload: dict[str, Any]) -> None:
    check_any(payload)


@settings(deadline=None)
@given(anything | st.dictionaries(st.sampled_from(FIELDS), anything, max_size=8))
def test_any_json_gives_an_event_or_bad_request(payload: Any) -> None:
    check_any(payload)


def test_auth_tokens_are_never_stored_in_clear() -> None:
    # sentry-cli send-event reports its whole environment, SENTRY_AUTH_TOKEN included.
    token = new_token()
    event = normalize_event(
        {
            "message": f"deploying with {token}",
            "extra": {"environ": {"SENTRY_AUTH_TOKEN": token, "HOME": "/root"}},
            "tags": {"note": f"t={token}"},
        },
        received=datetime.now(timezone.utc),
    )
    stored = json.dumps([event.message, event.title, event.tags, event.data], default=str)
    assert token not in stored
    assert event.data["extra"]["environ"] == {"SENTRY_AUTH_TOKEN": "[Filtered]", "HOME": "/root"}
    assert event.message == "deploying with [Filtered]"
