"""Ingestion: events per second through ``/api/<id>/envelope/`` and where the time goes.

Bodies are made by the real sentry-sdk 2.x: events captured from raised exceptions under a
few fingerprints, serialised and gzip-compressed by the SDK's own HTTP transport code
(``_serialize_envelope``, gzip level 9 as it sends without brotli), one per fresh
``event_id`` so no request is a duplicate.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
import typing as t
import uuid
from datetime import datetime
from datetime import timezone

import sqlalchemy as sa

from . import load
from . import server
from .common import Context
from .data import PROJECT_ID
from .data import app_context
from .data import cache_dir

FINGERPRINTS = 5
ENDPOINT = f"/api/{PROJECT_ID}/envelope/"
#: Upper bound on the rate (twice the 500 events/s per worker aimed at), for sizing the
#: pool of distinct events made in advance; a run that outpaces it says "pool wrapped".
MAX_RATE_PER_WORKER = 1000
#: The SDK's DSN key while bodies are made; each server's real key replaces it.
PLACEHOLDER_KEY = "benchpublic"


def _raise(kind: int) -> None:
    errors: list[type[Exception]] = [ValueError, KeyError, TypeError, RuntimeError, OSError]

    def handler(depth: int) -> None:
        if depth:
            handler(depth - 1)
        raise errors[kind % len(errors)](f"benchmark failure of kind {kind}")

    handler(3)


def _make_bodies(args: tuple[int, int]) -> tuple[dict[str, str], list[bytes]]:
    """In a child process (sentry_sdk.init is global): ``count`` gzip envelope bodies."""
    import sentry_sdk
    from sentry_sdk.transport import HttpTransport

    first, count = args
    captured: list[t.Any] = []

    class Capture(HttpTransport):
        def capture_envelope(self, envelope: t.Any) -> None:
            captured.append(envelope)

    sentry_sdk.init(
        dsn=f"http://{PLACEHOLDER_KEY}@127.0.0.1:9/{PROJECT_ID}",
        transport=Capture,
        default_integrations=False,
        release="bench@1.0.0",
        environment="production",
        _experiments={"transport_compression_algo": "gzip"},  # type: ignore[typeddict-item]
    )
    for kind in range(FINGERPRINTS):
        try:
            _raise(kind)
        except Exception:  # noqa: BLE001 - captured on purpose
            with sentry_sdk.new_scope() as scope:
                if kind % 2:
                    scope.fingerprint = ["{{ default }}", f"bench-{kind}"]
                scope.set_tag("kind", str(kind))
                scope.set_user({"id": str(kind)})
                sentry_sdk.capture_exception()
    client = sentry_sdk.get_client()
    transport = t.cast(t.Any, client.transport)
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": str(transport._auth.to_header()),
        "User-Agent": f"sentry.python/{sentry_sdk.VERSION}",
    }
    bodies = []
    for i in range(first, first + count):
        envelope = captured[i % len(captured)]
        event_id = uuid.UUID(int=i + 1).hex
        envelope.headers["event_id"] = event_id
        envelope.items[0].payload.json["event_id"] = event_id
        # The payload caches its serialised bytes; drop them so the new id is written.
        envelope.items[0].payload.bytes = None
        encoding, body = transport._serialize_envelope(envelope)
        assert encoding == "gzip"
        bodies.append(body.getvalue())
    return headers, bodies


def make_bodies(count: int, public_key: str) -> tuple[dict[str, str], list[bytes]]:
    """``count`` distinct bodies and the headers to send them with under ``public_key``."""
    context = multiprocessing.get_context("spawn")
    half = count // 2
    with context.Pool(2) as pool:
        parts = pool.map(_make_bodies, [(0, half), (half, count - half)])
    return with_key(parts[0][0], public_key), parts[0][1] + parts[1][1]


def cached_bodies(count: int) -> tuple[dict[str, str], list[bytes]]:
    """:func:`make_bodies` under :data:`PLACEHOLDER_KEY`, kept in the cache directory.

    Making them costs seconds per thousand (the SDK serialises and gzips each); the same
    ids come back every run, which is fine as every run stores them in a new database.
    """
    import sentry_sdk

    path = cache_dir() / f"ingest-bodies-{count}-sdk{sentry_sdk.VERSION}.bin"
    try:
        with path.open("rb") as file:
            meta = json.loads(file.readline())
            data = file.read()
    except (OSError, ValueError):
        meta, data = None, b""
    if meta is not None and sum(meta["lengths"]) == len(data):
        bodies, at = [], 0
        for length in meta["lengths"]:
            bodies.append(data[at : at + length])
            at += length
        return meta["headers"], bodies
    headers, bodies = make_bodies(count, PLACEHOLDER_KEY)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as file:
        file.write(json.dumps({"headers": headers, "lengths": list(map(len, bodies))}).encode())
        file.write(b"\n")
        file.write(b"".join(bodies))
    partial.replace(path)
    return headers, bodies


def with_key(headers: dict[str, str], public_key: str) -> dict[str, str]:
    """``headers`` (made under :data:`PLACEHOLDER_KEY`) authenticating as ``public_key``."""
    auth = headers["X-Sentry-Auth"].replace(PLACEHOLDER_KEY, public_key)
    return {**headers, "X-Sentry-Auth": auth}


def _stored_events(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT count(*) FROM sentry_event")) or 0)
    finally:
        engine.dispose()


def stages(ctx: Context, headers: dict[str, str], bodies: list[bytes]) -> dict[str, t.Any]:
    """Time the pipeline stages in-process, then whole requests through Flask's test client."""
    from flask_sentry_api import get_state
    from flask_sentry_api.ingest.body import read_body
    from flask_sentry_api.ingest.envelope import parse_envelope
    from flask_sentry_api.ingest.normalize import normalize_event

    n = min(ctx.params.ingest_stage_events, len(bodies) // 2)
    totals = dict.fromkeys(("decompress", "envelope", "normalize_group", "database"), 0.0)
    clock = time.perf_counter
    staged = ctx.backend.empty("ingest-stages")
    whole = ctx.backend.empty("ingest-whole")
    try:
        with app_context(staged.url) as app:
            state = get_state(app)
            settings = state.settings
            for body in bodies[:n]:
                t0 = clock()
                raw = read_body(
                    io.BytesIO(body),
                    content_encoding="gzip",
                    max_body=settings.max_event_size,
                    max_inflated=settings.max_inflated_size,
                )
                t1 = clock()
                payload = parse_envelope(raw).event_payload()
                assert payload is not None
                t2 = clock()
                event = normalize_event(payload, received=datetime.now(timezone.utc))
                t3 = clock()
                state.storage.save_event(PROJECT_ID, event)
                t4 = clock()
                totals["decompress"] += t1 - t0
                totals["envelope"] += t2 - t1
                totals["normalize_group"] += t3 - t2
                totals["database"] += t4 - t3
        key_headers = with_key(headers, whole.public_key)
        with app_context(whole.url) as app:
            client = app.test_client()
            began = clock()
            for body in bodies[n : 2 * n]:
                response = client.post(ENDPOINT, data=body, headers=key_headers)
                if response.status_code != 200:
                    raise RuntimeError(f"ingest: {response.status_code} {response.data[:200]!r}")
            request_total = clock() - began
    finally:
        ctx.backend.drop(staged)
        ctx.backend.drop(whole)
    per_event = {k: v / n * 1000 for k, v in totals.items()}
    request_ms = request_total / n * 1000
    per_event["flask_auth_response"] = max(0.0, request_ms - sum(per_event.values()))
    return {
        "events": n,
        "request_ms": round(request_ms, 3),
        "stage_ms": {k: round(v, 3) for k, v in per_event.items()},
        "fraction": {k: round(v / request_ms, 3) for k, v in per_event.items()},
    }


def run(ctx: Context) -> dict[str, t.Any]:
    p = ctx.params
    worker_counts = (1, server.WORKERS)
    # The warm-up gets its own share of the pool, so the counted run sends fresh events.
    warm = int(MAX_RATE_PER_WORKER * max(worker_counts) * p.warmup)
    pool_size = warm + int(MAX_RATE_PER_WORKER * max(worker_counts) * p.ingest_duration)
    ctx.log(f"ingest: {pool_size:,} envelopes from sentry_sdk (made once, then cached)")
    headers, bodies = cached_bodies(pool_size)
    results: dict[str, t.Any] = {
        "body_bytes_gzip": round(sum(map(len, bodies[:100])) / 100),
        "fingerprints": FINGERPRINTS,
        "duration_s": p.ingest_duration,
    }
    for workers in worker_counts:
        dataset = ctx.backend.empty(f"ingest-{workers}")
        try:
            key_headers = with_key(headers, dataset.public_key)
            with server.start(
                "example_app:create_app()",
                {"DATABASE_URL": dataset.url},
                ctx.log_dir,
                workers=workers,
            ) as ingest_server:
                ctx.log(f"ingest: {workers} worker(s) ({load.describe(ctx, 2 * workers)})")
                result = load.measure(
                    ctx,
                    ingest_server,
                    "POST",
                    ENDPOINT,
                    headers=key_headers,
                    bodies=bodies[warm:],
                    warmup_bodies=bodies[:warm],
                    connections=2 * workers,
                    duration=p.ingest_duration,
                )
            stored = _stored_events(dataset.url)
        finally:
            ctx.backend.drop(dataset)
        results[f"workers_{workers}"] = {
            **result.as_dict(),
            "events_per_s": round(result.rps, 1),
            "events_per_s_per_worker": round(result.rps / workers, 1),
            "stored_events": stored,
            "pool_wrapped": result.wrapped,
        }
    ctx.log("ingest: pipeline stages in-process")
    results["stages"] = stages(ctx, headers, bodies)
    return results
