"""Organization endpoints (SPEC §10): the one organization, the projects a credential
reaches, and the project's keys."""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import datetime

from flask import Response
from flask import request

from ..apidoc import Op
from ..auth import current_credential
from ..http import json_response
from ..pagination import Window
from ..pagination import apply_window
from ..schemas import KeyContext
from ..schemas import OrganizationSchema
from ..schemas import PageArgsSchema
from ..schemas import ProjectKeySchema
from ..schemas import ProjectSchema
from ..state import get_state
from ..storage import SCOPES
from ..storage import Project
from .base import APIView
from .base import OrganizationScoped

#: The one organization's id.
ORGANIZATION_ID = 1


@dataclasses.dataclass(frozen=True)
class Organization:
    id: int
    slug: str
    name: str
    date_created: datetime


def _by_id(row: t.Any) -> int:
    return t.cast(int, row.id)


class OrganizationView(OrganizationScoped):
    """An endpoint that shows the organization itself."""

    scope_kind = "org"

    def organization(self) -> Organization:
        slug = get_state().settings.organization
        # The organization is as old as the project the credential was made for.
        created = self.reachable_project().date_created
        return Organization(ORGANIZATION_ID, slug, slug.replace("-", " ").title(), created)


class OrganizationIndexView(OrganizationView):
    """The organizations the credential belongs to: the one this server is."""

    operations = {
        "get": Op("The organizations (one).", body="Organization", many=True, query=PageArgsSchema),
    }

    def get(self) -> Response:
        organization = self.organization()
        return self.list_response(
            lambda window: apply_window([organization], window, _by_id, _by_id),
            OrganizationSchema(many=True).dump,
        )


class OrganizationDetailsView(OrganizationView):
    """The organization."""

    operations = {"get": Op("Read the organization.", body="Organization")}

    def get(self) -> Response:
        return json_response(OrganizationSchema().dump(self.organization()))


class OrganizationProjectsView(OrganizationScoped):
    """The organization's projects the credential reaches."""

    scope_kind = "org"
    operations = {
        "get": Op(
            "The projects the credential reaches.", body="Project", many=True, query=PageArgsSchema
        ),
    }

    def get(self) -> Response:
        project = self.reachable_project()

        def fetch(window: Window) -> list[Project]:
            return apply_window([project], window, _by_id, _by_id)

        return self.list_response(fetch, ProjectSchema(many=True).dump)


class ProjectKeysView(APIView):
    """The project's keys, with the DSNs SDKs are configured with (secrets only for a
    credential holding every scope)."""

    operations = {
        "get": Op("The project's keys, oldest first.", body="ProjectKey", many=True, paged=False)
    }

    def get(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        keys = self.storage.list_keys(project_id)
        ingest_prefix = get_state().settings.ingest_url_prefix
        # SDKs post to <DSN path>/api/<project>/...: the DSN path is the ingest prefix
        # without its last "/api".
        base_url = request.host_url.rstrip("/") + request.script_root
        base_url += ingest_prefix.removesuffix("/api")
        # A key with the api role holds every scope: only a credential that holds them all
        # already may see key secrets.
        reveal = current_credential().scopes.issuperset(SCOPES)
        with KeyContext({"base_url": base_url, "reveal_secrets": reveal}):
            return json_response(ProjectKeySchema(many=True).dump(keys))
