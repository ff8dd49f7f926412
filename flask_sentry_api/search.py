"""Parse the group-list search parameters: query, status, sort, since/until, statsPeriod.

Pure functions with no Flask import: the group endpoints pass in the raw query-string
values and get back plain values, or a :class:`~flask_sentry_api.errors.BadRequest` whose
detail names the offending parameter (SPEC §7.1, §7.2).

The ``query`` grammar follows Sentry's search bar:

- tokens are separated by whitespace; a double-quoted section keeps its spaces, and inside
  it ``\\"`` is a literal quote and ``\\\\`` a literal backslash (any other backslash is
  kept as is, so ``"C:\\path"`` needs no escaping);
- ``is:<status>`` sets the status filter (``unresolved``, ``resolved``, ``muted``, or
  ``ignored`` for ``muted``); the last one wins;
- ``key:value`` or ``key:"quoted value"`` is a tag filter (``level``, ``release``, any tag
  key); ``sentry:release`` and ``sentry:user`` are aliases of ``release`` and ``user``;
- everything else is free text, e.g. ``foo:`` (empty value), ``:foo``, or a URL such as
  ``http://x``.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from decimal import ROUND_HALF_EVEN
from decimal import Decimal
from decimal import InvalidOperation

from .errors import BadRequest
from .stats import STATS_PERIODS as _PERIODS
from .storage import GROUP_SORTS
from .storage import GROUP_STATUSES
from .storage import UTC
from .storage import GroupQuery

__all__ = [
    "MAX_QUERY_LENGTH",
    "MAX_TAG_FILTERS",
    "MAX_TAG_KEY_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "SORTS",
    "STATS_PERIODS",
    "STATUSES",
    "ParsedQuery",
    "parse_group_selection",
    "parse_query",
    "parse_sort",
    "parse_stats_period",
    "parse_status",
    "parse_time_bound",
    "quote",
    "resolve_status_filter",
]

#: Group statuses as the API spells them on output.
STATUSES: tuple[str, ...] = GROUP_STATUSES
#: Values of ``sort``; the first is the default.
SORTS: tuple[str, ...] = GROUP_SORTS
#: Values of ``statsPeriod`` that select a stats series (empty omits ``stats``); the first
#: is the default.
STATS_PERIODS: tuple[str, ...] = tuple(_PERIODS)

# Bounds on hostile input: every tag filter becomes a join or subquery in the store, so
# both their number and their size are capped before any SQL is built.
MAX_QUERY_LENGTH = 1000
MAX_TAG_FILTERS = 20
MAX_TAG_KEY_LENGTH = 32
MAX_TAG_VALUE_LENGTH = 200

# Newer Sentry versions spell the status "ignored"; 2015 clients say "muted".
_STATUS_ALIASES = {"ignored": "muted"}
# Sentry stores these tags under the ``sentry:`` namespace, while users type the short
# name; both spellings must select the same tag.
_TAG_ALIASES = {"sentry:release": "release", "sentry:user": "user"}

_KEY_RE = re.compile(r"[A-Za-z0-9_.\-]+")
# ``sentry:<name>:value``: the namespaced key keeps its own colon.
_NAMESPACED_KEY_RE = re.compile(r"([A-Za-z0-9_.\-]+):")

# Echoed values are cut so a 1000-character token does not come back in the error body.
_SHOWN_CHARS = 50


@dataclass(frozen=True)
class ParsedQuery:
    """The structured form of a ``query`` string."""

    #: Status from the last ``is:`` token, normalised (``ignored`` -> ``muted``), or None.
    status: str | None
    #: ``(key, value)`` tag filters in query order; all must match.
    tags: tuple[tuple[str, str], ...]
    #: Remaining free text, tokens joined by single spaces, or None when there is none.
    text: str | None


def _short(value: str) -> str:
    return value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."


def _show(value: str) -> str:
    return f'"{_short(value)}"'


def _invalid(param: str, reason: str) -> BadRequest:
    return BadRequest(f'Invalid value for parameter "{param}": {reason}')


def _normalise_status(value: str) -> str | None:
    value = _STATUS_ALIASES.get(value, value)
    return value if value in STATUSES else None


def parse_status(value: str, *, param: str = "status") -> str:
    """Return the canonical status for ``value`` (``ignored`` becomes ``muted``).

    :raises BadRequest: for any other value, naming ``param``.
    """
    status = _normalise_status(value)
    if status is None:
        raise _invalid(
            param, f"unknown status {_show(value)}; expected one of {', '.join(STATUSES)}."
        )
    return status


def quote(value: str) -> str:
    """Quote ``value`` so that ``key:<quoted>`` parses back to exactly ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A token is a list of pieces ``(text, quoted)``: ``release:"1.2 beta"`` is
# ``[("release:", False), ("1.2 beta", True)]``. Keeping the pieces apart lets the
# key/value split look only at unquoted text, so ``"a:b"`` stays free text.
_Piece = tuple[str, bool]


def _tokenize(query: str) -> list[list[_Piece]]:
    tokens: list[list[_Piece]] = []
    pieces: list[_Piece] = []
    buf: list[str] = []
    in_token = False
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch == '"':
            if buf:
                pieces.append(("".join(buf), False))
                buf = []
            i += 1
            while True:
                if i >= n:
                    raise _invalid("query", "unterminated quote.")
                ch = query[i]
                if ch == "\\" and i + 1 < n and query[i + 1] in '"\\':
                    buf.append(query[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            pieces.append(("".join(buf), True))
            buf = []
            in_token = True
        elif ch.isspace():
            if in_token:
                if buf:
                    pieces.append(("".join(buf), False))
                    buf = []
                tokens.append(pieces)
                pieces = []
                in_token = False
            i += 1
        else:
            buf.append(ch)
            in_token = True
            i += 1
    if in_token:
        if buf:
            pieces.append(("".join(buf), False))
        tokens.append(pieces)
    return tokens


def _split_filter(pieces: list[_Piece]) -> tuple[str, str] | None:
    """Return ``(key, unquoted value)`` when the token is ``key:value``, else None."""
    head, quoted = pieces[0]
    if quoted:
        return None
    key, sep, rest = head.partition(":")
    if not sep or not _KEY_RE.fullmatch(key):
        return None
    if key == "sentry":
        match = _NAMESPACED_KEY_RE.match(rest)
        if match:
            key, rest = f"sentry:{match.group(1)}", rest[match.end() :]
    value_pieces = ([(rest, False)] if rest else []) + pieces[1:]
    if not value_pieces:
        return None  # "foo:" is free text, as in Sentry
    first, first_quoted = value_pieces[0]
    if not first_quoted and first.startswith("//"):
        return None  # "http://x" is a URL someone pasted, not tag "http"
    return key, "".join(text for text, _ in value_pieces)


def parse_query(query: str) -> ParsedQuery:
    """Parse a Sentry search string into status, tag filters and free text.

    :raises BadRequest: naming ``query`` for an unknown ``is:`` value, an unterminated
        quote, an empty quoted filter value (``key:""``), a NUL character, or input over
        the size limits (:data:`MAX_QUERY_LENGTH`, :data:`MAX_TAG_FILTERS`,
        :data:`MAX_TAG_KEY_LENGTH`, :data:`MAX_TAG_VALUE_LENGTH`).
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise _invalid("query", f"longer than {MAX_QUERY_LENGTH} characters.")
    # NUL cannot be stored in PostgreSQL text and is never meaningful in a search.
    if "\0" in query:
        raise _invalid("query", "contains a NUL character.")

    status: str | None = None
    tags: list[tuple[str, str]] = []
    words: list[str] = []
    for pieces in _tokenize(query):
        split = _split_filter(pieces)
        if split is None:
            word = "".join(text for text, _ in pieces)
            if word:  # a bare "" adds nothing
                words.append(word)
            continue
        key, value = split
        if not value:
            # Only an explicit `key:""` gets here; no tag has an empty value, so the
            # filter could never match: say so instead of returning nothing.
            raise _invalid("query", f"empty value for {_show(key)}.")
        if key == "is":
            status = _normalise_status(value)
            if status is None:
                raise _invalid("query", f"unknown status {_show(value)} in is:{_short(value)}.")
            continue
        if len(key) > MAX_TAG_KEY_LENGTH:
            raise _invalid(
                "query", f"tag key {_show(key)} is longer than {MAX_TAG_KEY_LENGTH} characters."
            )
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise _invalid(
                "query",
                f"value of {_show(key)} is longer than {MAX_TAG_VALUE_LENGTH} characters.",
            )
        tags.append((_TAG_ALIASES.get(key, key), value))
        if len(tags) > MAX_TAG_FILTERS:
            raise _invalid("query", f"more than {MAX_TAG_FILTERS} tag filters.")
    return ParsedQuery(status=status, tags=tuple(tags), text=" ".join(words) or None)


def resolve_status_filter(
    query: str | None, status: str | None, *, default_unresolved: bool
) -> tuple[str | None, ParsedQuery]:
    """Combine ``query`` and ``status`` into the effective status filter (SPEC §7.1).

    ``None`` means the parameter was absent; an empty ``status`` counts as absent too.
    Precedence: an ``is:`` token in ``query``, then ``status``, then -- only when ``query``
    is absent -- ``unresolved`` if ``default_unresolved`` (the GET list) or no filter (the
    bulk PUT). A ``query`` that is present, even empty, without ``is:`` means every status.

    :returns: ``(status or None for every status, parsed query)``.
    :raises BadRequest: for a bad ``status`` (even when ``is:`` overrides it) or ``query``.
    """
    # Validate `status` before looking at the query so a typo is reported even when an
    # `is:` token makes it moot.
    explicit = parse_status(status) if status else None
    parsed = parse_query(query or "")
    if parsed.status is not None:
        return parsed.status, parsed
    if explicit is not None:
        return explicit, parsed
    if query is None and default_unresolved:
        return "unresolved", parsed
    return None, parsed


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Seconds between the epoch and the ends of datetime's range (year 1 .. year 9999).
_MIN_UNIX = Decimal((datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1))
_MAX_UNIX = Decimal((datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1) + 1)
# Long enough for any real timestamp; caps the work done on a hostile value.
_MAX_TIME_LENGTH = 64

# Plain decimal notation only: float() would also take "nan", "inf" and "1_000".
_UNIX_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# ISO 8601 extended format, written out rather than left to datetime.fromisoformat, whose
# accepted forms differ between Python 3.10 and 3.11. A space before the offset is read as
# "+": an unencoded "+02:00" in a query string arrives as " 02:00".
_ISO_RE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>[Zz]|(?P<sign>[+\- ])(?P<tzh>\d{2})(?::?(?P<tzm>\d{2}))?)?)?"
)


def _from_unix(value: str) -> datetime | None:
    try:
        seconds = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        return None
    if not _MIN_UNIX <= seconds <= _MAX_UNIX:
        return None
    # Decimal keeps "1420838790.125" exact; a float would land a microsecond off.
    micros = int((seconds * 1_000_000).to_integral_value(ROUND_HALF_EVEN))
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:  # rounding at the very edge of the range
        return None


def _from_iso(match: re.Match[str]) -> datetime | None:
    parts = match.groupdict()
    tz = UTC
    if parts["sign"]:
        hours, minutes = int(parts["tzh"]), int(parts["tzm"] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if parts["sign"] == "-" else offset)
    fraction = (parts["fraction"] or "").ljust(6, "0")[:6]  # nanoseconds are truncated
    try:
        local = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=tz,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):  # 2015-02-30, 25:00, year 1 at +01:00
        return None


def parse_time_bound(value: str, *, param: str) -> datetime:
    """Parse ``since``/``until``: Unix seconds or ISO 8601, to an aware UTC datetime.

    Unix seconds may be an integer or a decimal (``1420838790.125``, ``1.4e9``); an
    all-digit value is always Unix seconds. ISO 8601 may end in ``Z``, carry an offset
    (converted to UTC), have none (read as UTC) or be a date alone (midnight UTC).

    :raises BadRequest: naming ``param`` for anything else, including ``nan``/``inf`` and
        instants outside years 1..9999.
    """
    text = value.strip()
    result: datetime | None = None
    if len(text) <= _MAX_TIME_LENGTH:
        if _UNIX_RE.fullmatch(text):
            result = _from_unix(text)
        else:
            match = _ISO_RE.fullmatch(text)
            if match:
                result = _from_iso(match)
    if result is None:
        raise _invalid(param, f"{_show(value)} is not Unix seconds or an ISO 8601 date in range.")
    return result


def parse_stats_period(value: str | None) -> str | None:
    """Return the stats period: ``24h`` when absent, None (no stats) when empty.

    :raises BadRequest: naming ``statsPeriod`` for anything but ``24h``, ``14d`` or empty.
    """
    if value is None:
        return STATS_PERIODS[0]
    if value == "":
        return None
    if value not in STATS_PERIODS:
        shown = ", ".join(f'"{period}"' for period in STATS_PERIODS)
        raise _invalid("statsPeriod", f"{_show(value)} is not one of {shown} or empty.")
    return value


def parse_sort(value: str | None) -> str:
    """Return the sort key; ``date`` when absent or empty.

    :raises BadRequest: naming ``sort`` for a value outside :data:`SORTS`.
    """
    if not value:
        return SORTS[0]
    if value not in SORTS:
        raise _invalid("sort", f"unknown sort {_show(value)}; expected one of {', '.join(SORTS)}.")
    return value


def parse_group_selection(args: t.Mapping[str, str], *, default_unresolved: bool) -> GroupQuery:
    """The groups ``query``, ``status``, ``since``, ``until`` and ``sort`` select.

    ``default_unresolved``: a missing ``query`` means ``is:unresolved`` (the GET list) or
    every status (bulk changes); see :func:`resolve_status_filter`.
    """
    status, parsed = resolve_status_filter(
        args.get("query"), args.get("status"), default_unresolved=default_unresolved
    )
    since, until = args.get("since"), args.get("until")
    return GroupQuery(
        status=status,
        tags=parsed.tags,
        text=parsed.text,
        since=parse_time_bound(since, param="since") if since else None,
        until=parse_time_bound(until, param="until") if until else None,
        sort=parse_sort(args.get("sort")),
    )
