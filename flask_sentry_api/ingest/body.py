"""Read, inflate and decode ingestion request bodies, never holding more than a fixed bound.

SDKs compress what they post: sentry-sdk uses gzip or brotli (``Content-Encoding``),
raven-python a zlib stream labelled ``deflate``, and raven before 5.6 sent base64(zlib)
bodies without any header. A small compressed body can inflate to gigabytes, so inflation
is streamed and stops with :class:`~flask_sentry_api.errors.PayloadTooLarge` as soon as the
output passes the limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from typing import Any
from typing import Literal
from typing import Protocol

from ..errors import BadRequest
from ..errors import PayloadTooLarge
from ..errors import UnsupportedMediaType

# brotli is in install_requires (sentry-sdk sends ``br`` whenever its host has brotli); a
# broken install without it still serves gzip/deflate and answers ``br`` with a clear 415.
try:
    import brotli
except ImportError:  # pragma: no cover - only in an incomplete install
    brotli = None

#: Inflation bound of :func:`decode_store_payload` when the caller gives none.
DEFAULT_MAX_INFLATED = 20 * 1024 * 1024
#: Most a JSON document may cost to parse, in units of :func:`parse_cost` (about 40 bytes
#: of the parser's memory each): 18 MB of ``[],[],…`` took ~485 MB to parse, while at
#: 2,500,000 units the costliest shapes measured peak at 80-97 MB. A million empty arrays
#: (2,000,000 units) still parse, to be trimmed.
MAX_PARSE_COST = 2_500_000

_GZIP_MAGIC = b"\x1f\x8b"


class Readable(Protocol):
    """What :func:`read_body` reads: any binary stream (``request.stream``, ``io.BytesIO``)."""

    def read(self, size: int, /) -> bytes: ...


def read_body(
    stream: Readable,
    *,
    content_encoding: str | None,
    max_body: int,
    max_inflated: int,
    chunk_size: int = 65536,
) -> bytes:
    """Read ``stream`` to its end and undo its ``Content-Encoding``.

    :param content_encoding: ``gzip`` (or ``x-gzip``), ``deflate`` (a zlib stream, or raw
        deflate), ``br``, ``identity`` or ``None``.
    :param max_body: most bytes read from ``stream``.
    :param max_inflated: most bytes the decoded body may have.
    :raises PayloadTooLarge: either bound is passed.
    :raises UnsupportedMediaType: an unknown encoding, or ``br`` without the brotli module.
    :raises BadRequest: corrupt or truncated compressed data, or bytes after its end.
    """
    decoder = _decoder_for(content_encoding)
    sink = _Sink(max_inflated)
    total = 0
    while True:
        # Ask for one byte past the bound so an oversized body shows without reading it all.
        chunk = stream.read(min(chunk_size, max_body - total + 1))
        if not chunk:
            break
        total += len(chunk)
        if total > max_body:
            raise PayloadTooLarge(f"Request body is larger than {max_body} bytes.")
        decoder.feed(chunk, sink)
    decoder.finish()
    return bytes(sink.data)


def decode_store_payload(raw: bytes, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> dict[str, Any]:
    """Decode a store-endpoint body: JSON, base64(zlib(JSON)) or base64(JSON).

    ``raw`` is what :func:`read_body` returned, so any ``Content-Encoding`` is undone.

    :raises BadRequest: undecodable data or anything but a JSON object.
    :raises PayloadTooLarge: base64(zlib) data inflating past ``max_inflated`` bytes.
    """
    if raw.lstrip().startswith(b"{"):
        return load_json_object(raw)
    try:
        decoded = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        # Not base64 either: let the JSON parser say what is wrong with it.
        return load_json_object(raw)
    # A JSON text can never start with a valid zlib header ("{" and whitespace all fail
    # the CM nibble), so the check tells base64(zlib) from plain base64 unambiguously.
    if _is_zlib_header(decoded):
        sink = _Sink(max_inflated)
        decoder = _ZlibDecoder("deflate")
        decoder.feed(decoded, sink)
        decoder.finish()
        return load_json_object(bytes(sink.data))
    try:
        return load_json_object(decoded)
    except BadRequest:
        # "null", "true" and "1234" are valid base64 too: say what is wrong with the JSON.
        if _parses_as_json(raw):
            return load_json_object(raw)
        raise


def load_json_object(raw: bytes, *, what: str = "event") -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object.

    :param what: names the document in error details (``event``, ``envelope header``).
    :raises BadRequest: invalid UTF-8 or JSON, ``NaN``/``Infinity`` or numbers that
        overflow a float, nesting too deep for the parser, or a non-object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"Invalid {what}: not valid UTF-8 ({exc.reason} at byte {exc.start})."
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise BadRequest(f"Invalid {what}: the JSON document is empty.")
    if parse_cost(raw) > MAX_PARSE_COST:
        raise PayloadTooLarge(
            f"Invalid {what}: too many JSON values to parse (more than {MAX_PARSE_COST:,})."
        )
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadRequest(f"Invalid {what}: JSON nested too deeply.") from None
    except ValueError as exc:
        # JSONDecodeError, our NaN/Infinity refusals and int digit limits all land here.
        raise BadRequest(f"Invalid {what}: malformed JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid {what}: expected a JSON object, got {_json_type(value)}.")
    return value


def parse_cost(raw: bytes) -> int:
    """What parsing ``raw`` as JSON would cost, counted from its bytes in linear time before
    anything is parsed: one unit per value separator (``,``), key (``:``), string (a pair of
    quotes) and array, three per object (Python's dicts are the largest values). Bytes
    inside strings count too, so the estimate errs towards refusing."""
    return (
        raw.count(b",")
        + raw.count(b":")
        + raw.count(b'"') // 2
        + raw.count(b"[")
        + 3 * raw.count(b"{")
    )


def _parses_as_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _is_zlib_header(data: bytes) -> bool:
    # RFC 1950: CM must be 8 (deflate) and CMF*256 + FLG a multiple of 31.
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _Sink:
    """The decoded body, refusing to grow past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    @property
    def budget(self) -> int:
        # One byte more than the room left, so a decoder filling it proves an overflow.
        return self.limit - len(self.data) + 1

    def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            raise PayloadTooLarge(f"Decompressed request body is larger than {self.limit} bytes.")
        self.data += chunk


class _Decoder(Protocol):
    def feed(self, chunk: bytes, sink: _Sink) -> None: ...

    def finish(self) -> None: ...


def _decoder_for(content_encoding: str | None) -> _Decoder:
    coding = (content_encoding or "").strip().lower()
    if coding in ("", "identity"):
        return _IdentityDecoder()
    if coding in ("gzip", "x-gzip"):
        return _ZlibDecoder("gzip")
    if coding == "deflate":
        return _ZlibDecoder("deflate")
    if coding == "br":
        return _BrotliDecoder()
    shown = coding if len(coding) <= 40 else coding[:40] + "..."
    raise UnsupportedMediaType(
        f'Unsupported Content-Encoding "{shown}": use gzip, deflate, br or identity.'
    )


class _IdentityDecoder:
    def feed(self, chunk: bytes, sink: _Sink) -> None:
        sink.write(chunk)

    def finish(self) -> None:
        pass


class _ZlibDecoder:
    """gzip (one or more members) or deflate (zlib stream, or raw deflate as some send)."""

    def __init__(self, kind: Literal["gzip", "deflate"]) -> None:
        self.kind = kind
        self._obj: Any = None
        # Bytes held back until the stream format (or the next gzip member) is known.
        self._pending = b""

    def feed(self, chunk: bytes, sink: _Sink) -> None:
        data = self._pending + chunk
        self._pending = b""
        while data:
            if self._obj is None or self._obj.eof:
                if len(data) < 2:
                    self._pending = data
                    return
                self._obj = self._start(data)
            try:
                out = self._obj.decompress(data, sink.budget)
            except zlib.error as exc:
                raise BadRequest(f"Bad data decoding request ({self.kind}: {exc}).") from None
            sink.write(out)
            data = self._obj.unused_data if self._obj.eof else self._obj.unconsumed_tail

    def _start(self, data: bytes) -> Any:
        if self.kind == "gzip":
            if self._obj is not None and not data.startswith(_GZIP_MAGIC):
                raise BadRequest(
                    "Bad data decoding request (gzip: trailing data after the stream)."
                )
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._obj is not None:
            raise BadRequest("Bad data decoding request (deflate: trailing data after the stream).")
        wbits = zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS
        return zlib.decompressobj(wbits)

    def finish(self) -> None:
        if self._obj is None and not self._pending:
            return  # an empty body stays empty; the JSON parser reports it
        if self._pending and (self._obj is not None and self._obj.eof):
            raise BadRequest(
                f"Bad data decoding request ({self.kind}: trailing data after the stream)."
            )
        if self._obj is None or not self._obj.eof:
            raise BadRequest(f"Bad data decoding request ({self.kind}: truncated data).")


class _BrotliDecoder:
    def __init__(self) -> None:
        # Bounded output needs brotli >= 1.1 (output_buffer_limit, can_accept_more_data).
        if brotli is None or not hasattr(brotli.Decompressor, "can_accept_more_data"):
            raise UnsupportedMediaType(
                'Unsupported Content-Encoding "br": this server cannot decode brotli; '
                "send gzip or deflate."
            )
        self._obj = brotli.Decompressor()
        self._fed = False

    def feed(self, chunk: bytes, sink: _Sink) -> None:
        if self._obj.is_finished():
            raise BadRequest("Bad data decoding request (br: trailing data after the stream).")
        self._fed = True
        try:
            sink.write(self._obj.process(chunk, output_buffer_limit=sink.budget))
            while not self._obj.can_accept_more_data():
                out = self._obj.process(b"", output_buffer_limit=sink.budget)
                if not out:
                    raise BadRequest("Bad data decoding request (br: decoder stalled).")
                sink.write(out)
        except brotli.error as exc:
            raise BadRequest(f"Bad data decoding request (br: {exc}).") from None

    def finish(self) -> None:
        if self._fed and not self._obj.is_finished():
            raise BadRequest("Bad data decoding request (br: truncated data).")
