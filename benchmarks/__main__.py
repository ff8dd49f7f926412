"""Run the benchmarks: ``python -m benchmarks [--quick] [--database-url URL] [--json PATH]
[--only NAME,...] [--loadgen auto|wrk|python]``; prints a table and writes the same results
as JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import typing as t
from datetime import datetime
from datetime import timezone
from pathlib import Path

from . import bulk
from . import dashboard
from . import depth
from . import ingest
from . import load
from . import overhead
from . import server
from .common import Context
from .common import Params
from .data import Backend
from .report import summary
from .report import table

NAMES = ("overhead", "depth", "dashboard", "memory", "bulk", "ingest", "queue")
HERE = Path(__file__).resolve().parent


def parse_args(argv: t.Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, short runs (< 3 min)")
    parser.add_argument(
        "--database-url",
        help="postgresql+psycopg://user@host:port/db (default: SQLite files in a temp dir)",
    )
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(NAMES)}")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (auto: wrk when on PATH, else the Python one)",
    )
    args = parser.parse_args(argv)
    args.only = set(args.only.split(",")) if args.only else set(NAMES)
    unknown = args.only - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if args.json is None:
        args.json = HERE / ("results-quick.json" if args.quick else "results.json")
    return args


def machine() -> dict[str, t.Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def database_version(database_url: str | None) -> str:
    """``SQLite 3.40.1`` or ``PostgreSQL 15.20``: what the datasets live in."""
    if database_url is None:
        return f"SQLite {sqlite3.sqlite_version}"
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return f"PostgreSQL {connection.exec_driver_sql('SHOW server_version').scalar()}"
    except sa.exc.SQLAlchemyError:
        return "PostgreSQL"
    finally:
        engine.dispose()


def main(argv: t.Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = Params.for_run(args.quick)
    backend = Backend(args.database_url)
    log_dir = Path(tempfile.mkdtemp(prefix="fsa-bench-logs-"))
    ctx = Context(
        params=params, backend=backend, log_dir=log_dir, loadgen=load.generator(args.loadgen)
    )
    results: dict[str, t.Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "quick": params.quick,
        "database": backend.kind,
        "database_version": database_version(args.database_url),
        "machine": machine(),
        "server": {"workers": server.WORKERS, "worker_class": server.WORKER_CLASS},
        "loadgen": load.describe(ctx),
    }
    began = time.monotonic()
    try:
        if args.only & {"overhead", "depth", "dashboard", "memory"}:
            _read_path(ctx, args.only, results)
        if "bulk" in args.only:
            results["bulk"] = bulk.run(ctx)
        if "ingest" in args.only:
            results["ingest"] = ingest.run(ctx)
        if "queue" in args.only:
            _queue(ctx, results)
    finally:
        backend.close()
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\n{summary(results)}")
    print(f"written to {args.json} (server logs in {log_dir})")
    return 0


def _queue(ctx: Context, results: dict[str, t.Any]) -> None:
    """Queue mode (``benchmarks/queue_mode.py``), when that module exists."""
    try:
        queue_mode = importlib.import_module(f"{__package__}.queue_mode")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.queue_mode":
            raise
        message = "queue: skipped, benchmarks/queue_mode.py does not exist"
        ctx.log(message)
        results["queue"] = {"skipped": message}
        return
    try:
        results["queue"] = queue_mode.run(ctx)
    except Exception as exc:  # noqa: BLE001 - the other results are still worth printing
        ctx.log(f"queue: failed: {exc}")
        results["queue"] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def _read_path(ctx: Context, only: set[str], results: dict[str, t.Any]) -> None:
    """Overhead runs on a project of :attr:`Params.overhead_groups` groups (the issue's
    20,000); depth, the dashboard and memory on the big one. When both are the same size
    (``--quick``) they share one server, whose memory is watched through all of them; the
    example app is started with its dashboard open (:func:`dashboard.env`)."""
    p = ctx.params
    watched = [name for name in ("overhead", "depth", "dashboard") if name in only]
    if "overhead" in only and p.overhead_groups != p.big_groups:
        small = ctx.backend.dataset(p.overhead_groups, 1, ctx.log)
        with server.start(
            "example_app:create_app()", {"DATABASE_URL": small.url}, ctx.log_dir
        ) as ours:
            results["overhead"] = overhead.run(ctx, ours, small)
        watched.remove("overhead")
        if not only & {"depth", "dashboard", "memory"}:
            return
    dataset = ctx.big_dataset()
    with server.start(
        "example_app:create_app()", {"DATABASE_URL": dataset.url, **dashboard.env()}, ctx.log_dir
    ) as ours:
        start_mb = ours.worker_hwm_mb()
        if "overhead" in watched:
            results["overhead"] = overhead.run(ctx, ours, dataset)
        if "depth" in only:
            results["depth"] = depth.run(ctx, ours, dataset)
        if "dashboard" in only:
            results["dashboard"] = dashboard.run(ctx, ours, dataset)
        peak_mb = ours.worker_hwm_mb()
    if "memory" in only:
        results["memory"] = {
            "groups": dataset.groups,
            "during": watched,
            "worker_start_mb": [round(mb, 1) for mb in start_mb],
            "worker_peak_mb": [round(mb, 1) for mb in peak_mb],
            "growth_mb": round(max(peak_mb) - max(start_mb), 1),
        }


if __name__ == "__main__":
    sys.exit(main())
