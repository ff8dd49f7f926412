"""Tests for flask_sentry_api.ingest.envelope: real sentry-sdk envelopes and malformed ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sentry_sdk
from hypothesis import given
from hypothesis import strategies as st
from sentry_sdk.envelope import Envelope as SdkEnvelope
from sentry_sdk.envelope import Item
from sentry_sdk.envelope import PayloadRef

from flask_sentry_api.errors import BadRequest
from flask_sentry_api.ingest.envelope import MAX_ITEMS
from flask_sentry_api.ingest.envelope import Envelope
from flask_sentry_api.ingest.envelope import EnvelopeItem
from flask_sentry_api.ingest.envelope import parse_envelope
from tests.helpers import sdk_envelopes


def raise_and_capture(scope: Any) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        sentry_sdk.capture_exception()


def test_real_exception_envelope() -> None:
    [sdk_envelope] = sdk_envelopes(raise_and_capture)
    envelope = parse_envelope(sdk_envelope.serialize())
    sent = sdk_envelope.get_event()
    assert sent is not None
    assert envelope.headers["event_id"] == sent["event_id"]
    assert [item.type for item in envelope.items] == ["event"]
    assert envelope.items[0].headers["content_type"] == "application/json"
    # Compare through JSON: the SDK's dict may hold tuples where JSON has lists.
    assert envelope.event_payload() == json.loads(json.dumps(sent))


def test_real_message_envelope() -> None:
    [sdk_envelope] = sdk_envelopes(lambda scope: sentry_sdk.capture_message("hello\nworld"))
    event = parse_envelope(sdk_envelope.serialize()).event_payload()
    assert event is not None
    assert event["message"] == "hello\nworld"
    assert event["level"] == "info"


def test_real_attachment_with_newlines_is_cut_by_length() -> None:
    def action(scope: Any) -> None:
        scope.add_attachment(bytes=b"line 1\n\nline 3\n", filename="log.txt")
        raise_and_capture(scope)

    [sdk_envelope] = sdk_envelopes(action)
    envelope = parse_envelope(sdk_envelope.serialize())
    types = [item.type for item in envelope.items]
    assert sorted(types) == ["attachment", "event"]
    attachment = envelope.items[types.index("attachment")]
    assert attachment.payload == b"line 1\n\nline 3\n"
    assert attachment.headers["filename"] == "log.txt"
    assert envelope.event_payload() is not None


def test_real_transaction_envelope_has_no_event() -> None:
    def action(scope: Any) -> None:
        with sentry_sdk.start_transaction(name="job"):
            pass

    envelopes = sdk_envelopes(action, traces_sample_rate=1.0)
    parsed = [parse_envelope(e.serialize()) for e in envelopes]
    assert any(item.type == "transaction" for p in parsed for item in p.items)
    assert all(p.event_payload() is None for p in parsed)


def test_other_item_types_are_kept() -> None:
    sdk_envelope = SdkEnvelope(headers={"sent_at": "2024-05-01T12:00:00.000000Z"})
    sdk_envelope.add_sessions({"aggregates": [{"started": "2024-05-01T12:00:00Z", "exited": 1}]})
    sdk_envelope.add_item(
        Item(payload=PayloadRef(json={"discarded_events": []}), type="client_report")
    )
    sdk_envelope.add_checkin({"check_in_id": "a" * 32, "status": "ok"})
    sdk_envelope.add_item(Item(payload=b"\x00\xff\n binary", type="profile"))
    sdk_envelope.add_event({"message": "last", "level": "info"})
    envelope = parse_envelope(sdk_envelope.serialize())
    assert [item.type for item in envelope.items] == [
        "sessions",
        "client_report",
        "check_in",
        "profile",
        "event",
    ]
    assert envelope.items[3].payload == b"\x00\xff\n binary"
    assert envelope.event_payload() == {"message": "last", "level": "info"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{}", ()),
        (b"{}\n", ()),
        (b"{}\n\n\n", ()),
        (b'{}\n{"type":"event"}\n{"a":1}', (("event", b'{"a":1}'),)),
        (b'{}\n{"type":"event"}\n{"a":1}\n', (("event", b'{"a":1}'),)),
        (b'{}\n{"type":"event","length":7}\n{"a":1}', (("event", b'{"a":1}'),)),
        (b'{}\n{"type":"event","length":7}\n{"a":1}\n', (("event", b'{"a":1}'),)),
        (b'{}\n{"type":"attachment","length":0}\n', (("attachment", b""),)),
        (b'{}\n{"type":"attachment","length":0}', (("attachment", b""),)),
        (b'{}\n{"type":"attachment"}\n\n', (("attachment", b""),)),
        (b'{}\n{"type":"attachment","length":null}\nab', (("attachment", b"ab"),)),
        (
            b'{"event_id":"x"}\n\n{"type":"a","length":3}\n1\n2\n\n{"type":"b"}\nxyz\n\n',
            (("a", b"1\n2"), ("b", b"xyz")),
        ),
        (b'{}\r\n{"type":"a"}\r\nx\r\n', (("a", b"x\r"),)),
    ],
)
def test_framing(raw: bytes, expected: tuple[tuple[str, bytes], ...]) -> None:
    envelope = parse_envelope(raw)
    assert tuple((item.type, item.payload) for item in envelope.items) == expected


def test_event_payload_is_the_first_event() -> None:
    envelope = Envelope(
        headers={},
        items=(
            EnvelopeItem("attachment", {"type": "attachment"}, b"{}"),
            EnvelopeItem("event", {"type": "event"}, b'{"n": 1}'),
            EnvelopeItem("event", {"type": "event"}, b'{"n": 2}'),
        ),
    )
    assert envelope.event_payload() == {"n": 1}


def test_item_count_bound() -> None:
    item = b'{"type":"session"}\n{}\n'
    assert len(parse_envelope(b"{}\n" + item * MAX_ITEMS).items) == MAX_ITEMS
    with pytest.raises(BadRequest, match="more than 100 items"):
        parse_envelope(b"{}\n" + item * (MAX_ITEMS + 1))


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"\n{}", "Invalid envelope header"),
        (b"nope\n", "Invalid envelope header"),
        (b"[]\n", "Invalid envelope header: expected a JSON object"),
        (b"{\n}", "Invalid envelope header"),
        (b"{}\nnope\n", "Invalid envelope item header"),
        (b'{}\n"event"\n{}', "Invalid envelope item header"),
        (b'{}\n{"length":2}\n{}', "string type"),
        (b'{}\n{"type":1}\n{}', "string type"),
        (b'{}\n{"type":""}\n{}', "string type"),
        (b'{}\n{"type":null}\n{}', "string type"),
        (b'{}\n{"type":"event","length":-1}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":"2"}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":2.0}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":true}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":3}\n{}', "past the end"),
        (b'{}\n{"type":"event","length":1e3}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":99999999999999999999}\n{}', "past the end"),
        (b'{}\n{"type":"event","length":1}\n{}', "length mismatch"),
        (b'{}\n{"type":"event","length":2}\n{}x{"type":"a"}', "length mismatch"),
    ],
)
def test_malformed(raw: bytes, detail: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_envelope(raw)
    assert type(info.value) is BadRequest
    assert detail in info.value.detail


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"", "empty"),
        (b"[1]", "expected a JSON object"),
        (b"{", "malformed JSON"),
        (b'{"a": NaN}', "NaN"),
        (b"\xff", "UTF-8"),
    ],
)
def test_bad_event_payload(payload: bytes, detail: str) -> None:
    raw = b'{}\n{"type":"event","length":%d}\n' % len(payload) + payload
    envelope = parse_envelope(raw)
    with pytest.raises(BadRequest, match=detail):
        envelope.event_payload()


@given(
    st.binary(max_size=200)
    | st.lists(
        st.sampled_from([b"{}", b"\n", b'{"type":"event"', b'"length":', b"3", b"}", b"abc", b","])
    ).map(b"".join)
)
def test_any_bytes_raise_only_bad_request(raw: bytes) -> None:
    try:
        envelope = parse_envelope(raw)
        envelope.event_payload()
    except BadRequest:
        pass
