"""Tests for flask_sentry_api.ingest.grouping: default components, fingerprints, checksums."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_sentry_api.ingest.grouping import default_hash_components
from flask_sentry_api.ingest.grouping import group_hash


def frame(
    module: str, function: str, lineno: int = 1, in_app: bool | None = True
) -> dict[str, Any]:
    return {
        "module": module,
        "function": function,
        "lineno": lineno,
        "in_app": in_app,
        "filename": module.replace(".", "/") + ".py",
        "context_line": f"line {lineno}",
    }


def error(*values: tuple[str, str, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    return {
        "exception": {
            "values": [
                {"type": t, "value": v, "stacktrace": {"frames": frames}} for t, v, frames in values
            ]
        },
        **extra,
    }


APP = [frame("app.views", "index"), frame("app.models", "save")]


def test_exception_components() -> None:
    event = error(("ValueError", "boom", APP))
    assert default_hash_components(event) == [
        "app.views",
        "index",
        "app.models",
        "save",
        "ValueError",
    ]


def test_chained_exceptions_all_count() -> None:
    event = error(("KeyError", "'k'", [frame("app.a", "f")]), ("ValueError", "boom", APP))
    assert default_hash_components(event) == [
        "app.a",
        "f",
        "KeyError",
        "app.views",
        "index",
        "app.models",
        "save",
        "ValueError",
    ]


def test_line_numbers_and_values_do_not_matter() -> None:
    moved = [frame("app.views", "index", 10), frame("app.models", "save", 99)]
    assert group_hash(error(("ValueError", "boom", APP))) == group_hash(
        error(("ValueError", "other text", moved))
    )


def test_type_and_place_matter() -> None:
    base = group_hash(error(("ValueError", "boom", APP)))
    assert group_hash(error(("TypeError", "boom", APP))) != base
    assert group_hash(error(("ValueError", "boom", [frame("app.views", "other")]))) != base


def test_only_in_app_frames_count_when_there_are_some() -> None:
    framework = [frame("flask.app", "dispatch", in_app=False)]
    other_framework = [frame("django.core", "handle", in_app=False)]
    assert group_hash(error(("E", "x", framework + APP))) == group_hash(
        error(("E", "x", other_framework + APP))
    )
    # No in-app frame anywhere: every frame counts (in_app missing is not in-app).
    system = [frame("lib.a", "f", in_app=None), frame("lib.b", "g", in_app=False)]
    assert default_hash_components(error(("E", "x", system))) == ["lib.a", "f", "lib.b", "g", "E"]


def test_filename_when_no_module() -> None:
    frames = [{"filename": "app.js", "function": "onClick"}, {"abs_path": "/x.js"}, {}]
    assert default_hash_components(error(("TypeError", "x", frames))) == [
        "app.js",
        "onClick",
        "/x.js",
        "",
        "TypeError",
    ]


def test_without_frames_type_and_value() -> None:
    event = {"exception": {"values": [{"type": "ValueError", "value": "boom"}]}}
    assert default_hash_components(event) == ["ValueError", "boom"]
    assert group_hash(event) != group_hash(
        {"exception": {"values": [{"type": "ValueError", "value": "bang"}]}}
    )


@pytest.mark.parametrize(
    ("event", "components"),
    [
        ({"message": "hello"}, ["hello"]),
        ({"message": {"formatted": "hi there"}}, ["hi there"]),
        # The template groups, not the formatted text.
        (
            {"logentry": {"message": "user %s failed", "formatted": "user 1 failed"}},
            ["user %s failed"],
        ),
        ({"logentry": {"formatted": "user 1 failed"}}, ["user 1 failed"]),
        ({"sentry.interfaces.Message": {"message": "m %s", "params": [1]}}, ["m %s"]),
        ({}, [""]),
        ({"exception": {"values": [{}]}, "message": "fallback"}, ["fallback"]),
    ],
)
def test_message_components(event: dict[str, Any], components: list[str]) -> None:
    assert default_hash_components(event) == components


def test_legacy_exception_shapes() -> None:
    values = [{"type": "E", "value": "v", "stacktrace": {"frames": APP}}]
    expected = default_hash_components({"exception": {"values": values}})
    assert default_hash_components({"exception": values}) == expected
    assert default_hash_components({"exception": values[0]}) == expected


def test_fingerprint_default_expands() -> None:
    event = error(("ValueError", "boom", APP))
    plain = group_hash(event)
    for spelling in ("{{ default }}", "{{default}}", " {{  default }} "):
        assert group_hash({**event, "fingerprint": [spelling]}) == plain
    assert group_hash({**event, "fingerprint": ["{{ default }}", "x"]}) != plain
    assert group_hash({**event, "fingerprint": ["{{ default }}", "x"]}) != group_hash(
        {**event, "fingerprint": ["{{ default }}", "y"]}
    )


def test_fingerprint_replaces_default() -> None:
    one = error(("ValueError", "boom", APP), fingerprint=["db-down"])
    two = {"message": "totally different", "fingerprint": ["db-down"]}
    assert group_hash(one) == group_hash(two)
    assert group_hash(one) != group_hash({**one, "fingerprint": ["db-up"]})


@pytest.mark.parametrize("fingerprint", [None, [], "db-down", {"a": 1}, 3])
def test_unusable_fingerprints_are_ignored(fingerprint: Any) -> None:
    event = error(("ValueError", "boom", APP))
    assert group_hash({**event, "fingerprint": fingerprint}) == group_hash(event)


def test_fingerprint_entries_are_stringified() -> None:
    assert group_hash({"fingerprint": [1, None, True]}) == group_hash(
        {"fingerprint": ["1", "None", "True"]}
    )
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    assert re.fullmatch(r"[0-9a-f]{32}", group_hash({"fingerprint": [deep]}))


def test_parts_cannot_run_together() -> None:
    assert group_hash({"fingerprint": ["ab", "c"]}) != group_hash({"fingerprint": ["a", "bc"]})
    assert group_hash({"fingerprint": ["a", ""]}) != group_hash({"fingerprint": ["a"]})


def test_hash_is_md5_hex_and_deterministic() -> None:
    event = error(("ValueError", "boom", APP))
    value = group_hash(event)
    assert re.fullmatch(r"[0-9a-f]{32}", value)
    reordered = {"exception": event["exception"]}
    reordered["exception"]["values"][0] = dict(
        reversed(list(event["exception"]["values"][0].items()))
    )
    assert group_hash(reordered) == value
    expected = hashlib.md5(b"".join(b"%d:%s" % (len(p), p.encode()) for p in ["x"])).hexdigest()
    assert group_hash({"fingerprint": ["x"]}) == expected


def test_checksum() -> None:
    checksum = "A" * 32
    assert group_hash({"checksum": checksum, "fingerprint": ["x"]}) == "a" * 32
    assert group_hash({"checksum": "short"}) == group_hash({"checksum": "short", "message": "m"})
    assert group_hash({"checksum": "short"}) != group_hash({"message": "short"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["values", "stacktrace", "frames", "type", "value", "module", "function", "in_app"]
            )
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@given(
    st.dictionaries(
        st.sampled_from(["exception", "message", "logentry", "fingerprint", "checksum"]),
        json_values,
    )
)
def test_any_event_hashes(event: dict[str, Any]) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", group_hash(event))
    assert all(isinstance(part, str) for part in default_hash_components(event))
