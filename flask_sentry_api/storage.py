"""The storage interface the views depend on, and the records it trades in.

Nothing here imports Flask or SQLAlchemy. A host can hand :class:`~flask_sentry_api.SentryAPI`
any object that satisfies :class:`Storage`; :mod:`flask_sentry_api.testing` holds the
contract suite such an object must pass. Records are frozen dataclasses so views can never
write through them by accident.

List methods take a :class:`~flask_sentry_api.pagination.Window` (a keyset read: a bound on
the sort key, a direction, an offset and a row limit) and return at most ``window.limit``
rows; :func:`~flask_sentry_api.pagination.paginate` turns those reads into pages and cursors.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import typing as t
import unicodedata
from datetime import datetime
from datetime import timezone

if t.TYPE_CHECKING:
    from .pagination import Window

#: Key role bits, as in Sentry's ``ProjectKey.roles`` bit field.
ROLE_STORE = 1  # "Event API access": SDKs may post events
ROLE_API = 2  # "Web API access": may call /api/0/
ROLE_NAMES: dict[str, int] = {"store": ROLE_STORE, "api": ROLE_API}
#: Auth-token scopes, Sentry's names (SPEC §10).
SCOPES = (
    "project:read",
    "project:write",
    "project:admin",
    "project:releases",
    "event:read",
    "event:write",
    "event:admin",
    "org:read",
)

UTC = timezone.utc

#: Group statuses as the API spells them (``ignored`` is read as ``muted``).
GROUP_STATUSES = ("unresolved", "resolved", "muted")
#: What :meth:`Storage.update_project` may change.
PROJECT_FIELDS = ("name", "slug", "is_public", "allowed_origins")
#: Group orders (always descending) and the :class:`Group` attribute behind each; the first
#: is the default, and anything unknown sorts like it.
SORT_ATTRIBUTES: dict[str, str] = {
    "date": "last_seen",
    "new": "first_seen",
    "freq": "times_seen",
    "priority": "score",
}
GROUP_SORTS = tuple(SORT_ATTRIBUTES)
LEVELS = ("debug", "info", "warning", "error", "fatal")
#: Stats bucket sizes by their ``resolution`` name; event counts are rolled up in each at
#: ingestion time.
RESOLUTIONS: dict[str, int] = {"10s": 10, "1h": 3600, "1d": 86400}
STAT_RESOLUTIONS = tuple(RESOLUTIONS.values())
#: The largest id a storage holds (ids are signed 64-bit); larger ids name nothing.
MAX_ID = 2**63 - 1
#: Longest project slug.
MAX_SLUG_LENGTH = 50
#: Longest release ``ref`` and ``url``, and token label (Sentry's column sizes).
MAX_RELEASE_REF = 250
MAX_RELEASE_URL = 200
MAX_TOKEN_LABEL = 255

#: Longest release version (Sentry's ``MAX_VERSION_LENGTH``), in characters.
MAX_RELEASE_VERSION = 200
#: Release versions Sentry reserves (``latest`` in any case): they name routes, not releases.
RESERVED_RELEASE_VERSIONS = (".", "..", "latest")
#: A valid release version as one JSON Schema / Python pattern (matched whole): no control
#: character (C0 or DEL), slash or backslash; no whitespace at either end; 1 to 200
#: characters; not a reserved name. Spaces inside are allowed (``my app 1.0``).
RELEASE_VERSION_PATTERN = (
    r"^(?!(?:\.|\.\.|[lL][aA][tT][eE][sS][tT])$)"
    r"[^\s/\\\x00-\x1f\x7f](?:[^/\\\x00-\x1f\x7f]{0,198}[^\s/\\\x00-\x1f\x7f])?$"
)
_RELEASE_VERSION_RE = re.compile(RELEASE_VERSION_PATTERN)


def is_valid_release_version(text: str) -> bool:
    """Whether ``text`` may name a release, on every path that creates one (the web API and
    ingestion), so that every stored release is reachable at ``.../releases/<version>/``.

    Sentry's rule (Relay's ``validate_release``, sentry's ``Release.is_valid_version``):
    at most 200 characters; none of ``\\r \\n \\t \\f / \\\\`` (Relay refuses every C0
    control character and DEL, and so does this); not ``.``, ``..`` or ``latest`` in any
    case. Sentry trims surrounding whitespace before checking (DRF on the API, Relay on
    events) and stores the trimmed version; here the stored form is the rule: a version
    with whitespace at either end, or only whitespace, is not valid (ingestion trims first).
    """
    return _RELEASE_VERSION_RE.fullmatch(text) is not None


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (what every stored timestamp is)."""
    return datetime.now(UTC)


def slugify(name: str) -> str:
    """A project slug from its name: lowercase ASCII letters, digits, ``-`` and ``_``, at
    most :data:`MAX_SLUG_LENGTH` characters; ``project`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_name.lower()).strip("-_")
    return slug[:MAX_SLUG_LENGTH] or "project"


class StorageError(Exception):
    """Root of the errors a storage raises on purpose."""


class Conflict(StorageError):
    """A unique value is taken (``field`` names it, e.g. ``"slug"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Unavailable(StorageError):
    """The backing store cannot be reached; the API answers 503."""


@dataclasses.dataclass(frozen=True)
class Project:
    id: int
    slug: str
    name: str
    is_public: bool
    date_created: datetime
    status: str = "active"
    #: Origins browser SDKs may post from (``*`` allows any).
    allowed_origins: tuple[str, ...] = ("*",)


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``count`` events (or requests) per ``window`` seconds: Sentry's key option
    ``rateLimit``, and the form of ``SENTRY_API_*RATE_LIMIT`` settings (``"N/SECONDS"``)."""

    count: int
    window: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.window < 1:
            raise ValueError("a rate limit needs a count and a window of at least 1")

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"N/SECONDS"`` as a limit; ``"0"`` (no limit) as None.

        :raises ValueError: anything else.
        """
        text = text.strip()
        if text == "0":
            return None
        count, slash, window = text.partition("/")
        if not (slash and _is_digits(count) and _is_digits(window)):
            raise ValueError(f"expected N/SECONDS (e.g. 6000/60) or 0, got {text[:40]!r}")
        return cls(int(count), int(window))

    def __str__(self) -> str:
        return f"{self.count}/{self.window}"


def _is_digits(text: str) -> bool:
    # isdecimal() alone accepts other scripts' digits; int() would too, a config file not.
    return text.isascii() and text.isdecimal() and len(text) <= 9


@dataclasses.dataclass(frozen=True)
class ProjectKey:
    """A project key (a DSN's credentials): what the storage's ``get_key`` and a host's key
    lookup (``SENTRY_API_KEY_LOOKUP``) return.

    - ``id``: the key's own id (the storage's row id; a host may use any integer). Only
      shown, never used to authenticate.
    - ``project_id``: the project the key belongs to. It must be a project the storage
      has: a key naming another one is answered like an unknown key (401).
    - ``public_key``: what clients send (DSN user, ``sentry_key``, Basic-auth username).
      The storage's keys are 32 lower-case hex digits; a host's may be any
      :data:`~flask_sentry_api.ingest.auth.PUBLIC_KEY_PATTERN` token.
    - ``secret_key``: Basic auth's password for the web API; checked on ingestion only
      when the SDK sends one (a legacy DSN). Compared in constant time.
    - ``roles``: bit field, :data:`ROLE_STORE` (1, SDKs may send events) and/or
      :data:`ROLE_API` (2, may call ``/api/0/``).
    - ``is_active``: False disables the key (401 ``Key is disabled``).
    - ``date_added``: an aware datetime, shown as the key's ``dateCreated``.
    - ``label``: an optional name (shown as ``Default`` when None).
    - ``rate_limit``: the key's own ingestion limit, or None for the app's
      ``SENTRY_API_INGEST_RATE_LIMIT``.
    """

    id: int
    project_id: int
    public_key: str
    secret_key: str
    roles: int
    is_active: bool
    date_added: datetime
    label: str | None = None
    #: The key's own ingestion limit; None means ``SENTRY_API_INGEST_RATE_LIMIT``.
    rate_limit: RateLimit | None = None

    def has_role(self, role: int) -> bool:
        return bool(self.roles & role)

    @property
    def role_names(self) -> list[str]:
        return [name for name, bit in ROLE_NAMES.items() if self.roles & bit]


@dataclasses.dataclass(frozen=True)
class Group:
    id: int
    project_id: int
    hash: str
    title: str
    culprit: str | None
    message: str
    logger: str | None
    level: str
    type: str
    metadata: t.Mapping[str, t.Any]
    platform: str | None
    status: str
    is_public: bool
    is_bookmarked: bool
    has_seen: bool
    times_seen: int
    user_count: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    num_comments: int
    score: int


@dataclasses.dataclass(frozen=True)
class Event:
    id: int
    project_id: int
    group_id: int
    event_id: str
    message: str
    title: str
    culprit: str | None
    level: str
    logger: str | None
    platform: str | None
    # Sentry's name for when the event happened; it hides the type inside the class body.
    datetime: dt.datetime
    date_received: dt.datetime
    release: str | None
    environment: str | None
    user: t.Mapping[str, t.Any] | None
    tags: tuple[tuple[str, str], ...]
    #: Everything else the SDK sent, normalised: ``entries``, ``extra``, ``contexts``,
    #: ``sdk``, ``fingerprint``, ``metadata``, ``type``.
    data: t.Mapping[str, t.Any]


@dataclasses.dataclass(frozen=True)
class Note:
    id: int
    group_id: int
    text: str
    date_created: datetime


@dataclasses.dataclass(frozen=True)
class Release:
    id: int
    project_id: int
    version: str
    date_created: datetime
    first_event: datetime | None
    last_event: datetime | None
    #: Groups whose first event carried this release.
    new_groups: int
    #: The commit (``ref``) and URL a deploy tool recorded, when the release went out
    #: (``finalize``) and when its deploy started.
    ref: str | None = None
    url: str | None = None
    date_released: datetime | None = None
    date_started: datetime | None = None


@dataclasses.dataclass(frozen=True)
class ReleaseChanges:
    """Release details set at creation or by an update; ``None`` leaves a field alone.

    Callers keep ``ref`` within 250 characters and ``url`` within 200 (Sentry's limits, the
    SQL storage's columns); datetimes must be aware.
    """

    ref: str | None = None
    url: str | None = None
    date_released: datetime | None = None
    date_started: datetime | None = None


@dataclasses.dataclass(frozen=True)
class AuthToken:
    """A stored auth token: only its hash is kept, with the project and scopes it grants."""

    id: int
    project_id: int
    #: SHA-256 of the token, hex (:func:`flask_sentry_api.tokens.hash_token`).
    token_hash: str
    scopes: tuple[str, ...]
    date_created: datetime
    label: str | None = None
    #: The token's last four characters, so a listed token can be recognised.
    last_characters: str = ""


@dataclasses.dataclass(frozen=True)
class TagValue:
    """How often one tag value was seen (in a project, or in one group)."""

    id: int
    key: str
    value: str
    times_seen: int
    first_seen: datetime
    last_seen: datetime


@dataclasses.dataclass(frozen=True)
class TagKeySummary:
    """One tag key of a group: distinct values, events counted, and the top values."""

    key: str
    unique_values: int
    total_values: int
    top_values: tuple[TagValue, ...]


@dataclasses.dataclass(frozen=True)
class NewEvent:
    """An event as ingestion (or a test) hands it to :meth:`Storage.save_event`."""

    event_id: str
    group_hash: str
    timestamp: datetime
    message: str
    title: str
    level: str = "error"
    culprit: str | None = None
    logger: str | None = None
    platform: str | None = None
    type: str = "default"
    metadata: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)
    release: str | None = None
    environment: str | None = None
    user: t.Mapping[str, t.Any] | None = None
    #: The identity that counts towards a group's ``userCount`` (``id:42``, ``ip:…``).
    user_ident: str | None = None
    #: Every tag of the event, the derived ones (level, logger, release, ...) included.
    tags: tuple[tuple[str, str], ...] = ()
    data: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SavedEvent:
    event: Event
    group: Group
    #: False when the ``event_id`` was already stored for the project (an SDK retry).
    created: bool
    is_new_group: bool
    is_regression: bool


@dataclasses.dataclass(frozen=True)
class GroupQuery:
    """Which groups of a project a list or bulk operation selects."""

    status: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    #: Matched case-insensitively as a substring of title, message or culprit.
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[int, ...] | None = None
    sort: str = "date"


@dataclasses.dataclass(frozen=True)
class GroupChanges:
    """A partial update of group flags; ``None`` leaves a field alone."""

    status: str | None = None
    is_public: bool | None = None
    is_bookmarked: bool | None = None
    has_seen: bool | None = None

    def is_empty(self) -> bool:
        return all(value is None for value in dataclasses.astuple(self))


def checked_scopes(scopes: t.Sequence[str]) -> tuple[str, ...]:
    """``scopes`` as a tuple, refusing what a storage could not give back as it was sent
    (the SQL storage keeps them space-joined)."""
    if isinstance(scopes, str):
        raise TypeError("scopes must be a sequence of scope names, not one string")
    for scope in scopes:
        if not scope or scope.split() != [scope]:
            raise ValueError(f"invalid scope {scope!r}: empty or with whitespace")
    return tuple(scopes)


def epoch_seconds(moment: datetime) -> int:
    """Whole Unix seconds of an aware datetime (the unit of cursor values)."""
    return math.floor(moment.timestamp())


def priority_score(times_seen: int, last_seen: datetime) -> int:
    """Sentry's group score: ``log(times_seen) * 600 + last_seen`` in seconds."""
    return int(math.log(max(times_seen, 1)) * 600 + last_seen.timestamp())


def group_sort_key(group: Group, sort: str) -> int:
    """The integer cursor key of ``group`` under ``sort``."""
    value = getattr(group, SORT_ATTRIBUTES.get(sort, "last_seen"))
    return epoch_seconds(value) if isinstance(value, datetime) else int(value)


@t.runtime_checkable
class Storage(t.Protocol):
    """What the API needs from a store. Ids are integers; datetimes are aware UTC."""

    def init_schema(self) -> None:
        """Create whatever the store needs that is missing (tables); idempotent."""
        ...

    # -- projects and keys -------------------------------------------------------------
    def create_project(self, name: str, slug: str | None = None) -> Project:
        """Create a project; ``slug`` defaults to a slugified, de-duplicated ``name``.

        Raises :class:`Conflict` (field ``slug``) when an explicit slug is taken.
        """

    def get_project(self, project_id: int) -> Project | None: ...

    def get_project_by_slug(self, slug: str) -> Project | None: ...

    def list_projects(self) -> list[Project]:
        """Every project, by id (a deployment has few: no window)."""
        ...

    def update_project(self, project_id: int, changes: t.Mapping[str, t.Any]) -> Project:
        """Apply ``name``/``slug``/``is_public``/``allowed_origins`` changes atomically
        (:class:`Conflict` when the slug is taken)."""

    def create_key(
        self,
        project_id: int,
        roles: int,
        label: str | None = None,
        rate_limit: RateLimit | None = None,
    ) -> ProjectKey:
        """Create a key with fresh 32-hex public and secret keys."""

    def get_key(self, public_key: str) -> ProjectKey | None: ...

    def list_keys(self, project_id: int) -> list[ProjectKey]:
        """The project's keys, oldest first."""
        ...

    def set_key_active(self, public_key: str, active: bool) -> bool:
        """Enable or disable a key; False when no such key exists."""

    def set_key_rate_limit(self, public_key: str, rate_limit: RateLimit | None) -> bool:
        """Set a key's ingestion limit (None: the app's default); False when no such key
        exists."""

    def delete_key(self, public_key: str) -> bool:
        """Delete a key: SDKs and API clients using it are refused from then on; False when
        no such key exists."""
        ...

    # -- groups and events ---------------------------------------------------------------
    def save_event(self, project_id: int, event: NewEvent) -> SavedEvent:
        """Store an event in the group its ``group_hash`` names, creating it if new.

        Updates the group's counters (``times_seen``, ``last_seen``, ``level``,
        ``culprit``, user count), reopens a resolved group (a regression) and records
        tag values, all in one transaction. An ``event_id`` already stored for the
        project returns the stored event with ``created=False`` and changes nothing.

        A storage may also store many events in one transaction: see
        :class:`BatchStorage` (optional; queue mode's workers use it when present, and
        call this method once per event otherwise).
        """

    def get_group(self, group_id: int) -> Group | None: ...

    def list_groups(self, project_id: int, query: GroupQuery, window: Window) -> list[Group]:
        """Groups of the project matching ``query``, read by ``query.sort``'s key."""

    def count_groups_with_key(self, project_id: int, query: GroupQuery, key: int) -> int:
        """How many groups matching ``query`` have exactly sort key ``key``."""

    def group_stats(
        self, group_ids: t.Sequence[int], resolution: int, start: int, end: int
    ) -> dict[int, dict[int, int]]:
        """Event counts per group per bucket, for buckets of ``resolution`` seconds
        (one of :data:`STAT_RESOLUTIONS`) whose start lies in ``[start, end]``; buckets
        without events are absent. One query for all the groups."""
        ...

    def update_groups(self, project_id: int, query: GroupQuery, changes: GroupChanges) -> int:
        """Apply ``changes`` to every selected group in one statement; returns how many
        groups matched. Resolving stamps ``resolved_at`` where it was not resolved,
        any other status clears it."""

    def merge_groups(self, project_id: int, group_ids: t.Sequence[int]) -> tuple[int, list[int]]:
        """Merge the groups into the one with most events; returns (parent, children)."""

    def delete_groups(self, project_id: int, group_ids: t.Sequence[int]) -> int:
        """Delete groups of the project with their events, notes and tag data."""

    def list_events(self, group_id: int, window: Window) -> list[Event]:
        """Events of a group keyed by row id (newest first when descending)."""

    def get_event(self, event_id: int) -> Event | None: ...

    def get_event_by_event_id(self, project_id: int, event_id: str) -> Event | None:
        """The project's event with the SDK's 32-hex ``event_id`` (lowercase)."""

    def list_project_events(self, project_id: int, window: Window) -> list[Event]:
        """Events of the project keyed by row id (newest first when descending)."""

    def latest_event(self, group_id: int) -> Event | None: ...

    def oldest_event(self, group_id: int) -> Event | None: ...

    def adjacent_events(self, event: Event) -> tuple[int | None, int | None]:
        """(previous, next) event row ids within the event's group, by time then id."""

    def list_notes(self, group_id: int, window: Window) -> list[Note]: ...

    def create_note(self, group_id: int, text: str) -> Note:
        """Add a note; :class:`LookupError` when the group is gone (even if it was deleted
        while the note was being written)."""

    # -- releases --------------------------------------------------------------------------
    def list_releases(self, project_id: int, window: Window) -> list[Release]:
        """Releases of the project keyed by row id (newest first when descending)."""
        ...

    def create_release(
        self, project_id: int, version: str, details: ReleaseChanges | None = None
    ) -> Release:
        """Create a release with ``details``; :class:`Conflict` (field ``version``) if it
        exists."""
        ...

    def update_release(
        self, project_id: int, version: str, changes: ReleaseChanges
    ) -> Release | None:
        """Apply the fields of ``changes`` that are not None; None when there is no such
        release."""
        ...

    def get_release(self, project_id: int, version: str) -> Release | None: ...

    def delete_release(self, project_id: int, version: str) -> bool:
        """Delete a release; False when there is none."""
        ...

    # -- tags ------------------------------------------------------------------------------
    def group_tag_keys(self, group_id: int, top: int) -> list[TagKeySummary]:
        """Every tag key of the group with its ``top`` most frequent values, read from
        the aggregates kept at ingestion (not by scanning events)."""
        ...

    def list_tag_values(
        self, project_id: int, key: str, window: Window, group_id: int | None = None
    ) -> list[TagValue]:
        """Values of a tag key in the project (or in one group), most seen first: keyed by
        ``times_seen``, ties by id."""
        ...

    def count_tag_values_with_key(
        self, project_id: int, key: str, times_seen: int, group_id: int | None = None
    ) -> int:
        """How many of those values were seen exactly ``times_seen`` times."""
        ...

    def delete_tag_key(self, project_id: int, key: str) -> bool:
        """Delete a tag key's values from the project and its groups; False if unknown."""
        ...

    # -- stats -----------------------------------------------------------------------------
    def project_stats(
        self, project_id: int, resolution: int, start: int, end: int
    ) -> dict[int, int]:
        """Event counts of the project per bucket, like :meth:`group_stats`."""
        ...


@t.runtime_checkable
class TokenStorage(t.Protocol):
    """What a storage adds to keep auth tokens (optional: without it, tokens come only from
    an injected ``token_lookup``)."""

    def create_token(
        self,
        project_id: int,
        token_hash: str,
        scopes: t.Sequence[str],
        *,
        label: str | None = None,
        last_characters: str = "",
    ) -> AuthToken:
        """Store a token's hash with its project and scopes (kept in the given order).

        Raises :class:`Conflict` (field ``token_hash``) when the hash is stored already, and
        :class:`ValueError` for a scope that is empty or holds whitespace (the SQL storage
        keeps them space-joined). Callers keep ``label`` within 255 characters and
        ``last_characters`` within 4 (the SQL storage's columns).
        """
        ...

    def get_token(self, token_hash: str) -> AuthToken | None:
        """The token with that hash, or None (unknown or revoked)."""
        ...

    def list_tokens(self, project_id: int | None = None) -> list[AuthToken]:
        """Tokens (of one project, or all), oldest first."""
        ...

    def delete_token(self, token_id: int) -> bool:
        """Revoke a token; False when there is none with that id."""
        ...


@t.runtime_checkable
class BatchStorage(t.Protocol):
    """What a storage adds to store many events in one transaction (optional).

    Queue mode's workers hand each batch of queued events to ``save_events`` when the
    storage has it; a storage without it (a custom storage written before it existed) still
    works: :func:`save_events` then calls :meth:`Storage.save_event` once per event.
    """

    def save_events(self, items: t.Sequence[tuple[int, NewEvent]]) -> list[SavedEvent | None]:
        """Store each ``(project_id, event)`` as :meth:`Storage.save_event` would, in order,
        in one transaction: one result per item, None where the project does not exist
        (that item is skipped, the others are stored).

        Counters, regressions, tag values, stats and releases end as the same
        ``save_event`` calls one by one would leave them, and the flags of each result
        (``created``, ``is_new_group``, ``is_regression``) are those calls' flags. An
        ``event_id`` stored before, or earlier in the same batch, gives ``created=False``
        and changes nothing. Each result's ``group`` is the group as the batch leaves it.
        On failure (e.g. :class:`Unavailable`) nothing of the batch is stored.
        """
        ...


def save_events(
    storage: Storage, items: t.Sequence[tuple[int, NewEvent]]
) -> list[SavedEvent | None]:
    """Store ``items`` with the storage's :meth:`BatchStorage.save_events`, or with one
    :meth:`Storage.save_event` per item when it has none (then each event is its own
    transaction, and a failure leaves the items before it stored)."""
    if isinstance(storage, BatchStorage):
        return storage.save_events(items)
    results: list[SavedEvent | None] = []
    for project_id, event in items:
        try:
            results.append(storage.save_event(project_id, event))
        except LookupError:  # the project is gone
            results.append(None)
    return results
