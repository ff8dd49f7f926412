"""Per-request overhead: our endpoints, the bare-Flask ceiling and the DRF peer under load.

Three requests, as the issue measured them: one project (``GET /api/0/projects/<id>/``),
the first page of 100 groups with the default 24-hour stats, and the same page without
stats (``?statsPeriod=``). Each server runs under the same gunicorn worker model
(:data:`server.WORKERS` sync workers) and all three are up at once, so the runs of one
request follow each other directly (ours, bare, DRF; in :attr:`Params.rounds` rounds
taking turns) and share the machine's state:

- **bare** replays the bytes and headers captured from ours, so ours/bare is the cost of
  auth, the database and serialisation over Flask itself;
- **DRF** builds the same group pages from its own queries (DRF generic view, model
  serializer, cursor pagination) and must answer with the same bytes as ours: both are
  fetched with the same ``Host`` header (permalinks carry it) and compared; the result
  says whether they are identical.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import typing as t
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor

from . import load
from . import loadgen
from . import server
from .bare_app import save_responses
from .common import Context
from .data import PROJECT_ID
from .data import Dataset

ENDPOINTS = {
    "project": f"/api/0/projects/{PROJECT_ID}/",
    "groups": f"/api/0/projects/{PROJECT_ID}/groups/",
    "groups_nostats": f"/api/0/projects/{PROJECT_ID}/groups/?statsPeriod=",
}
#: The requests the DRF peer serves too.
PEER_ENDPOINTS = ("groups", "groups_nostats")
PEER_APP = "benchmarks.peers.drf.wsgi:application"
PAGE = 100


def fetch(port: int, path: str, headers: t.Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        # A Host header given here replaces the one http.client would add.
        connection.request("GET", path, headers=dict(headers))
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _ratio(a: loadgen.LoadResult, b: loadgen.LoadResult) -> float | None:
    """a/b in requests per second; none when either run had errors (its rate means little)."""
    if a.errors or b.errors or not b.rps:
        return None
    return round(a.rps / b.rps, 3)


def _cpu_ratio(a: loadgen.LoadResult, b: loadgen.LoadResult) -> float | None:
    """The same ratio from the workers' CPU time per request (b's over a's): what the
    rate ratio would be on otherwise idle cores, and less moved by a busy neighbour."""
    if a.errors or b.errors or not (a.requests and b.requests):
        return None
    if not (a.server_cpu_s and b.server_cpu_s):
        return None
    return round((b.server_cpu_s / b.requests) / (a.server_cpu_s / a.requests), 3)


def _first_difference(a: bytes, b: bytes) -> str:
    pairs = enumerate(zip(a, b, strict=False))
    at = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))
    return f"at byte {at}: ours {a[at - 20 : at + 40]!r}, DRF {b[at - 20 : at + 40]!r}"


def run(ctx: Context, ours: server.Server, dataset: Dataset) -> dict[str, t.Any]:
    auth = loadgen.basic_auth(dataset.public_key, dataset.secret_key)
    # Permalinks in a group page carry the request's host; the DRF peer is asked with
    # ours' so that equal pages are equal bytes.
    host = {"Host": f"127.0.0.1:{ours.port}"}
    captured: dict[str, tuple[dict[str, str], bytes]] = {}
    for name, path in ENDPOINTS.items():
        status, headers, body = fetch(ours.port, path, {**auth, **host})
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        if name != "project" and len(json.loads(body)) != PAGE:
            raise RuntimeError(f"GET {path} returned {len(json.loads(body))} groups, not {PAGE}")
        kept = {k: v for k, v in headers.items() if k.lower() in ("content-type", "link")}
        captured[path] = (kept, body)
    responses = ctx.log_dir / "bare-responses.json"
    save_responses(responses, captured)

    results: dict[str, t.Any] = {
        "project_groups": dataset.groups,
        "workers": server.WORKERS,
        "worker_class": server.WORKER_CLASS,
        "loadgen": load.describe(ctx),
        "duration_s": ctx.params.duration * ctx.params.rounds,
        "rounds": ctx.params.rounds,
        "warmup_s": ctx.params.warmup,
    }
    for name, path in ENDPOINTS.items():
        results[name] = {"path": path, "bytes": len(captured[path][1])}

    with contextlib.ExitStack() as stack:
        # Both start at once (Django's imports take seconds); each is stopped on the way
        # out whatever happens to the other.
        with ThreadPoolExecutor(2) as pool:
            bare_start = pool.submit(
                server.start,
                "benchmarks.bare_app:create_app()",
                {"BENCH_BARE_RESPONSES": str(responses)},
                ctx.log_dir,
                ready_path=ENDPOINTS["project"],
            )
            peer_env = {"BENCH_DATABASE_URL": dataset.url, "BENCH_TABLE_PREFIX": "sentry_"}
            peer_start = pool.submit(
                server.start, PEER_APP, peer_env, ctx.log_dir, ready_path=ENDPOINTS["groups"]
            )
        peer = _peer_started(ctx, peer_start, stack, results)
        bare = stack.enter_context(bare_start.result())
        peer_ok = {
            name: peer is not None
            and _check_peer(peer, ENDPOINTS[name], {**auth, **host}, captured, results[name])
            for name in PEER_ENDPOINTS
        }
        rounds = ctx.params.rounds
        for name, path in ENDPOINTS.items():
            runs = [("ours", ours), ("bare", bare)]
            if peer is not None and peer_ok.get(name):
                runs.append(("drf", peer))
            measured: dict[str, list[loadgen.LoadResult]] = {label: [] for label, _ in runs}
            for number in range(rounds):
                for label, target in runs:
                    ctx.log(
                        f"overhead: {label} {path} ({load.describe(ctx)},"
                        f" round {number + 1} of {rounds})"
                    )
                    # Only the first round warms a server up; later ones find it warm.
                    result = load.measure(
                        ctx,
                        target,
                        "GET",
                        path,
                        headers=auth,
                        warmup=None if number == 0 else 0.0,
                    )
                    if result.errors:
                        ctx.log(f"overhead: {label} {path}: {result.errors} errors")
                    measured[label].append(result)
            for label, parts in measured.items():
                results[name][label] = loadgen.combine(parts)

    for name in ENDPOINTS:
        entry = results[name]
        entry["ratio_ours_bare"] = _ratio(entry["ours"], entry["bare"])
        entry["cpu_ratio_ours_bare"] = _cpu_ratio(entry["ours"], entry["bare"])
        if isinstance(entry.get("drf"), loadgen.LoadResult):
            entry["ratio_ours_drf"] = _ratio(entry["ours"], entry["drf"])
            entry["cpu_ratio_ours_drf"] = _cpu_ratio(entry["ours"], entry["drf"])
        for key in ("ours", "bare", "drf"):
            if isinstance(entry.get(key), loadgen.LoadResult):
                entry[key] = entry[key].as_dict()
    return results


def _peer_started(
    ctx: Context,
    started: Future[server.Server],
    stack: contextlib.ExitStack,
    results: dict[str, t.Any],
) -> server.Server | None:
    """The DRF peer, or None (and the error in the results) if it did not start."""
    try:
        return stack.enter_context(started.result())
    except (RuntimeError, OSError, ImportError) as exc:
        ctx.log(f"overhead: DRF peer failed to start: {exc}")
        for name in PEER_ENDPOINTS:
            results[name]["drf"] = {"error": str(exc)[:500]}
        return None


def _check_peer(
    peer: server.Server,
    path: str,
    headers: dict[str, str],
    captured: dict[str, tuple[dict[str, str], bytes]],
    entry: dict[str, t.Any],
) -> bool:
    """Record the peer's bytes for ``path`` and whether they are ours; False (and the
    error) when it does not answer 200."""
    status, _, body = fetch(peer.port, path, headers)
    if status != 200:
        entry["drf"] = {"error": f"GET {path}: {status} {body[:300]!r}"}
        return False
    ours = captured[path][1]
    entry["drf_bytes"] = len(body)
    entry["drf_identical"] = body == ours
    if body != ours:
        entry["drf_difference"] = _first_difference(ours, body)
    return True
