"""Stats endpoints: event counts of a project or a group per time bucket."""

from __future__ import annotations

import time

from flask import Response
from flask import request

from . import errors
from .blueprint import json_response
from .extension import get_state
from .search import parse_time_bound
from .stats import RESOLUTIONS
from .stats import bucket_range
from .stats import fill_series
from .storage import epoch_seconds
from .views import APIView


def requested_buckets() -> tuple[int, int, int]:
    """(resolution, first bucket, last bucket) from ``since``, ``until`` and ``resolution``.

    Defaults: ``resolution=1h``, ``until`` now, ``since`` a day earlier (fewer buckets
    if a day would exceed SENTRY_API_STATS_MAX_BUCKETS).
    """
    args = request.args
    name = args.get("resolution") or "1h"
    if name not in RESOLUTIONS:
        raise errors.BadRequest(
            f'Invalid value for parameter "resolution": use one of {", ".join(RESOLUTIONS)}.'
        )
    resolution = RESOLUTIONS[name]
    max_buckets = get_state().settings.stats_max_buckets
    until = _bound("until") if args.get("until") else int(time.time())
    if args.get("since"):
        since = _bound("since")
    else:
        since = until - (min(86400 // resolution, max_buckets) - 1) * resolution
    first, last = bucket_range(since, until, resolution, max_buckets)
    return resolution, first, last


def _bound(name: str) -> int:
    return epoch_seconds(parse_time_bound(request.args[name], param=name))


class ProjectStatsView(APIView):
    """Events received by the project per bucket: ``[[unix_ts, count], ...]``."""

    parameters = {
        "since": "start (Unix seconds or ISO 8601; default: a day before until)",
        "until": "end (default: now)",
        "resolution": "10s | 1h (default) | 1d",
    }

    def get(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        resolution, first, last = requested_buckets()
        counts = self.storage.project_stats(project_id, resolution, first, last)
        return json_response(fill_series(counts, first, last, resolution))


class GroupStatsView(APIView):
    """Events of the group per bucket: ``[[unix_ts, count], ...]``."""

    parameters = ProjectStatsView.parameters

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        resolution, first, last = requested_buckets()
        counts = self.storage.group_stats([group.id], resolution, first, last)
        return json_response(fill_series(counts.get(group.id, {}), first, last, resolution))
