"""Project endpoints: ``/api/0/projects/<project_id>/``."""

from __future__ import annotations

from flask import Response

from ..apidoc import Op
from ..http import json_body
from ..http import json_response
from ..schemas import ProjectSchema
from ..schemas import ProjectUpdateSchema
from ..storage import Conflict
from .base import APIView
from .base import project_links


class ProjectDetailsView(APIView):
    """A project: GET reads it; PUT changes any of name, slug and isPublic."""

    operations = {
        "get": Op("Read the project.", body="Project", links=project_links("$response.body#/id")),
        "put": Op(
            "Change the project's name, slug or isPublic.",
            body="Project",
            request="ProjectUpdate",
            links=project_links("$response.body#/id"),
        ),
    }

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
