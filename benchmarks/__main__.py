"""Run the benchmarks: ``python -m benchmarks [--quick] [--database-url URL] [--json PATH]
[--only NAME,...]``; prints a table and writes the same results as JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import typing as t
from datetime import datetime
from datetime import timezone
from pathlib import Path

from . import bulk
from . import depth
from . import ingest
from . import overhead
from . import server
from .common import Context
from .common import Params
from .data import Backend
from .report import table

NAMES = ("overhead", "depth", "memory", "bulk", "ingest")
HERE = Path(__file__).resolve().parent


def parse_args(argv: t.Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, short runs (< 2 min)")
    parser.add_argument(
        "--database-url",
        help="postgresql+psycopg://user@host:port/db (default: SQLite files in a temp dir)",
    )
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(NAMES)}")
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


def main(argv: t.Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = Params.for_run(args.quick)
    backend = Backend(args.database_url)
    log_dir = Path(tempfile.mkdtemp(prefix="fsa-bench-logs-"))
    ctx = Context(params=params, backend=backend, log_dir=log_dir)
    results: dict[str, t.Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "quick": params.quick,
        "database": backend.kind,
        "machine": machine(),
        "server": {"workers": server.WORKERS, "worker_class": server.WORKER_CLASS},
    }
    began = time.monotonic()
    try:
        if args.only & {"overhead", "depth", "memory"}:
            _big(ctx, args.only, results)
        if "bulk" in args.only:
            results["bulk"] = bulk.run(ctx)
        if "ingest" in args.only:
            results["ingest"] = ingest.run(ctx)
    finally:
        backend.close()
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.json} (server logs in {log_dir})")
    return 0


def _big(ctx: Context, only: set[str], results: dict[str, t.Any]) -> None:
    """The benchmarks on the big project share one server, whose memory is watched."""
    dataset = ctx.big_dataset()
    with server.start(
        "example_app:create_app()", {"DATABASE_URL": dataset.url}, ctx.log_dir
    ) as ours:
        start_mb = ours.worker_hwm_mb()
        if "overhead" in only:
            results["overhead"] = overhead.run(ctx, ours, dataset)
        if "depth" in only:
            results["depth"] = depth.run(ctx, ours, dataset)
        peak_mb = ours.worker_hwm_mb()
    if "memory" in only:
        results["memory"] = {
            "groups": dataset.groups,
            "during": [name for name in ("overhead", "depth") if name in only],
            "worker_start_mb": [round(mb, 1) for mb in start_mb],
            "worker_peak_mb": [round(mb, 1) for mb in peak_mb],
            "growth_mb": round(max(peak_mb) - max(start_mb), 1),
        }


if __name__ == "__main__":
    sys.exit(main())
