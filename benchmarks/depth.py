"""Page time against depth: our keyset cursors versus an OFFSET pager over the same table.

For each depth d the cursor is built from the row at position d of the list order
(``last_seen`` descending, ``id`` descending, all groups of the project), read
straight from the database: its key is ``floor(last_seen)`` in seconds and its offset the
number of rows before it with that same key. The first row of the page must be that row.
"""

from __future__ import annotations

import json
import time
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import sqlalchemy as sa

from . import loadgen
from . import server
from .common import Context
from .data import PROJECT_ID
from .data import Dataset

UTC = timezone.utc
PAGE = 100


def depths(groups: int) -> list[int]:
    """0, 1,000, a tenth of the way and the last page (100,000 and 999,900 of a million)."""
    return sorted({0, min(1000, groups - PAGE), groups // 10, groups - PAGE})


def _as_utc(value: t.Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _bind_time(engine: sa.Engine, moment: datetime) -> t.Any:
    # SQLite stores naive UTC text; comparing with an aware value would compare strings
    # with a "+00:00" suffix and get the boundary wrong.
    return moment.replace(tzinfo=None) if engine.dialect.name == "sqlite" else moment


def _table(engine: sa.Engine) -> sa.Table:
    return sa.Table("sentry_group", sa.MetaData(), autoload_with=engine)


def cursor_at(engine: sa.Engine, depth: int) -> tuple[str | None, int]:
    """The cursor of the page starting at ``depth`` and the id of its first row."""
    g = _table(engine)
    selection = (g.c.project_id == PROJECT_ID,)
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(g.c.id, g.c.last_seen)
            .where(*selection)
            .order_by(g.c.last_seen.desc(), g.c.id.desc())
            .limit(1)
            .offset(depth)
        ).one()
        if depth == 0:
            return None, int(row.id)
        last_seen = _as_utc(row.last_seen)
        key = int(last_seen.timestamp() // 1)
        next_second = datetime.fromtimestamp(key, UTC) + timedelta(seconds=1)
        newer = connection.scalar(
            sa.select(sa.func.count())
            .select_from(g)
            .where(*selection, g.c.last_seen >= _bind_time(engine, next_second))
        )
    return f"{key}:{depth - int(newer or 0)}:0", int(row.id)


def _time_http(port: int, raw: bytes, repeats: int) -> tuple[float, bytes]:
    for _ in range(2):
        loadgen.send(port, raw)
    times = []
    response = b""
    for _ in range(repeats):
        began = time.perf_counter()
        status, response = loadgen.send(port, raw)
        times.append(time.perf_counter() - began)
        if status != 200:
            raise RuntimeError(f"page request failed: {response[:300]!r}")
    return loadgen.median(times), response


def _time_sql(engine: sa.Engine, stmt: t.Any, repeats: int) -> tuple[float, int]:
    times = []
    first_id = 0
    with engine.connect() as connection:
        for i in range(repeats + 2):
            began = time.perf_counter()
            rows = connection.execute(stmt).all()
            if i >= 2:
                times.append(time.perf_counter() - began)
            first_id = int(rows[0].id)
    return loadgen.median(times), first_id


def run(ctx: Context, ours: server.Server, dataset: Dataset) -> dict[str, t.Any]:
    engine = sa.create_engine(dataset.url)
    g = _table(engine)
    repeats = ctx.params.depth_repeats
    auth = loadgen.basic_auth(dataset.public_key, dataset.secret_key)
    rows: list[dict[str, t.Any]] = []
    try:
        for depth in depths(dataset.groups):
            cursor, expected_id = cursor_at(engine, depth)
            # An empty query lists every status, so the whole project can be paged.
            path = f"/api/0/projects/{PROJECT_ID}/groups/?query="
            if cursor is not None:
                path += f"&cursor={cursor}"
            raw = loadgen.build_request("GET", path, port=ours.port, headers=auth)
            ctx.log(f"depth {depth:,}: GET {path}")
            ours_s, response = _time_http(ours.port, raw, repeats)
            page = json.loads(response.split(b"\r\n\r\n", 1)[1])
            if len(page) != PAGE or int(page[0]["id"]) != expected_id:
                raise RuntimeError(
                    f"depth {depth}: page starts at {page[0]['id']}, not {expected_id}"
                )
            offset_stmt = (
                sa.select(g)
                .where(g.c.project_id == PROJECT_ID)
                .order_by(g.c.last_seen.desc(), g.c.id.desc())
                .limit(PAGE)
                .offset(depth)
            )
            offset_s, offset_first = _time_sql(engine, offset_stmt, repeats)
            if offset_first != expected_id:
                raise RuntimeError(f"depth {depth}: OFFSET page starts at {offset_first}")
            rows.append(
                {
                    "depth": depth,
                    "cursor": cursor,
                    "ours_http_ms": round(ours_s * 1000, 2),
                    "offset_sql_ms": round(offset_s * 1000, 2),
                }
            )
    finally:
        engine.dispose()
    first, deepest = rows[0], rows[-1]
    return {
        "groups": dataset.groups,
        "loadgen": f"python, 1 connection, median of {repeats} sequential requests",
        "repeats": repeats,
        "pages": rows,
        "ratio_deepest_first_ours": round(deepest["ours_http_ms"] / first["ours_http_ms"], 3),
        "ratio_deepest_first_offset": round(deepest["offset_sql_ms"] / first["offset_sql_ms"], 3),
    }
