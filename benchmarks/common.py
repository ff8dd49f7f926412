"""What every benchmark module gets: the run's parameters, datasets and a logger."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from .data import Backend
from .data import Dataset


@dataclass(frozen=True)
class Params:
    """Sizes and durations; ``--quick`` shrinks all of them."""

    quick: bool
    big_groups: int  # the "1,000,000-group project"
    bulk_groups: int
    duration: float  # seconds measured per load run (per round in the overhead runs)
    warmup: float
    concurrency: int  # Python generator: requests in flight against a 2-worker server
    depth_repeats: int
    ingest_duration: float
    ingest_stage_events: int
    overhead_groups: int = 20_000  # the table: 20,000 groups, 1 event each
    connections: int = 16  # wrk: connections kept open (the issue's ``wrk -t2 -c16``)
    wrk_threads: int = 2
    #: Overhead: rounds of ``duration`` seconds, the servers taking turns within each, so
    #: a neighbour's burst on a shared machine lands on all of them rather than one.
    rounds: int = 1

    @classmethod
    def for_run(cls, quick: bool) -> Params:
        if quick:
            return cls(True, 20_000, 10_000, 3.0, 1.0, 4, 9, 3.0, 300)
        # Overhead: 3 rounds of 5 s, 15 s per server and request as the issue's -d15s.
        return cls(False, 1_000_000, 100_000, 5.0, 3.0, 4, 25, 12.0, 4000, rounds=3)


@dataclass
class Context:
    params: Params
    backend: Backend
    log_dir: Path
    #: "wrk" or "python": what :func:`benchmarks.load.measure` runs.
    loadgen: str = "python"
    started: float = field(default_factory=time.monotonic)
    _big: Dataset | None = None

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.0f}s] {message}", file=sys.stderr, flush=True)

    def big_dataset(self) -> Dataset:
        if self._big is None:
            self._big = self.backend.dataset(self.params.big_groups, 1, self.log)
        return self._big
