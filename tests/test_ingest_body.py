"""Tests for flask_sentry_api.ingest.body: real SDK bodies, bounded inflation, bad data."""

from __future__ import annotations

import base64
import gzip
import io
import json
import struct
import tracemalloc
import zlib
from typing import Any

import brotli
import pytest
import raven
import sentry_sdk
from raven.transport.base import Transport as RavenTransport
from sentry_sdk.transport import HttpTransport

from flask_sentry_api.errors import APIError
from flask_sentry_api.errors import BadRequest
from flask_sentry_api.errors import PayloadTooLarge
from flask_sentry_api.errors import UnsupportedMediaType
from flask_sentry_api.ingest import body
from flask_sentry_api.ingest.body import decode_store_payload
from flask_sentry_api.ingest.body import load_json_object
from flask_sentry_api.ingest.body import read_body
from flask_sentry_api.ingest.envelope import parse_envelope

PUBLIC = "0123456789abcdef0123456789abcdef"
MB = 1024 * 1024
EVENT = {"event_id": "fc6d8c0c43fc4630ad850ee518f1b9d0", "message": "hello", "level": 40}
EVENT_BYTES = json.dumps(EVENT).encode()


def read(
    data: bytes,
    encoding: str | None = None,
    *,
    max_body: int = 10 * MB,
    max_inflated: int = 10 * MB,
    chunk_size: int = 65536,
) -> bytes:
    return read_body(
        io.BytesIO(data),
        content_encoding=encoding,
        max_body=max_body,
        max_inflated=max_inflated,
        chunk_size=chunk_size,
    )


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# -- what the real SDKs post ------------------------------------------------------------


def sentry_sdk_requests(experiments: dict[str, Any]) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) exactly as sentry-sdk's HTTP transport would put them on the wire."""
    sent: list[tuple[bytes, dict[str, str]]] = []

    class Wire(HttpTransport):
        def _send_request(
            self, body: bytes, headers: dict[str, str], *args: Any, **kw: Any
        ) -> None:
            self._update_headers(headers)
            sent.append((bytes(body), dict(headers)))

    client = sentry_sdk.Client(
        f"http://{PUBLIC}@127.0.0.1:1/1",
        transport=Wire,
        default_integrations=False,
        _experiments=experiments,
    )
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            try:
                {}["missing"]
            except KeyError:
                sentry_sdk.capture_exception()
        client.flush()
    finally:
        client.close()
    return sent


@pytest.mark.parametrize(
    ("experiments", "encoding"),
    [
        ({}, "br"),  # the default since 2.16 when brotli is importable
        ({"transport_compression_algo": "gzip"}, "gzip"),
        ({"transport_compression_level": 0}, None),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 7, 65536])
def test_sentry_sdk_bodies(
    experiments: dict[str, Any], encoding: str | None, chunk_size: int
) -> None:
    [(data, headers)] = sentry_sdk_requests(experiments)
    assert headers.get("Content-Encoding") == encoding
    raw = read(data, headers.get("Content-Encoding"), chunk_size=chunk_size)
    event = parse_envelope(raw).event_payload()
    assert event is not None
    assert event["exception"]["values"][-1]["type"] == "KeyError"


def raven_request(**options: Any) -> tuple[bytes, dict[str, str]]:
    sent: list[tuple[bytes, dict[str, str]]] = []

    class Keep(RavenTransport):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
            sent.append((data, headers))

    client = raven.Client(
        f"http://{PUBLIC}:{'f' * 32}@127.0.0.1:1/1",
        transport=Keep,
        install_sys_hook=False,
        install_logging_hook=False,
        enable_breadcrumbs=False,
        **options,
    )
    client.captureMessage("hello %s", params=("world",))
    return sent[0]


def test_raven_body() -> None:
    data, headers = raven_request()
    assert headers["Content-Encoding"] == "deflate"
    event = decode_store_payload(read(data, headers["Content-Encoding"]), max_inflated=MB)
    assert event["message"] == "hello %s"
    assert event["sentry.interfaces.Message"]["params"] == ["'world'"]


def test_raven_encode_matches_what_it_sends() -> None:
    client = raven.Client(
        f"http://{PUBLIC}:{'f' * 32}@127.0.0.1:1/1",
        install_sys_hook=False,
        install_logging_hook=False,
        enable_breadcrumbs=False,
    )
    data = client.encode(EVENT)
    assert decode_store_payload(read(data, client.get_content_encoding())) == EVENT


def test_old_raven_base64_bodies() -> None:
    # raven < 5.6 posted base64(zlib(JSON)) with no Content-Encoding; Sentry's own tests
    # posted base64(JSON).
    for data in (base64.b64encode(zlib.compress(EVENT_BYTES)), base64.b64encode(EVENT_BYTES)):
        assert decode_store_payload(read(data)) == EVENT
    wrapped = base64.encodebytes(zlib.compress(EVENT_BYTES))  # with newlines every 76 chars
    assert decode_store_payload(b"  " + wrapped) == EVENT


# -- encodings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        (None, lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        (" GZip ", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("br", brotli.compress),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1000])
def test_encodings(encoding: str | None, encode: Any, chunk_size: int) -> None:
    assert read(encode(EVENT_BYTES), encoding, chunk_size=chunk_size) == EVENT_BYTES


def test_several_gzip_members() -> None:
    data = gzip.compress(b'{"a":') + gzip.compress(b"1}")
    assert read(data, "gzip", chunk_size=5) == b'{"a":1}'


def test_empty_bodies_stay_empty() -> None:
    for encoding in (None, "gzip", "deflate", "br"):
        assert read(b"", encoding) == b""


# -- bounds -----------------------------------------------------------------------------


def test_raw_size_bound_is_exact() -> None:
    assert read(b"x" * 100, max_body=100) == b"x" * 100
    with pytest.raises(PayloadTooLarge):
        read(b"x" * 101, max_body=100)
    with pytest.raises(PayloadTooLarge):
        read(gzip.compress(b"x" * 100), "gzip", max_body=10)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        (None, lambda b: b),
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
    ],
)
def test_inflated_size_bound_is_exact(encoding: str | None, encode: Any) -> None:
    data = bytes(range(256)) * 40
    assert read(encode(data), encoding, max_inflated=len(data)) == data
    with pytest.raises(PayloadTooLarge):
        read(encode(data), encoding, max_inflated=len(data) - 1)


def zlib_bomb(wbits: int, megabytes: int) -> bytes:
    """A valid gzip (wbits 31) or zlib (wbits 15) stream of ``megabytes`` MB of zeros.

    Compressed streaming, one zero megabyte at a time. After a sync flush every further
    megabyte compresses to the same bytes, so those are repeated instead of recomputed;
    the trailer is computed for the full length, so the stream is valid to the end.
    """
    zeros = bytes(MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH) == block
    final = compressor.flush(zlib.Z_FINISH)
    if wbits > 16:
        crc = 0
        for _ in range(megabytes):
            crc = zlib.crc32(zeros, crc)
        trailer = struct.pack("<II", crc, (megabytes * MB) & 0xFFFFFFFF)
        final = final[:-8] + trailer
    else:
        adler = 1
        for _ in range(megabytes):
            adler = zlib.adler32(zeros, adler)
        final = final[:-4] + struct.pack(">I", adler)
    return first + block * (megabytes - 1) + final


def test_bomb_builder_makes_valid_streams() -> None:
    assert gzip.decompress(zlib_bomb(31, 5)) == bytes(5 * MB)
    assert zlib.decompress(zlib_bomb(15, 5)) == bytes(5 * MB)


def brotli_bomb(megabytes: int) -> bytes:
    compressor = brotli.Compressor(quality=1)
    zeros = bytes(MB)
    parts = [compressor.process(zeros) for _ in range(megabytes)]
    return b"".join(parts) + compressor.finish()


@pytest.mark.parametrize(
    ("encoding", "make"),
    [
        ("gzip", lambda: zlib_bomb(31, 1024)),
        ("deflate", lambda: zlib_bomb(15, 1024)),
        ("br", lambda: brotli_bomb(1024)),
    ],
)
def test_one_gigabyte_bombs_are_refused_in_bounded_memory(encoding: str, make: Any) -> None:
    bomb = make()
    assert len(bomb) < 2 * MB  # ~1000:1 for gzip, far more for brotli
    stream = io.BytesIO(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            read_body(stream, content_encoding=encoding, max_body=10 * MB, max_inflated=MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB
    # It stopped right after passing the bound, long before the end of the input.
    assert stream.tell() < len(bomb)


def test_base64_zlib_bomb_is_refused() -> None:
    data = base64.b64encode(zlib_bomb(15, 64))
    with pytest.raises(PayloadTooLarge):
        decode_store_payload(data, max_inflated=MB)


# -- bad data ---------------------------------------------------------------------------

GZ = gzip.compress(EVENT_BYTES, mtime=0)  # no timestamp: the same test ids in every xdist worker
ZL = zlib.compress(EVENT_BYTES)
BR = brotli.compress(EVENT_BYTES)


@pytest.mark.parametrize(
    ("data", "encoding", "error"),
    [
        (GZ[:-3], "gzip", BadRequest),  # truncated trailer
        (GZ[:20], "gzip", BadRequest),
        (GZ[:1], "gzip", BadRequest),
        (b"not gzip at all", "gzip", BadRequest),
        (GZ[:12] + b"\xff" * 10 + GZ[22:], "gzip", BadRequest),
        (GZ + b"trailing", "gzip", BadRequest),
        (GZ + b"\x00", "gzip", BadRequest),
        (GZ + b"\x1f", "gzip", BadRequest),
        (GZ + b"\x1f\x8b\x08", "gzip", BadRequest),  # a second member that never ends
        (ZL[:-2], "deflate", BadRequest),
        (ZL + b"x", "deflate", BadRequest),
        (b"\x00", "deflate", BadRequest),
        (b"\xff\xff\xff\xff", "deflate", BadRequest),
        (BR[:-2], "br", BadRequest),
        (BR + b"x", "br", BadRequest),
        (b"\xff" * 20, "br", BadRequest),
        (EVENT_BYTES, "compress", UnsupportedMediaType),
        (EVENT_BYTES, "zstd", UnsupportedMediaType),
        (EVENT_BYTES, "gzip, br", UnsupportedMediaType),
        (EVENT_BYTES, "x" * 5000, UnsupportedMediaType),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 65536])
def test_bad_bodies(data: bytes, encoding: str, error: type[APIError], chunk_size: int) -> None:
    with pytest.raises(error) as info:
        read(data, encoding, chunk_size=chunk_size)
    assert type(info.value) is error
    if error is BadRequest:
        assert info.value.detail.startswith("Bad data decoding request (")
    assert len(info.value.detail) < 200


def test_br_without_brotli_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body, "brotli", None)
    with pytest.raises(UnsupportedMediaType, match='"br"'):
        read(BR, "br")
    assert read(GZ, "gzip") == EVENT_BYTES


def test_brotli_is_a_required_dependency() -> None:
    # Issue 12: with brotli only an extra, `pip install -e .` gave a server that answered 415
    # to sentry-sdk on any client with brotli installed, and the SDK dropped those events.
    import ast
    from pathlib import Path

    setup = ast.parse((Path(__file__).parent.parent / "setup.py").read_text())
    call = next(
        node
        for node in ast.walk(setup)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
    )
    requires = next(kw.value for kw in call.keywords if kw.arg == "install_requires")
    assert isinstance(requires, ast.List)
    names = [ast.literal_eval(item) for item in requires.elts]
    assert "brotli>=1.1" in names  # >= 1.1: bounded output (output_buffer_limit)
    assert body.brotli is not None
    assert read(BR, "br") == EVENT_BYTES


# -- decode_store_payload and load_json_object ------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        EVENT_BYTES,
        b"\n\t " + EVENT_BYTES + b"\n",
        b"\xef\xbb\xbf" + EVENT_BYTES,  # a UTF-8 BOM
        base64.b64encode(EVENT_BYTES),
        base64.b64encode(zlib.compress(EVENT_BYTES)),
        base64.b64encode(zlib.compress(b"  " + EVENT_BYTES)),
    ],
)
def test_decode_store_payload(raw: bytes) -> None:
    assert decode_store_payload(raw) == EVENT


def test_unicode_survives() -> None:
    raw = json.dumps({"message": "h\u00e9llo \u2603 \U0001f600"}).encode()
    assert decode_store_payload(raw)["message"] == "h\u00e9llo \u2603 \U0001f600"


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"text"', "got a string"),
        (b"12", "got a number"),
        (b"null", "got null"),
        (b"true", "got a boolean"),
        (b"not json", "malformed JSON"),
        (b'{"a": 1', "malformed JSON"),
        (b'{"a": 1}}', "malformed JSON"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e400}', "out of range"),
        (b'{"a": ' + b"1" * 5000 + b"}", "malformed JSON"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "not valid UTF-8"),  # an encoded surrogate
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        (b"{" + b'"a":{' * 100_000 + b"}" * 100_001, "nested too deeply"),
        (base64.b64encode(b"[1]"), "got an array"),
        (base64.b64encode(b"\x78\x9c garbage"), "Bad data decoding request"),
        (base64.b64encode(zlib.compress(b"[1]")), "got an array"),
        (base64.b64encode(zlib.compress(b"\xff\xfe")), "UTF-8"),
        (b"aGVsbG8=", "malformed JSON"),  # base64 of "hello"
        (b"aGVsbG8", "malformed JSON"),  # missing padding is not base64
    ],
)
def test_decode_store_payload_rejects(raw: bytes, detail: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_store_payload(raw)
    assert type(info.value) is BadRequest
    assert detail in info.value.detail


def test_load_json_object_names_the_document() -> None:
    with pytest.raises(BadRequest, match="^Invalid envelope header: "):
        load_json_object(b"[]", what="envelope header")
    assert load_json_object(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


# -- what a parse may cost ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "cost"),
    [
        (b'{"a": 1}', 3 + 1 + 1),  # an object, a key, a string
        (b"[[], [], []]", 4 + 2),  # four arrays, two separators
        (b'{"a": "x,y"}', 3 + 1 + 2 + 1),  # a comma inside a string counts too
        (b"true", 0),
    ],
)
def test_parse_cost(document: bytes, cost: int) -> None:
    assert body.parse_cost(document) == cost


def test_a_document_too_costly_to_parse_is_refused_before_parsing() -> None:
    """Six million empty arrays: 18 MB that would take ~485 MB to parse (issue 12)."""
    costly = b'{"extra": {"a": [' + b",".join([b"[]"] * 3_000_000) + b"]}}"
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="too many JSON values"):
            load_json_object(costly)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024  # the text, decoded once; no parse


def test_a_million_empty_arrays_still_parse_to_be_trimmed() -> None:
    document = b'{"extra": {"a": [' + b",".join([b"[]"] * 1_000_000) + b"]}}"
    assert len(load_json_object(document)["extra"]["a"]) == 1_000_000


def test_every_document_of_relays_event_size_parses() -> None:
    """Relay refuses events over 1 MiB; every shape of that size stays within the cost."""
    mib = 1024 * 1024
    for item in (b"{}", b'"",', b"[],", b"1,", b'{"":1},'):
        packed = (item * (mib // len(item)))[: mib - 16]
        assert body.parse_cost(packed) <= body.MAX_PARSE_COST, item
