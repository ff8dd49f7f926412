"""Every list ordering is served by an index range scan, never a sort of the table, and every
lookup by a unique key by an index.

The statements are captured as the default storage sends them, then explained by the
database itself (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN with sequential scans
priced out, since a test table is too small for the planner to prefer an index on its own).
"""

from __future__ import annotations

import re
import typing as t

import pytest
from flask import Flask

from flask_sentry_api.pagination import Window
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from tests.helpers import captured_statements


def explain(app: Flask, statement: str, parameters: t.Any) -> str:
    engine = app.extensions["sqlalchemy"].engine
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        return plan


@pytest.mark.parametrize("sort", ["date", "new", "freq", "priority"])
@pytest.mark.parametrize("status", ["unresolved", None])
@pytest.mark.parametrize("op", [None, "<=", ">"])
def test_group_pages_read_an_index_range(
    app: Flask, storage: Storage, project: Project, sort: str, status: str | None, op: str | None
) -> None:
    query = GroupQuery(status=status, sort=sort)
    window = Window(op=op, value=1_420_837_590, descending=op != ">", offset=5, limit=101)
    statements = captured_statements(app, lambda: storage.list_groups(project.id, query, window))
    selects = [(sql, params) for sql, params in statements if "ORDER BY" in sql]
    assert len(selects) == 1
    plan = explain(app, *selects[0])
    if app.extensions["sqlalchemy"].engine.dialect.name == "sqlite":
        assert re.search(r"USING (COVERING )?INDEX sentry_group_", plan), plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "Index Scan" in plan, plan
        assert "Sort" not in plan, plan


def on_sqlite(app: Flask) -> bool:
    return bool(app.extensions["sqlalchemy"].engine.dialect.name == "sqlite")


def only_statement(app: Flask, action: t.Callable[[], object]) -> tuple[str, t.Any]:
    [statement] = captured_statements(app, action)
    return statement


@pytest.mark.parametrize("op", [None, "<=", ">"])
def test_project_event_pages_read_an_index_range(
    app: Flask, storage: Storage, project: Project, op: str | None
) -> None:
    window = Window(op=op, value=1_000, descending=op != ">", offset=5, limit=101)
    plan = explain(
        app, *only_statement(app, lambda: storage.list_project_events(project.id, window))
    )
    if on_sqlite(app):
        assert re.search(r"USING (COVERING )?INDEX sentry_event_project_id", plan), plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "sentry_event_project_id" in plan, plan
        assert "Sort" not in plan, plan


def test_oldest_event_reads_one_index_entry(app: Flask, storage: Storage) -> None:
    plan = explain(app, *only_statement(app, lambda: storage.oldest_event(1)))
    if on_sqlite(app):
        assert "USING INDEX sentry_event_group_datetime" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "sentry_event_group_datetime" in plan, plan
        assert "Sort" not in plan, plan


@pytest.mark.parametrize("lookup", ["project_by_slug", "event_by_event_id", "token_by_hash"])
def test_lookups_by_unique_key_use_an_index(
    app: Flask, storage: Storage, project: Project, lookup: str
) -> None:
    actions: dict[str, t.Callable[[], object]] = {
        "project_by_slug": lambda: storage.get_project_by_slug("web"),
        "event_by_event_id": lambda: storage.get_event_by_event_id(project.id, "0" * 32),
        "token_by_hash": lambda: storage.get_token("0" * 64),  # type: ignore[attr-defined]
    }
    plan = explain(app, *only_statement(app, actions[lookup]))
    if on_sqlite(app):
        assert re.search(r"SEARCH \S+ USING (COVERING )?INDEX", plan), plan
    else:
        assert "Index Scan" in plan, plan
        assert "Seq Scan" not in plan, plan
