"""Keyset pagination with Sentry-compatible cursors, page-size parsing and ``Link`` headers.

Rows are paged in one total order, called D here: ``(key, tiebreak)`` descending, where
``key`` is a non-negative integer sort key (``last_seen`` seconds, a row id, ...) and
``tiebreak`` is something unique per row that the storage orders by within one key.

A cursor string is Sentry's ``"<value>:<offset>:<is_prev>"``. ``(value, offset)`` names a
*position* in D: the row reached by taking the rows with ``key <= value`` in D order and
skipping ``offset`` of them. A forward cursor (``is_prev`` 0) asks for the page starting at
that position; a previous cursor (``is_prev`` 1) asks for the page ending just before it.

The arithmetic follows Sentry's ``build_cursor`` wherever Sentry is right (so every cursor
string a Sentry client has seen still means the same thing), and differs where Sentry loses
or repeats rows:

* a forward page without rows beyond it gets a ``next`` cursor pointing *after* its last
  row, not at it (following Sentry's would repeat that row);
* a previous page keeps the rows adjacent to the current page (Sentry drops the nearest
  one) and its own ``previous`` cursor is exact even when more rows than a page share a key
  (for which :func:`paginate` needs ``count_key``).

A value of 0 is Sentry's "no bound on the key" for forward cursors, so keys should be >= 1
(timestamps, ids); rows with key 0 cannot be told apart from the start of the list.

Nothing here imports Flask: the blueprint reads the query string and storages implement
:class:`Window` reads (:func:`apply_window` is the reference for in-memory storages).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar
from urllib.parse import quote

from .errors import BadRequest
from .errors import InvalidCursor
from .storage import MAX_ID

__all__ = [
    "MAX_OFFSET",
    "MAX_VALUE",
    "Cursor",
    "Page",
    "Window",
    "apply_window",
    "link_header",
    "paginate",
    "parse_cursor",
    "parse_page_size",
]

T = TypeVar("T")

#: Largest accepted cursor value: keys are stored as signed 64-bit integers.
MAX_VALUE = MAX_ID
#: Largest accepted cursor offset; storages pass it to OFFSET, so keep it a 32-bit int.
MAX_OFFSET = 2**31 - 1

# Far longer than any cursor we emit (19 + 1 + 10 + 1 + 1 characters), short enough that a
# hostile query string costs nothing to reject.
_MAX_CURSOR_LENGTH = 100

# ASCII only (Python's \d also matches other scripts' digits, which int() would accept).
# Sentry parses the value with float(); we accept the plain decimal forms of that but no
# signs, exponents, underscores, whitespace, nan or inf.
_VALUE_RE = re.compile(r"([0-9]+)(?:\.[0-9]*)?", re.ASCII)
_OFFSET_RE = re.compile(r"[0-9]+", re.ASCII)
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)

_PAGE_SIZE_PARAMS = ("limit", "per_page")


@dataclass(frozen=True)
class Cursor:
    """A position in D plus a direction; ``str()`` gives Sentry's cursor string.

    ``has_results`` is not part of the string and not compared: it is what the ``Link``
    header's ``results=`` reports for a cursor handed out with a page.
    """

    value: int
    offset: int
    is_prev: bool
    has_results: bool | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.value < 0 or self.offset < 0:
            raise ValueError(f"cursor value and offset must be >= 0, got {self!r}")

    @classmethod
    def from_string(cls, text: str) -> Cursor:
        """Parse ``"value:offset:is_prev"``; raise :class:`InvalidCursor` if malformed."""
        if not isinstance(text, str) or len(text) > _MAX_CURSOR_LENGTH:
            raise InvalidCursor()
        parts = text.split(":")
        if len(parts) != 3:
            raise InvalidCursor()
        raw_value, raw_offset, raw_is_prev = parts
        value_match = _VALUE_RE.fullmatch(raw_value)
        if value_match is None or not _OFFSET_RE.fullmatch(raw_offset):
            raise InvalidCursor()
        if raw_is_prev not in ("0", "1"):
            raise InvalidCursor()
        # Truncating the digit string (rather than float()) keeps large values exact while
        # matching Sentry's long(float(value)) for everything a float represents exactly.
        value = int(value_match.group(1))
        offset = int(raw_offset)
        if value > MAX_VALUE or offset > MAX_OFFSET:
            raise InvalidCursor()
        return cls(value=value, offset=offset, is_prev=raw_is_prev == "1")

    def __str__(self) -> str:
        return f"{self.value}:{self.offset}:{1 if self.is_prev else 0}"


def parse_cursor(text: str | None) -> Cursor | None:
    """Parse the ``cursor`` query parameter; ``None`` (absent or empty) means the first page."""
    if text is None or text == "":
        return None
    return Cursor.from_string(text)


def parse_page_size(params: Mapping[str, str], *, default: int, maximum: int) -> int:
    """Read the page size from ``limit`` or ``per_page`` (``limit`` wins if both are given).

    Absent gives ``default``; values above ``maximum`` are clamped to it; anything but a
    positive integer raises :class:`BadRequest` naming the parameter that was used.
    """
    if maximum < 1 or default < 1:
        raise ValueError("page size default and maximum must be positive")
    for name in _PAGE_SIZE_PARAMS:
        if name in params:
            break
    else:
        # A default above the maximum is a configuration slip; clamping it like a client's
        # value beats failing every request.
        return min(default, maximum)
    raw = params[name]
    error = BadRequest(f'Invalid value for parameter "{name}": must be a positive integer.')
    if not isinstance(raw, str) or not _DIGITS_RE.fullmatch(raw):
        raise error
    significant = raw.lstrip("0")
    if not significant:
        raise error
    # More digits than the maximum has means larger than it: clamp without calling int()
    # on an arbitrarily long string (slow, and refused beyond 4300 digits since 3.11).
    if len(significant) > len(str(maximum)):
        return maximum
    return min(int(significant), maximum)


@dataclass(frozen=True)
class Window:
    """One keyset read a storage performs: rows whose key compares to value by op,
    ordered by (key, tiebreak) descending or ascending, skipping offset, at most limit."""

    op: Literal["<=", "==", ">"] | None  # None: no bound on the key
    value: int
    descending: bool
    offset: int
    limit: int


@dataclass(frozen=True)
class Page(Generic[T]):
    """The rows of one page and the cursors to its neighbours (``has_results`` set)."""

    rows: list[T]
    next: Cursor
    prev: Cursor


def _fetch(fetch: Callable[[Window], Sequence[T]], window: Window) -> list[T]:
    # The arithmetic below counts rows, so a storage returning more than asked would
    # silently shift every cursor; trimming is cheaper than trusting.
    return list(fetch(window))[: window.limit]


def _trailing_run(rows: Sequence[T], key: Callable[[T], int], k: int) -> int:
    """How many rows at the end of ``rows`` have key ``k``."""
    n = 0
    for row in reversed(rows):
        if key(row) != k:
            break
        n += 1
    return n


def _leading_run(rows: Sequence[T], key: Callable[[T], int], k: int) -> int:
    """How many rows at the start of ``rows`` have key ``k``."""
    n = 0
    for row in rows:
        if key(row) != k:
            break
        n += 1
    return n


def paginate(
    fetch: Callable[[Window], Sequence[T]],
    key: Callable[[T], int],
    cursor: Cursor | None,
    limit: int,
    count_key: Callable[[int], int] | None = None,
) -> Page[T]:
    """Read the page ``cursor`` asks for (the first page if ``None``) with ``fetch``.

    ``fetch`` performs a :class:`Window` read; ``key`` gives a row's integer sort key.
    ``count_key(k)`` must count all rows with key ``k``; it is called only when a previous
    page starts inside a run of equal keys that began before it, so storages whose keys
    are unique may omit it (if then needed, :class:`RuntimeError` is raised).
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    if cursor is not None and cursor.is_prev:
        return _previous_page(fetch, key, cursor, limit, count_key)
    return _forward_page(fetch, key, cursor, limit)


def _forward_page(
    fetch: Callable[[Window], Sequence[T]],
    key: Callable[[T], int],
    cursor: Cursor | None,
    limit: int,
) -> Page[T]:
    v = cursor.value if cursor is not None else 0
    o = cursor.offset if cursor is not None else 0
    rows = _fetch(
        fetch,
        Window(op="<=" if v else None, value=v, descending=True, offset=o, limit=limit + 1),
    )
    # Sentry reports a previous page whenever the cursor was not the start, without looking.
    had_position = cursor is not None and (v != 0 or o != 0)
    if not rows:
        return Page(
            rows=[],
            next=Cursor(v, o, False, has_results=False),
            prev=Cursor(v, o, True, has_results=had_position),
        )
    if v == 0:
        # Sentry pins the first page's cursors to its top key so that rows arriving later
        # show up behind its previous link instead of shifting the next one.
        v = key(rows[0])
    page = rows[:limit]
    has_next = len(rows) > limit
    # With an extra row, next is that row's position; without, the position just after
    # the last row (Sentry points at the last row itself, so following its link once older
    # rows exist repeats it). Either way it is (kx, equal-key rows ending the page).
    kx = key(rows[-1])
    n = _trailing_run(page, key, kx)
    if kx == v:
        # Then the whole page has key v, and the offset continues from the cursor's.
        n += o
    return Page(
        rows=page,
        next=Cursor(kx, n, False, has_results=has_next),
        prev=Cursor(v, o, True, has_results=had_position),
    )


def _previous_page(
    fetch: Callable[[Window], Sequence[T]],
    key: Callable[[T], int],
    cursor: Cursor,
    limit: int,
    count_key: Callable[[int], int] | None,
) -> Page[T]:
    v, o = cursor.value, cursor.offset
    want = limit + 1
    # The o rows of key v already passed come last before the position; take the nearest.
    same_key: list[T] = []
    if o > 0:
        same_key = _fetch(
            fetch,
            Window(op="==", value=v, descending=True, offset=max(0, o - want), limit=min(o, want)),
        )
    newer: list[T] = []
    if len(same_key) < want:
        # Ascending from the position means nearest first, so the limit keeps the right rows.
        newer = _fetch(
            fetch,
            Window(op=">", value=v, descending=False, offset=0, limit=want - len(same_key)),
        )
        newer.reverse()
    before = newer + same_key
    has_prev = len(before) > limit
    # Keep the rows adjacent to the position; the extra one only tells that more exist.
    page = before[-limit:]
    next_cursor = Cursor(v, o, False, has_results=True)
    if not page:
        return Page(rows=[], next=next_cursor, prev=Cursor(v, o, True, has_results=False))
    k = key(page[0])
    if k == v:
        prev_offset = o - len(page)
    elif has_prev and key(before[0]) == k:
        # Rows of key k before the page are not all in hand; all those after its first
        # row are in the page (the position lies at key <= v < k), so count the rest.
        if count_key is None:
            raise RuntimeError(
                f"sort key {k} is not unique across pages: paginate() needs a count_key"
            )
        prev_offset = count_key(k) - _leading_run(page, key, k)
    else:
        prev_offset = 0
    return Page(
        rows=page,
        next=next_cursor,
        # A count that shrank since the page was read must not make an invalid cursor.
        prev=Cursor(k, max(0, prev_offset), True, has_results=has_prev),
    )


def apply_window(
    rows: Iterable[T],
    window: Window,
    key: Callable[[T], int],
    tiebreak: Callable[[T], Any],
) -> list[T]:
    """Perform ``window`` on in-memory ``rows`` (the reference for every storage)."""
    v = window.value
    if window.op is None:
        selected = list(rows)
    elif window.op == "<=":
        selected = [row for row in rows if key(row) <= v]
    elif window.op == "==":
        selected = [row for row in rows if key(row) == v]
    elif window.op == ">":
        selected = [row for row in rows if key(row) > v]
    else:
        raise ValueError(f"unknown window op {window.op!r}")
    selected.sort(key=lambda row: (key(row), tiebreak(row)), reverse=window.descending)
    return selected[window.offset : window.offset + window.limit]


def _link(base: str, rel: str, cursor: Cursor) -> str:
    results = "true" if cursor.has_results else "false"
    return f'<{base}{cursor}>; rel="{rel}"; results="{results}"; cursor="{cursor}"'


def link_header(base_url: str, params: Sequence[tuple[str, str]], page: Page[Any]) -> str:
    """Build the ``Link`` header value: previous link, then next, both always present.

    ``base_url`` is the absolute URL of the request path (no query); ``params`` the query
    parameters in the order given, repeats included. ``cursor`` is dropped and appended last.
    """
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params if k != "cursor")
    # "&" even after an empty query: Sentry's characteristic "?&cursor=" that clients match.
    base = f"{base_url}?{query}&cursor="
    return f"{_link(base, 'previous', page.prev)}, {_link(base, 'next', page.next)}"
