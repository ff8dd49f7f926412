"""Tests for :mod:`flask_sentry_api.search`: the group-list search parameters."""

from __future__ import annotations

import string
from datetime import datetime
from datetime import timezone

import pytest
from hypothesis import assume
from hypothesis import given
from hypothesis import strategies as st

from flask_sentry_api.errors import BadRequest
from flask_sentry_api.search import MAX_QUERY_LENGTH
from flask_sentry_api.search import MAX_TAG_FILTERS
from flask_sentry_api.search import ParsedQuery
from flask_sentry_api.search import parse_query
from flask_sentry_api.search import parse_sort
from flask_sentry_api.search import parse_stats_period
from flask_sentry_api.search import parse_status
from flask_sentry_api.search import parse_time_bound
from flask_sentry_api.search import quote
from flask_sentry_api.search import resolve_status_filter

UTC = timezone.utc


def assert_bad_request(exc: pytest.ExceptionInfo[BadRequest], param: str) -> None:
    assert exc.value.status_code == 400
    assert exc.value.detail.startswith(f'Invalid value for parameter "{param}": ')


# --- parse_query ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ParsedQuery(None, (), None)),
        ("   \t\n ", ParsedQuery(None, (), None)),
        ("is:unresolved", ParsedQuery("unresolved", (), None)),
        ("is:resolved", ParsedQuery("resolved", (), None)),
        ("is:muted", ParsedQuery("muted", (), None)),
        ("is:ignored", ParsedQuery("muted", (), None)),
        ('is:"resolved"', ParsedQuery("resolved", (), None)),
        ("is:resolved is:unresolved", ParsedQuery("unresolved", (), None)),
        ("level:error", ParsedQuery(None, (("level", "error"),), None)),
        ("release:1.2", ParsedQuery(None, (("release", "1.2"),), None)),
        ('release:"1.2 beta"', ParsedQuery(None, (("release", "1.2 beta"),), None)),
        ('message:"a b"', ParsedQuery(None, (("message", "a b"),), None)),
        ('message:"a  b"', ParsedQuery(None, (("message", "a  b"),), None)),
        ('message:"say \\"hi\\""', ParsedQuery(None, (("message", 'say "hi"'),), None)),
        ('path:"C:\\dir\\\\"', ParsedQuery(None, (("path", "C:\\dir\\"),), None)),
        ('k:"a"b', ParsedQuery(None, (("k", "ab"),), None)),
        ('k:a"b c"', ParsedQuery(None, (("k", "ab c"),), None)),
        ("url:a:b", ParsedQuery(None, (("url", "a:b"),), None)),
        ('url:"//x"', ParsedQuery(None, (("url", "//x"),), None)),
        ("Browser:Chrome", ParsedQuery(None, (("Browser", "Chrome"),), None)),
        ("server_name:web-1.example", ParsedQuery(None, (("server_name", "web-1.example"),), None)),
        ("sentry:release:1.2", ParsedQuery(None, (("release", "1.2"),), None)),
        ("sentry:user:id:1", ParsedQuery(None, (("user", "id:1"),), None)),
        ('sentry:user:"a b"', ParsedQuery(None, (("user", "a b"),), None)),
        ("sentry:dist:3", ParsedQuery(None, (("sentry:dist", "3"),), None)),
        ("sentry:foo", ParsedQuery(None, (("sentry", "foo"),), None)),
        ('sentry:"x"', ParsedQuery(None, (("sentry", "x"),), None)),
        ("is:resolved level:error", ParsedQuery("resolved", (("level", "error"),), None)),
        (
            "level:error level:warning",
            ParsedQuery(None, (("level", "error"), ("level", "warning")), None),
        ),
        ("foo", ParsedQuery(None, (), "foo")),
        ("  foo   bar  ", ParsedQuery(None, (), "foo bar")),
        ('"foo  bar"', ParsedQuery(None, (), "foo  bar")),
        ('"a:b"', ParsedQuery(None, (), "a:b")),
        ('x"a:b"', ParsedQuery(None, (), "xa:b")),
        ('""', ParsedQuery(None, (), None)),
        ('a "" b', ParsedQuery(None, (), "a b")),
        ("http://x", ParsedQuery(None, (), "http://x")),
        ("https://example.com/a?b=c", ParsedQuery(None, (), "https://example.com/a?b=c")),
        ("foo:", ParsedQuery(None, (), "foo:")),
        ("is:", ParsedQuery(None, (), "is:")),
        ("sentry:release:", ParsedQuery(None, (), "sentry:release:")),
        (":foo", ParsedQuery(None, (), ":foo")),
        ("a/b:c", ParsedQuery(None, (), "a/b:c")),
        ("caf\u00e9:x", ParsedQuery(None, (), "caf\u00e9:x")),
        ("IS:resolved", ParsedQuery(None, (("IS", "resolved"),), None)),
        (
            'ValueError is:unresolved level:error "in handler" release:"1.2 beta" boom',
            ParsedQuery(
                "unresolved",
                (("level", "error"), ("release", "1.2 beta")),
                "ValueError in handler boom",
            ),
        ),
        ("a\\b", ParsedQuery(None, (), "a\\b")),
        ('"x\\y"', ParsedQuery(None, (), "x\\y")),
    ],
)
def test_parse_query(query: str, expected: ParsedQuery) -> None:
    assert parse_query(query) == expected


def test_parse_query_allows_limits_exactly() -> None:
    tags = " ".join(f"k{i}:v" for i in range(MAX_TAG_FILTERS))
    assert len(parse_query(tags).tags) == MAX_TAG_FILTERS
    assert parse_query("k" * 32 + ":" + "v" * 200).tags == (("k" * 32, "v" * 200),)
    assert parse_query("x" * 1000).text == "x" * 1000


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("is:foo", 'unknown status "foo" in is:foo.'),
        ("is:Resolved", 'unknown status "Resolved" in is:Resolved.'),
        ('is:"foo bar"', 'unknown status "foo bar" in is:foo bar.'),
        ("is:all", 'unknown status "all" in is:all.'),
        ('"abc', "unterminated quote."),
        ('release:"1.2', "unterminated quote."),
        ('a "b \\"', "unterminated quote."),
        ('k:""', 'empty value for "k".'),
        ("x" * 1001, "longer than 1000 characters."),
        ("a\0b", "contains a NUL character."),
        ('"\0"', "contains a NUL character."),
        (
            " ".join(f"k{i}:v" for i in range(MAX_TAG_FILTERS + 1)),
            "more than 20 tag filters.",
        ),
        ("k" * 33 + ":v", f'tag key "{"k" * 33}" is longer than 32 characters.'),
        ("k:" + "v" * 201, 'value of "k" is longer than 200 characters.'),
        ('k:"' + "v" * 201 + '"', 'value of "k" is longer than 200 characters.'),
        ("is:" + "x" * 60, f'unknown status "{"x" * 50}..." in is:{"x" * 50}....'),
    ],
)
def test_parse_query_rejects(query: str, reason: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_query(query)
    assert_bad_request(exc, "query")
    assert exc.value.detail == f'Invalid value for parameter "query": {reason}'


# --- parse_status and resolve_status_filter -------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("unresolved", "unresolved"),
        ("resolved", "resolved"),
        ("muted", "muted"),
        ("ignored", "muted"),
    ],
)
def test_parse_status(value: str, expected: str) -> None:
    assert parse_status(value) == expected


@pytest.mark.parametrize("value", ["", "foo", "RESOLVED", " resolved", "all"])
@pytest.mark.parametrize("param", ["status", "body.status"])
def test_parse_status_rejects(value: str, param: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_status(value, param=param)
    assert_bad_request(exc, param)
    assert "expected one of unresolved, resolved, muted." in exc.value.detail


@pytest.mark.parametrize(
    ("query", "status", "default_unresolved", "expected"),
    [
        # Both absent: the GET list defaults to unresolved, the bulk PUT filters nothing.
        (None, None, True, "unresolved"),
        (None, None, False, None),
        # An empty status counts as absent.
        (None, "", True, "unresolved"),
        (None, "", False, None),
        # Query present but empty (or without is:) means every status.
        ("", None, True, None),
        ("", None, False, None),
        ("level:error", None, True, None),
        ("  ", None, True, None),
        # Explicit is: token.
        ("is:resolved", None, True, "resolved"),
        ("is:ignored", None, False, "muted"),
        # status param with query absent replaces the default.
        (None, "resolved", True, "resolved"),
        (None, "ignored", True, "muted"),
        (None, "unresolved", False, "unresolved"),
        # status param with a query that has no is: still applies.
        ("", "resolved", True, "resolved"),
        ("level:error", "muted", True, "muted"),
        # is: in the query wins over status.
        ("is:resolved", "unresolved", True, "resolved"),
        ("is:muted", "resolved", False, "muted"),
    ],
)
def test_resolve_status_filter(
    query: str | None, status: str | None, default_unresolved: bool, expected: str | None
) -> None:
    effective, parsed = resolve_status_filter(query, status, default_unresolved=default_unresolved)
    assert effective == expected
    assert parsed == parse_query(query or "")


def test_resolve_status_filter_returns_parsed_query() -> None:
    _, parsed = resolve_status_filter("level:error boom", None, default_unresolved=True)
    assert parsed == ParsedQuery(None, (("level", "error"),), "boom")


@pytest.mark.parametrize(
    ("query", "status", "param"),
    [
        (None, "foo", "status"),
        ("is:resolved", "foo", "status"),  # a bad status is reported even when overridden
        ("is:foo", None, "query"),
        ("is:foo", "resolved", "query"),
        ('"open', None, "query"),
    ],
)
def test_resolve_status_filter_rejects(query: str | None, status: str | None, param: str) -> None:
    with pytest.raises(BadRequest) as exc:
        resolve_status_filter(query, status, default_unresolved=True)
    assert_bad_request(exc, param)


# --- parse_time_bound -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("1420838790", datetime(2015, 1, 9, 21, 26, 30, tzinfo=UTC)),
        ("  1420838790 ", datetime(2015, 1, 9, 21, 26, 30, tzinfo=UTC)),
        ("+1420838790", datetime(2015, 1, 9, 21, 26, 30, tzinfo=UTC)),
        ("1420838790.125", datetime(2015, 1, 9, 21, 26, 30, 125000, tzinfo=UTC)),
        ("1420838790.", datetime(2015, 1, 9, 21, 26, 30, tzinfo=UTC)),
        ("1420838790.0000004", datetime(2015, 1, 9, 21, 26, 30, tzinfo=UTC)),
        (".5", datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("1.4e9", datetime(2014, 5, 13, 16, 53, 20, tzinfo=UTC)),
        ("-1", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("20150109", datetime(1970, 8, 22, 5, 15, 9, tzinfo=UTC)),  # digits are seconds
        ("253402300799", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("-62135596800", datetime(1, 1, 1, tzinfo=UTC)),
        ("2015-01-09T21:06:30Z", datetime(2015, 1, 9, 21, 6, 30, tzinfo=UTC)),
        ("2015-01-09t21:06:30z", datetime(2015, 1, 9, 21, 6, 30, tzinfo=UTC)),
        ("2015-01-09T21:06:30.125Z", datetime(2015, 1, 9, 21, 6, 30, 125000, tzinfo=UTC)),
        ("2015-01-09T21:06:30,5Z", datetime(2015, 1, 9, 21, 6, 30, 500000, tzinfo=UTC)),
        (
            "2015-01-09T21:06:30.123456789Z",
            datetime(2015, 1, 9, 21, 6, 30, 123456, tzinfo=UTC),
        ),
        ("2015-01-09T21:06:30+02:00", datetime(2015, 1, 9, 19, 6, 30, tzinfo=UTC)),
        ("2015-01-09T21:06:30+0200", datetime(2015, 1, 9, 19, 6, 30, tzinfo=UTC)),
        ("2015-01-09T21:06:30+02", datetime(2015, 1, 9, 19, 6, 30, tzinfo=UTC)),
        ("2015-01-09T21:06:30-05:30", datetime(2015, 1, 10, 2, 36, 30, tzinfo=UTC)),
        ("2015-01-09T01:00:00+02:00", datetime(2015, 1, 8, 23, 0, 0, tzinfo=UTC)),
        # An unencoded "+" in a query string arrives as a space.
        ("2015-01-09T21:06:30 02:00", datetime(2015, 1, 9, 19, 6, 30, tzinfo=UTC)),
        ("2015-01-09T21:06:30", datetime(2015, 1, 9, 21, 6, 30, tzinfo=UTC)),
        ("2015-01-09 21:06:30", datetime(2015, 1, 9, 21, 6, 30, tzinfo=UTC)),
        ("2015-01-09T21:06", datetime(2015, 1, 9, 21, 6, tzinfo=UTC)),
        ("2015-01-09", datetime(2015, 1, 9, tzinfo=UTC)),
        ("2016-02-29", datetime(2016, 2, 29, tzinfo=UTC)),
    ],
)
def test_parse_time_bound(value: str, expected: datetime) -> None:
    result = parse_time_bound(value, param="since")
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "garbage",
        "yesterday",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e30",
        "-1e30",
        "1e999999999",
        "253402300800",
        "-62135596801",
        "1_000",
        "0x10",
        "1,5",
        "1.2.3",
        "2015-13-01",
        "2015-02-29",
        "2015-01-32",
        "2015-01-09T24:00:00Z",
        "2015-01-09T21:60:00Z",
        "2015-01-09T21:06:61Z",
        "2015-01-09T21:06:30+24:00",
        "2015-01-09T21:06:30+02:60",
        "2015-01-09T21:06:30Z+02:00",
        "2015-01-09T",
        "2015-1-9",
        "15-01-09",
        "2015-01-09Z",
        "2015-W02",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1" * 100,
        "\0",
    ],
)
@pytest.mark.parametrize("param", ["since", "until"])
def test_parse_time_bound_rejects(value: str, param: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_time_bound(value, param=param)
    assert_bad_request(exc, param)


# --- parse_stats_period and parse_sort -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "24h"), ("", None), ("24h", "24h"), ("14d", "14d")],
)
def test_parse_stats_period(value: str | None, expected: str | None) -> None:
    assert parse_stats_period(value) == expected


@pytest.mark.parametrize("value", ["1h", "24H", "14D", "7d", " ", "24h ", "null", "0"])
def test_parse_stats_period_rejects(value: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_stats_period(value)
    assert_bad_request(exc, "statsPeriod")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "date"),
        ("", "date"),
        ("date", "date"),
        ("new", "new"),
        ("freq", "freq"),
        ("priority", "priority"),
    ],
)
def test_parse_sort(value: str | None, expected: str) -> None:
    assert parse_sort(value) == expected


@pytest.mark.parametrize("value", ["tottime", "avgtime", "Date", "-date", "date ", "x" * 500])
def test_parse_sort_rejects(value: str) -> None:
    with pytest.raises(BadRequest) as exc:
        parse_sort(value)
    assert_bad_request(exc, "sort")
    assert len(exc.value.detail) < 200  # a long value is not echoed whole


# --- properties -----------------------------------------------------------------------


@given(st.text())
def test_parse_query_only_raises_bad_request(query: str) -> None:
    try:
        parsed = parse_query(query)
    except BadRequest as exc:
        assert exc.status_code == 400
        assert exc.detail.startswith('Invalid value for parameter "query": ')
    else:
        assert parsed.text != ""
        assert len(parsed.tags) <= MAX_TAG_FILTERS


@given(st.text(alphabet='ab :"\\\t', max_size=30))
def test_parse_query_on_quote_heavy_text(query: str) -> None:
    try:
        parse_query(query)
    except BadRequest as exc:
        assert exc.status_code == 400


@given(st.text())
def test_parse_time_bound_only_raises_bad_request(value: str) -> None:
    try:
        result = parse_time_bound(value, param="until")
    except BadRequest as exc:
        assert exc.detail.startswith('Invalid value for parameter "until": ')
    else:
        assert result.tzinfo is UTC


KEYS = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=32)
VALUES = st.text(alphabet=st.characters(blacklist_characters="\0"), min_size=1, max_size=200)


@given(st.lists(st.tuples(KEYS.filter(lambda k: k != "is"), VALUES), max_size=MAX_TAG_FILTERS))
def test_quoted_tag_filters_round_trip(pairs: list[tuple[str, str]]) -> None:
    query = " ".join(f"{key}:{quote(value)}" for key, value in pairs)
    assume(len(query) <= MAX_QUERY_LENGTH)
    parsed = parse_query(query)
    assert parsed == ParsedQuery(None, tuple(pairs), None)


@given(
    KEYS.filter(lambda k: k != "is"),
    VALUES,
    st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=5),
)
def test_quoted_filter_round_trips_among_free_text(key: str, value: str, words: list[str]) -> None:
    query = " ".join([*words, f"{key}:{quote(value)}", "is:ignored", *words])
    parsed = parse_query(query)
    assert parsed.tags == ((key, value),)
    assert parsed.status == "muted"
    assert parsed.text == (" ".join(words + words) or None)


@given(VALUES)
def test_quoted_free_text_round_trips(value: str) -> None:
    assert parse_query(quote(value)).text == value
