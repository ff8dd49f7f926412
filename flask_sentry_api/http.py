"""HTTP helpers shared by the web API and ingestion: JSON responses, the JSON error shape,
request bodies and the headers every response of the package carries."""

from __future__ import annotations

import json
import re
import typing as t

import orjson
from flask import Response
from flask import current_app
from flask import request

from . import errors
from .state import get_state

#: What may not travel in a header value: controls (CR/LF would be refused by Werkzeug)
#: and anything outside ASCII (the server writes headers as Latin-1).
_UNSAFE_HEADER_RE = re.compile(r"[^\x20-\x7e]")


def encode_json(data: t.Any) -> bytes:
    """``data`` as the JSON the host's ``app.json`` provider would write, but with orjson.

    The package's responses are plain dicts, lists, strings and numbers, and on a list page
    the stdlib encoder costs as much as reading the page from the database. The output
    follows the provider's settings (Flask's defaults: sorted keys, compact, ASCII-only,
    a trailing newline; indented in debug mode), so it is the bytes ``jsonify`` wrote
    before. What orjson refuses (lone surrogates, integers beyond 64 bits, any type it does
    not know) is left to the host's provider, as before.
    """
    provider = current_app.json
    option = orjson.OPT_APPEND_NEWLINE
    if getattr(provider, "sort_keys", True):
        option |= orjson.OPT_SORT_KEYS
    compact = getattr(provider, "compact", None)
    if compact is False or (compact is None and current_app.debug):
        option |= orjson.OPT_INDENT_2
    try:
        body = orjson.dumps(
            data, option=option | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        )
    except orjson.JSONEncodeError:
        return _stdlib_json(data)
    if getattr(provider, "ensure_ascii", True) and (not body.isascii() or b"\x7f" in body):
        # Outside strings JSON is ASCII, so every such character is in a string: escaped
        # as Python's encoder escapes it (DEL included).
        body = _NOT_ASCII_RE.sub(_json_escape, body.decode("utf-8")).encode("ascii")
    return body


#: What an ASCII-only JSON encoder escapes beyond the controls: DEL and non-ASCII.
_NOT_ASCII_RE = re.compile("[\x7f-\U0010ffff]")


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def _stdlib_json(data: t.Any) -> bytes:
    return t.cast(Response, current_app.json.response(data)).get_data()


def json_response(
    data: t.Any, status: int = 200, headers: t.Mapping[str, str] | None = None
) -> Response:
    """``data`` as JSON (``None``: an empty body, as for a 204)."""
    body = encode_json(data) if data is not None else b""
    response = current_app.response_class(body, status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


def error_response(error: errors.APIError) -> Response:
    """``{"detail": ...}`` with the error's status and headers."""
    return json_response({"detail": error.detail}, error.status_code, error.headers)


def header_safe(text: str) -> str:
    """``text`` with controls and non-ASCII characters escaped (``\\n``, ``\\u20ac``), so
    it can be sent as a header value; printable ASCII is unchanged."""
    return _UNSAFE_HEADER_RE.sub(lambda m: ascii(m.group())[1:-1], text)


def add_standard_headers(response: Response) -> Response:
    """After-request hook of both blueprints: ``Content-Language`` and the endpoint's
    ``Allow``."""
    response.headers["Content-Language"] = "en"
    view = current_app.view_functions.get(request.endpoint or "")
    allow_header = getattr(getattr(view, "view_class", None), "allow_header", None)
    allow = allow_header() if allow_header is not None else ""
    if allow:
        response.headers["Allow"] = allow
    return response


# -- request bodies ----------------------------------------------------------------------


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _storable(value: t.Any) -> bool:
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def json_body() -> dict[str, t.Any]:
    """The request's JSON object (``{}`` when empty), bounded by SENTRY_API_MAX_BODY_SIZE."""
    limit = get_state().settings.max_body_size
    if request.content_length is not None and request.content_length > limit:
        raise errors.PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise errors.PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    if not raw.strip():
        return {}
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        shown = request.content_type or ""
        raise errors.UnsupportedMediaType(f"Unsupported media type '{shown}' in request.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise errors.ParseError("JSON parse error - body is not valid UTF-8") from None
    except RecursionError:
        raise errors.ParseError("JSON parse error - nesting is too deep") from None
    except ValueError as exc:
        raise errors.ParseError(f"JSON parse error - {exc}") from None
    if not isinstance(data, dict):
        raise errors.ParseError("JSON parse error - expected an object")
    if not _storable(data):
        # Databases store neither NUL characters nor lone surrogates (from "\ud800"
        # escapes): refuse them here rather than fail in the middle of a write.
        raise errors.ParseError("JSON parse error - strings must be valid, NUL-free unicode")
    return data
