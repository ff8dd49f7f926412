"""Release endpoints: ``/api/0/projects/<id>/releases/`` and ``.../releases/<version>/``."""

from __future__ import annotations

from flask import Response

from . import errors
from .blueprint import json_body
from .blueprint import json_response
from .pagination import paginate
from .schemas import ReleaseCreateSchema
from .schemas import ReleaseSchema
from .storage import Conflict
from .views import APIView


class ProjectReleasesView(APIView):
    """The project's releases: GET pages them newest first; POST {"version": ...} creates
    one (events' ``release`` values create them too)."""

    parameters = {"per_page": "page size (default 100)", "cursor": "from the Link header"}

    def get(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        page = paginate(
            lambda window: self.storage.list_releases(project_id, window),
            lambda release: release.id,
            self.cursor(),
            self.page_size(),
        )
        return self.paginated(page, ReleaseSchema(many=True).dump(page.rows))

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
