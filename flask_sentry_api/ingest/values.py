"""Coerce untrusted JSON values into safe text, numbers and times (bags: see :mod:`.trim`).

Every string that ends up in a ``NewEvent`` goes through :func:`safe_str`: NUL and lone
surrogates (both valid as JSON escapes) are refused by PostgreSQL and by UTF-8 encoders,
so they become U+FFFD here rather than errors at save or render time.
"""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

from ..tokens import TOKEN_PREFIX

#: Longest message or formatted log line kept (Sentry's limit).
MAX_MESSAGE = 8192
#: Longest tag value (Sentry's limit and the storage column).
MAX_TAG_VALUE = 200
#: Longest name-like string kept (file names, functions, modules, user fields).
MAX_NAME = 512

_BAD_CHARS_RE = re.compile("[\x00\ud800-\udfff]")
_TOKEN_RE = re.compile(re.escape(TOKEN_PREFIX) + "[0-9a-fA-F]{64}")
#: What replaces a value that must not be stored (Sentry's word for it).
FILTERED = "[Filtered]"
_NUMBER_RE = re.compile(r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def safe_str(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, and any of this server's
    auth tokens by ``[Filtered]``."""
    if TOKEN_PREFIX in text:
        # Tools report their environment (sentry-cli send-event sends SENTRY_AUTH_TOKEN in
        # ``extra.environ``): a token must never be stored in clear.
        text = _TOKEN_RE.sub(FILTERED, text)
    # Nearly every string of an event is ASCII (isascii() reads a flag, no scan); the regex
    # is for the rest.
    if text.isascii() and "\x00" not in text:
        return text
    return _BAD_CHARS_RE.sub("\ufffd", text)


def attr(value: Any, limit: int | None) -> str | None:
    """A trimmed string attribute, ``None`` when absent, empty or not a scalar."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    else:
        return None
    text = safe_str(text).strip()
    if limit is not None:
        text = text[:limit]
    return text or None


def raw_str(value: Any, limit: int) -> str | None:
    """Like :func:`attr` but keeps whitespace (context lines keep their indentation)."""
    if isinstance(value, str):
        return safe_str(value[:limit])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return None


def ellipsize(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """A Unix timestamp (number or numeric string) or ISO 8601 text; naive means UTC."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_RE.fullmatch(text):
            value = float(text)
        else:
            return _parse_iso(text)
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _parse_iso(text: str) -> datetime | None:
    match = _ISO_RE.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    try:
        if zone and zone not in ("Z", "z"):
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
            tz = timezone(-offset if zone[0] == "-" else offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def json_key(key: Any) -> str:
    return safe_str(key if isinstance(key, str) else safe_repr(key))


def safe_repr(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a caller's odd object must not fail the event
        return f"<{type(value).__name__}>"
