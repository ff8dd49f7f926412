"""Fill a project with realistic demo groups and events, fast: ``flask sentry-api seed-demo``.

:func:`seed_demo` is the entry point. The values come from :class:`DemoGenerator`: pure
(no Flask, no database) and deterministic for a seed. How they are stored depends on the
storage:

* A storage with a ``bulk_seed`` method (the SQL storage:
  :meth:`~flask_sentry_api.sqlalchemy_storage.SQLAlchemyStorage.bulk_seed`) is handed the
  generated groups in chunks of about :data:`CHUNK_ROWS` events and stores each chunk in
  one transaction, deriving every rollup (tag values, stats buckets, releases) as
  ingestion would have.
* Any other storage gets one :meth:`~flask_sentry_api.storage.Storage.save_event` per
  event, then a status change per group: slow, but correct by construction.

Group hashes and event ids are derived from the seed and the largest group id the project
had before the run, so running again on the same project adds new groups instead of
clashing. Group ids grow with first_seen, as in a live project.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import random
import time
import typing as t
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta

from . import storage as s
from .pagination import Window
from .storage import UTC

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Events of one group are staged and copied in one chunk, so this bounds memory per chunk.
MAX_EVENTS_PER_GROUP = 100_000
#: Events (or, without events, groups) staged per chunk; each chunk is one transaction.
CHUNK_ROWS = 20_000

#: How far back timestamps reach from ``now``.
WINDOW_SECONDS = 28 * 86400
#: Share of groups whose last_seen is the very same instant as other groups' of their block.
TIE_SHARE = 0.15
#: Groups per block of tied last_seen values (a few hundred groups give several ties).
TIE_BLOCK = 40

#: Every tag key an event may carry, in the order ingestion derives them.
TAG_KEYS = ("level", "logger", "server_name", "release", "environment", "user", "browser", "os")

_STATUSES = (("unresolved", 0.70), ("resolved", 0.88), ("muted", 1.0))
_ENVIRONMENTS = (("production", 0.75), ("staging", 0.93), ("development", 1.0))
_RELEASES_PER_APP = 12
_USER_POOL = 20_000
_SERVERS = tuple(f"web-{n:02d}" for n in range(1, 13)) + tuple(
    f"worker-{n:02d}" for n in range(1, 7)
)
_BROWSERS = (
    ("Chrome", "131.0"),
    ("Chrome", "130.0"),
    ("Firefox", "133.0"),
    ("Safari", "18.1"),
    ("Mobile Safari", "18.1"),
    ("Edge", "131.0"),
    ("Chrome Mobile", "131.0"),
)
_OSES = (
    ("Windows", "10"),
    ("Windows", "11"),
    ("Mac OS X", "10.15.7"),
    ("iOS", "18.1"),
    ("Android", "14"),
    ("Linux", None),
)
_WORDS = (
    "sku",
    "user_id",
    "price",
    "quantity",
    "token",
    "email",
    "address",
    "coupon",
    "order_id",
    "currency",
    "items",
    "session",
    "cart",
    "invoice",
    "tenant",
    "locale",
)
_HOSTS = ("payments.example.net", "api.stripe.com", "search.internal", "s3.amazonaws.com")


@dataclasses.dataclass(frozen=True)
class _Template:
    """One kind of issue: an exception (``exc_type`` set) or a log message."""

    platform: str
    exc_type: str | None
    text: str  # formatted with word, n and host
    module: str
    function: str
    filename: str
    logger: str | None
    transaction: str


_PY = "python"
_JS = "javascript"
_TEMPLATES = (
    _Template(_PY, "KeyError", "'{word}'", "shop.views", "checkout", "shop/views.py",
              "django.request", "/checkout/"),
    _Template(_PY, "ValueError", "invalid literal for int() with base 10: '{word}'",
              "shop.forms", "clean_quantity", "shop/forms.py", "django.request", "/cart/"),
    _Template(_PY, "TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType'",
              "billing.invoices", "total", "billing/invoices.py", "celery.worker",
              "billing.tasks.send_invoice"),
    _Template(_PY, "AttributeError", "'NoneType' object has no attribute '{word}'",
              "accounts.views", "profile", "accounts/views.py", "django.request",
              "/account/profile/"),
    _Template(_PY, "ZeroDivisionError", "division by zero", "reports.metrics",
              "conversion_rate", "reports/metrics.py", "celery.worker",
              "reports.tasks.nightly"),
    _Template(_PY, "ConnectionError",
              "HTTPSConnectionPool(host='{host}', port=443): Max retries exceeded",
              "payments.gateway", "charge", "payments/gateway.py", "payments",
              "/api/orders/{n}/pay/"),
    _Template(_PY, "OperationalError", "could not connect to server: Connection refused",
              "django.db.backends.utils", "_execute", "django/db/backends/utils.py",
              "django.db.backends", "/api/products/"),
    _Template(_PY, "IntegrityError",
              'duplicate key value violates unique constraint "{word}_pkey"',
              "orders.models", "save", "orders/models.py", "django.request", "/api/orders/"),
    _Template(_PY, "ReadTimeout", "HTTPSConnectionPool(host='{host}', port=443): Read timed "
              "out. (read timeout={n})", "search.client", "query", "search/client.py",
              "search", "/search/"),
    _Template(_PY, "PermissionError", "[Errno 13] Permission denied: '/var/data/{word}.csv'",
              "reports.export", "write_csv", "reports/export.py", "celery.worker",
              "reports.tasks.export"),
    _Template(_PY, "RecursionError", "maximum recursion depth exceeded",
              "catalog.tree", "walk", "catalog/tree.py", "django.request", "/catalog/"),
    _Template(_PY, "ValidationError", "['Enter a valid {word}.']", "accounts.forms",
              "clean", "accounts/forms.py", "django.request", "/signup/"),
    _Template(_JS, "TypeError", "Cannot read properties of undefined (reading '{word}')",
              "app/components/Cart", "render", "webpack:///./src/components/Cart.tsx",
              None, "/cart"),
    _Template(_JS, "ReferenceError", "{word} is not defined", "app/pages/Checkout",
              "handleSubmit", "webpack:///./src/pages/Checkout.tsx", None, "/checkout"),
    _Template(_JS, "ChunkLoadError", "Loading chunk {n} failed.", "app/router",
              "loadRoute", "webpack:///./src/router.ts", None, "/products/:id"),
    _Template(_JS, "Error", "Request failed with status code {n}", "app/api/client",
              "fetchJSON", "webpack:///./src/api/client.ts", None, "/orders"),
    _Template(_JS, "RangeError", "Maximum call stack size exceeded", "app/store/session",
              "subscribe", "webpack:///./src/store/session.ts", None, "/account"),
    _Template(_JS, "SyntaxError", "Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
              "app/api/client", "parseBody", "webpack:///./src/api/client.ts", None,
              "/search"),
    _Template(_PY, None, "Payment provider returned status {n} for order {word}",
              "payments.gateway", "charge", "payments/gateway.py", "payments",
              "/api/orders/{n}/pay/"),
    _Template(_PY, None, "Slow query: {n} ms on {word}", "catalog.search", "search",
              "catalog/search.py", "django.db.backends", "/search/"),
    _Template(_PY, None, "Retrying job sync_{word} (attempt {n})", "inventory.sync",
              "sync_stock", "inventory/sync.py", "celery.worker", "inventory.tasks.sync"),
    _Template(_PY, None, "Cache miss ratio above threshold on {host}", "core.cache",
              "get_many", "core/cache.py", "core.cache", "/"),
    _Template(_JS, None, "Hydration mismatch in {word} component", "app/components/Header",
              "hydrate", "webpack:///./src/components/Header.tsx", None, "/"),
)  # fmt: skip
_ERROR_LEVELS = (("error", 0.85), ("fatal", 1.0))
_MESSAGE_LEVELS = (("warning", 0.45), ("info", 0.75), ("debug", 0.9), ("error", 1.0))
_APPS = {_PY: "backend", _JS: "frontend"}
_SDKS = {
    _PY: {"name": "sentry.python", "version": "2.19.0"},
    _JS: {"name": "sentry.javascript.react", "version": "8.42.0"},
}

#: How json.dumps writes a str (ensure_ascii): the JSON below is built from pieces, because
#: serialising every event's dicts would cost more than storing them.
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _js(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _pick(table: tuple[tuple[str, float], ...], u: float) -> str:
    """The first entry whose cumulative share exceeds ``u`` (in [0, 1))."""
    for value, bound in table:
        if u < bound:
            return value
    return table[-1][0]


# Stand-ins that json.dumps passes through unchanged, replaced per group after serialising.
_TEXT, _URL, _LINENO, _COLNO = "@@text@@", "@@url@@", 987654321, 987654322


def _entries_pattern(tpl: _Template) -> str:
    """The JSON ``entries`` of an issue's events, shaped as ingestion normalises them."""
    frame = {
        "filename": tpl.filename,
        "abs_path": None,
        "module": tpl.module,
        "function": tpl.function,
        "lineno": _LINENO,
        "colno": None if tpl.platform == _PY else _COLNO,
        "in_app": True,
        "context_line": None,
        "pre_context": None,
        "post_context": None,
        "vars": None,
    }
    entries: list[dict[str, t.Any]] = []
    if tpl.exc_type is None:
        message = {"message": _TEXT, "params": None, "formatted": _TEXT}
        entries.append({"type": "message", "data": message})
    else:
        outer = dict(frame, module="runtime", function="dispatch", in_app=False, lineno=88)
        exception = {
            "type": tpl.exc_type,
            "value": _TEXT,
            "module": "builtins" if tpl.platform == _PY else None,
            "mechanism": None,
            "stacktrace": {"frames": [outer, frame], "framesOmitted": None},
        }
        entries.append(
            {"type": "exception", "data": {"values": [exception], "hasSystemFrames": True}}
        )
    if tpl.platform == _PY and tpl.transaction.startswith("/"):
        entries.append({"type": "request", "data": {"url": _URL, "method": "GET"}})
    return json.dumps(entries)


_ENTRIES = tuple(_entries_pattern(tpl) for tpl in _TEMPLATES)
_RELEASES = {
    platform: tuple(f"{app}@2.{k // 4}.{k % 4}" for k in range(_RELEASES_PER_APP))
    for platform, app in _APPS.items()
}
_BROWSER_TAGS = tuple(f"{name} {version}" for name, version in _BROWSERS)
_OS_TAGS = tuple(f"{name} {version}" if version else name for name, version in _OSES)


def _tag_json(key: str, value: str) -> str:
    return f", [{_quote(key)}, {_quote(value)}]"


_SERVER_TAGS = {name: _tag_json("server_name", name) for name in _SERVERS}
_RELEASE_TAGS = {name: _tag_json("release", name) for names in _RELEASES.values() for name in names}
_ENVIRONMENT_TAGS = {name: _tag_json("environment", name) for name, _ in _ENVIRONMENTS}
_BROWSER_OS_TAGS = {
    (b, o): _tag_json("browser", _BROWSER_TAGS[b]) + _tag_json("os", _OS_TAGS[o])
    for b in range(len(_BROWSERS))
    for o in range(len(_OSES))
}


def _contexts(b: int, o: int) -> dict[str, dict[str, str]]:
    if b < 0:
        return {}
    name, version = _OSES[o]
    return {
        "browser": {"name": _BROWSERS[b][0], "version": _BROWSERS[b][1]},
        "os": {"name": name, **({"version": version} if version else {})},
    }


_CONTEXTS = {
    (b, o): json.dumps(_contexts(b, o))
    for b in range(-1, len(_BROWSERS))
    for o in range(-1, len(_OSES))
}


@functools.lru_cache(maxsize=_USER_POOL)
def _user_json(uid: int) -> str:
    return json.dumps(_user(uid))


def _user(uid: int) -> dict[str, str]:
    return {"id": str(uid), "email": f"user{uid}@example.com"}


@dataclasses.dataclass(slots=True)
class DemoEvent:
    event_id: str
    datetime: datetime
    #: Microseconds since the Unix epoch of ``datetime`` (what bucket maths needs).
    epoch_us: int
    release: str | None
    environment: str
    server_name: str | None
    browser: str | None
    os: str | None
    user_id: int | None
    #: The event's ``data`` and ``tags`` as ingestion would store them, serialised.
    data_json: str
    tags_json: str

    @property
    def user(self) -> dict[str, str] | None:
        return None if self.user_id is None else _user(self.user_id)

    @property
    def user_json(self) -> str:
        return "null" if self.user_id is None else _user_json(self.user_id)

    @property
    def user_ident(self) -> str | None:
        """The ``user`` tag: what counts as one user of a group."""
        return None if self.user_id is None else f"id:{self.user_id}"

    def tags(self, group: DemoGroup) -> tuple[tuple[str, str], ...]:
        """Every tag of the event, derived ones first, as ingestion lists them."""
        values = (
            group.level,
            group.logger,
            self.server_name,
            self.release,
            self.environment,
            self.user_ident,
            self.browser,
            self.os,
        )
        return tuple((k, v) for k, v in zip(TAG_KEYS, values, strict=True) if v is not None)


@dataclasses.dataclass(slots=True)
class DemoGroup:
    """One generated group: its row's values and, unless generated without, its events."""

    index: int
    hash: str
    title: str
    message: str
    culprit: str
    logger: str | None
    level: str
    type: str
    metadata: dict[str, str]
    metadata_json: str
    platform: str
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    user_count: int
    status: str
    resolved_at: datetime | None
    is_public: bool
    is_bookmarked: bool
    has_seen: bool
    #: Oldest first; empty when the group was generated without events.
    events: list[DemoEvent]

    @property
    def score(self) -> int:
        return s.priority_score(self.times_seen, self.last_seen)


class DemoGenerator:
    """Deterministic demo groups: the same ``seed``, ``salt`` and ``now`` give the same values.

    :param salt: part of every group hash, event id and of the random stream, so runs with
        another salt (seed_demo uses the project's largest group id) neither clash nor
        repeat.
    :param now: timestamps fall in the :data:`WINDOW_SECONDS` before it.
    :param total: how many groups will be asked for (first_seen spreads over the window).
    """

    def __init__(self, seed: int, salt: int, now: datetime, total: int) -> None:
        self.rng = random.Random(f"flask-sentry-api demo {seed} {salt}")
        run = hashlib.md5(f"seed-demo:{seed}:{salt}".encode(), usedforsecurity=False)
        # Ids that grow with the index keep the unique indexes' inserts at their ends.
        self._hash_prefix = run.hexdigest()[:12]
        self._event_prefix = run.hexdigest()[12:20]
        self._events = 0
        self.now_us = _epoch_us(now)
        self.start_us = self.now_us - WINDOW_SECONDS * 1_000_000
        #: first_seen grows with the index, as group ids do in a live project (and as
        #: the time indexes like to be filled).
        self.slot_us = WINDOW_SECONDS * 1_000_000 / max(total, 1)
        self._tie_block = -1
        self._tie_us = 0

    def groups(self, count: int, events_per_group: int, first: int = 0) -> Iterator[DemoGroup]:
        """Groups ``first`` … ``first + count - 1`` (call with consecutive ranges only)."""
        for index in range(first, first + count):
            yield self._group(index, events_per_group)

    def _group(self, index: int, events: int) -> DemoGroup:
        r = self.rng.random
        t_index = int(r() * len(_TEMPLATES))
        tpl = _TEMPLATES[t_index]
        word, n = _WORDS[int(r() * len(_WORDS))], 2 + int(r() * 598)
        text = tpl.text.format(word=word, n=n, host=_HOSTS[int(r() * len(_HOSTS))])
        quoted = _quote(text)
        # Log messages name their logger; exceptions only when logged (logger.exception).
        logger = tpl.logger if tpl.exc_type is None or r() < 0.3 else None
        if tpl.exc_type is not None:
            title = f"{tpl.exc_type}: {text}"
            kind, level = "error", _pick(_ERROR_LEVELS, r())
            metadata = {"type": tpl.exc_type, "value": text}
            metadata_json = f'{{"type": {_quote(tpl.exc_type)}, "value": {quoted}}}'
        else:
            title = text
            kind, level = "default", _pick(_MESSAGE_LEVELS, r())
            metadata = {"title": title}
            metadata_json = f'{{"title": {quoted}}}'

        first_us = self.start_us + int((index + r()) * self.slot_us)
        last_us = first_us
        if events != 1:
            # Squared: most groups were seen shortly after they appeared, few until now.
            last_us += int((self.now_us - first_us) * r() ** 2)
        if r() < TIE_SHARE:
            if index // TIE_BLOCK != self._tie_block:
                # Whole seconds: tied groups share the cursor key and the exact instant.
                self._tie_block, self._tie_us = index // TIE_BLOCK, last_us // 10**6 * 10**6
            last_us = self._tie_us
            first_us = min(first_us, last_us)
        last_seen = _from_us(last_us)
        first_seen = last_seen if first_us == last_us else _from_us(first_us)

        event_list: list[DemoEvent] = []
        if events:
            times_seen = events
            users: set[int] = set()
            url = "https://shop.example.com" + tpl.transaction.replace("{n}", str(n))
            entries = (
                _ENTRIES[t_index]
                .replace(f'"{_TEXT}"', quoted)
                .replace(f'"{_URL}"', _quote(url))
                .replace(str(_LINENO), str(10 + n % 300))
                .replace(str(_COLNO), str(7 + n % 60))
            )
            data_head = f'{{"entries": {entries}, "extra": {{}}, "contexts": '
            data_mid = (
                f', "sdk": {json.dumps(_SDKS[tpl.platform])}, "fingerprint": null, '
                f'"metadata": {metadata_json}, "type": "{kind}", "server_name": '
            )
            data_tail = f', "transaction": {_quote(tpl.transaction)}, "modules": {{}}}}'
            tags_head = f'[["level", "{level}"]' + (_tag_json("logger", logger) if logger else "")
            moments = [first_us]
            if events > 1:
                span = last_us - first_us
                moments += sorted(first_us + int(r() * span) for _ in range(events - 2))
                moments.append(last_us)
            user_base, user_span = int(r() * _USER_POOL), 1 + int(r() ** 3 * 400)
            releases = _RELEASES[tpl.platform]
            period = WINDOW_SECONDS * 1_000_000 // _RELEASES_PER_APP
            is_python = tpl.platform == _PY
            for moment in moments:
                release = None
                if r() >= 0.06:
                    k = (moment - self.start_us) // period
                    if r() < 0.1:
                        k -= 1  # some hosts still run the previous deploy
                    release = releases[max(0, min(k, _RELEASES_PER_APP - 1))]
                environment = _pick(_ENVIRONMENTS, r())
                uid = None
                if r() < 0.85:
                    uid = (user_base + int(r() * user_span)) % _USER_POOL
                    users.add(uid)
                server_name = _SERVERS[int(r() * len(_SERVERS))] if is_python else None
                b = o = -1
                if not is_python or r() < 0.25:
                    b, o = int(r() * len(_BROWSERS)), int(r() * len(_OSES))
                tags_json = "".join(
                    (
                        tags_head,
                        _SERVER_TAGS[server_name] if server_name else "",
                        _RELEASE_TAGS[release] if release else "",
                        _ENVIRONMENT_TAGS[environment],
                        "" if uid is None else _tag_json("user", f"id:{uid}"),
                        _BROWSER_OS_TAGS[b, o] if b >= 0 else "",
                        "]",
                    )
                )
                self._events += 1
                event_list.append(
                    DemoEvent(
                        event_id=f"{self._event_prefix}{self._events:010x}"
                        f"{self.rng.getrandbits(56):014x}",
                        datetime=last_seen if moment == last_us else _from_us(moment),
                        epoch_us=moment,
                        release=release,
                        environment=environment,
                        server_name=server_name,
                        browser=_BROWSER_TAGS[b] if b >= 0 else None,
                        os=_OS_TAGS[o] if b >= 0 else None,
                        user_id=uid,
                        data_json="".join(
                            (data_head, _CONTEXTS[b, o], data_mid, _js(server_name), data_tail)
                        ),
                        tags_json=tags_json,
                    )
                )
            user_count = len(users)
        else:
            # No events to count: counters a real group of that age could have.
            times_seen = min(int(self.rng.paretovariate(0.8)), 50_000)
            user_count = min(times_seen, int(r() * times_seen * 0.4))

        status = _pick(_STATUSES, r())
        resolved_at = None
        if status == "resolved":
            delay = 60_000_000 + int(r() * 172_800_000_000)
            resolved_at = _from_us(min(last_us + delay, self.now_us))
        return DemoGroup(
            index=index,
            hash=f"{self._hash_prefix}{index:020x}",
            title=title,
            message=title,
            culprit=f"{tpl.module} in {tpl.function}",
            logger=logger,
            level=level,
            type=kind,
            metadata=metadata,
            metadata_json=metadata_json,
            platform=tpl.platform,
            status=status,
            resolved_at=resolved_at,
            is_public=r() < 0.02,
            is_bookmarked=r() < 0.03,
            has_seen=r() < 0.3,
            times_seen=times_seen,
            user_count=user_count,
            first_seen=first_seen,
            last_seen=last_seen,
            events=event_list,
        )


def _epoch_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(epoch_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=epoch_us)


# -- storing -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SeedResult:
    """What :func:`seed_demo` added, and how long it took (wall-clock seconds)."""

    project_id: int
    groups: int
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Groups stored per second."""
        return self.groups / self.seconds if self.seconds > 0 else math.inf


def seed_demo(
    storage: s.Storage,
    project_id: int,
    groups: int,
    events_per_group: int,
    *,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> SeedResult:
    """Add ``groups`` demo groups of ``events_per_group`` events each to a project.

    Call inside an app context. Every run adds new groups (hashes never clash with earlier
    runs'), each with exactly ``events_per_group`` events; chunks are committed as they
    are stored. ``progress`` is called with the number of groups just stored. Values are
    a pure function of ``seed``, ``groups``, ``events_per_group``, ``now`` (default: the
    current hour, so repeated runs within an hour match) and the project's largest group
    id before the run. A storage with a ``bulk_seed`` method stores the groups in chunks
    through it (see the module docstring); any other gets one ``save_event`` per event.

    With ``events_per_group`` 0 only group rows are written, with made-up counters
    (``times_seen``, ``user_count``, first/last seen): no events, tag values, stats or
    releases back them. That needs a storage with ``bulk_seed``.

    :raises LookupError: no such project.
    :raises ValueError: a count is out of range.
    """
    if groups < 1:
        raise ValueError("groups must be at least 1")
    if not 0 <= events_per_group <= MAX_EVENTS_PER_GROUP:
        raise ValueError(f"events_per_group must be between 0 and {MAX_EVENTS_PER_GROUP}")
    if storage.get_project(project_id) is None:
        raise LookupError(f"no project with id {project_id}")
    if now is None:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    report = progress or (lambda done: None)
    started = time.perf_counter()
    bulk_seed = getattr(storage, "bulk_seed", None)
    if bulk_seed is not None:
        bulk_seed(project_id, _chunks(groups, events_per_group, seed, now), progress=report)
    else:
        if events_per_group == 0:
            raise ValueError("events_per_group 0 needs the SQLAlchemy storage")
        _seed_each(storage, project_id, groups, events_per_group, seed, now, report)
    return SeedResult(
        project_id=project_id,
        groups=groups,
        events=groups * events_per_group,
        seconds=time.perf_counter() - started,
    )


def _chunks(
    groups: int, events_per_group: int, seed: int, now: datetime
) -> Callable[[int], Iterable[list[DemoGroup]]]:
    """What ``bulk_seed`` is handed: given the salt (the project's largest group id), the
    groups in chunks of about :data:`CHUNK_ROWS` events (or groups, without events),
    generated lazily."""
    per_chunk = max(1, CHUNK_ROWS // max(events_per_group, 1))

    def chunks(salt: int) -> Iterator[list[DemoGroup]]:
        generator = DemoGenerator(seed, salt, now, groups)
        for done in range(0, groups, per_chunk):
            yield list(generator.groups(min(per_chunk, groups - done), events_per_group, done))

    return chunks


# -- any storage: one save_event per event -----------------------------------------------------


def _seed_each(
    storage: s.Storage,
    project_id: int,
    groups: int,
    events_per_group: int,
    seed: int,
    now: datetime,
    report: Callable[[int], None],
) -> None:
    everything = Window(op=None, value=0, descending=True, offset=0, limit=2**31 - 1)
    existing = storage.list_groups(project_id, s.GroupQuery(), everything)
    salt = max((group.id for group in existing), default=0)
    for group in DemoGenerator(seed, salt, now, groups).groups(groups, events_per_group):
        group_id = None
        for event in group.events:
            saved = storage.save_event(
                project_id,
                s.NewEvent(
                    event_id=event.event_id,
                    group_hash=group.hash,
                    timestamp=event.datetime,
                    message=group.message,
                    title=group.title,
                    level=group.level,
                    culprit=group.culprit,
                    logger=group.logger,
                    platform=group.platform,
                    type=group.type,
                    metadata=group.metadata,
                    release=event.release,
                    environment=event.environment,
                    user=event.user,
                    user_ident=event.user_ident,
                    tags=event.tags(group),
                    data=json.loads(event.data_json),
                ),
            )
            group_id = saved.group.id
        assert group_id is not None
        changes = s.GroupChanges(
            status=None if group.status == "unresolved" else group.status,
            is_public=group.is_public or None,
            is_bookmarked=group.is_bookmarked or None,
            has_seen=group.has_seen or None,
        )
        if not changes.is_empty():
            storage.update_groups(project_id, s.GroupQuery(ids=(group_id,)), changes)
        report(1)
