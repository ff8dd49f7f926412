"""The dashboard's issues page next to the API's group page, and its time against depth.

Issue 15 asks that the issues page cost at most twice the API's group page for the same
rows and be flat in depth like the API. Both run on the example app's server (the
dashboard opened with :data:`PASSWORD`, user ``admin``):

- **cost**: ``/sentry/projects/<id>/?limit=100`` against ``/api/0/projects/<id>/groups/
  ?limit=100``, both with their default 24-hour stats and the default ``is:unresolved``
  search, under the same load generator as the overhead runs, taking turns in
  :attr:`Params.rounds` rounds. The page must list the same groups in the same order as
  the API's page (read from its issue links) or the run fails;
- **depth**: the page at depth 0 and at the last page of the project (an empty search, so
  every status), at the keyset cursor :func:`benchmarks.depth.cursor_at` builds: the
  dashboard takes the API's ``cursor`` parameter as it is. Median of sequential requests
  on one connection, as the depth run does for the API.
"""

from __future__ import annotations

import json
import re
import typing as t

import sqlalchemy as sa

from . import depth
from . import load
from . import loadgen
from . import server
from .common import Context
from .data import PROJECT_ID
from .data import Dataset

#: The dashboard password the benchmarks' example-app server is started with.
PASSWORD = "bench-dashboard"
PAGE = 100
API_PATH = f"/api/0/projects/{PROJECT_ID}/groups/?limit={PAGE}"
PAGE_PATH = f"/sentry/projects/{PROJECT_ID}/?limit={PAGE}"
_ISSUE_LINK = re.compile(rb'href="/sentry/issues/(\d+)/"')


def env() -> dict[str, str]:
    """What the example app's server needs in its environment to open the dashboard."""
    return {"EXAMPLE_DASHBOARD_PASSWORD": PASSWORD}


def page_ids(html: bytes) -> list[int]:
    """The group ids an issues page links to, in order (a row may link more than once)."""
    return list(dict.fromkeys(int(found) for found in _ISSUE_LINK.findall(html)))


def _get(port: int, path: str, headers: t.Mapping[str, str]) -> bytes:
    status, response = loadgen.send(
        port, loadgen.build_request("GET", path, port=port, headers=headers)
    )
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {response[:300]!r}")
    return response.split(b"\r\n\r\n", 1)[1]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _cost(ctx: Context, ours: server.Server, dataset: Dataset) -> dict[str, t.Any]:
    api_auth = loadgen.basic_auth(dataset.public_key, dataset.secret_key)
    page_auth = loadgen.basic_auth("admin", PASSWORD)
    api_body = _get(ours.port, API_PATH, api_auth)
    page_body = _get(ours.port, PAGE_PATH, page_auth)
    api_ids = [int(group["id"]) for group in json.loads(api_body)]
    if len(api_ids) != PAGE:
        raise RuntimeError(f"GET {API_PATH} returned {len(api_ids)} groups, not {PAGE}")
    if page_ids(page_body) != api_ids:
        raise RuntimeError(
            f"GET {PAGE_PATH} lists {page_ids(page_body)[:5]}..., the API {api_ids[:5]}..."
        )
    runs = (("api", API_PATH, api_auth), ("dashboard", PAGE_PATH, page_auth))
    measured: dict[str, list[loadgen.LoadResult]] = {label: [] for label, _, _ in runs}
    rounds = ctx.params.rounds
    for number in range(rounds):
        for label, path, auth in runs:
            ctx.log(f"dashboard: {label} {path} ({load.describe(ctx)}, round {number + 1})")
            result = load.measure(
                ctx, ours, "GET", path, headers=auth, warmup=None if number == 0 else 0.0
            )
            if result.errors:
                ctx.log(f"dashboard: {label} {path}: {result.errors} errors")
            measured[label].append(result)
    api, page = (loadgen.combine(measured[label]) for label, _, _ in runs)
    clean = not (api.errors or page.errors)
    cpu = (
        _ratio(page.server_cpu_s / page.requests, api.server_cpu_s / api.requests)
        if clean and api.requests and page.requests and api.server_cpu_s and page.server_cpu_s
        else None
    )
    return {
        "rows": PAGE,
        "duration_s": ctx.params.duration * rounds,
        "rounds": rounds,
        "api": {"path": API_PATH, "bytes": len(api_body), **api.as_dict()},
        "dashboard": {"path": PAGE_PATH, "bytes": len(page_body), **page.as_dict()},
        # How many times the API's rate the page's is below it: its cost over the API's.
        "ratio_dashboard_api": _ratio(api.rps, page.rps) if clean else None,
        "cpu_ratio_dashboard_api": cpu,
    }


def _depth(ctx: Context, ours: server.Server, dataset: Dataset) -> dict[str, t.Any]:
    engine = sa.create_engine(dataset.url)
    auth = loadgen.basic_auth("admin", PASSWORD)
    repeats = ctx.params.depth_repeats
    pages: list[dict[str, t.Any]] = []
    try:
        for at in (0, dataset.groups - PAGE):
            cursor, expected_id = depth.cursor_at(engine, at)
            path = f"/sentry/projects/{PROJECT_ID}/?query=&limit={PAGE}"
            if cursor is not None:
                path += f"&cursor={cursor}"
            ctx.log(f"dashboard depth {at:,}: GET {path}")
            raw = loadgen.build_request("GET", path, port=ours.port, headers=auth)
            seconds, response = depth._time_http(ours.port, raw, repeats)
            ids = page_ids(response.split(b"\r\n\r\n", 1)[1])
            if len(ids) != PAGE or ids[0] != expected_id:
                raise RuntimeError(
                    f"dashboard depth {at}: {len(ids)} rows from {ids[:1]}, not {expected_id}"
                )
            pages.append({"depth": at, "cursor": cursor, "http_ms": round(seconds * 1000, 2)})
    finally:
        engine.dispose()
    return {
        "repeats": repeats,
        "loadgen": f"python, 1 connection, median of {repeats} sequential requests",
        "pages": pages,
        "ratio_deepest_first": round(pages[-1]["http_ms"] / pages[0]["http_ms"], 3),
    }


def run(ctx: Context, ours: server.Server, dataset: Dataset) -> dict[str, t.Any]:
    """``ours`` is the example app started with :func:`env` in its environment."""
    return {
        "groups": dataset.groups,
        "loadgen": load.describe(ctx),
        "cost": _cost(ctx, ours, dataset),
        "depth": _depth(ctx, ours, dataset),
    }
