"""Builds the OpenAPI 3.1 document of the web API from the marshmallow schemas (apispec).

:func:`build_document` describes every endpoint registered on an app under the web API
prefix: path, query and body parameters, each response with its status, body and headers.
Each operation comes from the view that serves it (its ``operations``, see
:mod:`flask_sentry_api.apidoc`): summary, statuses, links, and the query-argument schema
whose fields become the parameters. Bodies come from :mod:`flask_sentry_api.schemas`
through apispec's marshmallow plugin, which derives lengths, patterns and ranges from the
fields' validators; what it cannot type by itself (``StringId``, ``APIDateTime``, the
lenient request booleans, and fields documented with ``metadata={"json_schema": ...}``)
is described by :func:`_refine_field`, an attribute function registered on the plugin's
converter. A few bodies the views build by hand (group ``stats``, event neighbours, the
bulk update result, errors) are written here as JSON Schema.

:func:`openapi_document` caches one document per app (weakly keyed, so apps are never kept
alive) and fills in ``servers`` for the request being served.
"""

from __future__ import annotations

import copy
import json
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
from marshmallow import validate

from . import schemas as sc
from .apidoc import Op
from .config import Settings
from .schemas import ID_SCHEMA
from .schemas import NULLABLE_ID_SCHEMA
from .schemas import TAG_KEY_PATTERN
from .schemas import VERSION_PATTERN
from .schemas import JSONSchema
from .schemas import strict_object
from .state import get_state
from .storage import GROUP_STATUSES
from .storage import MAX_SLUG_LENGTH
from .storage import SCOPES
from .views import apidocs
from .views.base import APIView
from .views.base import IndexView
from .views.base import NotFoundView

__all__ = ["OPENAPI_VERSION", "build_document", "openapi_document", "openapi_path"]

OPENAPI_VERSION = "3.1.0"

_EMITTED_CURSOR = r"[0-9]+:[0-9]+"
LINK_PATTERN = (
    rf'^<[^<>]*>; rel="previous"; results="(true|false)"; cursor="{_EMITTED_CURSOR}:1", '
    rf'<[^<>]*>; rel="next"; results="(true|false)"; cursor="{_EMITTED_CURSOR}:0"$'
)


def _series(length: int | None = None) -> JSONSchema:
    """``[[unix_ts, count], ...]``, optionally of an exact length."""
    # A pair; not written with prefixItems, which schemathesis 4.32 mis-converts.
    pair = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
    series: JSONSchema = {"type": "array", "items": pair}
    if length is not None:
        series.update(minItems=length, maxItems=length)
    return series


#: Bodies the views write by hand, or that apispec cannot derive.
_HAND_WRITTEN: dict[str, JSONSchema] = {
    "Detail": {
        **strict_object({"detail": {"type": "string"}}, ["detail"]),
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
    "Index": strict_object(
        {
            "version": {"type": "string", "const": "0"},
            "auth": {
                **strict_object(
                    {
                        "project": ID_SCHEMA,
                        "roles": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["store", "api"]},
                            "uniqueItems": True,
                            "description": "A project key's roles (absent for a token).",
                        },
                        "scopes": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(SCOPES)},
                            "uniqueItems": True,
                            "description": "What the credential may do (every scope for a"
                            " key with the api role); `sentry-cli info` shows them.",
                        },
                    },
                    ["project", "scopes"],
                ),
                "description": "Present when valid credentials were sent.",
            },
        },
        ["version"],
    ),
    "EndpointDescription": strict_object(
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
        **strict_object(
            {
                "status": {"type": "string", "enum": list(GROUP_STATUSES)},
                "isBookmarked": {"type": "boolean"},
                "hasSeen": {"type": "boolean"},
                "isPublic": {"type": "boolean"},
                "merge": strict_object(
                    {"parent": ID_SCHEMA, "children": {"type": "array", "items": ID_SCHEMA}},
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


def _lenient_boolean(field: fields.Boolean) -> JSONSchema | None:
    """``anyOf`` boolean / string spellings for a request ``Flag`` field, else None."""
    if field.truthy == fields.Boolean.truthy and field.falsy == fields.Boolean.falsy:
        return None  # a plain output boolean
    spellings = sorted(value for value in (*field.truthy, *field.falsy) if isinstance(value, str))
    if not spellings:
        return None
    # Python's sets hold True == 1 and False == 0: the numbers are accepted too.
    return {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": spellings}, {"enum": [0, 1]}]}


def _refine_field(
    self: _Converter, field: fields.Field[t.Any], ret: JSONSchema, **kwargs: t.Any
) -> JSONSchema:
    """apispec attribute function: describe the fields apispec cannot type precisely.

    Runs after apispec's own attribute functions. A field documented with a JSON Schema
    (``metadata={"json_schema": ...}``) or of a type apispec does not know is replaced
    whole (keeping its description); the rest keeps what apispec derived from its
    validators, plus ``not`` for a :class:`~marshmallow.validate.NoneOf`.
    """
    replacement: JSONSchema | None = None
    documented = field.metadata.get("json_schema")
    if documented is not None:
        replacement = copy.deepcopy(
            documented(self.settings) if callable(documented) else documented
        )
    elif isinstance(field, sc.StringId):
        replacement = copy.deepcopy(NULLABLE_ID_SCHEMA if field.allow_none else ID_SCHEMA)
    elif isinstance(field, sc.APIDateTime):
        replacement = copy.deepcopy(
            sc.NULLABLE_DATETIME_SCHEMA if field.allow_none else sc.DATETIME_SCHEMA
        )
    elif isinstance(field, fields.Constant):
        replacement = _constant(field.constant)
    elif isinstance(field, fields.Boolean):
        replacement = _lenient_boolean(field)
    elif isinstance(field, (fields.Method, fields.Function)):
        # Left untyped ("any value") in the document; the test suite turns this into an error.
        parent = type(field.parent).__name__ if field.parent is not None else "?"
        warnings.warn(
            f"{parent}.{field.name} is not described: give it"
            " metadata=flask_sentry_api.schemas.documented(...)",
            UserWarning,
            stacklevel=2,
        )
    if replacement is None:
        excluded = [v for v in field.validators if isinstance(v, validate.NoneOf)]
        return {"not": {"enum": list(excluded[0].iterable)}} if excluded else {}
    description = field.metadata.get("description")
    ret.clear()
    if description is not None:
        replacement.setdefault("description", self.describe(description))
    return replacement


def _constant(value: t.Any) -> JSONSchema:
    if value is None:
        return {"type": "null"}
    kind = {str: "string", bool: "boolean", int: "integer", float: "number"}[type(value)]
    return {"type": kind, "const": value}


class _Converter(OpenAPIConverter):
    """apispec's converter, knowing the app's settings (limits some fields depend on)."""

    settings: Settings

    def describe(self, description: str) -> str:
        """A field description with the settings it names (``{default_page_size}``)."""
        return sc.with_settings(description, self.settings)

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
    ("ReleaseUpdate", sc.ReleaseUpdateSchema()),
    ("Organization", sc.OrganizationSchema()),
    ("ProjectKey", sc.ProjectKeySchema()),
]


def _add_components(spec: APISpec) -> None:
    spec.components.security_scheme(
        "basic",
        {
            "type": "http",
            "scheme": "basic",
            "description": "A project key: username = public key, password = secret key."
            ' The key needs the "api" role. An auth token may also be sent as the username'
            " with an empty password (sentry-cli 2's `SENTRY_API_KEY`).",
        },
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An auth token (`flask sentry-api create-token`). Each operation"
            " lists the scope it needs; a token without it gets a 403.",
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
    details["properties"]["nextEventID"] = copy.deepcopy(NULLABLE_ID_SCHEMA)
    details["properties"]["previousEventID"] = copy.deepcopy(NULLABLE_ID_SCHEMA)
    details["required"] = sorted(details["properties"])
    details["description"] = "An event with the ids of its group's next and previous events."
    schemas["EventDetails"] = details


# -- parameters ----------------------------------------------------------------------------


def _ref(name: str) -> JSONSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _query_parameters(converter: _Converter, op: Op) -> list[JSONSchema]:
    """The parameters of ``op``'s query-argument schema, described from its fields."""
    if op.query is None:
        return []
    parameters = converter.schema2parameters(op.query, location="query")
    for parameter in parameters:
        parameter["required"] = bool(parameter.get("required"))
        parameter.setdefault("description", "")
    return t.cast(list[JSONSchema], parameters)


_PATH_PARAMETERS: dict[str, tuple[JSONSchema | t.Callable[[Settings], JSONSchema], str]] = {
    "project_id": ({"type": "integer"}, "A project id."),
    "group_id": ({"type": "integer"}, "A group id."),
    "event_id": ({"type": "integer"}, "An event's numeric id."),
    # Sentry's later paths name events by the SDK's id.
    "string:event_id": (
        {"type": "string", "pattern": r"^([0-9a-fA-F]{32}|[0-9a-fA-F-]{36}|latest|oldest)$"},
        "The event's 32-hex `eventID` (the id SDKs print); under an issue also `latest` or"
        " `oldest`.",
    ),
    "organization_slug": (
        lambda settings: {"type": "string", "enum": [settings.organization]},
        "The organization's slug (`SENTRY_API_ORGANIZATION`); any other is a 404.",
    ),
    "project_id_or_slug": (
        {"type": "string", "minLength": 1, "maxLength": MAX_SLUG_LENGTH},
        "A project's slug, or its numeric id.",
    ),
    "issue_id": (
        {"type": "string", "pattern": r"^([0-9]{1,19}|.+-[0-9]{1,19})$"},
        "An issue (group) id, or its short id (`WEB-12`).",
    ),
    "key": ({"type": "string", "pattern": TAG_KEY_PATTERN}, "A tag key."),
    "asset": (
        {"type": "string", "enum": sorted(apidocs.ASSETS)},
        "A file of the API reference page.",
    ),
    "version": (
        {
            "type": "string",
            "minLength": 1,
            "maxLength": sc.MAX_VERSION_LENGTH,
            "pattern": VERSION_PATTERN,
        },
        "A release version.",
    ),
}

_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_RULE_ARGUMENT_PARTS = re.compile(r"<(?:([^<>:]+):)?([^<>]+)>")


def openapi_path(rule: str, prefix: str) -> str:
    """The OpenAPI path of a Werkzeug rule under ``prefix``: ``<int:x>`` becomes ``{x}``."""
    if prefix and rule.startswith(prefix):
        rule = rule[len(prefix) :]
    return _RULE_ARGUMENT.sub(r"{\1}", rule) or "/"


# -- operations ----------------------------------------------------------------------------


def _links(op: Op) -> dict[str, JSONSchema]:
    """OpenAPI links: where a successful response's ids lead (also drives stateful tests)."""
    return {
        name: {"operationId": link.operation_id, "parameters": dict(link.parameters)}
        for name, link in op.links.items()
    }


def _headers(
    allow: str, *, allow_required: bool = True, more: JSONSchema | None = None
) -> JSONSchema:
    """The headers of a response: ``Content-Language``, ``Allow`` and ``more``."""
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
    headers.update(more or {})
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
    allow: str,
    *,
    auth: bool,
    bad_request: bool,
    body: bool,
    realm: str,
    head: bool,
    rate_limited: bool = False,
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
                more={
                    "WWW-Authenticate": {
                        "required": True,
                        "schema": {
                            "type": "string",
                            "enum": [f'Basic realm="{realm}"', f'Bearer realm="{realm}"'],
                        },
                    }
                },
            ),
        )
        add(
            403,
            "The key lacks the api role, the token the operation's scope, or the object"
            " belongs to another project.",
            plain,
        )
        add(404, "No such object, or a malformed path.", _headers(allow, allow_required=False))
    if body:
        add(413, "The body is larger than SENTRY_API_MAX_BODY_SIZE.", plain)
        add(415, "The body is not JSON.", plain)
    number: JSONSchema = {"required": True, "schema": {"type": "string", "pattern": sc.ID_PATTERN}}
    if auth and rate_limited:
        window = [f"X-Sentry-Rate-Limit-{name}" for name in ("Limit", "Remaining", "Reset")]
        add(
            429,
            "The credential's SENTRY_API_RATE_LIMIT window is full.",
            _headers(allow, more={name: number for name in ("Retry-After", *window)}),
        )
    if auth:
        add(
            503,
            "The storage is unavailable; try again later.",
            _headers(allow, more={"Retry-After": number}),
        )
    return responses


def _operation(
    view_class: type[APIView],
    method: str,
    op: Op,
    converter: _Converter,
    head: bool = False,
) -> JSONSchema:
    allow = view_class.allow_header()
    success_headers = _headers(allow)
    content: JSONSchema | None = None
    if op.body is not None:
        schema = _ref(op.body)
        if op.many:
            schema = {"type": "array", "items": schema}
            if op.paged:
                success_headers = _headers(allow, more={"Link": _link_header()})
        content = {"application/json": {"schema": schema}}
    success: JSONSchema = {"description": op.summary, "headers": success_headers}
    if content is not None and not head:
        success["content"] = content
        links = _links(op)
        if links:
            success["links"] = links
    responses: dict[int, JSONSchema] = {op.status: success}
    for status, description in op.extra.items():
        responses[status] = {"description": description, "headers": _headers(allow)}
    auth = view_class.requires_auth
    parameters = _query_parameters(converter, op)
    responses.update(
        _error_responses(
            allow,
            auth=auth,
            bad_request=bool(parameters),
            body=op.request is not None,
            realm=converter.settings.auth_realm,
            head=head,
            rate_limited=converter.settings.api_rate_limit is not None,
        )
    )
    if view_class is IndexView:
        responses[401] = {
            "description": "Credentials were sent but are not valid (no credentials: 200).",
            "headers": _headers(allow),
        }
        responses[503] = {
            "description": "The storage is unavailable (credentials could not be checked).",
            "headers": _headers(allow),
        }
        if not head:
            for status in (401, 503):
                responses[status]["content"] = {"application/json": {"schema": _ref("Detail")}}
    operation: JSONSchema = {
        "operationId": _operation_id(view_class, "head" if head else method),
        "summary": ("Headers of GET: " if head else "") + op.summary,
        "responses": {status: responses[status] for status in sorted(responses)},
    }
    if parameters:
        operation["parameters"] = parameters
    if op.request is not None:
        needs_fields = any(field.required for field in dict(_INPUTS)[op.request].fields.values())
        operation["requestBody"] = {
            # An empty body is read as {}: optional unless the object has required fields.
            "required": needs_fields,
            "description": "A JSON object; an empty body is `{}`.",
            "content": {"application/json": {"schema": _ref(op.request)}},
        }
    if not auth:
        operation["security"] = [{}, {"basic": []}, {"bearer": []}]
    else:
        # OpenAPI 3.1 lets a non-OAuth requirement name roles: here, the token scope.
        scope = view_class.required_scope(method)
        operation["security"] = [{"basic": []}, {"bearer": [scope]}]
        operation["description"] = f"Token scope: `{scope}` (or a broader one)."
    return operation


def _camel(endpoint: str) -> str:
    return "".join(part.title() for part in endpoint.split("_"))


def _operation_id(view_class: type[APIView], method: str, name: str | None = None) -> str:
    """``<method><View name>``; a view served at several paths names its other paths by
    their endpoint (``getOrgProjectIssues``)."""
    if name is None:
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


def _reference_page_operation(
    view_class: type[apidocs.ReferencePageView], method: str, path: str
) -> JSONSchema:
    """The API reference page (``/docs/``) or one of its files (``/docs/{asset}``): not
    JSON, and served whether or not credentials are sent."""
    allow = view_class.allow_header()
    security_headers: JSONSchema = {
        "Content-Security-Policy": {"required": True, "schema": {"type": "string"}},
        "Cache-Control": {"required": True, "schema": {"type": "string"}},
    }
    ok: JSONSchema = {
        "description": view_class.summary,
        "headers": _headers(allow, more=security_headers),
    }
    responses: dict[int, JSONSchema] = {
        200: ok,
        501: _error("flask-swagger-ui (Swagger UI's files) is not installed.", _headers(allow)),
    }
    if "{" in path:
        responses[404] = _error("No such file.", _headers(allow, allow_required=False))
    if method == "get":
        ok["content"] = {mime: {"schema": {"type": "string"}} for mime in view_class.renders}
    else:
        for response in responses.values():
            response.pop("content", None)
    return {
        "operationId": _operation_id(view_class, method),
        "summary": ("Headers of GET: " if method == "head" else "") + view_class.summary,
        "security": [],
        "responses": {status: responses[status] for status in sorted(responses)},
    }


def _fallback_operation(view_class: type[APIView], method: str) -> JSONSchema:
    # A view this module does not know yet: described, but only loosely.
    return {
        "operationId": _operation_id(view_class, method),
        "summary": (view_class.__doc__ or view_class.__name__).strip().splitlines()[0],
        "x-undocumented": True,
        "responses": {"default": {"description": "Not described yet."}},
    }


def _path_parameters(rules: t.Sequence[str], settings: Settings) -> list[JSONSchema]:
    """The path parameters of the rules behind one OpenAPI path: where rules differ only
    in a converter (``/events/<int:event_id>/`` and the SDK id's), a parameter takes
    either."""
    described: dict[str, list[tuple[JSONSchema, str]]] = {}
    for rule in rules:
        for converter, name in _RULE_ARGUMENT_PARTS.findall(rule):
            # A name may mean an integer under ``int`` and a string under another converter.
            kind = "int" if converter.startswith("int") else "string"
            schema, description = _PATH_PARAMETERS.get(
                f"{kind}:{name}", _PATH_PARAMETERS.get(name, ({"type": "string"}, name))
            )
            if callable(schema):
                schema = schema(settings)
            if (schema, description) not in described.setdefault(name, []):
                described[name].append((schema, description))
    parameters = []
    for name, variants in described.items():
        schema = variants[0][0] if len(variants) == 1 else {"anyOf": [v[0] for v in variants]}
        parameters.append(
            {
                "in": "path",
                "name": name,
                "required": True,
                "schema": copy.deepcopy(schema),
                "description": " Or: ".join(v[1] for v in variants),
            }
        )
    return parameters


def _path_operations(
    view_class: type[APIView], converter: _Converter, path: str, name: str | None
) -> dict[str, JSONSchema]:
    operations: dict[str, JSONSchema] = {}
    for verb in view_class.verbs():
        method = verb.lower()
        op = view_class.operation(method)
        if method == "options":
            operations[method] = _options_operation(view_class)
        elif getattr(view_class, "serves_openapi_document", False):
            operations[method] = _document_operation(view_class, method)
        elif issubclass(view_class, apidocs.ReferencePageView):
            operations[method] = _reference_page_operation(view_class, method, path)
        elif op is None:
            operations[method] = _fallback_operation(view_class, method)
        else:
            operations[method] = _operation(
                view_class, method, op, converter, head=method == "head"
            )
    if name is not None:
        for method, operation in operations.items():
            operation["operationId"] = _operation_id(view_class, method, name)
            _drop_unresolvable_links(operation, path)
    return operations


def _drop_unresolvable_links(operation: JSONSchema, path: str) -> None:
    """Remove the links that read a path parameter ``path`` lacks (a view's links are
    written for its first path: ``{project_id}`` is not in ``{project_id_or_slug}``)."""
    present = set(re.findall(r"{([^{}]+)}", path))
    for response in operation["responses"].values():
        links = response.get("links", {})
        for link_name in list(links):
            wanted = re.findall(r"\$request\.path\.(\w+)", json.dumps(links[link_name]))
            if not present.issuperset(wanted):
                del links[link_name]
        if "links" in response and not links:
            del response["links"]


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
            " releases, tags and stats, at the 2015 numeric paths and at today's"
            " organization/project paths. Authenticate with a project key over HTTP Basic"
            " auth (`curl -u PUBLIC:SECRET`) or an auth token (`Authorization: Bearer"
            " TOKEN`). Every response is JSON, errors included"
            ' (`{"detail": "..."}`, or messages per field for a body that fails validation).'
        },
        security=[{"basic": []}, {"bearer": []}],
    )
    converter = spec.plugins[0].converter  # type: ignore[attr-defined]
    converter.settings = settings
    converter.add_attribute_function(_refine_field)
    _add_components(spec)

    prefix = settings.url_prefix.rstrip("/")
    paths: dict[str, tuple[type[APIView], list[str], str | None]] = {}
    named: set[type[APIView]] = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        if not isinstance(view_class, type) or not issubclass(view_class, APIView):
            continue
        if issubclass(view_class, NotFoundView) or not rule.rule.startswith(prefix + "/"):
            continue
        path = openapi_path(rule.rule, prefix)
        if path in paths:
            paths[path][1].append(rule.rule)
            continue
        # A view's first path takes the view's name; its other paths, their endpoint's.
        name = None if view_class not in named else _camel(rule.endpoint.rpartition(".")[2])
        named.add(view_class)
        paths[path] = (view_class, [rule.rule], name)
    for path, (view_class, rules, name) in paths.items():
        spec.path(
            path=path,
            operations=_path_operations(view_class, converter, path, name),
            parameters=_path_parameters(rules, settings),
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
