"""Per-request overhead: our endpoints, the bare-Flask ceiling and the DRF peer under load.

Each server runs under the same gunicorn worker model (:data:`server.WORKERS` sync
workers); the bare app replays the bytes and headers captured from ours, so the ratio
ours/bare is the cost of auth, the database and serialisation over Flask itself.
"""

from __future__ import annotations

import http.client
import json
import typing as t
from pathlib import Path

from . import loadgen
from . import server
from .bare_app import save_responses
from .common import Context
from .data import PROJECT_ID
from .data import Dataset

ENDPOINTS = {
    "project": f"/api/0/projects/{PROJECT_ID}/",
    "groups": f"/api/0/projects/{PROJECT_ID}/groups/",
}
PEER_APP = "benchmarks.peers.drf.wsgi:application"
PEER_MODULE = Path(__file__).resolve().parent / "peers" / "drf" / "wsgi.py"


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _load(ctx: Context, port: int, path: str, headers: dict[str, str]) -> loadgen.LoadResult:
    p = ctx.params
    request = loadgen.build_request("GET", path, port=port, headers=headers)
    return loadgen.run(
        port, [request], concurrency=p.concurrency, duration=p.duration, warmup=p.warmup
    )


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def run(ctx: Context, ours: server.Server, dataset: Dataset) -> dict[str, t.Any]:
    auth = loadgen.basic_auth(dataset.public_key, dataset.secret_key)
    captured: dict[str, tuple[dict[str, str], bytes]] = {}
    for name, path in ENDPOINTS.items():
        status, headers, body = fetch(ours.port, path, auth)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        if name == "groups" and len(json.loads(body)) != 100:
            raise RuntimeError(f"GET {path} returned {len(json.loads(body))} groups, not 100")
        kept = {k: v for k, v in headers.items() if k.lower() in ("content-type", "link")}
        captured[path] = (kept, body)
    responses = ctx.log_dir / "bare-responses.json"
    save_responses(responses, captured)

    results: dict[str, t.Any] = {
        "workers": server.WORKERS,
        "worker_class": server.WORKER_CLASS,
        "concurrency": ctx.params.concurrency,
        "duration_s": ctx.params.duration,
    }
    for name, path in ENDPOINTS.items():
        ctx.log(f"overhead: ours {path}")
        results[name] = {"bytes": len(captured[path][1]), "ours": _load(ctx, ours.port, path, auth)}

    with server.start(
        "benchmarks.bare_app:create_app()",
        {"BENCH_BARE_RESPONSES": str(responses)},
        ctx.log_dir,
        ready_path=ENDPOINTS["project"],
    ) as bare:
        for name, path in ENDPOINTS.items():
            ctx.log(f"overhead: bare {path}")
            results[name]["bare"] = _load(ctx, bare.port, path, auth)

    groups = results["groups"]
    if PEER_MODULE.exists():
        groups["drf"] = _peer(ctx, dataset, auth, captured[ENDPOINTS["groups"]][1])
    else:
        ctx.log("overhead: no DRF peer yet (benchmarks/peers/drf/wsgi.py missing)")

    for name in ENDPOINTS:
        entry = results[name]
        entry["ratio_ours_bare"] = _ratio(entry["ours"].rps, entry["bare"].rps)
        if isinstance(entry.get("drf"), loadgen.LoadResult):
            entry["ratio_ours_drf"] = _ratio(entry["ours"].rps, entry["drf"].rps)
        for key in ("ours", "bare", "drf"):
            if isinstance(entry.get(key), loadgen.LoadResult):
                entry[key] = entry[key].as_dict()
    return results


def _peer(
    ctx: Context, dataset: Dataset, auth: dict[str, str], ours_body: bytes
) -> loadgen.LoadResult | dict[str, str]:
    path = ENDPOINTS["groups"]
    env = {"BENCH_DATABASE_URL": dataset.url, "BENCH_TABLE_PREFIX": "sentry_"}
    try:
        with server.start(PEER_APP, env, ctx.log_dir, ready_path=path) as peer:
            status, _, body = fetch(peer.port, path, auth)
            if status != 200:
                return {"error": f"GET {path}: {status} {body[:200]!r}"}
            ours_ids = [g["id"] for g in json.loads(ours_body)]
            peer_data = json.loads(body)
            rows = peer_data["results"] if isinstance(peer_data, dict) else peer_data
            peer_ids = [str(g.get("id")) for g in rows]
            if peer_ids != ours_ids:
                ctx.log("overhead: DRF peer's first page lists other groups than ours")
            ctx.log(f"overhead: drf {path}")
            return _load(ctx, peer.port, path, auth)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        ctx.log(f"overhead: DRF peer failed: {exc}")
        return {"error": str(exc)[:500]}
