"""Builds the OpenAPI 3.1 document of the web API from the marshmallow schemas (apispec).

:func:`build_document` describes every endpoint registered on an app under the web API
prefix: path, query and body parameters, each response with its status, body and headers.
Bodies come from :mod:`flask_sentry_api.schemas` through apispec's marshmallow plugin; the
fields marshmallow cannot type by itself (``StringId``, ``APIDateTime``, ``Method`` and
``Function`` fields, the lenient request booleans) are described by :func:`_refine_field`,
an attribute function registered on the plugin's converter. A few bodies the views build
by hand (group ``stats``, event neighbours, the bulk update result, errors) are written
here as JSON Schema.

:func:`openapi_document` caches one document per app (weakly keyed, so apps are never kept
alive) and fills in ``servers`` for the request being served.
"""

from __future__ import annotations

import copy
import re
import typing as t
import warnings
import weakref

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.field_converter import DEFAULT_FIELD_MAPPING
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Flask
from marshmallow import Schema
from marshmallow import fields

from . import event_views
from . import group_views
from . import project_views
from . import release_views
from . import schemas as sc
from . import stats_views
from . import tag_views
from .config import Settings
from .extension import get_state
from .pagination import MAX_VALUE
from .search import MAX_QUERY_LENGTH
from .search import SORTS
from .search import STATS_PERIODS
from .search import STATUSES
from .stats import RESOLUTIONS
from .storage import LEVELS
from .views import APIView
from .views import IndexView
from .views import NotFoundView

__all__ = ["OPENAPI_VERSION", "build_document", "openapi_document", "openapi_path"]

OPENAPI_VERSION = "3.1.0"

JSONSchema = dict[str, t.Any]

# -- JSON Schema building blocks -----------------------------------------------------------

ID_PATTERN = r"^[0-9]+$"
#: What :func:`flask_sentry_api.schemas.format_datetime` writes.
DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$"
#: A cursor the server accepts (the empty string is the first page). Value and offset are
#: bounded by digit count: at most 18 digits stays below 2**63, 9 below 2**31.
CURSOR_PATTERN = r"^([0-9]{1,18}(\.[0-9]{0,20})?:[0-9]{1,9}:[01])?$"
_EMITTED_CURSOR = r"[0-9]+:[0-9]+"
LINK_PATTERN = (
    rf'^<[^<>]*>; rel="previous"; results="(true|false)"; cursor="{_EMITTED_CURSOR}:1", '
    rf'<[^<>]*>; rel="next"; results="(true|false)"; cursor="{_EMITTED_CURSOR}:0"$'
)
#: Tag keys an event can carry (see ``tag_views``); any other key answers 404.
TAG_KEY_PATTERN = r"^[a-zA-Z0-9_.:-]{1,32}$"
#: Release versions :class:`~flask_sentry_api.schemas.ReleaseCreateSchema` accepts.
VERSION_PATTERN = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"
_RESERVED_VERSIONS = [".", "..", "latest"]
#: The latest instant ``since``/``until`` may name as Unix seconds (9999-12-31T23:59:59Z).
_MAX_UNIX_SECONDS = 253402300799

_ID: JSONSchema = {"type": "string", "pattern": ID_PATTERN}
_NULLABLE_ID: JSONSchema = {"type": ["string", "null"], "pattern": ID_PATTERN}
_DATETIME: JSONSchema = {"type": "string", "format": "date-time", "pattern": DATETIME_PATTERN}
_NULLABLE_DATETIME: JSONSchema = {
    "type": ["string", "null"],
    "format": "date-time",
    "pattern": DATETIME_PATTERN,
}
_COUNT: JSONSchema = {"type": "integer", "minimum": 0}
_OBJECT: JSONSchema = {"type": "object"}


def _series(length: int | None = None) -> JSONSchema:
    """``[[unix_ts, count], ...]``, optionally of an exact length."""
    # A pair; not written with prefixItems, which schemathesis 4.32 mis-converts.
    pair = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
    series: JSONSchema = {"type": "array", "items": pair}
    if length is not None:
        series.update(minItems=length, maxItems=length)
    return series


def _strict_object(properties: dict[str, JSONSchema], required: t.Iterable[str]) -> JSONSchema:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(required),
        "additionalProperties": False,
    }


#: Bodies the views write by hand, or that apispec cannot derive.
_HAND_WRITTEN: dict[str, JSONSchema] = {
    "Detail": {
        **_strict_object({"detail": {"type": "string"}}, ["detail"]),
        "description": "Every error but a field validation error.",
    },
    "FieldErrors": {
        "type": "object",
        "description": "A body that failed validation: messages per field (camelCase"
        " names); a nested object's errors are nested the same way (`_schema` for the"
        " object as a whole).",
        "minProperties": 1,
        "propertyNames": {"not": {"const": "detail"}},
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"$ref": "#/components/schemas/FieldErrors"},
            ]
        },
    },
    "Index": _strict_object(
        {
            "version": {"type": "string", "const": "0"},
            "auth": {
                **_strict_object(
                    {
                        "project": _ID,
                        "roles": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["store", "api"]},
                            "uniqueItems": True,
                        },
                    },
                    ["project", "roles"],
                ),
                "description": "Present when valid credentials were sent.",
            },
        },
        ["version"],
    ),
    "EndpointDescription": _strict_object(
        {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "methods": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"],
                },
            },
            "renders": {"type": "array", "items": {"type": "string"}},
            "parses": {"type": "array", "items": {"type": "string"}},
            "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        ["name", "description", "methods", "renders", "parses"],
    ),
    "GroupStats": {
        "type": "object",
        "description": "Events per bucket over the statsPeriod: 24 hourly or 14 daily buckets.",
        "properties": {"24h": _series(24), "14d": _series(14)},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    },
    "StatsSeries": {**_series(), "description": "`[[unix_ts, count], ...]`, zeros included."},
    "BulkGroupUpdateResult": {
        **_strict_object(
            {
                "status": {"type": "string", "enum": list(STATUSES)},
                "isBookmarked": {"type": "boolean"},
                "hasSeen": {"type": "boolean"},
                "isPublic": {"type": "boolean"},
                "merge": _strict_object(
                    {"parent": _ID, "children": {"type": "array", "items": _ID}},
                    ["parent", "children"],
                ),
            },
            [],
        ),
        "description": "The changes applied.",
    },
    "OpenAPIDocument": {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": {"type": "string", "const": OPENAPI_VERSION}},
    },
}

# -- marshmallow fields apispec cannot type --------------------------------------------------

#: Field descriptions by (schema class, attribute name); they replace apispec's guess.
_FIELDS: dict[tuple[type[Schema], str], JSONSchema] = {
    (sc.ProjectSchema, "options"): _strict_object(
        {"sentry:origins": {"type": "string"}, "sentry:resolve_age": {"type": "integer"}},
        ["sentry:origins", "sentry:resolve_age"],
    ),
    (sc.GroupSchema, "short_id"): {
        "type": "string",
        "pattern": r"^.+-[0-9]+$",
        "description": "`<PROJECT-SLUG-UPPERCASE>-<id>`",
    },
    (sc.GroupSchema, "permalink"): {"type": "string", "minLength": 1},
    (sc.GroupSchema, "level"): {"type": "string", "enum": list(LEVELS)},
    (sc.GroupSchema, "status"): {"type": "string", "enum": list(STATUSES)},
    (sc.GroupSchema, "is_resolved"): {"type": "boolean"},
    (sc.GroupSchema, "count"): {**_ID, "description": "Number of events, as a string."},
    (sc.GroupSchema, "user_count"): _COUNT,
    (sc.GroupSchema, "num_comments"): _COUNT,
    (sc.GroupSchema, "project"): {"$ref": "#/components/schemas/ProjectRef"},
    (sc.GroupSchema, "metadata"): {
        "type": "object",
        "description": "`{type, value}` for exceptions, `{title}` otherwise.",
        "properties": {
            "type": {"type": "string"},
            "value": {"type": "string"},
            "title": {"type": "string"},
        },
    },
    (sc.GroupSchema, "type"): {"type": "string", "enum": ["error", "default"]},
    (sc.EventSchema, "event_id"): {"type": "string", "pattern": r"^[0-9a-f]{32}$"},
    (sc.EventSchema, "level"): {"type": "string", "enum": list(LEVELS)},
    (sc.EventSchema, "user"): {"type": ["object", "null"]},
    (sc.EventSchema, "tags"): {
        "type": "array",
        "items": _strict_object(
            {"key": {"type": "string"}, "value": {"type": "string"}}, ["key", "value"]
        ),
    },
    (sc.EventSchema, "context"): {**_OBJECT, "description": "The event's `extra`."},
    (sc.EventSchema, "contexts"): _OBJECT,
    (sc.EventSchema, "sdk"): {"type": ["object", "null"]},
    (sc.EventSchema, "fingerprints"): {"type": "array", "items": {"type": "string"}},
    (sc.EventSchema, "metadata"): _OBJECT,
    (sc.EventSchema, "type"): {"type": "string"},
    (sc.EventSchema, "entries"): {
        "type": "array",
        "description": "The interfaces the SDK sent (exception, message, request, ...).",
        "items": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "data": {}},
            "required": ["type", "data"],
        },
    },
    (sc.NoteSchema, "data"): _strict_object({"text": {"type": "string"}}, ["text"]),
    (sc.ReleaseSchema, "first_event"): _NULLABLE_DATETIME,
    (sc.ReleaseSchema, "last_event"): _NULLABLE_DATETIME,
    (sc.ReleaseSchema, "new_groups"): _COUNT,
    (sc.TagValueSchema, "name"): {"type": "string"},
    (sc.TagValueSchema, "count"): _COUNT,
    (sc.TagKeySchema, "name"): {"type": "string"},
    (sc.TagKeySchema, "unique_values"): _COUNT,
    (sc.TagKeySchema, "total_values"): _COUNT,
    (sc.ReleaseCreateSchema, "version"): {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": VERSION_PATTERN,
        "not": {"enum": _RESERVED_VERSIONS},
        "description": "No slashes, whitespace or control characters; not `.`, `..`, `latest`.",
    },
    (sc.ProjectUpdateSchema, "name"): {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": r"\S",
        "description": "Leading and trailing whitespace is stripped; must not be blank.",
    },
    (sc.ProjectUpdateSchema, "slug"): {
        "type": "string",
        "minLength": 1,
        "maxLength": 50,
        "pattern": r"^[a-z0-9_-]+$",
        "description": "Unique among projects (a taken slug is a field error).",
    },
    (sc.NoteCreateSchema, "text"): {
        "type": "string",
        "maxLength": 10000,
        "pattern": r"\S",
        "description": "Must not be blank.",
    },
    (sc.BulkGroupUpdateSchema, "merge"): {
        "anyOf": [
            {"type": "boolean"},
            {"type": "string", "enum": ["true", "True", "1", "false", "False", "0"]},
        ],
        "description": "Merge the groups named by two or more `id` parameters.",
    },
    (sc.BulkGroupUpdateSchema, "snooze_duration"): {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "Accepted for compatibility: only `null` (snoozing is not implemented,"
        " any number is a 400).",
    },
}


def _lenient_boolean(field: fields.Boolean) -> JSONSchema | None:
    """``anyOf`` boolean / string spellings for a request ``Flag`` field, else None."""
    if field.truthy == fields.Boolean.truthy and field.falsy == fields.Boolean.falsy:
        return None  # a plain output boolean
    spellings = sorted(value for value in (*field.truthy, *field.falsy) if isinstance(value, str))
    if not spellings:
        return None
    return {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": spellings}]}


def _refine_field(
    self: OpenAPIConverter, field: fields.Field[t.Any], ret: JSONSchema, **kwargs: t.Any
) -> JSONSchema:
    """apispec attribute function: describe the fields apispec cannot type precisely.

    Runs after apispec's own attribute functions; a replacement clears what they produced.
    """
    replacement: JSONSchema | None = None
    parent = type(field.parent) if field.parent is not None else None
    for klass in parent.__mro__ if parent is not None else ():
        if (klass, field.name) in _FIELDS:
            replacement = copy.deepcopy(_FIELDS[(klass, field.name)])
            break
    if replacement is None:
        if isinstance(field, sc.StringId):
            replacement = copy.deepcopy(_NULLABLE_ID if field.allow_none else _ID)
        elif isinstance(field, sc.APIDateTime):
            replacement = copy.deepcopy(_NULLABLE_DATETIME if field.allow_none else _DATETIME)
        elif isinstance(field, fields.Constant):
            replacement = _constant(field.constant)
        elif isinstance(field, sc.StatusField):
            replacement = {
                "type": "string",
                "enum": [*STATUSES, "ignored"],
                "description": "`ignored` is accepted as `muted`.",
            }
        elif isinstance(field, fields.Boolean):
            replacement = _lenient_boolean(field)
        elif isinstance(field, (fields.Method, fields.Function)):
            # Left untyped ("any value") in the document; the test suite turns this into an error.
            warnings.warn(
                f"{parent.__name__ if parent else '?'}.{field.name} is not described: add it"
                " to flask_sentry_api.openapi._FIELDS",
                UserWarning,
                stacklevel=2,
            )
    if replacement is None:
        return {}
    ret.clear()
    return replacement


def _constant(value: t.Any) -> JSONSchema:
    if value is None:
        return {"type": "null"}
    kind = {str: "string", bool: "boolean", int: "integer", float: "number"}[type(value)]
    return {"type": kind, "const": value}


class _Converter(OpenAPIConverter):
    # A copy of apispec's table, so nothing here changes apispec's module-level default.
    field_mapping = {
        **DEFAULT_FIELD_MAPPING,
        sc.StringId: ("string", None),
        sc.APIDateTime: ("string", "date-time"),
    }


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


#: Output schemas: component name -> schema; every property is always present.
_OUTPUTS: list[tuple[str, Schema]] = [
    ("Project", sc.ProjectSchema()),
    ("ProjectRef", sc.ProjectRefSchema()),
    ("Group", sc.GroupSchema()),
    ("Event", sc.EventSchema()),
    ("Note", sc.NoteSchema()),
    ("Release", sc.ReleaseSchema()),
    ("TagTopValue", sc.TagValueSchema(only=("value", "count", "first_seen", "last_seen"))),
    ("TagValue", sc.TagValueSchema()),
    ("TagKey", sc.TagKeySchema()),
]
#: Request bodies (partial updates: nothing is required unless the schema says so).
_INPUTS: list[tuple[str, Schema]] = [
    ("ProjectUpdate", sc.ProjectUpdateSchema()),
    ("GroupUpdate", sc.GroupUpdateSchema()),
    ("BulkGroupUpdate", sc.BulkGroupUpdateSchema()),
    ("NoteCreate", sc.NoteCreateSchema()),
    ("ReleaseCreate", sc.ReleaseCreateSchema()),
]


def _add_components(spec: APISpec) -> None:
    spec.components.security_scheme(
        "basic",
        {
            "type": "http",
            "scheme": "basic",
            "description": "A project key: username = public key, password = secret key."
            ' The key needs the "api" role.',
        },
    )
    # No operation answers 405 (every documented method exists); every other method does.
    spec.components.response(
        "MethodNotAllowed",
        {
            "description": "A method the endpoint lacks (any not documented for its path):"
            ' `{"detail": "Method \\"PATCH\\" not allowed."}`.',
            "headers": {
                "Allow": {
                    "description": "The endpoint's methods.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
            "content": {"application/json": {"schema": _ref("Detail")}},
        },
    )
    for name, schema in _OUTPUTS + _INPUTS:
        spec.components.schema(name, schema=schema)
    for name, body in _HAND_WRITTEN.items():
        spec.components.schema(name, copy.deepcopy(body))
    schemas = spec.components.schemas
    for name, _ in _OUTPUTS:
        schemas[name]["required"] = sorted(schemas[name]["properties"])
    group = schemas["Group"]
    group["properties"]["stats"] = {
        "$ref": "#/components/schemas/GroupStats",
        "description": "Omitted when the list is asked for with an empty `statsPeriod`.",
    }
    details = copy.deepcopy(schemas["Event"])
    details["properties"]["nextEventID"] = copy.deepcopy(_NULLABLE_ID)
    details["properties"]["previousEventID"] = copy.deepcopy(_NULLABLE_ID)
    details["required"] = sorted(details["properties"])
    details["description"] = "An event with the ids of its group's next and previous events."
    schemas["EventDetails"] = details


# -- parameters ----------------------------------------------------------------------------


def _ref(name: str) -> JSONSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: JSONSchema, description: str, **extra: t.Any) -> JSONSchema:
    return {"in": "query", "name": name, "schema": schema, "description": description, **extra}


def _time_bound(name: str, description: str) -> JSONSchema:
    return _query(
        name,
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": _MAX_UNIX_SECONDS},
                {"type": "string", "format": "date-time"},
            ]
        },
        f"{description} (Unix seconds or ISO 8601).",
    )


def _parameters(settings: Settings) -> dict[str, JSONSchema]:
    page_size = (
        f"Page size, 1 or more (default {settings.default_page_size}; larger values than"
        f" {settings.max_page_size} are clamped). `limit` and `per_page` are synonyms: give one."
    )
    return {
        "query": _query(
            "query",
            {"type": "string", "maxLength": MAX_QUERY_LENGTH},
            "Search: `is:unresolved|resolved|muted|ignored`, `key:value` or"
            ' `key:"quoted value"` tag filters, free text. Absent means `is:unresolved`'
            " (GET only); empty means every status.",
        ),
        "status": _query(
            "status",
            {"type": "string", "enum": [*STATUSES, "ignored", ""]},
            "Status filter (an `is:` token in `query` wins; empty is absent).",
        ),
        "sort": _query(
            "sort",
            {"type": "string", "enum": [*SORTS, ""]},
            "Order (always descending): last seen, first seen, event count or priority.",
        ),
        "since": _time_bound("since", "Lower bound"),
        "until": _time_bound("until", "Upper bound"),
        "statsPeriod": _query(
            "statsPeriod",
            {"type": "string", "enum": [*STATS_PERIODS, ""]},
            "Stats series of each group (default `24h`); empty omits `stats`.",
        ),
        "resolution": _query(
            "resolution",
            {"type": "string", "enum": [*RESOLUTIONS, ""]},
            "Bucket size (default `1h`).",
        ),
        "limit": _query("limit", {"type": "integer", "minimum": 1}, page_size),
        "per_page": _query("per_page", {"type": "integer", "minimum": 1}, page_size),
        "cursor": _query(
            "cursor",
            {"type": "string", "pattern": CURSOR_PATTERN},
            "`<value>:<offset>:<is_prev>`, from the `Link` header; empty is the first page.",
        ),
        "id": _query(
            "id",
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": MAX_VALUE},
                "maxItems": settings.max_bulk_ids,
            },
            "A group id; repeat the parameter for several groups.",
            style="form",
            explode=True,
        ),
    }


_PATH_PARAMETERS: dict[str, tuple[JSONSchema, str]] = {
    "project_id": ({"type": "integer"}, "A project id."),
    "group_id": ({"type": "integer"}, "A group id."),
    "event_id": ({"type": "integer"}, "An event's numeric id (not its 32-hex eventID)."),
    "key": ({"type": "string", "pattern": TAG_KEY_PATTERN}, "A tag key."),
    "version": (
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": VERSION_PATTERN},
        "A release version.",
    ),
}

_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def openapi_path(rule: str, prefix: str) -> str:
    """The OpenAPI path of a Werkzeug rule under ``prefix``: ``<int:x>`` becomes ``{x}``."""
    if prefix and rule.startswith(prefix):
        rule = rule[len(prefix) :]
    return _RULE_ARGUMENT.sub(r"{\1}", rule) or "/"


# -- operations ----------------------------------------------------------------------------


class _Op(t.NamedTuple):
    """One documented operation of a view (GET also documents HEAD)."""

    summary: str
    status: int
    body: str | None = None  # response schema component (None: no body)
    many: bool = False  # a list of ``body`` with a ``Link`` header
    query: tuple[str, ...] = ()
    required_query: tuple[str, ...] = ()
    request: str | None = None  # request body component
    extra: tuple[int, ...] = ()  # other success statuses (no body)


_PAGED = ("limit", "per_page", "cursor")
_GROUP_SEARCH = ("query", "status", "sort", "since", "until", "statsPeriod", *_PAGED)
_STATS = ("since", "until", "resolution")

_OPERATIONS: dict[type[APIView], dict[str, _Op]] = {
    IndexView: {"get": _Op("The API version; with credentials, what they allow.", 200, "Index")},
    project_views.ProjectDetailsView: {
        "get": _Op("Read the project.", 200, "Project"),
        "put": _Op(
            "Change the project's name, slug or isPublic.", 200, "Project", request="ProjectUpdate"
        ),
    },
    group_views.ProjectGroupIndexView: {
        "get": _Op(
            "Search the project's groups, a page at a time.",
            200,
            "Group",
            many=True,
            query=_GROUP_SEARCH,
        ),
        "put": _Op(
            "Change the groups named by `id`, or the status of every group the filters select.",
            200,
            "BulkGroupUpdateResult",
            query=("id", "status", "query"),
            request="BulkGroupUpdate",
            extra=(204,),
        ),
        "delete": _Op(
            "Delete the groups named by `id`, with their events, notes and tag data.",
            204,
            query=("id",),
            required_query=("id",),
        ),
    },
    group_views.GroupDetailsView: {
        "get": _Op("Read the group (with 24h stats).", 200, "Group"),
        "put": _Op(
            "Change status, isBookmarked, hasSeen or isPublic.",
            200,
            "Group",
            request="GroupUpdate",
        ),
        "delete": _Op("Delete the group with its events, notes and tag data.", 202),
    },
    group_views.GroupNotesView: {
        "get": _Op("The group's notes, newest first.", 200, "Note", many=True, query=_PAGED),
        "post": _Op("Add a note.", 201, "Note", request="NoteCreate"),
    },
    event_views.GroupEventsView: {
        "get": _Op("The group's events, newest first.", 200, "Event", many=True, query=_PAGED),
    },
    event_views.GroupLatestEventView: {
        "get": _Op("The group's newest event.", 200, "EventDetails"),
    },
    event_views.EventDetailsView: {
        "get": _Op("One event with its neighbours in its group.", 200, "EventDetails"),
    },
    stats_views.ProjectStatsView: {
        "get": _Op("Events received by the project per bucket.", 200, "StatsSeries", query=_STATS),
    },
    stats_views.GroupStatsView: {
        "get": _Op("Events of the group per bucket.", 200, "StatsSeries", query=_STATS),
    },
    release_views.ProjectReleasesView: {
        "get": _Op(
            "The project's releases, newest first.", 200, "Release", many=True, query=_PAGED
        ),
        "post": _Op("Create a release.", 201, "Release", request="ReleaseCreate"),
    },
    release_views.ReleaseDetailsView: {
        "get": _Op("Read a release.", 200, "Release"),
        "delete": _Op("Delete a release.", 204),
    },
    tag_views.GroupTagsView: {
        "get": _Op("The group's tag keys with their top values.", 200, "TagKey", many=True),
    },
    tag_views.GroupTagValuesView: {
        "get": _Op(
            "Values of a tag key in the group, most seen first.",
            200,
            "TagValue",
            many=True,
            query=_PAGED,
        ),
    },
    tag_views.ProjectTagValuesView: {
        "get": _Op(
            "Values of a tag key in the project, most seen first.",
            200,
            "TagValue",
            many=True,
            query=_PAGED,
        ),
    },
    tag_views.ProjectTagKeyView: {
        "delete": _Op("Delete a tag key's values from the project and its groups.", 204),
    },
}

#: GroupTagsView returns a plain list, without paging.
_UNPAGED_LISTS: frozenset[type[APIView]] = frozenset({tag_views.GroupTagsView})


def _link(operation: str, **parameters: str) -> JSONSchema:
    return {"operationId": operation, "parameters": parameters}


_GROUP_FROM_PATH = "$request.path.group_id"
_PROJECT_FROM_PATH = "$request.path.project_id"
_FIRST_ID = "$response.body#/0/id"


def _project_links(project_id: str) -> dict[str, JSONSchema]:
    return {
        "ProjectGroups": _link("getProjectGroupIndex", project_id=project_id),
        "ProjectReleases": _link("getProjectReleases", project_id=project_id),
        "ProjectStats": _link("getProjectStats", project_id=project_id),
    }


def _links(view_class: type[APIView], method: str) -> dict[str, JSONSchema]:
    """OpenAPI links: where a successful response's ids lead (also drives stateful tests)."""
    group_links = {
        "GroupLatestEvent": _link("getGroupLatestEvent", group_id=_GROUP_FROM_PATH),
        "GroupEvents": _link("getGroupEvents", group_id=_GROUP_FROM_PATH),
        "GroupNotes": _link("getGroupNotes", group_id=_GROUP_FROM_PATH),
        "GroupTags": _link("getGroupTags", group_id=_GROUP_FROM_PATH),
    }
    table: dict[tuple[type[APIView], str], dict[str, JSONSchema]] = {
        (group_views.ProjectGroupIndexView, "get"): {
            "FirstGroup": _link("getGroupDetails", group_id=_FIRST_ID),
            "UpdateFirstGroup": _link("putGroupDetails", group_id=_FIRST_ID),
            "FirstGroupLatestEvent": _link("getGroupLatestEvent", group_id=_FIRST_ID),
            "FirstGroupTags": _link("getGroupTags", group_id=_FIRST_ID),
            "FirstGroupNotes": _link("getGroupNotes", group_id=_FIRST_ID),
        },
        (group_views.GroupDetailsView, "get"): {
            "Project": _link("getProjectDetails", project_id="$response.body#/project/id"),
            **group_links,
        },
        (group_views.GroupDetailsView, "put"): group_links,
        (group_views.GroupNotesView, "post"): {
            "Group": _link("getGroupDetails", group_id=_GROUP_FROM_PATH),
            **group_links,
        },
        (event_views.GroupEventsView, "get"): {
            "FirstEvent": _link("getEventDetails", event_id=_FIRST_ID),
        },
        (event_views.GroupLatestEventView, "get"): {
            "Event": _link("getEventDetails", event_id="$response.body#/id"),
            "Group": _link("getGroupDetails", group_id="$response.body#/groupID"),
        },
        (event_views.EventDetailsView, "get"): {
            "Group": _link("getGroupDetails", group_id="$response.body#/groupID"),
            "GroupEvents": _link("getGroupEvents", group_id="$response.body#/groupID"),
        },
        (tag_views.GroupTagsView, "get"): {
            "FirstKeyValues": _link(
                "getGroupTagValues", group_id=_GROUP_FROM_PATH, key="$response.body#/0/key"
            ),
        },
        (release_views.ProjectReleasesView, "get"): {
            "FirstRelease": _link(
                "getReleaseDetails",
                project_id=_PROJECT_FROM_PATH,
                version="$response.body#/0/version",
            ),
        },
        (project_views.ProjectDetailsView, "get"): _project_links("$response.body#/id"),
        (project_views.ProjectDetailsView, "put"): _project_links("$response.body#/id"),
        (release_views.ProjectReleasesView, "post"): {
            **_project_links(_PROJECT_FROM_PATH),
            "Release": _link(
                "getReleaseDetails",
                project_id=_PROJECT_FROM_PATH,
                version="$response.body#/version",
            ),
            "DeleteRelease": _link(
                "deleteReleaseDetails",
                project_id=_PROJECT_FROM_PATH,
                version="$response.body#/version",
            ),
        },
    }
    return copy.deepcopy(table.get((view_class, method), {}))


def _headers(allow: str, *, allow_required: bool = True, **more: JSONSchema) -> JSONSchema:
    headers: JSONSchema = {
        "Content-Language": {
            "description": "Always `en`.",
            "required": True,
            "schema": {"type": "string", "const": "en"},
        },
        "Allow": {
            "description": "The endpoint's methods.",
            "required": allow_required,
            "schema": {"type": "string", "const": allow},
        },
    }
    headers.update(more)
    return headers


def _link_header() -> JSONSchema:
    return {
        "description": 'Previous and next pages: `<URL>; rel="previous"; results="true|false";'
        ' cursor="..."`, then the same for `rel="next"`.',
        "required": True,
        "schema": {"type": "string", "pattern": LINK_PATTERN},
    }


def _error(description: str, headers: JSONSchema, body: JSONSchema | None = None) -> JSONSchema:
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": body or _ref("Detail")}},
    }


def _error_responses(
    allow: str, *, auth: bool, bad_request: bool, body: bool, realm: str, head: bool
) -> dict[int, JSONSchema]:
    plain = _headers(allow)
    responses: dict[int, JSONSchema] = {}

    def add(
        status: int, description: str, headers: JSONSchema, schema: JSONSchema | None = None
    ) -> None:
        response = _error(description, headers, schema)
        if head:
            del response["content"]
        responses[status] = response

    if bad_request or body:
        add(
            400,
            "A bad query parameter (`detail`) or body (JSON parse error in `detail`, or"
            " messages per field).",
            plain,
            {"anyOf": [_ref("Detail"), _ref("FieldErrors")]},
        )
    if auth:
        add(
            401,
            "No, unknown or wrong credentials, or a disabled key.",
            _headers(
                allow,
                **{
                    "WWW-Authenticate": {
                        "required": True,
                        "schema": {"type": "string", "const": f'Basic realm="{realm}"'},
                    }
                },
            ),
        )
        add(403, "The key lacks the api role, or the object belongs to another project.", plain)
        add(404, "No such object, or a malformed path.", _headers(allow, allow_required=False))
    if body:
        add(413, "The body is larger than SENTRY_API_MAX_BODY_SIZE.", plain)
        add(415, "The body is not JSON.", plain)
    if auth:
        add(
            503,
            "The storage is unavailable; try again later.",
            _headers(
                allow,
                **{
                    "Retry-After": {
                        "required": True,
                        "schema": {"type": "string", "pattern": ID_PATTERN},
                    }
                },
            ),
        )
    return responses


def _operation(
    view_class: type[APIView],
    method: str,
    op: _Op,
    params: dict[str, JSONSchema],
    settings: Settings,
    head: bool = False,
) -> JSONSchema:
    allow = view_class.allow_header()
    success_headers = _headers(allow)
    content: JSONSchema | None = None
    if op.body is not None:
        schema = _ref(op.body)
        if op.many:
            schema = {"type": "array", "items": schema}
            if view_class not in _UNPAGED_LISTS:
                success_headers = _headers(allow, Link=_link_header())
        content = {"application/json": {"schema": schema}}
    success: JSONSchema = {"description": op.summary, "headers": success_headers}
    if content is not None and not head:
        success["content"] = content
        links = _links(view_class, method)
        if links:
            success["links"] = links
    responses: dict[int, JSONSchema] = {op.status: success}
    for status in op.extra:
        responses[status] = {
            "description": "None of the groups named by `id` belongs to the project.",
            "headers": _headers(allow),
        }
    auth = view_class.requires_auth
    parameters = [{**params[name], "required": name in op.required_query} for name in op.query]
    responses.update(
        _error_responses(
            allow,
            auth=auth,
            bad_request=bool(op.query),
            body=op.request is not None,
            realm=settings.auth_realm,
            head=head,
        )
    )
    if view_class is IndexView:
        responses[503] = {
            "description": "The storage is unavailable (credentials could not be checked).",
            "headers": _headers(allow),
        }
        if not head:
            responses[503]["content"] = {"application/json": {"schema": _ref("Detail")}}
    operation: JSONSchema = {
        "operationId": _operation_id(view_class, "head" if head else method),
        "summary": ("Headers of GET: " if head else "") + op.summary,
        "responses": {status: responses[status] for status in sorted(responses)},
    }
    if parameters:
        operation["parameters"] = parameters
    if op.request is not None:
        operation["requestBody"] = {
            "required": False,
            "description": "A JSON object; an empty body is `{}`.",
            "content": {"application/json": {"schema": _ref(op.request)}},
        }
    if not auth:
        operation["security"] = [{}, {"basic": []}]
    return operation


def _operation_id(view_class: type[APIView], method: str) -> str:
    name = view_class.__name__.removesuffix("View")
    return f"{method}{name}"


def _options_operation(view_class: type[APIView]) -> JSONSchema:
    allow = view_class.allow_header()
    body = {
        "allOf": [
            _ref("EndpointDescription"),
            {"properties": {"methods": {"const": view_class.verbs()}}},
        ]
    }
    return {
        "operationId": _operation_id(view_class, "options"),
        "summary": "Describe the endpoint (no credentials needed).",
        "security": [],
        "responses": {
            "200": {
                "description": "The endpoint's name, description and methods.",
                "headers": _headers(allow),
                "content": {"application/json": {"schema": body}},
            },
            "404": _error("A malformed path.", _headers(allow, allow_required=False)),
        },
    }


def _document_operation(view_class: type[APIView], method: str) -> JSONSchema:
    ok: JSONSchema = {
        "description": "The OpenAPI 3.1 document of the web API.",
        "headers": _headers(view_class.allow_header()),
    }
    if method == "get":
        ok["content"] = {"application/json": {"schema": _ref("OpenAPIDocument")}}
    return {
        "operationId": _operation_id(view_class, method),
        "summary": ("Headers of GET: " if method == "head" else "") + "This OpenAPI document.",
        "security": [],
        "responses": {"200": ok},
    }


def _fallback_operation(view_class: type[APIView], method: str) -> JSONSchema:
    # A view this module does not know yet: described, but only loosely.
    return {
        "operationId": _operation_id(view_class, method),
        "summary": (view_class.__doc__ or view_class.__name__).strip().splitlines()[0],
        "x-undocumented": True,
        "responses": {"default": {"description": "Not described yet."}},
    }


def _path_parameters(path: str) -> list[JSONSchema]:
    parameters = []
    for name in re.findall(r"{([^{}]+)}", path):
        schema, description = _PATH_PARAMETERS.get(name, ({"type": "string"}, name))
        parameters.append(
            {
                "in": "path",
                "name": name,
                "required": True,
                "schema": copy.deepcopy(schema),
                "description": description,
            }
        )
    return parameters


def _path_operations(
    view_class: type[APIView], params: dict[str, JSONSchema], settings: Settings
) -> dict[str, JSONSchema]:
    operations: dict[str, JSONSchema] = {}
    described = _OPERATIONS.get(view_class, {})
    for verb in view_class.verbs():
        method = verb.lower()
        if method == "options":
            operations[method] = _options_operation(view_class)
        elif getattr(view_class, "serves_openapi_document", False):
            operations[method] = _document_operation(view_class, method)
        elif method == "head":
            if "get" in described:
                operations[method] = _operation(
                    view_class, "get", described["get"], params, settings, head=True
                )
            else:
                operations[method] = _fallback_operation(view_class, method)
        elif method in described:
            operations[method] = _operation(view_class, method, described[method], params, settings)
        else:
            operations[method] = _fallback_operation(view_class, method)
    return operations


def build_document(app: Flask) -> dict[str, t.Any]:
    """The OpenAPI document of the web API as registered on ``app`` (without ``servers``).

    Paths are relative to the API prefix (``SENTRY_API_URL_PREFIX``), which
    :func:`openapi_document` puts in ``servers``.
    """
    settings = get_state(app).settings
    spec = APISpec(
        title="Sentry Web API",
        version="0",
        openapi_version=OPENAPI_VERSION,
        plugins=[_Plugin()],
        info={
            "description": "Sentry's Web API v0, served by flask-sentry-api: projects, groups"
            " (search, cursor pagination in `Link` headers, bulk changes), events, notes,"
            " releases, tags and stats. Authenticate with a project key over HTTP Basic auth"
            " (`curl -u PUBLIC:SECRET`). Every response is JSON, errors included"
            ' (`{"detail": "..."}`, or messages per field for a body that fails validation).'
        },
        security=[{"basic": []}],
    )
    converter = spec.plugins[0].converter  # type: ignore[attr-defined]
    converter.add_attribute_function(_refine_field)
    _add_components(spec)

    params = _parameters(settings)
    prefix = settings.url_prefix.rstrip("/")
    paths: dict[str, type[APIView]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        if not isinstance(view_class, type) or not issubclass(view_class, APIView):
            continue
        if issubclass(view_class, NotFoundView) or not rule.rule.startswith(prefix + "/"):
            continue
        paths.setdefault(openapi_path(rule.rule, prefix), view_class)
    for path, view_class in paths.items():
        spec.path(
            path=path,
            operations=_path_operations(view_class, params, settings),
            parameters=_path_parameters(path),
        )
    return spec.to_dict()


_CACHE: weakref.WeakKeyDictionary[Flask, dict[str, t.Any]] = weakref.WeakKeyDictionary()


def openapi_document(app: Flask, script_root: str = "") -> dict[str, t.Any]:
    """``app``'s document (built once, then cached per app) with ``servers`` set to the API
    prefix under ``script_root`` (the request's mount point).

    The nested objects are the cached ones: treat the result as read-only.
    """
    document = _CACHE.get(app)
    if document is None:
        document = _CACHE.setdefault(app, build_document(app))
    prefix = get_state(app).settings.url_prefix.rstrip("/")
    return {**document, "servers": [{"url": f"{script_root.rstrip('/')}{prefix}" or "/"}]}
