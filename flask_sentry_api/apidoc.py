"""Operation descriptions: what a view documents about each of its methods.

A view class carries ``operations = {"get": Op(...), ...}``. Its OPTIONS answer and the
OpenAPI document (:mod:`flask_sentry_api.openapi`) are both derived from them, and its
query string is parsed by the same ``Op.query`` schema, so an endpoint is described in one
place (flask-smorest records ``_apidoc`` on its views the same way). Pure data: nothing here
imports Flask.
"""

from __future__ import annotations

import dataclasses
import typing as t

if t.TYPE_CHECKING:
    from .schemas import QueryArgs


@dataclasses.dataclass(frozen=True)
class Link:
    """An OpenAPI link: where a successful response's values lead."""

    operation_id: str
    parameters: t.Mapping[str, str]


def link(operation_id: str, **parameters: str) -> Link:
    return Link(operation_id, parameters)


@dataclasses.dataclass(frozen=True)
class Op:
    """One documented operation of a view (GET also documents HEAD)."""

    summary: str
    status: int = 200
    #: Response body: an OpenAPI schema component name (None: no body).
    body: str | None = None
    #: The body is a list of ``body``; with ``paged``, a page with a ``Link`` header.
    many: bool = False
    paged: bool = True
    #: The query-string schema: parses the request's parameters and documents them.
    query: type[QueryArgs] | None = None
    #: Request body: an OpenAPI schema component name.
    request: str | None = None
    #: Other success statuses, without a body, and what they mean.
    extra: t.Mapping[int, str] = dataclasses.field(default_factory=dict)
    links: t.Mapping[str, Link] = dataclasses.field(default_factory=dict)
    #: The token scope it needs, when not the one its view's kind and the verb imply.
    scope: str | None = None
