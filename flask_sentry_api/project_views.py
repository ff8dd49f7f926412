"""Project endpoints: ``/api/0/projects/<project_id>/``."""

from __future__ import annotations

from flask import Response

from .blueprint import json_body
from .blueprint import json_response
from .schemas import ProjectSchema
from .schemas import ProjectUpdateSchema
from .storage import Conflict
from .views import APIView


class ProjectDetailsView(APIView):
    """A project: GET reads it; PUT changes any of name, slug and isPublic."""

    def get(self, project_id: int) -> Response:
        return json_response(ProjectSchema().dump(self.project_for_key(project_id)))

    def put(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        changes = ProjectUpdateSchema().load(json_body())
        try:
            project = self.storage.update_project(project_id, changes)
        except Conflict as exc:
            return json_response({exc.field: [exc.message]}, 400)
        return json_response(ProjectSchema().dump(project))
