"""The base view of every endpoint (verbs, OPTIONS, auth, scoping, paging) and the index.

Concrete views stay thin: they load arguments with a schema, call the storage, paginate
and dump. :class:`APIView` supplies the rest so every endpoint behaves the same way.
"""

from __future__ import annotations

import inspect
import re
import typing as t

from flask import Response
from flask import request
from flask.views import MethodView

from . import errors
from .auth import basic_auth
from .auth import check_credentials
from .auth import current_key
from .blueprint import json_response
from .extension import get_state
from .pagination import Page
from .pagination import link_header
from .pagination import parse_cursor
from .pagination import parse_page_size
from .storage import Group
from .storage import Project
from .storage import Storage

#: The largest id a storage holds (64-bit); URLs may carry any number of digits.
MAX_ID = 2**63 - 1

#: Query parameters that take one value: repeating one is ambiguous, so it is a 400.
_SINGLE_VALUED = frozenset(
    {"query", "status", "sort", "since", "until", "statsPeriod", "limit", "per_page", "cursor"}
    | {"resolution"}
)

#: The order of the ``Allow`` header (Django's, as Sentry sent it).
_VERB_ORDER = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS")


class APIView(MethodView):
    """An endpoint: OPTIONS describes it, HEAD is GET without a body, other verbs it lacks
    are a JSON 405, and (unless :attr:`requires_auth` is off) a key with the Web API role
    is required."""

    init_every_request = False
    provide_automatic_options = False
    requires_auth: t.ClassVar[bool] = True
    #: Query parameters the endpoint documents in its OPTIONS answer.
    parameters: t.ClassVar[dict[str, str]] = {}

    @classmethod
    def verbs(cls) -> list[str]:
        present = {verb for verb in _VERB_ORDER if hasattr(cls, verb.lower())}
        if "GET" in present:
            present.add("HEAD")
        present.add("OPTIONS")
        return [verb for verb in _VERB_ORDER if verb in present]

    @classmethod
    def allow_header(cls) -> str:
        return ", ".join(cls.verbs())

    def dispatch_request(self, **kwargs: t.Any) -> t.Any:
        method = request.method
        if method == "OPTIONS":
            return self.describe()
        handler = getattr(self, "get" if method == "HEAD" else method.lower(), None)
        if method not in self.verbs() or handler is None:
            raise errors.MethodNotAllowed(f'Method "{method}" not allowed.')
        if any(value > MAX_ID for value in kwargs.values() if isinstance(value, int)):
            raise errors.NotFound()  # no stored id is that large (ids are 64-bit)
        for name in _SINGLE_VALUED.intersection(request.args):
            if len(request.args.getlist(name)) > 1:
                raise errors.BadRequest(f'Parameter "{name}" is given more than once.')
        if self.requires_auth:
            return basic_auth.login_required(role="api")(handler)(**kwargs)
        return handler(**kwargs)

    @classmethod
    def describe(cls) -> Response:
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__.removesuffix("View"))
        body: dict[str, t.Any] = {
            "name": words,
            "description": inspect.cleandoc(cls.__doc__ or ""),
            "methods": cls.verbs(),
            "renders": ["application/json"],
            "parses": ["application/json"],
        }
        if cls.parameters:
            body["parameters"] = cls.parameters
        return json_response(body)

    # -- helpers for subclasses ------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        return get_state().storage

    def project_for_key(self, project_id: int) -> Project:
        """The project, if the request's key belongs to it (403 otherwise, 404 if gone)."""
        if current_key().project_id != project_id:
            raise errors.PermissionDenied()
        project = self.storage.get_project(project_id)
        if project is None:
            raise errors.NotFound()
        return project

    def group_for_key(self, group_id: int) -> tuple[Group, Project]:
        """The group and its project: 404 when missing, 403 when of another project."""
        group = self.storage.get_group(group_id)
        if group is None:
            raise errors.NotFound()
        return group, self.project_for_key(group.project_id)

    def page_size(self) -> int:
        settings = get_state().settings
        limit, per_page = request.args.get("limit"), request.args.get("per_page")
        if limit is not None and per_page is not None and limit != per_page:
            raise errors.BadRequest('Give "limit" or "per_page", not both with different values.')
        return parse_page_size(
            request.args, default=settings.default_page_size, maximum=settings.max_page_size
        )

    def cursor(self) -> t.Any:
        return parse_cursor(request.args.get("cursor"))

    def paginated(self, page: Page[t.Any], body: t.Any) -> Response:
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
        link = link_header(request.base_url, params, page)
        return json_response(body, headers={"Link": link})


class IndexView(APIView):
    """The API's root: its version, and what the credentials sent (if any) allow."""

    requires_auth = False

    def get(self) -> Response:
        body: dict[str, t.Any] = {"version": "0"}
        credentials = request.authorization
        if credentials is not None and credentials.type == "basic":
            try:
                key = check_credentials(credentials.username or "", credentials.password or "")
            except errors.AuthenticationFailed:
                key = None
            if key is not None:
                body["auth"] = {"project": str(key.project_id), "roles": key.role_names}
        return json_response(body)


class NotFoundView(APIView):
    """Anything under the API prefix that is not an endpoint."""

    requires_auth = False

    @classmethod
    def allow_header(cls) -> str:
        return ""

    def dispatch_request(self, **kwargs: t.Any) -> t.Any:
        raise errors.NotFound()
