"""Tests for flask_sentry_api.ingest.auth: credentials as real SDKs send them, and bad ones."""

from __future__ import annotations

import re
from typing import Any

import pytest
import raven
import sentry_sdk
from hypothesis import given
from hypothesis import strategies as st
from raven.transport.base import Transport as RavenTransport
from sentry_sdk.transport import HttpTransport

from flask_sentry_api.errors import APIError
from flask_sentry_api.errors import AuthenticationFailed
from flask_sentry_api.errors import BadRequest
from flask_sentry_api.ingest.auth import INVALID_KEY
from flask_sentry_api.ingest.auth import PUBLIC_KEY_PATTERN
from flask_sentry_api.ingest.auth import SentryAuth
from flask_sentry_api.ingest.auth import parse_sentry_auth

PUBLIC = "0123456789abcdef0123456789abcdef"
SECRET = "fedcba9876543210fedcba9876543210"


def raven_headers() -> dict[str, str]:
    """The headers raven-python 6.10 posts with."""
    sent: list[dict[str, str]] = []

    class Keep(RavenTransport):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
            sent.append(headers)

    client = raven.Client(
        f"http://{PUBLIC}:{SECRET}@127.0.0.1:1/1",
        transport=Keep,
        install_sys_hook=False,
        install_logging_hook=False,
        enable_breadcrumbs=False,
    )
    client.captureMessage("hello")
    return sent[0]


def sdk_headers(dsn: str) -> dict[str, str]:
    """The headers sentry-sdk 2.x posts an envelope with."""
    sent: list[dict[str, str]] = []

    class Wire(HttpTransport):
        def _send_request(
            self, body: bytes, headers: dict[str, str], *args: Any, **kw: Any
        ) -> None:
            self._update_headers(headers)
            sent.append(dict(headers))

    client = sentry_sdk.Client(dsn, transport=Wire, default_integrations=False)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            sentry_sdk.capture_message("hello")
        client.flush()
    finally:
        client.close()
    return sent[0]


def test_raven_header() -> None:
    headers = raven_headers()
    assert headers["X-Sentry-Auth"].startswith("Sentry sentry_timestamp=")
    auth = parse_sentry_auth(headers, {})
    assert auth == SentryAuth(
        public_key=PUBLIC, secret_key=SECRET, version="6", client="raven-python/6.10.0"
    )


def test_sentry_sdk_header() -> None:
    auth = parse_sentry_auth(sdk_headers(f"http://{PUBLIC}@127.0.0.1:1/1"), {})
    assert auth.public_key == PUBLIC
    assert auth.secret_key is None
    assert auth.version == "7"
    assert auth.client is not None and auth.client.startswith("sentry.python/")


def test_sentry_sdk_legacy_dsn_sends_secret() -> None:
    auth = parse_sentry_auth(sdk_headers(f"http://{PUBLIC}:{SECRET}@127.0.0.1:1/1"), {})
    assert (auth.public_key, auth.secret_key) == (PUBLIC, SECRET)


@pytest.mark.parametrize(
    ("headers", "args", "expected"),
    [
        # Authorization is the fallback when X-Sentry-Auth is absent or not "Sentry ...".
        ({"Authorization": f"Sentry sentry_key={PUBLIC}, sentry_version=7"}, {}, ("7", None)),
        (
            {
                "X-Sentry-Auth": "Basic abc",
                "Authorization": f"Sentry sentry_key={PUBLIC},sentry_version=5",
            },
            {},
            ("5", None),
        ),
        # Plain dicts are looked up case-insensitively, like Werkzeug's headers.
        ({"x-sentry-auth": f"sentry sentry_key={PUBLIC}, sentry_version=4"}, {}, ("4", None)),
        # Quoted values, odd spacing, prefix-less names (Relay accepts them).
        (
            {"X-Sentry-Auth": f'Sentry  key="{PUBLIC}" ,version = 3 , client="x/1"'},
            {},
            ("3", "x/1"),
        ),
        ({"X-Sentry-Auth": f"Sentry sentry_key={PUBLIC}, sentry_version=2"}, {}, ("2.0", None)),
        ({"X-Sentry-Auth": f"Sentry sentry_key={PUBLIC}, sentry_version=2.0"}, {}, ("2.0", None)),
        # Browsers: the query string, version defaulting to 7.
        ({}, {"sentry_key": PUBLIC}, ("7", None)),
        ({}, {"sentry_key": PUBLIC, "sentry_version": "6", "sentry_client": "js/1"}, ("6", "js/1")),
        # The header wins over the query string.
        (
            {"X-Sentry-Auth": f"Sentry sentry_key={PUBLIC}, sentry_version=6"},
            {"sentry_key": "f" * 32, "sentry_version": "7"},
            ("6", None),
        ),
        # Items without "=" are skipped; the first of a repeated name wins.
        (
            {"X-Sentry-Auth": f"Sentry junk, sentry_key={PUBLIC}, sentry_version=7, sentry_key=x"},
            {},
            ("7", None),
        ),
    ],
)
def test_accepted_forms(
    headers: dict[str, str], args: dict[str, str], expected: tuple[str, str | None]
) -> None:
    auth = parse_sentry_auth(headers, args)
    assert auth.public_key == PUBLIC
    assert (auth.version, auth.client) == expected


#: Keys a host's lookup may issue: not the storage's 32 hex digits, but safe wherever a key
#: travels (a DSN, X-Sentry-Auth, a query string, Basic auth).
HOST_KEYS = [
    "pk_live-abc.123",
    "Pk_Live-ABC.123",
    "k",
    "abc",
    "g" * 32,
    PUBLIC + "0",
    "x" * 128,
    "00000000-0000-0000-0000-000000000007",
    "base64url_padded==",
    "tilde~bang!dollar$amp&paren()star*plus+semi;",
]


@pytest.mark.parametrize("key", HOST_KEYS)
def test_host_key_forms_are_read_as_sent(key: str) -> None:
    for headers, args in [
        (_header(f"sentry_key={key}, sentry_version=7"), {}),
        (_header(f'sentry_key="{key}", sentry_version=7'), {}),
        ({}, {"sentry_key": key}),
    ]:
        assert parse_sentry_auth(headers, args).public_key == key


@pytest.mark.parametrize("key", ["pk_live-abc.123", "Pk_Live-ABC.123", "x" * 128])
def test_sentry_sdk_sends_host_keys_from_the_dsn(key: str) -> None:
    for dsn in [f"http://{key}@127.0.0.1:1/1", f"http://{key}:{SECRET}@127.0.0.1:1/1"]:
        auth = parse_sentry_auth(sdk_headers(dsn), {})
        assert auth.public_key == key


def test_key_is_lowercased_and_client_trimmed() -> None:
    header = f"Sentry sentry_key={PUBLIC.upper()}, sentry_version=7, sentry_client={'c' * 5000}"
    auth = parse_sentry_auth({"X-Sentry-Auth": header}, {})
    assert auth.public_key == PUBLIC
    assert auth.client == "c" * 200


def test_empty_secret_is_none() -> None:
    header = f"Sentry sentry_key={PUBLIC}, sentry_secret=, sentry_version=7"
    assert parse_sentry_auth({"X-Sentry-Auth": header}, {}).secret_key is None


def _header(fields: str) -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry {fields}"}


@pytest.mark.parametrize(
    ("headers", "args", "error", "detail"),
    [
        ({}, {}, AuthenticationFailed, "Missing authentication"),
        ({"X-Sentry-Auth": "Bearer x"}, {}, AuthenticationFailed, "Missing authentication"),
        ({"X-Sentry-Auth": "Sentry"}, {}, AuthenticationFailed, "Missing authentication"),
        ({}, {"sentry_version": "7"}, AuthenticationFailed, "Missing sentry_key"),
        ({}, {"sentry_key": ""}, AuthenticationFailed, "Missing sentry_key"),
        (_header("sentry_version=7"), {}, AuthenticationFailed, "Missing sentry_key"),
        (_header(",,,===,,"), {}, AuthenticationFailed, "Missing sentry_key"),
        (_header("sentry_key=, sentry_version=7"), {}, AuthenticationFailed, "Missing sentry_key"),
        (
            _header(f"sentry_key={'a' * 5000}, sentry_version=7"),
            {},
            AuthenticationFailed,
            INVALID_KEY,
        ),
        (
            _header(f"sentry_key={'a' * 129}, sentry_version=7"),
            {},
            AuthenticationFailed,
            INVALID_KEY,
        ),
        ({}, {"sentry_key": "../etc"}, AuthenticationFailed, INVALID_KEY),
        # No key has a character that would need escaping somewhere a key travels.
        *[
            ({}, {"sentry_key": f"pk{char}live"}, AuthenticationFailed, INVALID_KEY)
            for char in [" ", ":", "/", "@", "?", "#", "%", '"', "'", "\\", "\x00", "\n", "é"]
        ],
        (_header("sentry_key=pk live, sentry_version=7"), {}, AuthenticationFailed, INVALID_KEY),
        (
            _header(f"sentry_key={PUBLIC}, sentry_secret={'s' * 5000}, sentry_version=7"),
            {},
            AuthenticationFailed,
            INVALID_KEY,
        ),
        (_header(f"sentry_key={PUBLIC}"), {}, BadRequest, "Missing sentry_version"),
        (_header(f"sentry_key={PUBLIC}, sentry_version=8"), {}, BadRequest, '"8"'),
        (_header(f"sentry_key={PUBLIC}, sentry_version=1"), {}, BadRequest, "Unsupported"),
        (_header(f"sentry_key={PUBLIC}, sentry_version=7.0"), {}, BadRequest, "Unsupported"),
        ({}, {"sentry_key": PUBLIC, "sentry_version": "9"}, BadRequest, "Unsupported"),
    ],
)
def test_rejected(
    headers: dict[str, str], args: dict[str, str], error: type[APIError], detail: str
) -> None:
    with pytest.raises(error) as info:
        parse_sentry_auth(headers, args)
    assert type(info.value) is error
    assert detail in info.value.detail


def test_unsupported_version_detail_is_short() -> None:
    with pytest.raises(BadRequest) as info:
        parse_sentry_auth(_header(f"sentry_key={PUBLIC}, sentry_version={'9' * 5000}"), {})
    assert len(info.value.detail) < 200


@given(
    header=st.text(max_size=300) | st.builds(lambda s: "Sentry " + s, st.text(max_size=300)),
    args=st.dictionaries(
        st.sampled_from(["sentry_key", "sentry_version", "sentry_secret", "sentry_client", "x"]),
        st.text(max_size=60),
    ),
)
def test_any_input_raises_only_api_errors(header: str, args: dict[str, str]) -> None:
    try:
        auth = parse_sentry_auth({"X-Sentry-Auth": header}, args)
    except (AuthenticationFailed, BadRequest):
        return
    assert re.fullmatch(PUBLIC_KEY_PATTERN, auth.public_key)
