"""What the dashboard's templates show, computed from storage records: relative times,
sparklines, tag bars, and an event's exception chain, breadcrumbs and request read
defensively into plain values.

Every value of an event comes from whoever holds a project's public DSN key, and a custom
storage may hand back any shape: each reader here checks the types it meets, shortens what
is long and stops at a fixed depth, so a template never meets anything but short strings,
numbers and lists of them. Escaping is the templates' (Jinja's autoescape); the one piece
of markup made here is :class:`BarChart`'s SVG, of numbers and fixed labels only. No Flask
import.
"""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import datetime

from markupsafe import Markup
from markupsafe import escape

from ..search import quote
from ..storage import Event
from ..storage import Group
from ..storage import TagKeySummary

#: Characters of one value shown before it is cut (the rest is said, not shown).
MAX_SHOWN = 2000
#: Levels of a nested value shown before ``…``.
MAX_DEPTH = 6
#: Entries of one object or list shown.
MAX_ITEMS = 50
#: Frames of one stack trace, breadcrumbs, headers shown.
MAX_FRAMES = 250
MAX_CRUMBS = 100

_UNITS = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def time_ago(moment: datetime, now: datetime) -> str:
    """``moment`` as "3 minutes ago" from ``now`` ("just now" within a minute)."""
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    for name, size in _UNITS:
        count = int(seconds // size)
        if count >= 1:
            return f"{count} {name}{'s' if count != 1 else ''} ago"
    return "just now"


def exact_time(moment: datetime) -> str:
    """``moment`` in UTC to the second: ``2026-12-04 17:49:46 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def shorten(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` as text, at most ``limit`` characters and a note of how many were cut."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class BarChart:
    """Inline SVG bar charts of series that share their buckets (a page's sparklines),
    written out as markup.

    The only markup made outside a template: every value in it is a number computed here or
    the chart's fixed label (escaped), never event data. A page of 100 sparklines drawn by
    a template loop cost more than the rest of the page; here the empty bars are written
    once per page and each chart costs its non-empty buckets.
    """

    def __init__(
        self,
        buckets: int,
        *,
        width: int = 96,
        height: int = 24,
        css: str = "spark",
        label: str = "Last 24 hours",
        counts: bool = False,
    ) -> None:
        self.height = height
        self.counts = counts
        step = width / max(buckets, 1)
        self._x = [f"{index * step:.2f}" for index in range(buckets)]
        self._width = f"{max(step - 1, 1):.2f}"
        self._off = [
            f'<rect x="{x}" y="{height - 1}" width="{self._width}" height="1" class="off">'
            + ("<title>0</title>" if counts else "")
            + "</rect>"
            for x in self._x
        ]
        self._open = (
            f'<svg class="{escape(css)}" viewBox="0 0 {width} {height}" width="{width}"'
            f' height="{height}" role="img" aria-label="{escape(label)}: '
        )
        self._label = escape(label)
        self._baseline = f'<rect y="{height - 1}" width="{width}" height="1" class="off"/>'

    def __call__(self, series: t.Sequence[t.Sequence[int]]) -> Markup:
        """The chart of ``[[bucket_start, count], ...]`` (``stats.series_filler``'s)."""
        counts = [max(int(count), 0) for _, count in series][: len(self._x)]
        total = sum(counts)
        top = max(counts, default=0)
        said = f"{total} event{'' if total == 1 else 's'}"
        parts = [f'{self._open}{said}"><title>{self._label}: {said}</title>']
        if self.counts:
            # One element per bucket, each with its count to show on hover.
            for index, count in enumerate(counts):
                if not count:
                    parts.append(self._off[index])
                    continue
                height = max(1.0, (self.height - 1) * count / top)
                parts.append(
                    f'<rect x="{self._x[index]}" y="{self.height - height:.2f}"'
                    f' width="{self._width}" height="{height:.2f}" class="on">'
                    f"<title>{count}</title></rect>"
                )
        else:
            # A baseline and one path for every bar: a tenth of the bytes of a rect each.
            parts.append(self._baseline)
            bars = [
                f"M{self._x[index]} {self.height - max(1.0, (self.height - 1) * count / top):.2f}"
                f"h{self._width}V{self.height}h-{self._width}Z"
                for index, count in enumerate(counts)
                if count
            ]
            if bars:
                parts.append(f'<path class="on" d="{"".join(bars)}"/>')
        parts.append("</svg>")
        return Markup("".join(parts))


class IssueRow(t.NamedTuple):
    """One row of the issues page, its text ready (a template call per value costs more
    than the value)."""

    group: Group
    title: str
    culprit: str
    last_seen_iso: str
    last_seen_exact: str
    last_seen_ago: str
    chart: Markup


def issue_rows(
    groups: t.Sequence[Group], charts: t.Sequence[Markup], now: datetime
) -> list[IssueRow]:
    return [
        IssueRow(
            group,
            shorten(group.title, 300),
            shorten(group.culprit or "", 300),
            group.last_seen.isoformat(),
            exact_time(group.last_seen),
            time_ago(group.last_seen, now),
            chart,
        )
        for group, chart in zip(groups, charts, strict=True)
    ]


@dataclasses.dataclass(frozen=True)
class TagBar:
    value: str
    count: int
    percent: float


@dataclasses.dataclass(frozen=True)
class TagDistribution:
    key: str
    unique_values: int
    total_values: int
    values: tuple[TagBar, ...]


def tag_distributions(summaries: t.Sequence[TagKeySummary]) -> list[TagDistribution]:
    """Each tag key's top values with their share of the events that carried the key."""
    shown = []
    for summary in summaries:
        total = max(summary.total_values, 1)
        shown.append(
            TagDistribution(
                key=shorten(summary.key, 200),
                unique_values=summary.unique_values,
                total_values=summary.total_values,
                values=tuple(
                    TagBar(
                        value=shorten(value.value, 200),
                        count=value.times_seen,
                        percent=round(min(100.0, 100.0 * value.times_seen / total), 1),
                    )
                    for value in summary.top_values
                ),
            )
        )
    return shown


def format_query(status: str | None, tags: t.Sequence[tuple[str, str]], text: str | None) -> str:
    """A ``query`` string that parses back to ``status``, ``tags`` and ``text`` (what the
    status tabs link to: the current search with another ``is:``)."""
    parts = [f"is:{status}"] if status else []
    parts += [f"{key}:{quote(value)}" for key, value in tags]
    if text:
        # Quoted whole: a word such as "a:b" must stay free text, as it was typed.
        parts.append(quote(text))
    return " ".join(parts)


# -- events -------------------------------------------------------------------------------


def pretty(value: object, depth: int = 0, indent: str = "") -> str:
    """A nested value as indented, JSON-like text: at most :data:`MAX_DEPTH` levels,
    :data:`MAX_ITEMS` entries per level and :data:`MAX_SHOWN` characters per string."""
    if isinstance(value, str):
        return _quoted(shorten(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, (t.Mapping, list, tuple)):
        return _quoted(shorten(repr(value), 200))
    if depth >= MAX_DEPTH:
        return "…"
    inner = indent + "  "
    if isinstance(value, t.Mapping):
        items = [
            f"{inner}{_quoted(shorten(key, 200))}: {pretty(item, depth + 1, inner)}"
            for key, item in list(value.items())[:MAX_ITEMS]
        ]
        more = len(value) - MAX_ITEMS
        open_, close = "{", "}"
    else:
        items = [f"{inner}{pretty(item, depth + 1, inner)}" for item in list(value)[:MAX_ITEMS]]
        more = len(value) - MAX_ITEMS
        open_, close = "[", "]"
    if more > 0:
        items.append(f"{inner}… {more} more")
    if not items:
        return open_ + close
    return open_ + "\n" + ",\n".join(items) + "\n" + indent + close


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _text(value: object, limit: int = MAX_SHOWN) -> str | None:
    """A string field as text (numbers too), None for anything else."""
    if isinstance(value, str):
        return shorten(value, limit)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _mapping(value: object) -> t.Mapping[str, t.Any]:
    return value if isinstance(value, t.Mapping) else {}


def _list(value: object, limit: int) -> list[t.Any]:
    return list(value)[:limit] if isinstance(value, (list, tuple)) else []


@dataclasses.dataclass(frozen=True)
class Frame:
    filename: str | None
    function: str | None
    module: str | None
    lineno: str | None
    #: The line number of the first context line, when the frame's line number is known.
    context_start: int | None
    in_app: bool
    context_line: str | None
    pre_context: tuple[str, ...]
    post_context: tuple[str, ...]
    #: Local variables: (name, value as indented text).
    variables: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class ExceptionInfo:
    type: str
    value: str | None
    module: str | None
    mechanism: str | None
    #: Innermost (most recent call) first, as Sentry shows them.
    frames: tuple[Frame, ...]
    frames_omitted: bool


@dataclasses.dataclass(frozen=True)
class Crumb:
    timestamp: str | None
    category: str | None
    level: str | None
    message: str | None
    data: str | None


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    method: str | None
    #: Shown as text, never as a link: an event's URL may be ``javascript:``.
    url: str | None
    query_string: str | None
    headers: tuple[tuple[str, str], ...]
    data: str | None
    other: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class EventView:
    message: str | None
    exceptions: tuple[ExceptionInfo, ...]
    breadcrumbs: tuple[Crumb, ...]
    request: RequestInfo | None
    tags: tuple[tuple[str, str], ...]
    #: Other parts of the event (user, extra, contexts, sdk, ...): (name, indented text).
    details: tuple[tuple[str, str], ...]


def _frame(raw: object) -> Frame | None:
    frame = _mapping(raw)
    if not frame:
        return None
    variables = _mapping(frame.get("vars"))
    lineno = frame.get("lineno")
    raw_pre = frame.get("pre_context")
    # The lines nearest the frame's line are the last ones.
    nearest = list(raw_pre)[-20:] if isinstance(raw_pre, (list, tuple)) else []
    pre_context = tuple(_text(line, 500) or "" for line in nearest)
    return Frame(
        filename=_text(frame.get("filename"), 500) or _text(frame.get("abs_path"), 500),
        function=_text(frame.get("function"), 500),
        module=_text(frame.get("module"), 500),
        lineno=_text(lineno),
        context_start=(
            max(lineno - len(pre_context), 1)
            if isinstance(lineno, int) and not isinstance(lineno, bool) and 0 < lineno < 2**31
            else None
        ),
        in_app=frame.get("in_app") is True,
        context_line=_text(frame.get("context_line"), 500),
        pre_context=pre_context,
        post_context=tuple(_text(line, 500) or "" for line in _list(frame.get("post_context"), 20)),
        variables=tuple(
            (shorten(name, 200), pretty(value, 1))
            for name, value in list(variables.items())[:MAX_ITEMS]
        ),
    )


def _frames(stacktrace: object) -> tuple[tuple[Frame, ...], bool]:
    body = _mapping(stacktrace)
    raw_frames = body.get("frames")
    if not isinstance(raw_frames, (list, tuple)):
        return (), False
    # Stored oldest call first (as SDKs send them); shown most recent call first.
    frames = [frame for frame in map(_frame, raw_frames[-MAX_FRAMES:]) if frame is not None]
    frames.reverse()
    return tuple(frames), bool(body.get("framesOmitted")) or len(raw_frames) > MAX_FRAMES


def _exceptions(entry: t.Mapping[str, t.Any]) -> list[ExceptionInfo]:
    found = []
    for raw in _list(_mapping(entry).get("values"), 50):
        exc = _mapping(raw)
        if not exc:
            continue
        frames, omitted = _frames(exc.get("stacktrace"))
        mechanism = _mapping(exc.get("mechanism"))
        found.append(
            ExceptionInfo(
                type=_text(exc.get("type"), 500) or "Error",
                value=_text(exc.get("value")),
                module=_text(exc.get("module"), 500),
                mechanism=_text(mechanism.get("type"), 200),
                frames=frames,
                frames_omitted=omitted,
            )
        )
    # Stored causes first; the exception that was raised last is the one shown first.
    found.reverse()
    return found


def _thread_stacks(entry: t.Mapping[str, t.Any]) -> list[ExceptionInfo]:
    stacks = []
    for raw in _list(_mapping(entry).get("values"), 50):
        thread = _mapping(raw)
        frames, omitted = _frames(thread.get("stacktrace"))
        if not frames:
            continue
        name = _text(thread.get("name"), 200) or _text(thread.get("id"), 200) or "?"
        state = "crashed" if thread.get("crashed") is True else None
        stacks.append(ExceptionInfo(f"Thread {name}", state, None, None, frames, omitted))
    return stacks


def _crumbs(entry: t.Mapping[str, t.Any]) -> list[Crumb]:
    crumbs = []
    for raw in _list(_mapping(entry).get("values"), 10_000)[-MAX_CRUMBS:]:
        crumb = _mapping(raw)
        if not crumb:
            continue
        data = crumb.get("data")
        crumbs.append(
            Crumb(
                timestamp=_text(crumb.get("timestamp"), 64),
                category=_text(crumb.get("category"), 200),
                level=_text(crumb.get("level"), 32),
                message=_text(crumb.get("message")),
                data=pretty(data) if data not in (None, {}, []) else None,
            )
        )
    return crumbs


def _request(entry: t.Mapping[str, t.Any]) -> RequestInfo:
    body = _mapping(entry)
    headers = []
    for pair in _list(body.get("headers"), MAX_ITEMS):
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            headers.append((shorten(str(pair[0]), 200), shorten(str(pair[1]), 500)))
    query = body.get("query_string")
    data = body.get("data")
    other = [
        (name, pretty(body[name]))
        for name in ("cookies", "env", "fragment")
        if body.get(name) not in (None, {}, [], "")
    ]
    return RequestInfo(
        method=_text(body.get("method"), 16),
        url=_text(body.get("url")),
        query_string=_text(query) if isinstance(query, str) else (pretty(query) if query else None),
        headers=tuple(headers),
        data=pretty(data) if data not in (None, {}, [], "") else None,
        other=tuple(other),
    )


def _message(entry: t.Mapping[str, t.Any]) -> str | None:
    body = _mapping(entry)
    return _text(body.get("formatted")) or _text(body.get("message"))


def event_view(event: Event) -> EventView:
    """What the issue page shows of ``event``."""
    data = _mapping(event.data)
    message: str | None = None
    exceptions: list[ExceptionInfo] = []
    crumbs: list[Crumb] = []
    request: RequestInfo | None = None
    for raw in _list(data.get("entries"), 100):
        entry = _mapping(raw)
        kind, body = entry.get("type"), _mapping(entry.get("data"))
        if kind == "message" and message is None:
            message = _message(body)
        elif kind == "exception":
            exceptions += _exceptions(body)
        elif kind == "stacktrace" and not exceptions:
            frames, omitted = _frames(body)
            exceptions.append(ExceptionInfo("Stack trace", None, None, None, frames, omitted))
        elif kind == "threads" and not exceptions:
            # sentry-sdk's attach_stacktrace: a message's stack comes as its thread's.
            exceptions += _thread_stacks(body)
        elif kind == "breadcrumbs":
            crumbs += _crumbs(body)
        elif kind == "request" and request is None:
            request = _request(body)
    details = [
        (name, pretty(value))
        for name, value in (
            ("user", event.user),
            ("extra", data.get("extra")),
            ("contexts", data.get("contexts")),
            ("sdk", data.get("sdk")),
            ("fingerprint", data.get("fingerprint")),
        )
        if value not in (None, {}, [])
    ]
    return EventView(
        # An error's message repeats its exception; a message alone is shown.
        message=message if message is not None or exceptions else (_text(event.message) or None),
        exceptions=tuple(exceptions),
        breadcrumbs=tuple(crumbs),
        request=request,
        tags=tuple((shorten(key, 200), shorten(value, 500)) for key, value in event.tags[:200]),
        details=tuple(details),
    )
