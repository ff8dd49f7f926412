"""Queue mode: events accepted per web worker, stored per Celery worker, enqueue-to-stored
latency at half load, and (optionally) the memory of a long run.

Everything runs on PostgreSQL, where queue mode's stored rate is specified: the run's
database when ``--database-url`` names one, else a database next to
``BENCH_QUEUE_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/fsa_bench``;
the benchmark creates ``<name>_empty_queue`` there and drops it afterwards). The broker is
Redis at ``BENCH_QUEUE_BROKER_URL`` (default ``redis://127.0.0.1:6379/12``): the benchmark
owns that Redis database and empties it before each phase.

Phases:

* **accept**: one gunicorn sync worker in ``celery`` mode, no Celery worker consuming, loaded by
  wrk with sentry-sdk gzip envelopes (a distinct ``event_id`` each); the same server in
  ``sync`` mode, same load, for the ratio.
* **stored**: N messages published as the endpoint publishes them, then Celery workers started
  on the full queue; the rate is taken from the first stored event to the last, so worker
  start-up is not in it. One worker with ``--concurrency 1``, then two such workers.
* **latency**: one web worker and one Celery worker; events sent at a fixed rate (half the
  smaller of the accept and stored rates); each event's time from its ``200`` to the moment
  its row is visible in the database (polled every few milliseconds).
* **soak** (only with ``soak_seconds`` or ``BENCH_QUEUE_SOAK_SECONDS``): the latency set-up
  with ``server.WORKERS`` web workers at the same rate for that long, the resident memory of
  every process sampled every 10 s.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import shutil
import time
import typing as t
import uuid
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone

import sqlalchemy as sa

from . import server
from .common import Context
from .data import PROJECT_ID
from .data import Backend
from .data import Dataset
from .data import app_context
from .data import cache_dir
from .ingest import ENDPOINT
from .ingest import FINGERPRINTS
from .ingest import PLACEHOLDER_KEY
from .ingest import make_bodies
from .ingest import with_key
from .loadgen import percentile
from .queue_procs import APP
from .queue_procs import CeleryWorker
from .queue_procs import OpenLoop
from .queue_procs import Template
from .queue_procs import Wrk
from .queue_procs import rss_mb

BROKER_ENV = "BENCH_QUEUE_BROKER_URL"
DEFAULT_BROKER = "redis://127.0.0.1:6379/12"
DATABASE_ENV = "BENCH_QUEUE_DATABASE_URL"
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/fsa_bench"
SOAK_ENV = "BENCH_QUEUE_SOAK_SECONDS"
#: Events a second during the soak (default: the latency phase's half load).
SOAK_RATE_ENV = "BENCH_QUEUE_SOAK_RATE"
QUEUE = "sentry_api_bench"
#: Seconds between the soak's memory samples.
SOAK_SAMPLE_EVERY = 10.0
#: Upper bound on the accept rate, for sizing the pool of distinct bodies made in advance.
MAX_ACCEPT_RATE = 2500

#: Seconds a worker or server may take to start before the run fails.
STARTUP_TIMEOUT = 60.0
#: Stands for the ``event_id`` in message templates (32 hex digits, as an event id).
EVENT_ID_MARK = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
#: The host URL the queued test messages name (the signals' permalinks are built on it).
BASE_URL = "http://127.0.0.1/"

TARGET_ACCEPT = 1000
TARGET_STORED = 2000
TARGET_P99_MS = 1000


@dataclass(frozen=True)
class QueueParams:
    accept_duration: float
    warmup: float
    stored_events: int  # messages queued before each stored-rate run
    stored_window: float  # seconds a stored-rate run lasts at most, from the first event
    worker_setups: tuple[tuple[int, int], ...]  # (processes, --concurrency), 1 x 1 last
    latency_duration: float

    @classmethod
    def for_run(cls, quick: bool) -> QueueParams:
        if quick:
            return cls(2.0, 1.0, 8000, 3.0, ((2, 1), (1, 1)), 3.0)
        return cls(10.0, 2.0, 60000, 15.0, ((2, 1), (1, 2), (1, 1)), 15.0)


def run(ctx: Context, soak_seconds: float | None = None) -> dict[str, t.Any]:
    qp = QueueParams.for_run(ctx.params.quick)
    if soak_seconds is None:
        soak_seconds = float(os.environ.get(SOAK_ENV) or 0)
    broker = os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not on PATH"}
    try:
        _flush(broker)
    except Exception as exc:  # noqa: BLE001 - any client error means: no broker here
        return {"skipped": f"broker {broker} unavailable: {exc!r}"[:200]}
    if ctx.backend.kind == "postgresql":
        backend, own_backend = ctx.backend, False
    else:
        backend, own_backend = Backend(os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE), True
    try:
        dataset = backend.empty("queue")
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL: say so instead of failing the suite
        if own_backend:
            backend.close()
        return {"skipped": f"PostgreSQL unavailable: {exc!r}"[:200]}
    bench = _Bench(ctx, qp, broker, dataset)
    try:
        return bench.run(soak_seconds)
    finally:
        with contextlib.suppress(Exception):
            _flush(broker)
        backend.drop(dataset)
        if own_backend:
            backend.close()


class _Bench:
    def __init__(self, ctx: Context, qp: QueueParams, broker: str, dataset: Dataset) -> None:
        self.ctx = ctx
        self.qp = qp
        self.broker = broker
        self.dataset = dataset
        self.engine = sa.create_engine(dataset.url, poolclass=sa.pool.NullPool)
        self.work_dir = ctx.log_dir / "queue"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.headers: dict[str, str] = {}
        self.templates: list[Template] = []
        self.redis_template: dict[str, t.Any] | None = None

    def env(self, mode: str) -> dict[str, str]:
        """What the example app reads (``app.config.from_prefixed_env``) for ``mode``."""
        return {
            "DATABASE_URL": self.dataset.url,
            "FLASK_SENTRY_API_INGEST_MODE": mode,
            "FLASK_SENTRY_API_CELERY_BROKER_URL": self.broker,
            "FLASK_SENTRY_API_CELERY_QUEUE": QUEUE,
            # The default 6,000 events a minute per key would answer most of the load 429.
            "FLASK_SENTRY_API_INGEST_RATE_LIMIT": "0",
        }

    def worker(self, name: str, concurrency: int) -> CeleryWorker:
        return CeleryWorker(self.env("celery"), self.ctx.log_dir, name, concurrency)

    def run(self, soak_seconds: float) -> dict[str, t.Any]:
        ctx = self.ctx
        began = time.monotonic()
        headers, self.templates = _templates(ctx)
        self.headers = with_key(headers, self.dataset.public_key)
        bodies = [template.body(template.event_id) for template in self.templates]
        results: dict[str, t.Any] = {
            "database": "postgresql",
            "broker": self.broker.split("://")[0],
            "queue": QUEUE,
            "cpus": os.cpu_count(),
            # Everything (load generator, web, workers, PostgreSQL, Redis) shares these CPUs.
            "loadavg_1m_before": round(os.getloadavg()[0], 2),
            "fingerprints": FINGERPRINTS,
            "body_bytes_gzip": round(sum(len(b) for b in bodies) / len(bodies)),
        }
        # The celery-mode web server serves the accept phase, then the latency phase.
        with server.start(APP, self.env("celery"), ctx.log_dir, workers=1) as web:
            # The Celery workers of the moment; whatever happens, they are stopped.
            workers: list[CeleryWorker] = []
            try:
                results["accept"] = self.accept(web, workers)
                results["stored"] = self.stored(workers)
                results["latency"] = self.latency(web, workers[0], results)
            finally:
                for worker in workers:
                    worker.stop()
        if soak_seconds > 0:
            results["soak"] = self.soak(results, soak_seconds)
        results["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        results["elapsed_s"] = round(time.monotonic() - began, 1)
        return results

    # -- accept ------------------------------------------------------------------------------

    def accept(self, web: server.Server, workers: list[CeleryWorker]) -> dict[str, t.Any]:
        """Accept rates in celery and sync mode; starts the first stored-rate run's workers
        (into ``workers``) as the sync-mode server starts, so both start-ups overlap."""
        ctx, qp = self.ctx, self.qp
        pool = int(MAX_ACCEPT_RATE * (qp.warmup + qp.accept_duration)) + 100
        bodies = [
            self.templates[i % len(self.templates)].body(uuid.uuid4().hex) for i in range(pool)
        ]
        wrk = Wrk(self.work_dir / "wrk", ENDPOINT, self.headers, bodies)
        out: dict[str, t.Any] = {
            "web_workers": 1,
            "worker_class": server.WORKER_CLASS,
            "connections": 2,
            "load": "wrk",
        }
        for mode in ("celery", "sync"):
            _clear_queue(self.broker)
            ctx.log(f"queue: accept rate, 1 web worker, {mode} mode")
            with contextlib.ExitStack() as stack:
                if mode != "celery":
                    # Idle workers wait on the broker: they take no CPU from the sync run.
                    self.capture_template()
                    processes, concurrency = qp.worker_setups[0]
                    for i in range(processes):
                        name = f"stored-{processes}x{concurrency}-{i}"
                        workers.append(self.worker(name, concurrency))
                    web = stack.enter_context(
                        server.start(APP, self.env(mode), ctx.log_dir, workers=1)
                    )
                wrk.run(web.port, threads=1, connections=2, duration=qp.warmup)
                before = _queue_length(self.broker)
                result = wrk.run(web.port, threads=1, connections=2, duration=qp.accept_duration)
                entry = result.as_dict()
                if mode == "celery":
                    entry["queued"] = _queue_length(self.broker) - before
            out[mode] = entry
        out["pool_wrapped"] = wrk.wrapped
        sync_rps = out["sync"]["rps"]
        out["ratio_celery_sync"] = round(out["celery"]["rps"] / sync_rps, 2) if sync_rps else None
        return out

    # -- stored ------------------------------------------------------------------------------

    def message_templates(self) -> list[dict[str, t.Any]]:
        """One task body per envelope template, as :func:`flask_sentry_api.queue.enqueue_event`
        publishes it, its ``event_id`` :data:`EVENT_ID_MARK` (replaced per message)."""
        from flask_sentry_api.ingest.envelope import parse_envelope
        from flask_sentry_api.ingest.normalize import normalize_event
        from flask_sentry_api.queue import event_to_message

        now = datetime.now(timezone.utc)
        made = []
        for template in self.templates:
            raw = template.raw.replace(template.event_id.encode(), EVENT_ID_MARK.encode())
            payload = parse_envelope(raw).event_payload()
            assert payload is not None
            event = event_to_message(normalize_event(payload, received=now))
            made.append({"project_id": PROJECT_ID, "event": event, "base_url": BASE_URL})
        return made

    def messages(self, count: int) -> Iterator[dict[str, t.Any]]:
        """``count`` task bodies, each with its own ``event_id``."""
        encoded = [json.dumps(body) for body in self.message_templates()]
        for i in range(count):
            yield json.loads(encoded[i % len(encoded)].replace(EVENT_ID_MARK, uuid.uuid4().hex))

    def capture_template(self) -> None:
        """Publish one message with the web side's Celery app and keep it (Redis): the
        stored-rate runs queue copies of it. Only while no worker consumes."""
        from flask_sentry_api.queue import TASK_NAME
        from flask_sentry_api.queue import celery_app_for

        if not self.broker.startswith("redis") or self.redis_template is not None:
            return
        with app_context(self.dataset.url, **self.celery_config()) as app:
            body = next(self.messages(1))
            celery_app_for(app).send_task(TASK_NAME, args=(body,), queue=QUEUE, retry=False)
        self.redis_template = _redis_pop_template(self.broker)

    def celery_config(self) -> dict[str, t.Any]:
        return {
            "SENTRY_API_INGEST_MODE": "celery",
            "SENTRY_API_CELERY_BROKER_URL": self.broker,
            "SENTRY_API_CELERY_QUEUE": QUEUE,
        }

    def prefill(self, count: int) -> str:
        """Queue ``count`` messages as the web side publishes them; how."""
        from flask_sentry_api.queue import TASK_NAME
        from flask_sentry_api.queue import celery_app_for

        if self.redis_template is not None:
            # Celery publishes a few hundred messages a second from one process on a busy
            # machine, fewer than the workers store: push copies of a message it published,
            # each with its own body and ids, in bulk instead.
            _redis_push_copies(self.broker, self.redis_template, self.message_templates(), count)
            return "copies of a Celery message, pushed to Redis"
        bodies = self.messages(count)
        with app_context(self.dataset.url, **self.celery_config()) as app:
            celery = celery_app_for(app)
            with celery.producer_or_acquire() as producer:
                for body in bodies:
                    celery.send_task(
                        TASK_NAME, args=(body,), queue=QUEUE, retry=False, producer=producer
                    )
        return "send_task"

    def stored(self, running: list[CeleryWorker]) -> dict[str, t.Any]:
        """Stored rates per worker set-up, in ``running``'s workers (started for the first
        set-up already); leaves the last set-up's worker (1 x 1) running in it.

        A set-up with fewer workers of the same concurrency than the one before keeps some
        of its workers: they are up, no start-up to wait for (which the rates leave out
        anyway)."""
        ctx, qp = self.ctx, self.qp
        n = qp.stored_events
        out: dict[str, t.Any] = {"events": n, "window_s": qp.stored_window, "pool": "prefork"}
        runs: dict[str, t.Any] = {}
        for processes, concurrency in qp.worker_setups:
            reuse = len(running) >= processes and all(
                worker.concurrency == concurrency for worker in running
            )
            kept = processes if reuse else 0
            for worker in running[kept:]:
                worker.stop()
            del running[kept:]
            _clear_queue(self.broker)
            self.settle()
            base = self.count()
            started = time.monotonic()
            for i in range(len(running), processes):
                running.append(self.worker(f"stored-{processes}x{concurrency}-{i}", concurrency))
            ctx.log(f"queue: {n:,} messages for {processes} worker(s) x concurrency {concurrency}")
            out["publish"] = self.prefill(n)
            entry = self.measure_stored(base, n, running, started)
            entry["workers_up_before"] = reuse
            entry["events_per_s_per_process"] = round(
                entry["events_per_s"] / (processes * concurrency), 1
            )
            runs[f"{processes}x{concurrency}"] = entry
        _clear_queue(self.broker)
        first = runs["1x1"]["events_per_s"]
        for key in sorted(runs):
            ratio = runs[key]["events_per_s"] / first if first else None
            runs[key]["ratio_to_1x1"] = round(ratio, 2) if ratio is not None else None
            out[key] = runs[key]
        if len(running) != 1:
            raise RuntimeError("queue: the last worker set-up must be 1 x 1")
        return out

    def settle(self, quiet: float = 0.5) -> None:
        """Wait until the running workers have stored what they held (the count stands)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last, since = self.count(), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.count()
            if now != last:
                last, since = now, time.monotonic()

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT count(*) FROM sentry_event")) or 0)

    def measure_stored(
        self, base: int, n: int, workers: Sequence[CeleryWorker], started: float
    ) -> dict[str, t.Any]:
        """Poll the event count until ``n`` more are stored or the window has passed since
        the first one; the rate from the first commit seen to the last (a running worker's
        rate, without its start-up, and not cut in the middle of a batch)."""
        first: tuple[float, int] | None = None
        last: tuple[float, int] | None = None
        deadline = started + STARTUP_TIMEOUT
        stored = 0
        with self.engine.connect() as connection:
            while True:
                now = time.monotonic()
                stored = (
                    int(connection.scalar(sa.text("SELECT count(*) FROM sentry_event")) or 0) - base
                )
                connection.rollback()
                if stored and first is None:
                    first = (now, stored)
                    deadline = now + self.qp.stored_window
                if first is not None and stored > (last or first)[1]:
                    last = (now, stored)
                if stored >= n or now > deadline:
                    break
                for worker in workers:
                    worker.check()
                time.sleep(0.01)
        if first is None or last is None:
            tails = "\n".join(worker.log_tail() for worker in workers)
            raise RuntimeError(f"queue: workers stored {stored} of {n} events:\n{tails}")
        seconds = last[0] - first[0]
        return {
            "stored": stored,
            "drained": stored >= n,
            "startup_s": round(first[0] - started, 2),
            "measured_s": round(seconds, 2),
            "measured_events": last[1] - first[1],
            "events_per_s": round((last[1] - first[1]) / seconds, 1),
        }

    # -- latency -----------------------------------------------------------------------------

    def half_load(self, results: dict[str, t.Any]) -> float:
        """Half the capacity of one web worker plus one Celery worker (concurrency 1)."""
        accept = results["accept"]["celery"]["rps"]
        stored = results["stored"]["1x1"]["events_per_s"]
        return round(0.5 * min(accept, stored), 1)

    def latency(
        self, web: server.Server, worker: CeleryWorker, results: dict[str, t.Any]
    ) -> dict[str, t.Any]:
        ctx, qp = self.ctx, self.qp
        rate = self.half_load(results)
        ctx.log(f"queue: enqueue-to-stored latency at {rate:.0f} events/s")
        # The stored-rate run's queue is gone; let its worker store what it still holds.
        self.settle()
        self.warm(web.port, worker)
        floor = self.max_id()
        loop = OpenLoop(
            web.port,
            ENDPOINT,
            self.headers,
            self.templates,
            rate=rate,
            duration=qp.latency_duration,
        )
        seen: dict[str, float] = {}
        try:
            deadline = loop.start + qp.latency_duration + 30
            with self.engine.connect() as connection:
                while True:
                    finished = loop.collect()
                    rows = connection.execute(
                        sa.text("SELECT id, event_id FROM sentry_event WHERE id > :f"),
                        {"f": floor},
                    ).all()
                    connection.rollback()
                    now = time.time()
                    for _, event_id in rows:
                        seen.setdefault(event_id, now)
                    if rows:
                        # Ids are handed out at insert and become visible at commit: keep a
                        # margin for a transaction that commits after a later one.
                        floor = max(floor, max(row[0] for row in rows) - 1000)
                    if finished and all(r[0] in seen for r in loop.records if r[3] == 200):
                        break
                    if now > deadline:
                        break
                    worker.check()
                    time.sleep(0.005)
        finally:
            loop.stop()
        records = loop.records
        accepted = [r for r in records if r[3] == 200]
        to_stored = sorted(seen[r[0]] - r[2] for r in accepted if r[0] in seen)
        from_sent = sorted(seen[r[0]] - r[1] for r in accepted if r[0] in seen)
        answer = sorted(r[2] - r[1] for r in accepted)
        return {
            "rate": rate,
            "achieved_rate": round(len(records) / qp.latency_duration, 1),
            "duration_s": qp.latency_duration,
            "sent": len(records),
            "accepted": len(accepted),
            "errors": len(records) - len(accepted),
            "stored": len(to_stored),
            "web_workers": 1,
            "celery_workers": "1 x concurrency 1",
            "answer_p99_ms": _ms(percentile(answer, 99)),
            "enqueue_to_stored_p50_ms": _ms(percentile(to_stored, 50)),
            "enqueue_to_stored_p99_ms": _ms(percentile(to_stored, 99)),
            "enqueue_to_stored_max_ms": _ms(to_stored[-1] if to_stored else float("nan")),
            "sent_to_stored_p99_ms": _ms(percentile(from_sent, 99)),
        }

    def warm(self, port: int, worker: CeleryWorker, timeout: float = STARTUP_TIMEOUT) -> None:
        """Send a few events and wait until they are stored: the worker is up and idle."""
        loop = OpenLoop(port, ENDPOINT, self.headers, self.templates, rate=20, duration=0.25)
        deadline = time.monotonic() + timeout
        try:
            while not loop.collect(timeout=0.1):
                if time.monotonic() > deadline:
                    raise RuntimeError("queue: warm-up events were not sent")
        finally:
            loop.stop()
        wanted = {r[0] for r in loop.records if r[3] == 200}
        if not wanted:
            raise RuntimeError(f"queue: warm-up events were refused: {loop.records[:3]}")
        while True:
            with self.engine.connect() as connection:
                found = connection.execute(
                    sa.text("SELECT event_id FROM sentry_event WHERE event_id IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": sorted(wanted)},
                ).all()
            if len(found) == len(wanted) and _queue_length(self.broker) == 0:
                return
            worker.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"queue: the worker did not start:\n{worker.log_tail()}")
            time.sleep(0.05)

    def max_id(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT max(id) FROM sentry_event")) or 0)

    # -- soak --------------------------------------------------------------------------------

    def soak(self, results: dict[str, t.Any], seconds: float) -> dict[str, t.Any]:
        ctx = self.ctx
        rate = float(os.environ.get(SOAK_RATE_ENV) or 0) or self.half_load(results)
        ctx.log(f"queue: soak, {seconds:.0f} s at {rate:.0f} events/s")
        _clear_queue(self.broker)
        samples: list[dict[str, t.Any]] = []
        with (
            server.start(APP, self.env("celery"), ctx.log_dir, workers=server.WORKERS) as web,
            self.worker("soak", 1) as worker,
        ):
            self.warm(web.port, worker)
            base = self.count()
            loop = OpenLoop(
                web.port, ENDPOINT, self.headers, self.templates, rate=rate, duration=seconds
            )
            try:
                next_sample = loop.start
                while True:
                    finished = loop.collect(timeout=0.5)
                    worker.check()
                    now = time.time()
                    if now >= next_sample or finished:
                        samples.append(
                            {
                                "t_s": round(now - loop.start, 1),
                                "web_rss_mb": [
                                    round(mb, 1)
                                    for pid in web.worker_pids()
                                    if (mb := rss_mb(pid)) is not None
                                ],
                                "worker_rss_mb": round(worker.rss_mb(), 1),
                                "queued": _queue_length(self.broker),
                                "stored": self.count() - base,
                                "sent": len(loop.records),
                                "loadavg_1m": round(os.getloadavg()[0], 2),
                            }
                        )
                        next_sample += SOAK_SAMPLE_EVERY
                    if finished:
                        break
                accepted = sum(1 for r in loop.records if r[3] == 200)
                drain_deadline = time.monotonic() + 60
                while self.count() - base < accepted and time.monotonic() < drain_deadline:
                    time.sleep(0.2)
                stored = self.count() - base
            finally:
                loop.stop()
        web_peak = [max(s["web_rss_mb"]) for s in samples if s["web_rss_mb"]]
        worker_rss = [s["worker_rss_mb"] for s in samples]
        # The first minute fills caches (imports, connection pools, compiled statements);
        # after it the memory should stay flat.
        settled = next((i for i, s in enumerate(samples) if s["t_s"] >= 60), 0)
        return {
            "seconds": seconds,
            "rate": rate,
            "web_workers": server.WORKERS,
            "celery_workers": "1 x concurrency 1",
            "sent": len(loop.records),
            # Below ``rate`` when the senders fell behind (a busy machine): they catch up.
            "achieved_rate": round(len(loop.records) / max(samples[-1]["t_s"], 1e-9), 1),
            "accepted": accepted,
            "stored": stored,
            "max_queued": max(s["queued"] for s in samples),
            "web_rss_mb": {
                "start": web_peak[0],
                "at_60s": web_peak[settled],
                "peak": max(web_peak),
                "end": web_peak[-1],
            },
            "worker_rss_mb": {
                "start": worker_rss[0],
                "at_60s": worker_rss[settled],
                "peak": max(worker_rss),
                "end": worker_rss[-1],
            },
            "web_growth_after_60s_mb": round(web_peak[-1] - web_peak[settled], 1),
            "worker_growth_after_60s_mb": round(worker_rss[-1] - worker_rss[settled], 1),
            "samples": samples,
        }


def _templates(ctx: Context) -> tuple[dict[str, str], list[Template]]:
    """One sentry-sdk envelope per fingerprint (uncompressed) and the headers it is sent
    with, made once per sentry-sdk version and kept in the datasets' cache directory."""
    from importlib.metadata import version

    path = cache_dir() / f"queue-templates-{version('sentry-sdk')}-{FINGERPRINTS}.json"
    if not path.exists():
        ctx.log("queue: making envelopes with sentry_sdk")
        headers, bodies = make_bodies(FINGERPRINTS, PLACEHOLDER_KEY)
        made = {
            "headers": headers,
            "envelopes": [
                [base64.b64encode(gzip.decompress(body)).decode(), uuid.UUID(int=i + 1).hex]
                for i, body in enumerate(bodies)
            ],
        }
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(made))
        partial.rename(path)
    data = json.loads(path.read_text())
    templates = [Template(base64.b64decode(raw), event_id) for raw, event_id in data["envelopes"]]
    return dict(data["headers"]), templates


# -- the broker ----------------------------------------------------------------------------------


def _flush(broker: str) -> None:
    """Empty the broker's database (Redis) or the benchmark's queue (others)."""
    if broker.startswith("redis"):
        import redis

        client = redis.Redis.from_url(broker, socket_connect_timeout=2)
        try:
            client.flushdb()
        finally:
            client.close()
        return
    import kombu

    with kombu.Connection(broker, connect_timeout=2) as connection:
        with contextlib.suppress(Exception):
            connection.default_channel.queue_purge(QUEUE)


def _redis_pop_template(broker: str) -> dict[str, t.Any]:
    """Take the one message Celery published out of the queue, decoded."""
    import redis

    client = redis.Redis.from_url(broker, socket_connect_timeout=2)
    try:
        raw = t.cast("bytes | None", client.rpop(QUEUE))
    finally:
        client.close()
    if not raw:
        raise RuntimeError(f"queue: the message Celery published is not in {QUEUE!r}")
    return t.cast("dict[str, t.Any]", json.loads(raw))


def _redis_push_copies(
    broker: str, template: t.Mapping[str, t.Any], bodies: Sequence[t.Any], count: int
) -> None:
    """Push ``count`` messages in bulk: copies of ``template`` (a message Celery published)
    carrying ``bodies`` in turn, each with a new ``event_id``, task id and delivery tag (its
    ``argsrepr``, which only logs show, stays the template's). Made by string replacement,
    tens of thousands a second, and pushed in small chunks."""
    import redis

    _args, kwargs, embed = json.loads(base64.b64decode(template["body"]))
    body_marks = [json.dumps([[body], kwargs, embed]) for body in bodies]
    message_mark = json.dumps(
        {
            **template,
            "body": "@BODY@",
            "headers": {**template["headers"], "id": "@TASK@", "root_id": "@TASK@"},
            "properties": {
                **template["properties"],
                "correlation_id": "@TASK@",
                "delivery_tag": "@TAG@",
            },
        }
    )
    client = redis.Redis.from_url(broker, socket_connect_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            encoded = body_marks[i % len(body_marks)].replace(EVENT_ID_MARK, uuid.uuid4().hex)
            message = (
                message_mark.replace("@BODY@", base64.b64encode(encoded.encode()).decode())
                .replace("@TASK@", str(uuid.uuid4()))
                .replace("@TAG@", str(uuid.uuid4()))
            )
            # Kombu's Redis transport pushes on the left and pops on the right.
            pipe.lpush(QUEUE, message)
            if i % 250 == 249:
                pipe.execute()
        pipe.execute()
    finally:
        client.close()


def _clear_queue(broker: str) -> None:
    """Empty the benchmark's queue (what a worker already holds is still stored)."""
    if broker.startswith("redis"):
        import redis

        client = redis.Redis.from_url(broker, socket_connect_timeout=2)
        try:
            client.delete(QUEUE)
        finally:
            client.close()
        return
    import kombu

    with kombu.Connection(broker, connect_timeout=2) as connection:
        with contextlib.suppress(Exception):
            connection.default_channel.queue_purge(QUEUE)


def _queue_length(broker: str) -> int:
    import kombu

    with kombu.Connection(broker, connect_timeout=2) as connection:
        try:
            return int(connection.default_channel.queue_declare(QUEUE, passive=True).message_count)
        except Exception:  # noqa: BLE001 - a queue never declared holds nothing
            return 0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# -- the report ----------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str]


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def rows(results: t.Mapping[str, t.Any]) -> list[Row]:
    """The queue-mode rows of the benchmark table (measure, ours, baseline, ratio, target)."""
    if "skipped" in results:
        return [("queue mode", "skipped", str(results["skipped"])[:80], "", "")]
    out: list[Row] = []
    acc = results["accept"]
    cel, syn = acc["celery"], acc["sync"]
    ratio = acc["ratio_celery_sync"]
    accept_ok = cel["rps"] >= TARGET_ACCEPT and not cel["errors"]
    out.append(
        (
            "queue accept, 1 gunicorn sync worker, no consumer",
            f"{cel['rps']:.0f} events/s, p99 {cel['p99_ms']:.1f} ms, {cel['errors']} errors",
            f"sync mode {syn['rps']:.0f} events/s, p99 {syn['p99_ms']:.1f} ms",
            f"{ratio:.1f}" if ratio else "",
            f">= {TARGET_ACCEPT:,}/worker: {_met(accept_ok)}",
        )
    )
    st = results["stored"]
    one = st["1x1"]["events_per_s"]
    for key, entry in st.items():
        if not isinstance(entry, dict):
            continue
        processes, concurrency = (int(x) for x in key.split("x"))
        label = f"stored on PostgreSQL, {processes} Celery worker(s) x concurrency {concurrency}"
        rate = entry["events_per_s"]
        if key == "1x1":
            target = f">= {TARGET_STORED:,}/worker: {_met(rate >= TARGET_STORED)}"
            out.append((label, f"{rate:.0f} events/s", "", "", target))
        else:
            ratio_1 = entry["ratio_to_1x1"] or 0.0
            out.append(
                (
                    label,
                    f"{rate:.0f} events/s",
                    f"1 x 1: {one:.0f} events/s",
                    f"{ratio_1:.2f}",
                    f"> 1 (adds throughput): {_met(ratio_1 > 1)}",
                )
            )
    lat = results["latency"]
    p99 = lat["enqueue_to_stored_p99_ms"]
    latency_ok = p99 <= TARGET_P99_MS and lat["stored"] == lat["sent"]
    out.append(
        (
            f"enqueue-to-stored at {lat['rate']:.0f} events/s (half load)",
            f"p50 {lat['enqueue_to_stored_p50_ms']:.0f} / p99 {p99:.0f} ms",
            f"{lat['stored']:,} of {lat['sent']:,} stored, {lat['errors']} errors",
            "",
            f"p99 <= {TARGET_P99_MS:,} ms: {_met(latency_ok)}",
        )
    )
    soak = results.get("soak")
    if soak:
        web, wk = soak["web_rss_mb"], soak["worker_rss_mb"]
        growth = (soak["web_growth_after_60s_mb"], soak["worker_growth_after_60s_mb"])
        flat = growth[0] <= 0.1 * web["at_60s"] and growth[1] <= 0.1 * wk["at_60s"]
        out.append(
            (
                f"queue-mode soak {soak['samples'][-1]['t_s']:.0f} s,"
                f" {soak.get('achieved_rate', soak['rate']):.0f} events/s"
                f" ({soak['stored']:,} of {soak['accepted']:,} stored), RSS",
                f"web worker {web['at_60s']:.0f} -> {web['end']:.0f} MB (peak {web['peak']:.0f})",
                f"Celery worker {wk['at_60s']:.0f} -> {wk['end']:.0f} MB (peak {wk['peak']:.0f})",
                f"{growth[0]:+.0f} / {growth[1]:+.0f} MB",
                f"flat after 1st min (< +10%): {_met(flat)}",
            )
        )
    return out


def report(results: t.Mapping[str, t.Any]) -> str:
    """The queue-mode section of the benchmark table, as Markdown."""
    header: Row = ("measure", "ours", "baseline", "ratio", "target")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    return "\n".join(lines)
