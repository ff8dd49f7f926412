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
    "series_filler",
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
    return series_filler(first, last, resolution)(counts)


def series_filler(
    first: int, last: int, resolution: int
) -> t.Callable[[t.Mapping[int, int]], list[list[int]]]:
    """:func:`fill_series` for one bucket range, to be called for each group of a page.

    The buckets are laid out once: each series is a copy of the all-zero one with the
    buckets that have events replaced, so a group costs its non-empty buckets rather than
    a Python step per bucket. The series share their ``[bucket, 0]`` pairs: treat them as
    read-only (they are written out as JSON).
    """
    zeros = [[bucket, 0] for bucket in range(first, last + 1, resolution)]
    size = len(zeros)

    def fill(counts: t.Mapping[int, int]) -> list[list[int]]:
        series = zeros.copy()
        for bucket, count in counts.items():
            index, offset = divmod(bucket - first, resolution)
            # Counts outside the range, or not at a bucket start, are not in the series.
            if not offset and 0 <= index < size:
                series[index] = [bucket, count]
        return series

    return fill


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
