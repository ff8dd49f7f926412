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
from ..auth import current_key
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
from ..storage import Group
from ..storage import Project
from ..storage import Storage

T = t.TypeVar("T")

#: The order of the ``Allow`` header (Django's, as Sentry sent it).
_VERB_ORDER = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS")


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
    are a JSON 405, and (unless :attr:`requires_auth` is off) a key with the Web API role
    is required."""

    init_every_request = False
    provide_automatic_options = False
    requires_auth: t.ClassVar[bool] = True
    #: What each method does, takes and answers: the OPTIONS answer, the OpenAPI document
    #: and the query-string parsing all come from here.
    operations: t.ClassVar[dict[str, Op]] = {}

    def __init__(self) -> None:
        # Credentials are checked inside dispatch_request, after the checks that need
        # none (OPTIONS, 405, ids out of range), rather than through ``decorators``.
        self._authenticated = basic_auth.login_required(self._handle)

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

    def dispatch_request(self, **kwargs: t.Any) -> t.Any:
        method = request.method
        if method == "OPTIONS":
            return self.describe()
        if method not in self.verbs():
            raise errors.MethodNotAllowed(f'Method "{method}" not allowed.')
        if any(value > MAX_ID for value in kwargs.values() if isinstance(value, int)):
            raise errors.NotFound()  # no stored id is that large (ids are 64-bit)
        op = self.operation(method)
        if op is not None and op.query is not None:
            repeated_parameter(op.query, request.args.to_dict(flat=False))
        if self.requires_auth:
            return self._authenticated(**kwargs)
        return self._handle(**kwargs)

    def _handle(self, **kwargs: t.Any) -> t.Any:
        method = request.method
        return getattr(self, "get" if method == "HEAD" else method.lower())(**kwargs)

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


class IndexView(APIView):
    """The API's root: its version, and what the credentials sent (if any) allow."""

    requires_auth = False
    operations = {
        "get": Op("The API version; with credentials, what they allow.", body="Index"),
    }

    def get(self) -> Response:
        body: dict[str, t.Any] = {"version": "0"}
        credentials = request.authorization
        if credentials is not None and credentials.type == "basic":
            try:
                key = check_key(credentials.username or "", credentials.password or "", role=None)
            except errors.AuthenticationFailed:
                pass
            else:
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
