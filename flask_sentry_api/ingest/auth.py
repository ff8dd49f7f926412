"""Parse the Sentry client credentials of an ingestion request (header or query string).

Only parsing happens here: the view looks the public key up, checks the secret, the key's
roles and the project. Every failure is an :class:`~flask_sentry_api.errors.APIError`.

A public key is any :data:`PUBLIC_KEY_PATTERN` token, not only the storage's 32-hex keys: a
host's key lookup decides which keys exist (:func:`flask_sentry_api.auth.check_key`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

from ..errors import AuthenticationFailed
from ..errors import BadRequest

#: Protocol versions Sentry SDKs have sent; 7 is every current SDK, 6 is raven-python.
SUPPORTED_VERSIONS: tuple[str, ...] = ("2.0", "3", "4", "5", "6", "7")
#: Browsers send only ``sentry_key`` in the query string and mean the current protocol.
DEFAULT_QUERY_VERSION = "7"
#: Same text as for an unknown key, so the view can answer both with one message.
INVALID_KEY = "Invalid api key"

#: Four times Sentry's own keys (32 characters); the secret's bound too.
MAX_PUBLIC_KEY = 128
#: A public key a lookup may know, matched whole: 1 to :data:`MAX_PUBLIC_KEY` characters,
#: each one a DSN's user part can carry as it is (RFC 3986 ``unreserved`` and
#: ``sub-delims``) except ``,`` (separates X-Sentry-Auth fields), ``'`` (quotes a field's
#: value) and ``:`` (ends the public key in a DSN and in a Basic-auth username). So a valid
#: key survives every way SDKs and API clients send it: a DSN, the X-Sentry-Auth header, a
#: query string (percent-encoded, as browser SDKs do) and HTTP Basic auth.
PUBLIC_KEY_PATTERN = rf"[A-Za-z0-9\-._~!$&()*+;=]{{1,{MAX_PUBLIC_KEY}}}"
_KEY_RE = re.compile(PUBLIC_KEY_PATTERN)
_HEX_KEY_RE = re.compile(r"[0-9a-fA-F]{32}")
_SCHEME_RE = re.compile(r"sentry\s+(.*)", re.IGNORECASE | re.DOTALL)
_MAX_SECRET = 128
_MAX_CLIENT = 200


@dataclass(frozen=True)
class SentryAuth:
    """The credentials of one ingestion request."""

    #: The public key: a :data:`PUBLIC_KEY_PATTERN` token, lower-cased when it is 32 hex
    #: digits (the storage's keys), else as sent.
    public_key: str
    #: Sent by raven and by SDKs configured with a legacy DSN; ``None`` otherwise.
    secret_key: str | None
    #: One of :data:`SUPPORTED_VERSIONS` (empty when :attr:`version_error` is set).
    version: str
    #: ``sentry_client`` (``raven-python/6.10.0``), cut to 200 characters; the view may
    #: fall back to ``User-Agent``.
    client: str | None
    #: The 400 a missing or unsupported version deserves, when parsing was told to defer
    #: it (the view raises it only once the key is known to be valid).
    version_error: BadRequest | None = field(default=None, compare=False)


class Headers(Protocol):
    """Request headers as :func:`parse_sentry_auth` reads them: a ``dict`` or Werkzeug's
    ``Headers`` (which is no :class:`~collections.abc.Mapping`)."""

    def get(self, key: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


def parse_sentry_auth(
    headers: Headers, args: Mapping[str, str], *, defer_version_error: bool = False
) -> SentryAuth:
    """Read the credentials from ``X-Sentry-Auth``, ``Authorization`` or the query string.

    :param headers: the request headers (case-insensitive lookups are done here too, so a
        plain ``dict`` works).
    :param args: the query-string parameters.
    :param defer_version_error: return a bad version's 400 in
        :attr:`SentryAuth.version_error` instead of raising it.
    :raises AuthenticationFailed: no credentials, no ``sentry_key``, or a malformed key or
        secret.
    :raises BadRequest: a missing or unsupported ``sentry_version`` in a header.
    """
    for name in ("X-Sentry-Auth", "Authorization"):
        value = _header(headers, name)
        match = _SCHEME_RE.match(value.strip()) if value else None
        if match:
            fields = _parse_header_fields(match.group(1))
            from_query = False
            break
    else:
        fields = {
            name[len("sentry_") :]: str(args[name])
            for name in ("sentry_key", "sentry_version", "sentry_secret", "sentry_client")
            if args.get(name) is not None
        }
        if not fields:
            raise AuthenticationFailed("Missing authentication: send X-Sentry-Auth or sentry_key.")
        from_query = True

    key = fields.get("key", "")
    if not key:
        raise AuthenticationFailed("Missing sentry_key in the authentication credentials.")
    if not is_public_key(key):
        raise AuthenticationFailed(INVALID_KEY)

    secret = fields.get("secret") or None
    if secret is not None and len(secret) > _MAX_SECRET:
        raise AuthenticationFailed(INVALID_KEY)

    client = fields.get("client") or None
    version, version_error = "", None
    try:
        version = _version(fields.get("version"), from_query=from_query)
    except BadRequest as error:
        if not defer_version_error:
            raise
        version_error = error
    return SentryAuth(
        public_key=normalize_public_key(key),
        secret_key=secret,
        version=version,
        client=client[:_MAX_CLIENT] if client else None,
        version_error=version_error,
    )


def is_public_key(text: str) -> bool:
    """Whether ``text`` is worth a key lookup (:data:`PUBLIC_KEY_PATTERN`)."""
    return _KEY_RE.fullmatch(text) is not None


def is_hex_key(text: str) -> bool:
    """Whether ``text`` has the form of the storage's own keys: 32 hex digits."""
    return _HEX_KEY_RE.fullmatch(text) is not None


def normalize_public_key(text: str) -> str:
    """``text`` as looked up: 32 hex digits in lower case (hex is case-blind, and the
    storage keeps its keys lower-case); any other key as sent, since a host's keys may
    differ only in case."""
    return text.lower() if is_hex_key(text) else text


def _header(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Werkzeug's headers ignore case, a plain dict does not.
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def _parse_header_fields(params: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in params.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        # Relay accepts the names with and without the prefix; so do we.
        if name.startswith("sentry_"):
            name = name[len("sentry_") :]
        fields.setdefault(name, _unquote(value.strip()))
    return fields


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def _version(value: str | None, *, from_query: bool) -> str:
    if not value:
        if from_query:
            return DEFAULT_QUERY_VERSION
        raise BadRequest("Missing sentry_version in the authentication header.")
    version = "2.0" if value == "2" else value
    if version not in SUPPORTED_VERSIONS:
        # Escaped (ascii()), so a newline or non-Latin-1 text cannot break the
        # X-Sentry-Error header that repeats this detail.
        escaped = ascii(value[:21])[1:-1]
        shown = escaped if len(escaped) <= 20 else escaped[:20] + "..."
        raise BadRequest(
            f'Client/server version mismatch: Unsupported protocol version "{shown}" '
            f"(supported: {', '.join(SUPPORTED_VERSIONS)})."
        )
    return version
