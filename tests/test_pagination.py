"""Tests for flask_sentry_api.pagination: cursors, page sizes, keyset paging, Link headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_sentry_api.errors import BadRequest
from flask_sentry_api.errors import InvalidCursor
from flask_sentry_api.pagination import MAX_OFFSET
from flask_sentry_api.pagination import MAX_VALUE
from flask_sentry_api.pagination import Cursor
from flask_sentry_api.pagination import Page
from flask_sentry_api.pagination import Window
from flask_sentry_api.pagination import apply_window
from flask_sentry_api.pagination import link_header
from flask_sentry_api.pagination import paginate
from flask_sentry_api.pagination import parse_cursor
from flask_sentry_api.pagination import parse_page_size


class Row(NamedTuple):
    id: int
    key: int


def row_key(row: Row) -> int:
    return row.key


class Table:
    """An in-memory storage: Window reads through apply_window, tie-broken by id."""

    def __init__(self, rows: Sequence[Row] = ()) -> None:
        self.rows = list(rows)
        self.windows: list[Window] = []

    def fetch(self, window: Window) -> list[Row]:
        self.windows.append(window)
        return apply_window(self.rows, window, row_key, lambda row: row.id)

    def count_key(self, k: int) -> int:
        return sum(1 for row in self.rows if row.key == k)

    def page(self, cursor: Cursor | str | None, limit: int) -> Page[Row]:
        # Go through the string form, as a client following a Link header does.
        if isinstance(cursor, Cursor):
            cursor = str(cursor)
        return paginate(self.fetch, row_key, parse_cursor(cursor), limit, self.count_key)

    def in_order(self) -> list[Row]:
        """The rows in D: (key, id) descending."""
        return sorted(self.rows, key=lambda row: (row.key, row.id), reverse=True)

    def index(self, cursor: Cursor) -> int:
        """Where a position (value, offset) lies in in_order(), by definition."""
        ordered = self.in_order()
        first = next((i for i, row in enumerate(ordered) if row.key <= cursor.value), len(ordered))
        # Cursors we hand out only ever count rows of their own key.
        assert cursor.offset <= self.count_key(cursor.value), cursor
        return first + cursor.offset


def strings(page: Page[Row]) -> tuple[str, bool | None, str, bool | None]:
    return (str(page.prev), page.prev.has_results, str(page.next), page.next.has_results)


# --- the documented walk (SPEC section 5) ----------------------------------------------------

A = Row(id=1, key=1420837590)
B = Row(id=2, key=1420837533)
C = Row(id=3, key=1420837600)


def test_worked_example_from_sentry_docs() -> None:
    table = Table([A, B])

    first = table.page(None, 1)
    assert first.rows == [A]
    assert strings(first) == ("1420837590:0:1", False, "1420837533:0:0", True)

    second = table.page("1420837533:0:0", 1)
    assert second.rows == [B]
    assert strings(second) == ("1420837533:0:1", True, "1420837533:1:0", False)

    back = table.page("1420837533:0:1", 1)
    assert back.rows == [A]
    assert strings(back) == strings(first)

    before_first = table.page("1420837590:0:1", 1)
    assert before_first.rows == []
    assert strings(before_first) == ("1420837590:0:1", False, "1420837590:0:0", True)

    table.rows.append(C)
    assert table.page("1420837590:0:1", 1).rows == [C]


def test_worked_example_link_header() -> None:
    page = Table([A, B]).page(None, 1)
    assert link_header("http://h/api/0/projects/1/groups/", [], page) == (
        "<http://h/api/0/projects/1/groups/?&cursor=1420837590:0:1>; "
        'rel="previous"; results="false"; cursor="1420837590:0:1", '
        "<http://h/api/0/projects/1/groups/?&cursor=1420837533:0:0>; "
        'rel="next"; results="true"; cursor="1420837533:0:0"'
    )


def test_following_the_last_next_link_is_empty_then_yields_older_rows() -> None:
    table = Table([A, B])
    second = table.page("1420837533:0:0", 1)
    following = table.page(second.next, 1)
    assert following.rows == []  # Sentry's "1420837533:0:0" would repeat B here
    assert strings(following) == ("1420837533:1:1", True, "1420837533:1:0", False)
    older = Row(id=0, key=B.key)  # same key, lower id: after B in D
    table.rows.append(older)
    assert table.page(second.next, 1).rows == [older]


def test_empty_table() -> None:
    page = Table().page(None, 10)
    assert page.rows == []
    assert strings(page) == ("0:0:1", False, "0:0:0", False)


def test_previous_page_keeps_the_rows_next_to_the_position() -> None:
    table = Table([Row(id=i, key=i) for i in range(1, 6)])
    page = table.page("2:0:1", 2)
    # Sentry's algorithm returns keys [5, 4] here, skipping row 3.
    assert [row.key for row in page.rows] == [4, 3]
    assert strings(page) == ("4:0:1", True, "2:0:0", True)


def test_previous_page_inside_a_run_of_equal_keys() -> None:
    table = Table([Row(id=i, key=7) for i in range(10)] + [Row(id=10, key=9)])
    # ids 9..0 of key 7 follow the key-9 row; position (7, 6) is id 3.
    page = table.page("7:6:1", 4)
    assert [row.id for row in page.rows] == [7, 6, 5, 4]
    assert strings(page) == ("7:2:1", True, "7:6:0", True)
    page = table.page(page.prev, 4)
    assert [row.id for row in page.rows] == [10, 9, 8]
    assert strings(page) == ("9:0:1", False, "7:2:0", True)


def test_previous_page_crossing_into_a_longer_run_needs_count_key() -> None:
    rows = [Row(id=i, key=7) for i in range(5)] + [Row(id=9, key=3)]
    table = Table(rows)
    # The page before the key-3 row holds the last two key-7 rows, three more precede it.
    page = paginate(table.fetch, row_key, Cursor(3, 0, True), 2, table.count_key)
    assert [row.id for row in page.rows] == [1, 0]
    assert strings(page) == ("7:3:1", True, "3:0:0", True)
    with pytest.raises(RuntimeError, match="count_key"):
        paginate(table.fetch, row_key, Cursor(3, 0, True), 2)


def test_unique_keys_do_not_need_count_key() -> None:
    table = Table([Row(id=i, key=i) for i in range(1, 20)])
    cursor: Cursor | None = Cursor(1, 0, True)
    seen: list[Row] = []
    for _ in range(20):
        assert cursor is not None
        page = paginate(table.fetch, row_key, cursor, 3)
        seen = page.rows + seen
        if not page.prev.has_results:
            break
        cursor = page.prev
    assert seen == table.in_order()[:-1]


def test_forward_windows_are_keyset_reads() -> None:
    table = Table([A, B])
    table.page(None, 1)
    table.page("1420837533:0:0", 1)
    assert table.windows == [
        Window(op=None, value=0, descending=True, offset=0, limit=2),
        Window(op="<=", value=1420837533, descending=True, offset=0, limit=2),
    ]


def test_previous_windows_are_keyset_reads() -> None:
    table = Table([Row(id=i, key=5) for i in range(6)] + [Row(id=9, key=8)])
    table.page("5:4:1", 2)
    assert table.windows == [Window(op="==", value=5, descending=True, offset=1, limit=3)]
    table.windows.clear()
    table.page("5:1:1", 2)
    assert table.windows == [
        Window(op="==", value=5, descending=True, offset=0, limit=1),
        Window(op=">", value=5, descending=False, offset=0, limit=2),
    ]
    table.windows.clear()
    table.page("5:0:1", 2)
    assert table.windows == [Window(op=">", value=5, descending=False, offset=0, limit=3)]


def test_paginate_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValueError):
        paginate(Table().fetch, row_key, None, 0)


def test_paginate_ignores_rows_a_storage_returns_beyond_the_limit() -> None:
    rows = [Row(id=i, key=i) for i in range(10, 0, -1)]
    page = paginate(lambda window: rows, row_key, None, 3)
    assert page.rows == rows[:3]
    assert str(page.next) == "7:0:0"


# --- properties over random tables -----------------------------------------------------------

tables = st.lists(st.integers(min_value=1, max_value=4), max_size=60).map(
    lambda keys: Table([Row(id=i, key=k) for i, k in enumerate(keys)])
)
limits = st.integers(min_value=1, max_value=7)


def walk_forward(table: Table, limit: int) -> list[Page[Row]]:
    pages = [table.page(None, limit)]
    for _ in range(len(table.rows) + 2):
        if not pages[-1].next.has_results:
            return pages
        pages.append(table.page(pages[-1].next, limit))
    pytest.fail("forward walk did not end")


@settings(deadline=None)
@given(tables, limits)
def test_walking_forward_returns_every_row_once_in_order(table: Table, limit: int) -> None:
    pages = walk_forward(table, limit)
    assert [row for page in pages for row in page.rows] == table.in_order()
    assert all(len(page.rows) == limit for page in pages[:-1])
    assert not pages[0].prev.has_results
    assert all(page.prev.has_results for page in pages[1:])


@settings(deadline=None)
@given(tables, limits)
def test_walking_back_from_the_last_page_returns_every_row_once(table: Table, limit: int) -> None:
    last = walk_forward(table, limit)[-1]
    seen = list(last.rows)
    cursor = last.prev
    for _ in range(len(table.rows) + 2):
        if not cursor.has_results:
            break
        page = table.page(cursor, limit)
        assert page.rows, "a results=true link gave no rows"
        assert page.next.has_results
        seen = page.rows + seen
        cursor = page.prev
    else:
        pytest.fail("backward walk did not end")
    assert seen == table.in_order()


@settings(deadline=None)
@given(tables, limits, st.data())
def test_previous_then_next_and_next_then_previous_come_back(
    table: Table, limit: int, data: st.DataObject
) -> None:
    pages = walk_forward(table, limit)
    i = data.draw(st.integers(min_value=0, max_value=len(pages) - 1))
    page = pages[i]

    there_and_back = table.page(table.page(page.prev, limit).next, limit)
    assert there_and_back.rows == page.rows
    assert strings(there_and_back)[2:] == strings(page)[2:]

    if page.next.has_results:
        back = table.page(pages[i + 1].prev, limit)
        assert back.rows == page.rows
        assert back.prev.has_results == (i > 0)
        # The cursor strings may differ, but must name the same position.
        if i > 0:
            assert table.index(back.prev) == table.index(page.prev)


@settings(deadline=None)
@given(tables, limits, st.data())
def test_any_position_pages_match_the_definition(
    table: Table, limit: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(min_value=1, max_value=5), label="value")
    offset = data.draw(st.integers(min_value=0, max_value=table.count_key(value)), label="offset")
    ordered = table.in_order()
    at = table.index(Cursor(value, offset, False))

    forward = table.page(Cursor(value, offset, False), limit)
    assert forward.rows == ordered[at : at + limit]
    assert forward.next.has_results == (at + limit < len(ordered))
    assert table.index(forward.next) == at + len(forward.rows)
    assert (forward.prev.value, forward.prev.offset) == (value, offset)
    assert forward.prev.has_results

    backward = table.page(Cursor(value, offset, True), limit)
    assert backward.rows == ordered[max(0, at - limit) : at]
    assert backward.prev.has_results == (at - limit > 0)
    assert table.index(backward.prev) == at - len(backward.rows)
    assert strings(backward)[2:] == (f"{value}:{offset}:0", True)


# --- cursor strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1420837590:0:1", Cursor(1420837590, 0, True)),
        ("1420837533:1:0", Cursor(1420837533, 1, False)),
        ("0:0:0", Cursor(0, 0, False)),
        ("1.9:0:0", Cursor(1, 0, False)),
        ("1.:0:0", Cursor(1, 0, False)),
        ("007:0:0", Cursor(7, 0, False)),
        (f"{MAX_VALUE}:{MAX_OFFSET}:1", Cursor(MAX_VALUE, MAX_OFFSET, True)),
        (f"{MAX_VALUE}.99:0:0", Cursor(MAX_VALUE, 0, False)),
    ],
)
def test_parse_cursor_accepts(text: str, expected: Cursor) -> None:
    cursor = parse_cursor(text)
    assert cursor == expected
    assert cursor is not None
    assert (cursor.value, cursor.offset, cursor.is_prev) == (
        expected.value,
        expected.offset,
        expected.is_prev,
    )
    assert cursor.has_results is None
    assert Cursor.from_string(str(cursor)) == cursor


def test_parse_cursor_absent_or_empty_is_the_first_page() -> None:
    assert parse_cursor(None) is None
    assert parse_cursor("") is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1:2",
        "1:2:3:4",
        "1:-1:0",
        "-5:0:0",
        "1:0:2",
        "1:0:x",
        "nan:0:0",
        "inf:0:0",
        "99999999999999999999:0:0",
        f"{MAX_VALUE + 1}:0:0",
        f"1:{MAX_OFFSET + 1}:0",
        " 1:0:0",
        "1:0:0 ",
        "1:0:0\n",
        "1:0:0>",
        "1:0:0,",
        "+1:0:0",
        "1e3:0:0",
        "1_0:0:0",
        ".5:0:0",
        "1:1.5:0",
        "1:0:00",
        "1:0:true",
        "::",
        "1::0",
        "\uff11:0:0",  # fullwidth digit one, which int() would accept
        "1" * 10_000 + ":0:0",
    ],
)
def test_cursor_from_string_rejects(text: str) -> None:
    with pytest.raises(InvalidCursor) as info:
        Cursor.from_string(text)
    assert info.value.status_code == 400
    assert info.value.detail == "Invalid cursor parameter."
    if text:
        with pytest.raises(InvalidCursor):
            parse_cursor(text)


def test_cursor_equality_ignores_has_results() -> None:
    assert Cursor(5, 1, False, has_results=True) == Cursor(5, 1, False)
    assert str(Cursor(5, 1, False, has_results=True)) == "5:1:0"
    assert Cursor(5, 1, False) != Cursor(5, 1, True)


def test_cursor_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError):
        Cursor(-1, 0, False)
    with pytest.raises(ValueError):
        Cursor(1, -1, True)


# --- page size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 100),
        ({"limit": "5"}, 5),
        ({"limit": "100"}, 100),
        ({"limit": "500"}, 100),
        ({"per_page": "7"}, 7),
        ({"per_page": "101"}, 100),
        ({"limit": "3", "per_page": "7"}, 3),
        ({"limit": "007"}, 7),
        ({"limit": "9" * 100_000}, 100),
        ({"limit": "0" * 100_000 + "5"}, 5),
        ({"cursor": "1:0:0"}, 100),
    ],
)
def test_parse_page_size(params: dict[str, str], expected: int) -> None:
    assert parse_page_size(params, default=100, maximum=100) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "abc", "", " 5", "+5", "5 ", "0" * 100_000])
@pytest.mark.parametrize("name", ["limit", "per_page"])
def test_parse_page_size_rejects(name: str, raw: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_page_size({name: raw}, default=100, maximum=100)
    assert info.value.status_code == 400
    assert info.value.detail == (
        f'Invalid value for parameter "{name}": must be a positive integer.'
    )


def test_parse_page_size_names_limit_when_both_are_given() -> None:
    with pytest.raises(BadRequest, match='"limit"'):
        parse_page_size({"limit": "x", "per_page": "5"}, default=100, maximum=100)


def test_parse_page_size_default_and_maximum() -> None:
    assert parse_page_size({}, default=25, maximum=100) == 25
    assert parse_page_size({"limit": "60"}, default=25, maximum=50) == 50
    assert parse_page_size({}, default=100, maximum=50) == 50
    with pytest.raises(ValueError):
        parse_page_size({}, default=0, maximum=100)


def test_parse_page_size_huge_value_is_capped() -> None:
    assert parse_page_size({"limit": "9" * 5_000_000}, default=100, maximum=100) == 100


# --- Link header -----------------------------------------------------------------------------


def test_link_header_keeps_params_in_order_and_drops_cursor() -> None:
    page = Table([A, B]).page("1420837533:0:0", 1)
    params = [("query", "is:resolved"), ("cursor", "x"), ("id", "1"), ("id", "2")]
    url = "http://h/api/0/projects/1/groups/?query=is%3Aresolved&id=1&id=2&cursor="
    assert link_header("http://h/api/0/projects/1/groups/", params, page) == (
        f'<{url}1420837533:0:1>; rel="previous"; results="true"; cursor="1420837533:0:1", '
        f'<{url}1420837533:1:0>; rel="next"; results="false"; cursor="1420837533:1:0"'
    )


def test_link_header_percent_encodes_keys_and_values() -> None:
    page = Table().page(None, 1)
    header = link_header("http://h/x/", [("a b", "c&d=é/")], page)
    assert header.startswith("<http://h/x/?a%20b=c%26d%3D%C3%A9%2F&cursor=0:0:1>; ")


# --- apply_window ----------------------------------------------------------------------------

WINDOW_ROWS = [Row(1, 3), Row(2, 1), Row(3, 3), Row(4, 2), Row(5, 2), Row(6, 4)]


def window_ids(op: str | None, value: int, descending: bool, offset: int, limit: int) -> list[int]:
    window = Window(op=op, value=value, descending=descending, offset=offset, limit=limit)  # type: ignore[arg-type]
    return [row.id for row in apply_window(WINDOW_ROWS, window, row_key, lambda row: row.id)]


@pytest.mark.parametrize(
    ("op", "value", "descending", "offset", "limit", "expected"),
    [
        (None, 0, True, 0, 10, [6, 3, 1, 5, 4, 2]),
        (None, 0, False, 0, 10, [2, 4, 5, 1, 3, 6]),
        (None, 0, True, 2, 3, [1, 5, 4]),
        ("<=", 3, True, 0, 10, [3, 1, 5, 4, 2]),
        ("<=", 2, True, 1, 2, [4, 2]),
        ("<=", 2, False, 0, 10, [2, 4, 5]),
        ("==", 3, True, 0, 10, [3, 1]),
        ("==", 3, False, 0, 10, [1, 3]),
        ("==", 2, True, 1, 1, [4]),
        ("==", 9, True, 0, 10, []),
        (">", 2, False, 0, 10, [1, 3, 6]),
        (">", 2, True, 0, 10, [6, 3, 1]),
        (">", 1, False, 1, 2, [5, 1]),
        (">", 4, False, 0, 10, []),
        ("<=", 4, True, 10, 5, []),
        ("<=", 4, True, 0, 0, []),
    ],
)
def test_apply_window(
    op: str | None, value: int, descending: bool, offset: int, limit: int, expected: list[int]
) -> None:
    assert window_ids(op, value, descending, offset, limit) == expected


def test_apply_window_accepts_any_iterable() -> None:
    window = Window(op="<=", value=2, descending=True, offset=0, limit=10)
    rows = apply_window(iter(WINDOW_ROWS), window, row_key, lambda row: row.id)
    assert [row.id for row in rows] == [5, 4, 2]
