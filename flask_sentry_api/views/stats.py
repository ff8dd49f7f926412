"""Stats endpoints: event counts of a project or a group per time bucket."""

from __future__ import annotations

from flask import Response

from ..apidoc import Op
from ..http import json_response
from ..schemas import StatsArgsSchema
from ..stats import fill_series
from .base import APIView


class ProjectStatsView(APIView):
    """Events received by the project per bucket: ``[[unix_ts, count], ...]``."""

    operations = {
        "get": Op(
            "Events received by the project per bucket.", body="StatsSeries", query=StatsArgsSchema
        )
    }

    def get(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        resolution, first, last = self.query_args()
        counts = self.storage.project_stats(project_id, resolution, first, last)
        return json_response(fill_series(counts, first, last, resolution))


class GroupStatsView(APIView):
    """Events of the group per bucket: ``[[unix_ts, count], ...]``."""

    scope_kind = "event"

    operations = {
        "get": Op("Events of the group per bucket.", body="StatsSeries", query=StatsArgsSchema),
    }

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        resolution, first, last = self.query_args()
        counts = self.storage.group_stats([group.id], resolution, first, last)
        return json_response(fill_series(counts.get(group.id, {}), first, last, resolution))
