"""Marshmallow schemas: what the API emits (camelCase, string ids) and what it accepts.

Output schemas dump the storage records; request schemas validate partial PUT/POST bodies
(unknown fields are errors); query-argument schemas (:class:`QueryArgs`) declare each
endpoint's query string and load it into a value object. Field limits and descriptions are
written here once: the OpenAPI document and the OPTIONS answers are derived from them.
Request-scoped facts an output needs (the project, permalinks, stats) come through
:data:`SerializerContext`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import typing as t
from datetime import datetime

from marshmallow import EXCLUDE
from marshmallow import RAISE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import post_load
from marshmallow import utils
from marshmallow import validate
from marshmallow.experimental.context import Context

from . import errors
from .config import Settings
from .pagination import Cursor
from .pagination import parse_cursor
from .pagination import parse_page_size
from .search import MAX_QUERY_LENGTH
from .search import SORTS
from .search import STATS_PERIODS
from .search import parse_group_selection
from .search import parse_stats_period
from .search import parse_time_bound
from .stats import RESOLUTIONS
from .stats import requested_buckets
from .storage import GROUP_STATUSES
from .storage import LEVELS
from .storage import MAX_ID
from .storage import MAX_RELEASE_REF
from .storage import MAX_RELEASE_URL
from .storage import MAX_RELEASE_VERSION
from .storage import MAX_SLUG_LENGTH
from .storage import RELEASE_VERSION_PATTERN
from .storage import RESERVED_RELEASE_VERSIONS
from .storage import UTC
from .storage import GroupQuery
from .storage import ReleaseChanges
from .storage import epoch_seconds
from .storage import is_valid_release_version

JSONSchema = dict[str, t.Any]

# -- JSON Schema building blocks of the documentation (``metadata={"json_schema": ...}``) --

ID_PATTERN = r"^[0-9]+$"
#: What :func:`format_datetime` writes.
DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$"
#: A cursor the server accepts (the empty string is the first page). Value and offset are
#: bounded by digit count: at most 18 digits stays below 2**63, 9 below 2**31.
CURSOR_PATTERN = r"^([0-9]{1,18}(\.[0-9]{0,20})?:[0-9]{1,9}:[01])?$"
#: Tag keys an event can carry; any other key names nothing.
TAG_KEY_PATTERN = r"^[a-zA-Z0-9_.:-]{1,32}$"
#: Release versions appear in URLs (``releases/<version>/``): Sentry's rule, the one
#: ingestion applies too (:func:`~flask_sentry_api.storage.is_valid_release_version`).
VERSION_PATTERN = RELEASE_VERSION_PATTERN
RESERVED_VERSIONS = RESERVED_RELEASE_VERSIONS
MAX_VERSION_LENGTH = MAX_RELEASE_VERSION
#: The latest instant ``since``/``until`` may name as Unix seconds (9999-12-31T23:59:59Z).
MAX_UNIX_SECONDS = 253402300799
#: The earliest (0001-01-01T00:00:00Z): before 1970 is negative, and just as valid.
MIN_UNIX_SECONDS = -62135596800

ID_SCHEMA: JSONSchema = {"type": "string", "pattern": ID_PATTERN}
NULLABLE_ID_SCHEMA: JSONSchema = {"type": ["string", "null"], "pattern": ID_PATTERN}
DATETIME_SCHEMA: JSONSchema = {
    "type": "string",
    "format": "date-time",
    "pattern": DATETIME_PATTERN,
}
NULLABLE_DATETIME_SCHEMA: JSONSchema = {**DATETIME_SCHEMA, "type": ["string", "null"]}
COUNT_SCHEMA: JSONSchema = {"type": "integer", "minimum": 0}
OBJECT_SCHEMA: JSONSchema = {"type": "object"}


def strict_object(properties: dict[str, JSONSchema], required: t.Iterable[str]) -> JSONSchema:
    """A JSON Schema object with exactly ``properties``, ``required`` among them."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(required),
        "additionalProperties": False,
    }


#: A field's JSON Schema, or a function of the app's settings that returns it.
DocumentedSchema = JSONSchema | t.Callable[[Settings], JSONSchema]


def documented(schema: DocumentedSchema, description: str | None = None) -> dict[str, t.Any]:
    """Field metadata: how the OpenAPI document describes a field apispec cannot type."""
    metadata: dict[str, t.Any] = {"json_schema": schema}
    if description is not None:
        metadata["description"] = description
    return metadata


_SETTING_RE = re.compile(r"\{([a-z_]+)\}")


def with_settings(description: str, settings: Settings) -> str:
    """``description`` with the settings it names (``{default_page_size}``) filled in;
    other braces are left as written."""
    values = vars(settings)
    return _SETTING_RE.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(), description
    )


class FullMatch(validate.Validator):
    """A regular expression the whole value must match.

    The pattern is written for JSON Schema (``^...$``), where ``$`` is the end of the
    string; Python's ``$`` also matches before a trailing newline, so the value is matched
    whole. apispec documents it as ``pattern`` (it reads any validator's ``regex``).
    """

    def __init__(self, pattern: str, *, error: str) -> None:
        self.regex = re.compile(pattern)
        self.error: str = error

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self.error)
        return value


class SerializerContext(t.TypedDict):
    project: t.Any
    permalink: t.Callable[[t.Any], str]


ContextT = Context[SerializerContext]


def format_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, milliseconds at most (``2015-01-09T21:06:30.125Z``)."""
    # A list page writes hundreds of these. Records hold UTC datetimes, which need no
    # conversion; plain isoformat() ("YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00") cut to whole
    # milliseconds (truncated, as timespec="milliseconds" does) costs less than strftime()
    # or a timespec, and than dropping the zone first.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    text = moment.isoformat()
    return f"{text[:23] if moment.microsecond else text[:19]}Z"


class APIDateTime(fields.Field[datetime]):
    def _serialize(
        self, value: datetime | None, attr: str | None, obj: t.Any, **kwargs: t.Any
    ) -> str | None:
        return format_datetime(value) if value is not None else None


class StringId(fields.Field[int]):
    """Integer ids travel as strings, as in Sentry."""

    def _serialize(
        self, value: int | None, attr: str | None, obj: t.Any, **kwargs: t.Any
    ) -> str | None:
        return str(value) if value is not None else None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CamelCaseSchema(Schema):
    """snake_case attributes, camelCase on the wire; unknown input fields are errors."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field[t.Any]) -> None:
        field_obj.data_key = _camel(field_obj.data_key or field_name)


#: JSON booleans plus the string spellings Sentry accepted ("1"/"0", "true"/"false").
def Flag(**kwargs: t.Any) -> fields.Boolean:  # noqa: N802 - reads like a field class
    return fields.Boolean(
        truthy={True, "true", "True", "1"}, falsy={False, "false", "False", "0"}, **kwargs
    )


class StatusField(fields.String):
    """A group status; ``ignored`` is Sentry's newer name for ``muted``."""

    def __init__(self, **kwargs: t.Any) -> None:
        schema = {"type": "string", "enum": [*GROUP_STATUSES, "ignored"]}
        kwargs.setdefault("metadata", documented(schema, "`ignored` is accepted as `muted`."))
        super().__init__(**kwargs)

    def _deserialize(self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any) -> str:
        status = super()._deserialize(value, attr, data, **kwargs)
        status = "muted" if status == "ignored" else status
        if status not in GROUP_STATUSES:
            raise ValidationError(f"Must be one of: {', '.join(GROUP_STATUSES)}.")
        return status


def _not_blank(error: str = "Must not be blank.") -> validate.Regexp:
    # Anchored at the start, as Python matches; in JSON Schema it searches the same way.
    return validate.Regexp(r"^\s*\S", error=error)


# -- projects ----------------------------------------------------------------------------


class ProjectSchema(CamelCaseSchema):
    id = StringId()
    slug = fields.String()
    name = fields.String()
    is_public = fields.Boolean()
    date_created = APIDateTime()
    status = fields.String()
    options = fields.Method(
        "dump_options",
        metadata=documented(
            strict_object(
                {"sentry:origins": {"type": "string"}, "sentry:resolve_age": {"type": "integer"}},
                ["sentry:origins", "sentry:resolve_age"],
            )
        ),
    )

    def dump_options(self, project: t.Any) -> dict[str, t.Any]:
        return {"sentry:origins": "\n".join(project.allowed_origins), "sentry:resolve_age": 0}


class ProjectOptionsSchema(Schema):
    """Sentry's project ``options`` a key may change."""

    class Meta:
        unknown = RAISE

    origins = fields.String(data_key="sentry:origins", validate=validate.Length(max=10000))


class ProjectUpdateSchema(CamelCaseSchema):
    name = fields.String(
        validate=[validate.Length(min=1, max=200), _not_blank()],
        metadata={"description": "Leading and trailing whitespace is stripped; must not be blank."},
    )
    slug = fields.String(
        validate=[
            validate.Length(min=1, max=MAX_SLUG_LENGTH),
            FullMatch(
                r"^[a-z0-9_-]+$",
                error="Use lowercase letters, digits, '-' and '_' only.",
            ),
        ],
        metadata={"description": "Unique among projects (a taken slug is a field error)."},
    )
    is_public = Flag()
    #: ``{"sentry:origins": "https://a.example\nhttps://b.example"}`` (``*`` allows any):
    #: where browser SDKs may send events from.
    options = fields.Nested(ProjectOptionsSchema)

    @post_load
    def normalise(self, data: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
        options = data.pop("options", {})
        if "origins" in options:
            data["allowed_origins"] = tuple(
                line.strip() for line in options["origins"].splitlines() if line.strip()
            )
        if "name" in data:
            data["name"] = data["name"].strip()
        return data


class OrganizationSchema(CamelCaseSchema):
    """The one organization (SPEC §10)."""

    id = StringId()
    slug = fields.String()
    name = fields.String()
    date_created = APIDateTime()
    status = fields.Constant(
        {"id": "active", "name": "active"},
        metadata=documented(
            strict_object({"id": {"const": "active"}, "name": {"const": "active"}}, ["id", "name"])
        ),
    )
    is_early_adopter = fields.Constant(False, metadata=documented({"const": False}))
    require_2fa = fields.Constant(
        False, data_key="require2FA", metadata=documented({"const": False})
    )
    features: fields.Constant[list[str]] = fields.Constant(
        [], metadata=documented({"type": "array", "maxItems": 0})
    )


class ProjectKeySchema(CamelCaseSchema):
    """A project key as Sentry's keys endpoint shows it, its DSNs included."""

    id = fields.Function(lambda key: key.public_key, metadata=documented({"type": "string"}))
    name = fields.Function(
        lambda key: key.label or "Default", metadata=documented({"type": "string"})
    )
    label = fields.String(allow_none=True)
    public = fields.String(attribute="public_key")
    secret = fields.Method(
        "dump_secret",
        metadata=documented(
            {"type": ["string", "null"]},
            "Null unless the credential holds every scope: a key with the api role does,"
            " so showing its secret to less would hand out the rest.",
        ),
    )
    project_id = fields.Integer(metadata=documented({"type": "integer", "minimum": 1}))
    is_active = fields.Boolean()
    roles = fields.List(fields.String(), attribute="role_names")
    rate_limit = fields.Method(
        "dump_rate_limit",
        metadata=documented(
            {
                "oneOf": [
                    {"type": "null"},
                    strict_object(
                        {
                            "count": {"type": "integer", "minimum": 1},
                            "window": {"type": "integer", "minimum": 1},
                        },
                        ["count", "window"],
                    ),
                ]
            },
            "The key's own ingestion limit (events per window seconds); null: the app's"
            " SENTRY_API_INGEST_RATE_LIMIT.",
        ),
    )
    date_created = APIDateTime(attribute="date_added")
    dsn = fields.Method(
        "dump_dsn",
        metadata=documented(
            strict_object(
                {"public": {"type": "string"}, "secret": {"type": ["string", "null"]}},
                ["public", "secret"],
            )
        ),
    )

    def dump_rate_limit(self, key: t.Any) -> dict[str, int] | None:
        limit = key.rate_limit
        return {"count": limit.count, "window": limit.window} if limit is not None else None

    def dump_secret(self, key: t.Any) -> str | None:
        return key.secret_key if KeyContext.get()["reveal_secrets"] else None

    def dump_dsn(self, key: t.Any) -> dict[str, str | None]:
        base_url, secret = KeyContext.get()["base_url"], self.dump_secret(key)
        return {
            "public": format_dsn(base_url, key.public_key, key.project_id),
            "secret": format_dsn(base_url, key.public_key, key.project_id, secret)
            if secret
            else None,
        }


class _KeyContext(t.TypedDict):
    #: Where SDKs reach the server: the DSN's scheme, host and path.
    base_url: str
    reveal_secrets: bool


KeyContext = Context[_KeyContext]


def format_dsn(base_url: str, public_key: str, project_id: int, secret_key: str = "") -> str:
    """The DSN SDKs are configured with: ``scheme://public[:secret]@host[/path]/project_id``."""
    scheme, _, rest = base_url.partition("://")
    host, slash, path = rest.partition("/")
    credentials = f"{public_key}:{secret_key}" if secret_key else public_key
    path = f"/{path.rstrip('/')}" if slash and path.strip("/") else ""
    return f"{scheme}://{credentials}@{host}{path}/{project_id}"


class ProjectRefSchema(CamelCaseSchema):
    id = StringId()
    name = fields.String()
    slug = fields.String()


# -- groups ------------------------------------------------------------------------------


class GroupSchema(CamelCaseSchema):
    id = StringId()
    short_id = fields.Method(
        "dump_short_id",
        metadata=documented(
            {"type": "string", "pattern": r"^.+-[0-9]+$"}, "`<PROJECT-SLUG-UPPERCASE>-<id>`"
        ),
    )
    title = fields.String()
    culprit = fields.String(allow_none=True)
    permalink = fields.Method(
        "dump_permalink", metadata=documented({"type": "string", "minLength": 1})
    )
    level = fields.String(metadata=documented({"type": "string", "enum": list(LEVELS)}))
    logger = fields.String(allow_none=True)
    status = fields.String(metadata=documented({"type": "string", "enum": list(GROUP_STATUSES)}))
    is_resolved = fields.Method("dump_is_resolved", metadata=documented({"type": "boolean"}))
    is_public = fields.Boolean()
    is_bookmarked = fields.Boolean()
    has_seen = fields.Boolean()
    count = fields.Function(
        lambda group: str(group.times_seen),
        metadata=documented(ID_SCHEMA, "Number of events, as a string."),
    )
    user_count = fields.Integer(metadata=documented(COUNT_SCHEMA))
    first_seen = APIDateTime()
    last_seen = APIDateTime()
    project = fields.Method(
        "dump_project", metadata=documented({"$ref": "#/components/schemas/ProjectRef"})
    )
    metadata = fields.Dict(
        metadata=documented(
            {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "value": {"type": "string"},
                    "title": {"type": "string"},
                },
            },
            "`{type, value}` for exceptions, `{title}` otherwise.",
        )
    )
    type = fields.String(metadata=documented({"type": "string", "enum": ["error", "default"]}))
    num_comments = fields.Integer(metadata=documented(COUNT_SCHEMA))
    time_spent = fields.Constant(None)

    def dump_short_id(self, group: t.Any) -> str:
        return f"{ContextT.get()['project'].slug.upper()}-{group.id}"

    def dump_permalink(self, group: t.Any) -> str:
        return ContextT.get()["permalink"](group)

    def dump_is_resolved(self, group: t.Any) -> bool:
        return bool(group.status == "resolved")

    def dump_project(self, group: t.Any) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], ProjectRefSchema().dump(ContextT.get()["project"]))


def dump_group_list(
    groups: t.Sequence[t.Any], project: t.Any, permalink: t.Callable[[t.Any], str]
) -> list[dict[str, t.Any]]:
    """What ``GroupSchema(many=True).dump(groups)`` returns in the context of ``project``
    and ``permalink``, field for field and in the same order.

    Group lists are the hottest path of the API: marshmallow's per-field dispatch (and a
    ProjectRefSchema built per group) cost several times the database read of a page, so
    lists are written out here. GroupSchema stays the documented shape (the OpenAPI
    document is built from it): a field changed there must change here too.
    """
    # ProjectRefSchema's fields, without building a schema per page.
    ref = {
        "id": None if project.id is None else str(project.id),
        "name": None if project.name is None else utils.ensure_text_type(project.name),
        "slug": None if project.slug is None else utils.ensure_text_type(project.slug),
    }
    short_prefix = f"{project.slug.upper()}-"

    def text(value: t.Any) -> str | None:
        return None if value is None or type(value) is str else utils.ensure_text_type(value)

    def moment(value: datetime | None) -> str | None:
        return None if value is None else format_datetime(value)

    out = []
    for group in groups:
        # Records hold str, int and bool already: the conversions the schema's fields make
        # are applied only to what is not (text() passes str and None through).
        group_id = group.id
        title, culprit, level = group.title, group.culprit, group.level
        logger, status, kind = group.logger, group.status, group.type
        user_count, num_comments = group.user_count, group.num_comments
        metadata = group.metadata
        first_moment, last_seen = group.first_seen, group.last_seen
        first_seen = moment(first_moment)
        out.append(
            {
                "id": None if group_id is None else str(group_id),
                "shortId": f"{short_prefix}{group_id}",
                "title": title if type(title) is str else text(title),
                "culprit": culprit if culprit is None or type(culprit) is str else text(culprit),
                "permalink": permalink(group),
                "level": level if type(level) is str else text(level),
                "logger": logger if logger is None or type(logger) is str else text(logger),
                "status": status if type(status) is str else text(status),
                "isResolved": bool(status == "resolved"),
                "isPublic": group.is_public,
                "isBookmarked": group.is_bookmarked,
                "hasSeen": group.has_seen,
                "count": str(group.times_seen),
                "userCount": user_count if type(user_count) is int else _integer(user_count),
                "firstSeen": first_seen,
                # A group seen once was first and last seen at once: written out once.
                "lastSeen": first_seen if last_seen == first_moment else moment(last_seen),
                "project": ref.copy(),
                "metadata": None if metadata is None else dict(metadata),
                "type": kind if type(kind) is str else text(kind),
                "numComments": (
                    num_comments if type(num_comments) is int else _integer(num_comments)
                ),
                "timeSpent": None,
            }
        )
    return out


def _integer(value: t.Any) -> int | None:
    return None if value is None else int(value)


class GroupUpdateSchema(CamelCaseSchema):
    """``PUT /groups/<id>/``: a partial update of one group."""

    status = StatusField()
    is_bookmarked = Flag()
    has_seen = Flag()
    is_public = Flag()


class BulkGroupUpdateSchema(GroupUpdateSchema):
    """``PUT /projects/<id>/groups/``: changes applied to a selection of groups."""

    merge = Flag(metadata={"description": "Merge the groups named by two or more `id` parameters."})
    # Accepted for compatibility; snoozing is not implemented, so only null or absent.
    snooze_duration = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=0),
        metadata={
            "description": "Accepted for compatibility: only `null` (snoozing is not"
            " implemented, any number is a 400).",
            # What is accepted, not what the field parses (its numbers are refused).
            "json_schema": {"type": "null"},
        },
    )


# -- events and notes --------------------------------------------------------------------

#: One ``_meta`` node (see :mod:`.ingest.trim`): the note for the value at its path under the
#: key ``""``, the nodes of the value's children under their keys or indices.
META_NODE_SCHEMA: JSONSchema = {
    "type": "object",
    "properties": {
        "": strict_object(
            {
                "len": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "How long the value was as sent (characters, entries,"
                    " tags; bytes of JSON for `rem: size`).",
                },
                "rem": {
                    "type": "string",
                    "enum": ["depth", "size"],
                    "description": '`depth`: replaced by `"..."` (too deep); `size`:'
                    " dropped to fit the event size limit.",
                },
                "err": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Why the value was dropped (`invalid_data`).",
                },
                "val": {"description": "The dropped value as sent (trimmed)."},
            },
            [],
        ),
    },
    "additionalProperties": {"type": "object"},
}
NULLABLE_META_NODE_SCHEMA: JSONSchema = {**META_NODE_SCHEMA, "type": ["object", "null"]}
#: The parts of an event with a ``_meta`` entry, as Sentry's event serializer names them
#: (``packages`` and ``errors`` have no counterpart here), and ``release`` (a version that
#: cannot be a release is dropped at ingestion).
EVENT_META_PARTS = ("context", "contexts", "message", "release", "sdk", "tags", "user")
EVENT_META_SCHEMA: JSONSchema = strict_object(
    {
        "entries": {
            "type": "object",
            "description": 'By position in `entries` (as a string): `{"data": node}` for'
            " each entry with something cut.",
            "additionalProperties": strict_object({"data": META_NODE_SCHEMA}, ["data"]),
        },
        **{part: NULLABLE_META_NODE_SCHEMA for part in EVENT_META_PARTS},
    },
    ["entries", *EVENT_META_PARTS],
)
#: Which ``_meta`` keys (the paths the SDK sent) note the data of each kind of entry.
_ENTRY_META_KEYS: dict[str, tuple[str, ...]] = {"message": ("logentry", "message")}


def _meta_node(value: t.Any) -> dict[str, t.Any] | None:
    return value if isinstance(value, dict) and value else None


def _merged_meta(nodes: t.Iterable[t.Any]) -> dict[str, t.Any] | None:
    """The union of ``_meta`` nodes (the message interface may be noted under ``logentry``
    and ``message`` both)."""
    merged: dict[str, t.Any] = {}
    for node in nodes:
        for key, value in (_meta_node(node) or {}).items():
            if isinstance(merged.get(key), dict) and isinstance(value, dict) and key:
                merged[key] = _merged_meta((merged[key], value))
            else:
                merged[key] = value
    return merged or None


def event_meta(event: t.Any) -> dict[str, t.Any]:
    """What trimming cut from ``event``, laid out like Sentry's event serializer: a note
    tree per part of the response (``context`` is the ``extra`` the SDK sent), ``null``
    where nothing was cut, and ``entries`` keyed by the position of the entry.

    Only the stored ``_meta`` is read: the answer never holds more than was stored.
    """
    stored = event.data.get("_meta")
    notes: dict[str, t.Any] = stored if isinstance(stored, dict) else {}
    entries: dict[str, t.Any] = {}
    for index, entry in enumerate(event.data.get("entries") or []):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str):
            continue
        node = _merged_meta(notes.get(key) for key in _ENTRY_META_KEYS.get(kind, (kind,)))
        if node is not None:
            entries[str(index)] = {"data": node}
    message = None
    if event.data.get("type") != "error":  # an error's message is its exception's
        message = _meta_node(
            (_merged_meta(notes.get(key) for key in _ENTRY_META_KEYS["message"]) or {}).get(
                "formatted"
            )
        )
    return {
        "entries": entries,
        "context": _meta_node(notes.get("extra")),
        "contexts": _meta_node(notes.get("contexts")),
        "message": message,
        "release": _meta_node(notes.get("release")),
        "sdk": _meta_node(notes.get("sdk")),
        "tags": _meta_node(notes.get("tags")),
        "user": _meta_node(notes.get("user")),
    }


class EventSchema(CamelCaseSchema):
    id = StringId()
    event_id = fields.String(
        data_key="eventID", metadata=documented({"type": "string", "pattern": r"^[0-9a-f]{32}$"})
    )
    group_id = StringId(data_key="groupID")
    message = fields.String()
    title = fields.String()
    culprit = fields.String(allow_none=True)
    level = fields.String(metadata=documented({"type": "string", "enum": list(LEVELS)}))
    logger = fields.String(allow_none=True)
    platform = fields.String(allow_none=True)
    date_created = APIDateTime(attribute="datetime")
    date_received = APIDateTime()
    release = fields.String(allow_none=True)
    environment = fields.String(allow_none=True)
    user = fields.Raw(allow_none=True, metadata=documented({"type": ["object", "null"]}))
    tags = fields.Function(
        lambda event: [{"key": k, "value": v} for k, v in event.tags],
        metadata=documented(
            {
                "type": "array",
                "items": strict_object(
                    {"key": {"type": "string"}, "value": {"type": "string"}}, ["key", "value"]
                ),
            }
        ),
    )
    context = fields.Function(
        lambda event: event.data.get("extra") or {},
        metadata=documented(OBJECT_SCHEMA, "The event's `extra`."),
    )
    contexts = fields.Function(
        lambda event: event.data.get("contexts") or {}, metadata=documented(OBJECT_SCHEMA)
    )
    sdk = fields.Function(
        lambda event: event.data.get("sdk"), metadata=documented({"type": ["object", "null"]})
    )
    fingerprints = fields.Function(
        lambda event: event.data.get("fingerprint") or [],
        metadata=documented({"type": "array", "items": {"type": "string"}}),
    )
    metadata = fields.Function(
        lambda event: event.data.get("metadata") or {}, metadata=documented(OBJECT_SCHEMA)
    )
    type = fields.Function(
        lambda event: event.data.get("type") or "default",
        metadata=documented({"type": "string"}),
    )
    entries = fields.Function(
        lambda event: event.data.get("entries") or [],
        metadata=documented(
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"type": {"type": "string"}, "data": {}},
                    "required": ["type", "data"],
                },
            },
            "The interfaces the SDK sent (exception, message, request, ...).",
        ),
    )
    time_spent = fields.Constant(None)
    trimmed = fields.Function(
        event_meta,
        data_key="_meta",
        metadata=documented(
            EVENT_META_SCHEMA,
            "What ingestion cut to keep the event within SPEC §11's bounds, as notes on the"
            " parts of this response (`context` is the event's `extra`); a part is `null`"
            " and `entries` is empty when nothing was cut.",
        ),
    )

    def on_bind_field(self, field_name: str, field_obj: fields.Field[t.Any]) -> None:
        if field_obj.data_key is None:
            super().on_bind_field(field_name, field_obj)


class NoteSchema(CamelCaseSchema):
    id = StringId()
    user = fields.Constant(None)
    type = fields.Constant("note")
    data = fields.Function(
        lambda note: {"text": note.text},
        metadata=documented(strict_object({"text": {"type": "string"}}, ["text"])),
    )
    date_created = APIDateTime()


class NoteCreateSchema(CamelCaseSchema):
    text = fields.String(
        required=True,
        validate=[validate.Length(max=10000), _not_blank()],
        metadata={"description": "Must not be blank."},
    )


# -- releases and tags -------------------------------------------------------------------


class ReleaseSchema(CamelCaseSchema):
    version = fields.String()
    short_version = fields.Function(
        lambda release: release.version, metadata=documented({"type": "string"})
    )
    ref = fields.String(allow_none=True)
    url = fields.String(allow_none=True)
    date_created = APIDateTime()
    date_released = APIDateTime(allow_none=True)
    date_started = APIDateTime(allow_none=True)
    first_event = APIDateTime(allow_none=True)
    last_event = APIDateTime(allow_none=True)
    new_groups = fields.Integer(metadata=documented(COUNT_SCHEMA))
    projects = fields.Method(
        "dump_projects",
        metadata=documented(
            {"type": "array", "items": {"$ref": "#/components/schemas/ProjectRef"}},
            "The projects the release belongs to (the one it was read from).",
        ),
    )

    def dump_projects(self, release: t.Any) -> list[dict[str, t.Any]]:
        return [ProjectRefSchema().dump(ReleaseContext.get()["project"])]


class _ReleaseContext(t.TypedDict):
    project: t.Any


ReleaseContext = Context[_ReleaseContext]


class ReleaseVersion(validate.Validator):
    """A valid release version (:func:`~flask_sentry_api.storage.is_valid_release_version`,
    which ingestion applies too); apispec documents the rule's ``regex`` as ``pattern``."""

    regex = re.compile(VERSION_PATTERN)

    def __call__(self, value: str) -> str:
        if not is_valid_release_version(value):
            if value.lower() in RESERVED_VERSIONS:
                raise ValidationError("This version name is reserved.")
            raise ValidationError(
                "Must be 1 to 200 characters without slashes, backslashes or control"
                " characters, nor whitespace at either end."
            )
        return value


def _version_field(**kwargs: t.Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=MAX_VERSION_LENGTH), ReleaseVersion()],
        metadata={
            "description": "At most 200 characters; no slash, backslash or control character,"
            " no whitespace at either end (spaces inside are fine); not `.`, `..` or `latest`"
            " (in any case). Percent-encode it in URLs."
        },
        **kwargs,
    )


class ClientDateTime(fields.AwareDateTime):
    """An ISO 8601 datetime as clients send it: sentry-cli writes nanoseconds and ``Z``,
    which Python 3.10's parser refuses, so both are normalised first."""

    _NANOS = re.compile(r"(\.\d{6})\d+")

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(
        self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any
    ) -> datetime:
        if isinstance(value, str):
            value = self._NANOS.sub(r"\1", value.strip())
            value = value[:-1] + "+00:00" if value[-1:] in "Zz" and value else value
        return super()._deserialize(value, attr, data, **kwargs)


class ProjectName(fields.String):
    """A project named by slug or id: sentry-cli 3 sends a numeric one as a JSON number."""

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(
            metadata=documented(
                {
                    "anyOf": [
                        {"type": "string", "minLength": 1, "maxLength": MAX_SLUG_LENGTH},
                        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    ]
                }
            ),
            **kwargs,
        )

    def _deserialize(self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_ID:
                raise ValidationError("Not a project id.")
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class ReleaseUpdateSchema(CamelCaseSchema):
    """What a deploy tool records on a release (``sentry-cli releases finalize`` sets
    ``dateReleased``)."""

    ref = fields.String(allow_none=True, validate=validate.Length(max=MAX_RELEASE_REF))
    url = fields.String(allow_none=True, validate=validate.Length(max=MAX_RELEASE_URL))
    date_released = ClientDateTime(allow_none=True)
    date_started = ClientDateTime(allow_none=True)

    @post_load
    def changes(self, data: dict[str, t.Any], **kwargs: t.Any) -> ReleaseChanges:
        return ReleaseChanges(**data)


class ReleaseCreateSchema(ReleaseUpdateSchema):
    version = _version_field(required=True)
    #: The projects (slugs or ids) the release belongs to; on the organization's path it
    #: must name at least one.
    projects = fields.List(
        ProjectName(validate=validate.Length(min=1, max=MAX_SLUG_LENGTH)),
        validate=validate.Length(max=100),
    )

    # Named as the parent's hook, so it replaces it: a creation also carries the version
    # and the projects.
    @post_load
    def changes(self, data: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
        version, projects = data.pop("version"), data.pop("projects", None)
        return {"version": version, "projects": projects, "details": ReleaseChanges(**data)}


def tag_label(key: str) -> str:
    """A tag key's human name, as Sentry shows it (``server_name`` -> ``Server Name``)."""
    return key.removeprefix("sentry:").replace("_", " ").title()


class TagValueSchema(CamelCaseSchema):
    key = fields.String()
    name = fields.Function(lambda tag: tag_label(tag.key), metadata=documented({"type": "string"}))
    value = fields.String()
    count = fields.Integer(attribute="times_seen", metadata=documented(COUNT_SCHEMA))
    first_seen = APIDateTime()
    last_seen = APIDateTime()


class TagKeySchema(CamelCaseSchema):
    key = fields.String()
    name = fields.Function(
        lambda summary: tag_label(summary.key), metadata=documented({"type": "string"})
    )
    unique_values = fields.Integer(metadata=documented(COUNT_SCHEMA))
    total_values = fields.Integer(metadata=documented(COUNT_SCHEMA))
    top_values = fields.List(
        fields.Nested(TagValueSchema(only=("value", "count", "first_seen", "last_seen")))
    )


# -- query strings -----------------------------------------------------------------------


class Arg(fields.String):
    """A query-string parameter, loaded as the string sent and parsed by its schema's
    ``@post_load``; ``schema`` is its JSON Schema in the OpenAPI document."""

    def __init__(self, schema: JSONSchema, description: str, **kwargs: t.Any) -> None:
        super().__init__(metadata=documented(schema, description), **kwargs)


class RepeatedArg(fields.List[str]):
    """A parameter that may be repeated (``?id=1&id=2``), loaded as the list of strings."""

    def __init__(self, schema: DocumentedSchema, description: str, **kwargs: t.Any) -> None:
        super().__init__(fields.String(), metadata=documented(schema, description), **kwargs)


class QueryArgs(Schema):
    """An endpoint's query string: its parameters, and the value object they load into.

    Descriptions may name settings as ``{default_page_size}``-style fields (see
    :class:`~flask_sentry_api.config.Settings`); they are filled in where they are shown.
    Every parameter error is a 400 ``{"detail": ...}`` that names the parameter.
    """

    class Meta:
        unknown = EXCLUDE
        ordered = True

    #: A parameter the schema does not declare is a 400 with this detail (``{name}`` is
    #: filled in); None ignores undeclared parameters.
    unknown_detail: t.ClassVar[str | None] = None

    @property
    def settings(self) -> Settings:
        return QueryContext.get()["settings"]


class _QueryContext(t.TypedDict):
    settings: Settings


QueryContext = Context[_QueryContext]


def repeated_parameter(schema: type[QueryArgs], args: t.Mapping[str, t.Sequence[str]]) -> None:
    """Raise 400 when a parameter ``schema`` takes once is repeated (which would be
    ambiguous)."""
    for name, field in schema._declared_fields.items():
        if not isinstance(field, fields.List) and len(args.get(name, ())) > 1:
            raise errors.BadRequest(f'Parameter "{name}" is given more than once.')


@functools.cache
def _instance(schema: type[QueryArgs]) -> QueryArgs:
    # Building a schema costs more than loading a query string with it; loading keeps no
    # state on the instance (the settings travel in QueryContext), so one serves all.
    return schema()


def load_query(
    schema: type[QueryArgs], args: t.Mapping[str, t.Sequence[str]], settings: Settings
) -> t.Any:
    """Load ``args`` (every value of each parameter) with ``schema``: its value object."""
    declared = schema._declared_fields
    if schema.unknown_detail is not None:
        unknown = sorted(set(args) - set(declared))
        if unknown:
            raise errors.BadRequest(schema.unknown_detail.format(name=unknown[0]))
    repeated_parameter(schema, args)
    data = {
        name: list(args[name]) if isinstance(field, fields.List) else args[name][0]
        for name, field in declared.items()
        if name in args
    }
    with QueryContext({"settings": settings}):
        try:
            return _instance(schema).load(data)
        except ValidationError as exc:
            # A missing required or empty parameter: the parsers raise BadRequest themselves.
            name, problems = next(iter(t.cast(dict[str, list[str]], exc.messages).items()))
            raise errors.BadRequest(
                f'Invalid value for parameter "{name}": {problems[0]}'
            ) from None


_PAGE_SIZE = (
    "Page size, 1 or more (default {default_page_size}; larger values than {max_page_size}"
    " are clamped). `limit` and `per_page` are synonyms: give one."
)


@dataclasses.dataclass(frozen=True)
class PageArgs:
    """Which page of a list: after ``cursor`` (None: the first), ``limit`` rows."""

    cursor: Cursor | None
    limit: int


class PageArgsSchema(QueryArgs):
    """``limit``/``per_page`` and ``cursor``: the parameters of every paged list."""

    limit = Arg({"type": "integer", "minimum": 1}, _PAGE_SIZE)
    per_page = Arg({"type": "integer", "minimum": 1}, _PAGE_SIZE)
    cursor = Arg(
        {"type": "string", "pattern": CURSOR_PATTERN},
        "`<value>:<offset>:<is_prev>`, from the `Link` header; empty is the first page.",
    )

    def page(self, data: t.Mapping[str, str]) -> PageArgs:
        limit, per_page = data.get("limit"), data.get("per_page")
        if limit is not None and per_page is not None and limit != per_page:
            raise errors.BadRequest('Give "limit" or "per_page", not both with different values.')
        settings = self.settings
        return PageArgs(
            cursor=parse_cursor(data.get("cursor")),
            limit=parse_page_size(
                data, default=settings.default_page_size, maximum=settings.max_page_size
            ),
        )

    @post_load
    def load_args(self, data: dict[str, str], **kwargs: t.Any) -> t.Any:
        return self.page(data)


def _time_bound(description: str) -> Arg:
    return Arg(
        {
            "anyOf": [
                {"type": "number", "minimum": MIN_UNIX_SECONDS, "maximum": MAX_UNIX_SECONDS},
                {"type": "string", "format": "date-time"},
            ]
        },
        f"{description} (Unix seconds or ISO 8601).",
        # Empty is no instant: refused, as the document says, rather than read as absent.
        validate=validate.Length(min=1, error="expected Unix seconds or ISO 8601, got ''."),
    )


def _query_arg() -> Arg:
    return Arg(
        {"type": "string", "maxLength": MAX_QUERY_LENGTH},
        "Search: `is:unresolved|resolved|muted|ignored`, `key:value` or"
        ' `key:"quoted value"` tag filters, free text. Absent means `is:unresolved`'
        " (GET only); empty means every status.",
    )


def _status_arg() -> Arg:
    return Arg(
        {"type": "string", "enum": [*GROUP_STATUSES, "ignored", ""]},
        "Status filter (an `is:` token in `query` wins; empty is absent).",
    )


@dataclasses.dataclass(frozen=True)
class GroupListArgs:
    """A group search: which groups, in which order, with which stats, which page."""

    selection: GroupQuery
    #: ``24h``/``14d``, or None for no ``stats``.
    stats_period: str | None
    page: PageArgs


class GroupListArgsSchema(PageArgsSchema):
    """The group list's search, stats and page parameters."""

    query = _query_arg()
    status = _status_arg()
    sort = Arg(
        {"type": "string", "enum": [*SORTS, ""]},
        "Order (always descending): last seen, first seen, event count or priority.",
    )
    since = _time_bound("Lower bound")
    until = _time_bound("Upper bound")
    statsPeriod = Arg(  # noqa: N815 - the wire name
        {"type": "string", "enum": [*STATS_PERIODS, ""]},
        "Stats series of each group (default `24h`); empty omits `stats`.",
    )

    @post_load
    def load_args(self, data: dict[str, str], **kwargs: t.Any) -> GroupListArgs:
        return GroupListArgs(
            selection=parse_group_selection(data, default_unresolved=True),
            stats_period=parse_stats_period(data.get("statsPeriod")),
            page=self.page(data),
        )


@dataclasses.dataclass(frozen=True)
class BulkArgs:
    """The groups a bulk change names: ``ids`` (None when absent) within ``selection``."""

    ids: tuple[int, ...] | None
    selection: GroupQuery


def _group_ids(description: str, **kwargs: t.Any) -> RepeatedArg:
    return RepeatedArg(
        lambda settings: {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            "maxItems": settings.max_bulk_ids,
        },
        description,
        **kwargs,
    )


def _parse_group_ids(raw: t.Sequence[str] | None, limit: int) -> tuple[int, ...] | None:
    if not raw:
        return None
    if len(raw) > limit:
        raise errors.BadRequest(f'Too many "id" parameters: {len(raw)}, at most {limit}.')
    ids = []
    for value in raw:
        if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_ID:
            raise errors.BadRequest(
                f'Invalid value for parameter "id": {value[:50]!r} is not a group id.'
            )
        ids.append(int(value))
    return tuple(dict.fromkeys(ids))


class BulkUpdateArgsSchema(QueryArgs):
    """A bulk change: groups named by ``id``, or every group ``status``/``query`` select."""

    unknown_detail = (
        'Unknown query parameter "{name}": bulk changes take only id, status and query, so'
        " nothing is selected by accident."
    )

    id = _group_ids("A group id; repeat the parameter for several groups.")
    status = _status_arg()
    query = _query_arg()

    @post_load
    def load_args(self, data: dict[str, t.Any], **kwargs: t.Any) -> BulkArgs:
        return BulkArgs(
            ids=_parse_group_ids(data.get("id"), self.settings.max_bulk_ids),
            selection=parse_group_selection(data, default_unresolved=False),
        )


class BulkDeleteArgsSchema(QueryArgs):
    """A bulk delete names its groups by ``id``, and by nothing else."""

    unknown_detail = 'Bulk delete selects groups by "id" only.'

    id = _group_ids(
        "A group id; repeat the parameter for several groups.",
        required=True,
        error_messages={"required": 'Bulk delete needs at least one "id" parameter.'},
    )

    @post_load
    def load_args(self, data: dict[str, t.Any], **kwargs: t.Any) -> tuple[int, ...]:
        ids = _parse_group_ids(data["id"], self.settings.max_bulk_ids)
        if ids is None:
            raise errors.BadRequest('Bulk delete needs at least one "id" parameter.')
        return ids


def _project_ids() -> RepeatedArg:
    return RepeatedArg(
        {"type": "array", "items": {"type": "integer", "minimum": -1, "maximum": MAX_ID}},
        "A project id (repeatable) narrowing the organization's issues; `-1` or absent:"
        " every project the credential reaches (another project is a 403).",
    )


class OrganizationGroupListArgsSchema(GroupListArgsSchema):
    """The organization's issue search: the group list's parameters and ``project``."""

    project = _project_ids()


class OrganizationBulkUpdateArgsSchema(BulkUpdateArgsSchema):
    unknown_detail = (
        'Unknown query parameter "{name}": bulk changes take only id, status, query and'
        " project, so nothing is selected by accident."
    )
    project = _project_ids()


class OrganizationBulkDeleteArgsSchema(BulkDeleteArgsSchema):
    unknown_detail = 'Bulk delete selects groups by "id" (and "project") only.'
    project = _project_ids()


class StatsArgsSchema(QueryArgs):
    """A stats request: the time range and the bucket size."""

    since = _time_bound("Start (default: a day before `until`)")
    until = _time_bound("End (default: now)")
    resolution = Arg({"type": "string", "enum": [*RESOLUTIONS, ""]}, "Bucket size (default `1h`).")

    @post_load
    def load_args(self, data: dict[str, str], **kwargs: t.Any) -> tuple[int, int, int]:
        """(resolution, first bucket, last bucket)."""
        bounds = {
            name: epoch_seconds(parse_time_bound(data[name], param=name))
            if data.get(name)
            else None
            for name in ("until", "since")
        }
        return requested_buckets(
            data.get("resolution"),
            bounds["since"],
            bounds["until"],
            now=int(time.time()),
            max_buckets=self.settings.stats_max_buckets,
        )
