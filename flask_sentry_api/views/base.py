"""The base view of every web API endpoint (verbs, OPTIONS, auth, scoping, paging) and the
two views that are not resources: the API's root and its 404.

Concrete views stay thin: they load their query string with their operation's schema, call
the storage, paginate and dump. :class:`APIView` supplies the rest, so every endpoint
behaves the same way.
"""

from __future__ import annotations

import inspect
import operator
import re
import typing as t

from flask import Response
from flask import request
from flask.views import MethodView

from .. import errors
from ..apidoc import Link
from ..apidoc import Op
from ..apidoc import link
from ..auth import basic_auth
from ..auth import check_key
from ..auth import check_token
from ..auth import current_credential
from ..auth import token_auth
from ..auth import uses_bearer
from ..http import json_response
from ..pagination import Page
from ..pagination import Window
from ..pagination import link_header
from ..pagination import paginate
from ..schemas import PageArgs
from ..schemas import load_query
from ..schemas import repeated_parameter
from ..schemas import with_settings
from ..state import get_state
from ..storage import MAX_ID
from ..storage import MAX_SLUG_LENGTH
from ..storage import ROLE_API
from ..storage import SCOPES
from ..storage import Group
from ..storage import Project
from ..storage import Storage
from ..throttling import throttle_api

T = t.TypeVar("T")

#: The order of the ``Allow`` header (Django's, as Sentry sent it).
_VERB_ORDER = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS")
#: The access each verb needs, in the words of Sentry's scopes (``event:read``, ...).
_ACCESS = {"GET": "read", "HEAD": "read", "POST": "write", "PUT": "write", "DELETE": "admin"}


#: Runtime expressions of OpenAPI links (where a response's values lead).
PROJECT_FROM_PATH = "$request.path.project_id"
GROUP_FROM_PATH = "$request.path.group_id"
FIRST_ID = "$response.body#/0/id"


def project_links(project_id: str) -> dict[str, Link]:
    """Where a project leads: its groups, releases and stats."""
    return {
        "ProjectGroups": link("getProjectGroupIndex", project_id=project_id),
        "ProjectReleases": link("getProjectReleases", project_id=project_id),
        "ProjectStats": link("getProjectStats", project_id=project_id),
    }


def group_links(group_id: str) -> dict[str, Link]:
    """Where a group leads: its latest event, events, notes and tags."""
    return {
        "GroupLatestEvent": link("getGroupLatestEvent", group_id=group_id),
        "GroupEvents": link("getGroupEvents", group_id=group_id),
        "GroupNotes": link("getGroupNotes", group_id=group_id),
        "GroupTags": link("getGroupTags", group_id=group_id),
    }


class APIView(MethodView):
    """An endpoint: OPTIONS describes it, HEAD is GET without a body, other verbs it lacks
    are a JSON 405, and (unless :attr:`requires_auth` is off) a project key with the Web API
    role, or a token with the scope the method needs, is required.

    Paths in today's Sentry dialect (SPEC §10) reach the same methods: a project slug (or
    id) and an issue's short id (or id) are resolved to the ``project_id`` and
    ``group_id`` the methods take.
    """

    init_every_request = False
    provide_automatic_options = False
    requires_auth: t.ClassVar[bool] = True
    #: What its methods act on, for token scopes: ``event`` (issues, events, notes) or
    #: ``project``. GET needs ``<kind>:read``, POST/PUT ``:write``, DELETE ``:admin``
    #: unless the method's :attr:`Op.scope` says otherwise.
    scope_kind: t.ClassVar[str] = "project"
    #: What each method does, takes and answers: the OPTIONS answer, the OpenAPI document
    #: and the query-string parsing all come from here.
    operations: t.ClassVar[dict[str, Op]] = {}

    def __init__(self) -> None:
        # Credentials are checked inside dispatch_request, after the two answers that need
        # none (OPTIONS, 405), rather than through ``decorators``.
        self._with_basic = basic_auth.login_required(self._handle)
        self._with_bearer = token_auth.login_required(self._handle)

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

    @classmethod
    def operation(cls, method: str) -> Op | None:
        """The description of ``method`` (HEAD is described by GET)."""
        method = method.lower()
        return cls.operations.get("get" if method == "head" else method)

    @classmethod
    def required_scope(cls, method: str) -> str:
        """The token scope ``method`` needs."""
        op = cls.operation(method)
        if op is not None and op.scope is not None:
            return op.scope
        return f"{cls.scope_kind}:{_ACCESS[method.upper()]}"

    def dispatch_request(self, **kwargs: t.Any) -> t.Any:
        # Auth before everything (SPEC §11): only OPTIONS and a 405 come before the
        # credentials; every 400 or 404 comes after, so none tells a stranger what exists.
        method = request.method
        if method == "OPTIONS":
            # (A path the OpenAPI document does not allow is a 404 already: blueprint.py.)
            return self.describe()
        if method not in self.verbs():
            raise errors.MethodNotAllowed(f'Method "{method}" not allowed.')
        if self.requires_auth:
            return (self._with_bearer if uses_bearer() else self._with_basic)(**kwargs)
        return self._handle(**kwargs)

    def _handle(self, **kwargs: t.Any) -> t.Any:
        """The request once authenticated (or on a public endpoint): the one place where
        every request that may be served continues."""
        method = request.method
        if self.requires_auth:
            credential = current_credential()
            throttle_api(credential)
            if not credential.allows(self.required_scope(method)):
                raise errors.PermissionDenied()
        if any(value > MAX_ID for value in kwargs.values() if isinstance(value, int)):
            raise errors.NotFound()  # no stored id is that large (ids are 64-bit)
        op = self.operation(method)
        if op is not None and op.query is not None:
            repeated_parameter(op.query, request.args.to_dict(flat=False))
        handler = getattr(self, "get" if method == "HEAD" else method.lower())
        return handler(**self.resolve_path(kwargs))

    def resolve_path(self, kwargs: dict[str, t.Any]) -> dict[str, t.Any]:
        """The method's arguments from the path's: Sentry's later paths name the
        organization, a project by slug and an issue by short id."""
        # Routing matched the organization already: only the app's slug is converted.
        kwargs.pop("organization_slug", None)
        if "project_id_or_slug" in kwargs:
            kwargs["project_id"] = self.find_project(kwargs.pop("project_id_or_slug")).id
        if "issue_id" in kwargs:
            kwargs["group_id"] = self.find_group_id(kwargs.pop("issue_id"))
        return kwargs

    def find_project(self, id_or_slug: str) -> Project:
        """The project a path names by slug, or else by numeric id (404 if none)."""
        project = None
        if len(id_or_slug) <= MAX_SLUG_LENGTH:
            project = self.storage.get_project_by_slug(id_or_slug)
        if project is None and _is_id(id_or_slug):
            project = self.storage.get_project(int(id_or_slug))
        if project is None:
            raise errors.NotFound()
        return project

    def find_group_id(self, id_or_short_id: str) -> int:
        """The group id a path names by id, or by short id (``WEB-12``: the project's slug,
        any case, and the id)."""
        if _is_id(id_or_short_id):
            return int(id_or_short_id)
        slug, dash, number = id_or_short_id.rpartition("-")
        group = self.storage.get_group(int(number)) if dash and _is_id(number) else None
        if group is not None:
            project = self.storage.get_project(group.project_id)
            if project is not None and project.slug.upper() == slug.upper():
                return group.id
        raise errors.NotFound()

    @classmethod
    def parameters(cls) -> dict[str, str]:
        """Every query parameter of the endpoint's methods, with its description."""
        settings = get_state().settings
        described: dict[str, str] = {}
        for op in cls.operations.values():
            for name, field in op.query._declared_fields.items() if op.query else ():
                description = field.metadata.get("description", "")
                described.setdefault(name, with_settings(description, settings))
        return described

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
        parameters = cls.parameters()
        if parameters:
            body["parameters"] = parameters
        return json_response(body)

    # -- helpers for subclasses ------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        return get_state().storage

    def query_args(self) -> t.Any:
        """The request's query string, loaded by this method's ``Op.query`` schema."""
        op = self.operation(request.method)
        if op is None or op.query is None:
            raise TypeError(f"{type(self).__name__} documents no query for {request.method}")
        return load_query(op.query, request.args.to_dict(flat=False), get_state().settings)

    def project_for_key(self, project_id: int) -> Project:
        """The project, if the request's credential reaches it: 404 if there is no such
        project, 403 if it is another one (SPEC §3)."""
        project = self.storage.get_project(project_id)
        if project is None:
            raise errors.NotFound()
        if current_credential().project_id != project_id:
            raise errors.PermissionDenied()
        return project

    def group_for_key(self, group_id: int) -> tuple[Group, Project]:
        """The group and its project: 404 when missing, 403 when of another project."""
        group = self.storage.get_group(group_id)
        if group is None:
            raise errors.NotFound()
        return group, self.project_for_key(group.project_id)

    def list_response(
        self,
        fetch: t.Callable[[Window], t.Sequence[T]],
        dump: t.Callable[[t.Sequence[T]], t.Any],
        *,
        key: t.Callable[[T], int] = operator.attrgetter("id"),
        page: PageArgs | None = None,
        count_key: t.Callable[[int], int] | None = None,
    ) -> Response:
        """A page of a list ordered by ``key`` (newest id first unless told otherwise):
        ``page`` (default: this request's), its rows written out by ``dump``, and the
        ``Link`` header to the pages around it."""
        page = page if page is not None else self.query_args()
        rows = paginate(fetch, key, page.cursor, page.limit, count_key=count_key)
        return self.paginated(rows, dump(rows.rows))

    def group_list_response(
        self,
        group_id: int,
        fetch: t.Callable[[int, Window], t.Sequence[T]],
        dump: t.Callable[[t.Sequence[T]], t.Any],
    ) -> Response:
        """A page of one of a group's lists (events, notes), newest first."""
        group, _ = self.group_for_key(group_id)
        return self.list_response(lambda window: fetch(group.id, window), dump)

    def paginated(self, page: Page[t.Any], body: t.Any) -> Response:
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
        link = link_header(request.base_url, params, page)
        return json_response(body, headers={"Link": link})


class OrganizationScoped(APIView):
    """An endpoint under ``/organizations/<org>/``: what it lists is what the request's
    credential reaches (one project), narrowed by repeated ``project=<id>`` parameters."""

    def reachable_project(self) -> Project:
        """The credential's project, if every ``project`` parameter names it (or is -1,
        Sentry's "all projects"); 403 for any other project."""
        project_id = current_credential().project_id
        for value in request.args.getlist("project"):
            if value == "-1":
                continue
            if not _is_id(value):
                raise errors.BadRequest(f'Invalid value for parameter "project": {value[:50]!r}.')
            if int(value) != project_id:
                raise errors.PermissionDenied()
        return self.project_for_key(project_id)


class IndexView(APIView):
    """The API's root: its version, and what the credentials sent (if any) allow."""

    requires_auth = False
    operations = {
        "get": Op("The API version; with credentials, what they allow.", body="Index"),
    }

    def get(self) -> Response:
        body: dict[str, t.Any] = {"version": "0"}
        auth = _describe_credentials()
        if auth is not None:
            body["auth"] = auth
        return json_response(body)


def _describe_credentials() -> dict[str, t.Any] | None:
    """What the request's credentials allow: a token's project and scopes (what
    ``sentry-cli info`` reads), or a key's project, roles and scopes, whatever its roles.
    None when it sent none; credentials that are sent must be valid (401 otherwise, so a
    tool checking its token learns that it was revoked)."""
    credentials = request.authorization
    if uses_bearer():
        token = credentials.token if credentials is not None else None
    elif credentials is not None and credentials.type == "basic" and not credentials.password:
        token = credentials.username
    elif credentials is not None and credentials.type == "basic":
        key = check_key(credentials.username or "", credentials.password or "", role=None)
        scopes = list(SCOPES) if key.has_role(ROLE_API) else []
        return {"project": str(key.project_id), "roles": key.role_names, "scopes": scopes}
    else:
        return None
    credential = check_token(token or "")
    return {"project": str(credential.project_id), "scopes": credential.scope_list}


def _is_id(text: str) -> bool:
    """Whether a path segment is an id a storage could hold."""
    return text.isascii() and text.isdigit() and 0 < len(text) <= 19 and int(text) <= MAX_ID


class NotFoundView(APIView):
    """Anything under the API prefix that is not an endpoint."""

    requires_auth = False

    @classmethod
    def allow_header(cls) -> str:
        return ""

    def dispatch_request(self, **kwargs: t.Any) -> t.Any:
        raise errors.NotFound()
