"""Release endpoints: a project's releases (``/projects/<project>/releases/``, also under
the organization's name) and the organization's (``/organizations/<org>/releases/``), each
with ``.../<version>/``."""

from __future__ import annotations

import typing as t

from flask import Response
from flask import request
from marshmallow import EXCLUDE
from marshmallow import RAISE

from .. import errors
from ..apidoc import Op
from ..apidoc import link
from ..auth import current_credential
from ..http import json_body
from ..http import json_response
from ..schemas import PageArgsSchema
from ..schemas import ReleaseContext
from ..schemas import ReleaseCreateSchema
from ..schemas import ReleaseSchema
from ..schemas import ReleaseUpdateSchema
from ..storage import Conflict
from ..storage import Project
from ..storage import Release
from ..storage import ReleaseChanges
from .base import PROJECT_FROM_PATH
from .base import APIView
from .base import OrganizationScoped
from .base import project_links

_MANAGE = "project:releases"


def sentry_dialect() -> bool:
    """Whether the request came by one of Sentry's later paths (they name the
    organization), where release bodies may carry fields this server does not keep."""
    return "organization_slug" in (request.view_args or {})


def _unknown() -> t.Literal["exclude", "raise"]:
    # Sentry ignores unknown release fields; the 2015 paths refuse them, as every body.
    return EXCLUDE if sentry_dialect() else RAISE


def dump_releases(releases: t.Sequence[Release], project: Project) -> list[dict[str, t.Any]]:
    with ReleaseContext({"project": project}):
        return t.cast(list[dict[str, t.Any]], ReleaseSchema(many=True).dump(releases))


def dump_release(release: Release, project: Project) -> dict[str, t.Any]:
    return dump_releases([release], project)[0]


def _check_version(version: str) -> None:
    # A version that could never have been created names nothing.
    if ReleaseCreateSchema().validate({"version": version}):
        raise errors.NotFound()


class ReleaseListView(APIView):
    """What the release lists share: paging, and creating (idempotently on Sentry's later
    paths, where an existing version answers 208 with the release, as Sentry does)."""

    def list_releases(self, project: Project) -> Response:
        return self.list_response(
            lambda window: self.storage.list_releases(project.id, window),
            lambda releases: dump_releases(releases, project),
        )

    def create(self, project: Project, version: str, details: ReleaseChanges) -> Response:
        try:
            release = self.storage.create_release(project.id, version, details)
        except Conflict as exc:
            if not sentry_dialect():
                return json_response({exc.field: [exc.message]}, 400)
            existing = self.storage.update_release(project.id, version, details)
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise errors.NotFound() from None
            return json_response(dump_release(existing, project), 208)
        return json_response(dump_release(release, project), 201)


_CREATE = Op(
    "Create a release.",
    status=201,
    body="Release",
    request="ReleaseCreate",
    scope=_MANAGE,
    extra={208: "The version exists already (Sentry's later paths only); the body is it."},
    links={
        **project_links(PROJECT_FROM_PATH),
        "Release": link(
            "getReleaseDetails", project_id=PROJECT_FROM_PATH, version="$response.body#/version"
        ),
        "DeleteRelease": link(
            "deleteReleaseDetails",
            project_id=PROJECT_FROM_PATH,
            version="$response.body#/version",
        ),
    },
)


class ProjectReleasesView(ReleaseListView):
    """The project's releases: GET pages them newest first; POST {"version": ...} creates
    one (events' ``release`` values create them too)."""

    operations = {
        "get": Op(
            "The project's releases, newest first.",
            body="Release",
            many=True,
            query=PageArgsSchema,
            links={
                "FirstRelease": link(
                    "getReleaseDetails",
                    project_id=PROJECT_FROM_PATH,
                    version="$response.body#/0/version",
                ),
            },
        ),
        "post": _CREATE,
    }

    def get(self, project_id: int) -> Response:
        return self.list_releases(self.project_for_key(project_id))

    def post(self, project_id: int) -> Response:
        project = self.project_for_key(project_id)
        data = ReleaseCreateSchema(unknown=_unknown()).load(json_body())
        return self.create(project, data["version"], data["details"])


class OrganizationReleasesView(OrganizationScoped, ReleaseListView):
    """The organization's releases (of the projects the credential reaches): GET pages
    them newest first; POST creates one in the projects its ``projects`` names."""

    operations = {
        "get": Op("The releases, newest first.", body="Release", many=True, query=PageArgsSchema),
        "post": Op(
            "Create a release in the projects `projects` names.",
            status=201,
            body="Release",
            request="ReleaseCreate",
            scope=_MANAGE,
            extra=_CREATE.extra,
        ),
    }

    def get(self) -> Response:
        return self.list_releases(self.reachable_project())

    def post(self) -> Response:
        data = ReleaseCreateSchema(unknown=EXCLUDE).load(json_body())
        if not data["projects"]:
            return json_response({"projects": ["Name at least one project."]}, 400)
        named = []
        for name in data["projects"]:
            try:
                named.append(self.find_project(name))
            except errors.NotFound:
                return json_response({"projects": [f"No project {name!r}."]}, 400)
        for project in named:
            # A credential reaches one project: every name must be it (403 otherwise).
            self.project_for_key(project.id)
        return self.create(named[0], data["version"], data["details"])


class ReleaseDetailsView(APIView):
    """One release of the project: GET reads it, PUT records ``ref``, ``url``,
    ``dateReleased`` (``sentry-cli releases finalize``) or ``dateStarted``, DELETE removes it."""

    operations = {
        "get": Op("Read a release.", body="Release"),
        "put": Op(
            "Record ref, url, dateReleased or dateStarted.",
            body="Release",
            request="ReleaseUpdate",
            scope=_MANAGE,
        ),
        "delete": Op("Delete a release.", status=204, scope=_MANAGE),
    }

    def project(self, project_id: int | None) -> Project:
        return self.project_for_key(
            project_id if project_id is not None else current_credential().project_id
        )

    def get(self, version: str, project_id: int | None = None) -> Response:
        project = self.project(project_id)
        _check_version(version)
        release = self.storage.get_release(project.id, version)
        if release is None:
            raise errors.NotFound()
        return json_response(dump_release(release, project))

    def put(self, version: str, project_id: int | None = None) -> Response:
        project = self.project(project_id)
        _check_version(version)
        changes = ReleaseUpdateSchema(unknown=_unknown()).load(json_body())
        release = self.storage.update_release(project.id, version, changes)
        if release is None:
            raise errors.NotFound()
        return json_response(dump_release(release, project))

    def delete(self, version: str, project_id: int | None = None) -> Response:
        project = self.project(project_id)
        _check_version(version)
        if not self.storage.delete_release(project.id, version):
            raise errors.NotFound()
        return json_response(None, 204)


class OrganizationReleaseDetailsView(OrganizationScoped, ReleaseDetailsView):
    """One release of the organization (in the project the credential reaches)."""

    def project(self, project_id: int | None) -> Project:
        return self.reachable_project()
