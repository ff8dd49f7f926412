"""Bulk changes: resolve, then delete, every group of a project in one request each, against
the same work done by raw SQL statements on a fresh copy of the same data."""

from __future__ import annotations

import json
import time
import typing as t
from datetime import datetime
from datetime import timezone

import sqlalchemy as sa

from . import loadgen
from . import server
from .common import Context
from .data import PROJECT_ID
from .data import Dataset

UTC = timezone.utc
#: Tables whose rows hang off a group and go with it (as the storage's delete does).
CHILD_TABLES = ("sentry_event", "sentry_note", "sentry_group_tag_value", "sentry_group_stat")


def _timed(port: int, request: bytes, expected: int) -> float:
    """Seconds ``request`` takes to answer with status ``expected``."""
    began = time.perf_counter()
    status, response = loadgen.send(port, request)
    seconds = time.perf_counter() - began
    if status != expected:
        raise RuntimeError(f"bulk {request.split(b' ', 1)[0].decode()}: {response[:300]!r}")
    return seconds


def _group_ids(url: str) -> list[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.scalars(
                    sa.text("SELECT id FROM sentry_group WHERE project_id = :p ORDER BY id"),
                    {"p": PROJECT_ID},
                )
            )
    finally:
        engine.dispose()


def _count(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(sa.text(sql), {"p": PROJECT_ID}) or 0)
    finally:
        engine.dispose()


def _ours(ctx: Context, dataset: Dataset) -> dict[str, t.Any]:
    ids = _group_ids(dataset.url)
    env = {
        "DATABASE_URL": dataset.url,
        "FLASK_SENTRY_API_MAX_BULK_IDS": str(len(ids) + 1),
    }
    auth = loadgen.basic_auth(dataset.public_key, dataset.secret_key)
    with server.start(
        "example_app:create_app()",
        env,
        ctx.log_dir,
        # The DELETE's request line carries every id.
        extra_args=["--limit-request-line", "0"],
    ) as ours:
        base = f"/api/0/projects/{PROJECT_ID}/groups/"
        body = json.dumps({"status": "resolved"}).encode()
        put = loadgen.build_request(
            "PUT",
            base + "?status=unresolved",
            port=ours.port,
            headers={**auth, "Content-Type": "application/json"},
            body=body,
        )
        ctx.log(f"bulk: ours PUT resolve {len(ids):,} groups")
        resolve_s = _timed(ours.port, put, 200)
        resolved = _count(
            dataset.url,
            "SELECT count(*) FROM sentry_group WHERE project_id = :p AND status = 'resolved'",
        )
        query = "&".join(f"id={i}" for i in ids)
        delete = loadgen.build_request("DELETE", f"{base}?{query}", port=ours.port, headers=auth)
        ctx.log(f"bulk: ours DELETE {len(ids):,} groups ({len(delete) / 1e6:.1f} MB request)")
        delete_s = _timed(ours.port, delete, 204)
        hwm = max(ours.worker_hwm_mb() or [0.0])
    left = _count(dataset.url, "SELECT count(*) FROM sentry_group WHERE project_id = :p")
    left += _count(dataset.url, "SELECT count(*) FROM sentry_event WHERE project_id = :p")
    if resolved != len(ids) or left:
        raise RuntimeError(f"bulk: {resolved} resolved of {len(ids)}, {left} rows left")
    return {
        "groups": len(ids),
        "resolve_s": round(resolve_s, 3),
        "delete_s": round(delete_s, 3),
        "delete_request_mb": round(len(delete) / 1e6, 2),
        "worker_peak_mb": round(hwm, 1),
    }


def _unresolve_all(url: str) -> None:
    # Demo data mixes statuses; every group starts unresolved so that "resolve the
    # unresolved" and "delete them all" both touch every group of the project.
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE sentry_group SET status = 'unresolved', resolved_at = NULL"
                    " WHERE project_id = :p"
                ),
                {"p": PROJECT_ID},
            )
    finally:
        engine.dispose()


def _raw(dataset: Dataset) -> dict[str, t.Any]:
    engine = sa.create_engine(dataset.url)
    now = datetime.now(UTC)
    resolved_at = now.replace(tzinfo=None) if dataset.is_sqlite else now
    try:
        began = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE sentry_group SET status = 'resolved', resolved_at = :now"
                    " WHERE project_id = :p AND status = 'unresolved'"
                ),
                {"p": PROJECT_ID, "now": resolved_at},
            )
        resolve_s = time.perf_counter() - began
        began = time.perf_counter()
        with engine.begin() as connection:
            selected = "SELECT id FROM sentry_group WHERE project_id = :p"
            for table in CHILD_TABLES:
                connection.execute(
                    sa.text(f"DELETE FROM {table} WHERE group_id IN ({selected})"),
                    {"p": PROJECT_ID},
                )
            connection.execute(
                sa.text("DELETE FROM sentry_group WHERE project_id = :p"), {"p": PROJECT_ID}
            )
        delete_s = time.perf_counter() - began
    finally:
        engine.dispose()
    return {"resolve_s": round(resolve_s, 3), "delete_s": round(delete_s, 3)}


def run(ctx: Context) -> dict[str, t.Any]:
    source = ctx.backend.dataset(ctx.params.bulk_groups, 1, ctx.log)
    ours_copy = ctx.backend.copy(source, "bulk-ours")
    raw_copy = ctx.backend.copy(source, "bulk-raw")
    try:
        for copy in (ours_copy, raw_copy):
            _unresolve_all(copy.url)
        ours = _ours(ctx, ours_copy)
        ctx.log("bulk: raw SQL UPDATE and DELETE")
        raw = _raw(raw_copy)
    finally:
        ctx.backend.drop(ours_copy)
        ctx.backend.drop(raw_copy)
    return {
        "loadgen": "python, one request each",
        "ours": ours,
        "raw_sql": raw,
        "ratio_resolve": round(ours["resolve_s"] / raw["resolve_s"], 3),
        "ratio_delete": round(ours["delete_s"] / raw["delete_s"], 3),
    }
