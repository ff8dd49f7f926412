"""Split a Sentry envelope (the body of ``POST /api/<project>/envelope/``) into its items.

Format (https://develop.sentry.dev/sdk/envelopes/)::

    {"event_id": "...", "sent_at": "..."}            envelope header, a JSON object
    {"type": "event", "length": 41}                  item header
    {"message": "hello", "level": "info", ...}       exactly ``length`` bytes
    {"type": "attachment"}                           item header without length
    payload up to the next newline

Every item is kept; callers store ``event`` items and ignore the other types
(``transaction``, ``session``, ``attachment``, ``client_report``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest
from .body import load_json_object

#: Most items one envelope may hold; SDKs send one event plus a few attachments at most.
MAX_ITEMS = 100


@dataclass(frozen=True)
class EnvelopeItem:
    type: str
    headers: Mapping[str, Any]
    payload: bytes


@dataclass(frozen=True)
class Envelope:
    headers: Mapping[str, Any]
    items: tuple[EnvelopeItem, ...]

    def event_payload(self) -> dict[str, Any] | None:
        """The JSON object of the first ``event`` item, ``None`` when there is none.

        :raises BadRequest: that payload is not a JSON object.
        """
        for item in self.items:
            if item.type == "event":
                return load_json_object(item.payload, what="event")
        return None


def parse_envelope(raw: bytes) -> Envelope:
    """Parse an (already decompressed) envelope.

    :raises BadRequest: a header that is not a JSON object, an item without a string
        ``type``, a bad ``length`` or one that does not match the data, too many items.
    """
    if not raw.strip():
        raise BadRequest("Invalid envelope: the body is empty.")
    line, pos = _line(raw, 0)
    headers = load_json_object(line, what="envelope header")
    items: list[EnvelopeItem] = []
    end = len(raw)
    while True:
        # Blank lines between items and after the last one carry nothing.
        while pos < end and raw[pos : pos + 1] in (b"\n", b"\r"):
            pos += 1
        if pos >= end:
            break
        if len(items) >= MAX_ITEMS:
            raise BadRequest(f"Invalid envelope: more than {MAX_ITEMS} items.")
        line, pos = _line(raw, pos)
        item_headers = load_json_object(line, what="envelope item header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise BadRequest("Invalid envelope: item header without a string type.")
        length = item_headers.get("length")
        if length is None:
            payload, pos = _line(raw, pos)
        else:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise BadRequest("Invalid envelope: item length must be a non-negative integer.")
            if pos + length > end:
                raise BadRequest("Invalid envelope: item length goes past the end of the body.")
            payload = raw[pos : pos + length]
            pos += length
            if pos < end:
                if raw[pos : pos + 1] != b"\n":
                    raise BadRequest("Invalid envelope: envelope item length mismatch.")
                pos += 1
        items.append(EnvelopeItem(type=item_type, headers=item_headers, payload=payload))
    return Envelope(headers=headers, items=tuple(items))


def _line(raw: bytes, pos: int) -> tuple[bytes, int]:
    """The bytes from ``pos`` to the next newline (excluded) and the position after it."""
    newline = raw.find(b"\n", pos)
    if newline < 0:
        return raw[pos:], len(raw)
    return raw[pos:newline], newline + 1
