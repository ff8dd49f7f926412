"""One entry point for load runs: wrk when it is on PATH (or asked for), else the Python
generator; the result names the generator that made it and the server's CPU time."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from collections.abc import Sequence

from . import loadgen
from . import wrk
from .common import Context
from .server import Server


def generator(choice: str = "auto") -> str:
    """``"wrk"`` or ``"python"`` for a ``--loadgen`` choice (auto: wrk when installed)."""
    if choice == "python":
        return "python"
    if wrk.version() is not None:
        return "wrk"
    if choice == "wrk":
        raise RuntimeError("--loadgen wrk: wrk is not on PATH (Debian/Ubuntu: apt install wrk)")
    return "python"


def describe(ctx: Context, connections: int | None = None) -> str:
    """The generator and its settings as the results name them."""
    p = ctx.params
    if ctx.loadgen == "wrk":
        conns = connections or p.connections
        return wrk.describe(min(p.wrk_threads, conns), conns)
    return f"python -c{connections or p.concurrency}"


def measure(
    ctx: Context,
    target: Server,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    bodies: Sequence[bytes] = (),
    warmup_bodies: Sequence[bytes] = (),
    connections: int | None = None,
    duration: float | None = None,
    warmup: float | None = None,
) -> loadgen.LoadResult:
    """Keep ``connections`` requests in flight for ``warmup`` seconds (not counted), then
    count the requests of ``duration`` seconds (defaults: the run's ``warmup`` and
    ``duration``); the result carries the CPU time ``target``'s workers spent meanwhile.

    With ``bodies`` each request carries the next body of the pool (an ingestion run must
    not repeat an event); ``warmup_bodies`` feed the warm-up so the counted run starts on
    bodies never sent.

    When wrk stops it drops the requests still queued at the server, but sync workers
    still serve each of them; before the counted run, and after it, the server is let
    drain, or those requests would eat into the next run's time (a slow server with 16
    connections open has a second's work queued).
    """
    p = ctx.params
    seconds = p.duration if duration is None else duration
    warm = p.warmup if warmup is None else warmup
    conns = connections or (p.connections if ctx.loadgen == "wrk" else p.concurrency)
    if warm > 0:
        _run(ctx, target.port, method, path, headers, warmup_bodies or bodies, conns, warm)
        target.wait_idle()
    before = target.worker_cpu_s()
    result = _run(ctx, target.port, method, path, headers, bodies, conns, seconds)
    used = target.worker_cpu_s() - before
    target.wait_idle()
    return dataclasses.replace(result, server_cpu_s=used)


def _run(
    ctx: Context,
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None,
    bodies: Sequence[bytes],
    connections: int,
    seconds: float,
) -> loadgen.LoadResult:
    if ctx.loadgen == "wrk":
        return wrk.run(
            port,
            method,
            path,
            headers=headers,
            bodies=bodies,
            threads=ctx.params.wrk_threads,
            connections=connections,
            duration=seconds,
            warmup=0.0,
        )
    requests = [
        loadgen.build_request(method, path, port=port, headers=headers, body=body)
        for body in (bodies or [b""])
    ]
    return loadgen.run(port, requests, concurrency=connections, duration=seconds, warmup=0.0)
