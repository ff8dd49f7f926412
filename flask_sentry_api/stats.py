"""Time-series bucket arithmetic for stats: aligned bucket ranges and zero-filled series."""

from __future__ import annotations

import typing as t

from .errors import BadRequest
from .storage import RESOLUTIONS

__all__ = [
    "RESOLUTIONS",
    "STATS_PERIODS",
    "align",
    "bucket_range",
    "fill_series",
    "period_buckets",
    "requested_buckets",
]

#: The ``resolution`` of a stats request when none is given.
DEFAULT_RESOLUTION = "1h"
#: ``statsPeriod`` of the group list: bucket size and number of buckets.
STATS_PERIODS = {"24h": (3600, 24), "14d": (86400, 14)}


def align(moment: int, resolution: int) -> int:
    """The start of the bucket of ``resolution`` seconds that holds Unix time ``moment``."""
    return moment - moment % resolution


def period_buckets(period: str, now: int) -> tuple[int, int, int]:
    """(resolution, first bucket, last bucket) of a group-list ``statsPeriod`` ending now."""
    resolution, count = STATS_PERIODS[period]
    last = align(now, resolution)
    return resolution, last - (count - 1) * resolution, last


def bucket_range(since: int, until: int, resolution: int, max_buckets: int) -> tuple[int, int]:
    """(first, last) bucket starts covering ``[since, until]``; 400 if reversed or too many."""
    if until < since:
        raise BadRequest('Invalid value for parameter "until": must not be before "since".')
    first, last = align(since, resolution), align(until, resolution)
    count = (last - first) // resolution + 1
    if count > max_buckets:
        raise BadRequest(
            f"Too many buckets: {count} requested, at most {max_buckets}; "
            'narrow "since"/"until" or use a coarser "resolution".'
        )
    return first, last


def fill_series(
    counts: t.Mapping[int, int], first: int, last: int, resolution: int
) -> list[list[int]]:
    """``[[bucket_start, count], ...]`` from ``first`` to ``last``, zeros included."""
    return [[bucket, counts.get(bucket, 0)] for bucket in range(first, last + 1, resolution)]


def requested_buckets(
    resolution_name: str | None,
    since: int | None,
    until: int | None,
    *,
    now: int,
    max_buckets: int,
) -> tuple[int, int, int]:
    """(resolution, first bucket, last bucket) of a stats request.

    Defaults: ``resolution`` 1h, ``until`` now, ``since`` a day before ``until`` (fewer
    buckets if a day would exceed ``max_buckets``).
    """
    name = resolution_name or DEFAULT_RESOLUTION
    if name not in RESOLUTIONS:
        raise BadRequest(
            f'Invalid value for parameter "resolution": use one of {", ".join(RESOLUTIONS)}.'
        )
    resolution = RESOLUTIONS[name]
    until = now if until is None else until
    if since is None:
        since = until - (min(86400 // resolution, max_buckets) - 1) * resolution
    first, last = bucket_range(since, until, resolution, max_buckets)
    return resolution, first, last
