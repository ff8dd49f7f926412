"""Release endpoints: ``/api/0/projects/<id>/releases/`` and ``.../releases/<version>/``."""

from __future__ import annotations

from flask import Response

from .. import errors
from ..apidoc import Op
from ..apidoc import link
from ..http import json_body
from ..http import json_response
from ..schemas import PageArgsSchema
from ..schemas import ReleaseCreateSchema
from ..schemas import ReleaseSchema
from ..storage import Conflict
from .base import PROJECT_FROM_PATH
from .base import APIView
from .base import project_links


class ProjectReleasesView(APIView):
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
        "post": Op(
            "Create a release.",
            status=201,
            body="Release",
            request="ReleaseCreate",
            links={
                **project_links(PROJECT_FROM_PATH),
                "Release": link(
                    "getReleaseDetails",
                    project_id=PROJECT_FROM_PATH,
                    version="$response.body#/version",
                ),
                "DeleteRelease": link(
                    "deleteReleaseDetails",
                    project_id=PROJECT_FROM_PATH,
                    version="$response.body#/version",
                ),
            },
        ),
    }

    def get(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        return self.list_response(
            lambda window: self.storage.list_releases(project_id, window),
            ReleaseSchema(many=True).dump,
        )

    def post(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        version = ReleaseCreateSchema().load(json_body())["version"]
        try:
            release = self.storage.create_release(project_id, version)
        except Conflict as exc:
            return json_response({exc.field: [exc.message]}, 400)
        return json_response(ReleaseSchema().dump(release), 201)


def _check_version(version: str) -> None:
    # A version that could never have been created names nothing.
    if ReleaseCreateSchema().validate({"version": version}):
        raise errors.NotFound()


class ReleaseDetailsView(APIView):
    """One release of the project: GET reads it, DELETE removes it."""

    operations = {
        "get": Op("Read a release.", body="Release"),
        "delete": Op("Delete a release.", status=204),
    }

    def get(self, project_id: int, version: str) -> Response:
        self.project_for_key(project_id)
        _check_version(version)
        release = self.storage.get_release(project_id, version)
        if release is None:
            raise errors.NotFound()
        return json_response(ReleaseSchema().dump(release))

    def delete(self, project_id: int, version: str) -> Response:
        self.project_for_key(project_id)
        _check_version(version)
        if not self.storage.delete_release(project_id, version):
            raise errors.NotFound()
        return json_response(None, 204)
