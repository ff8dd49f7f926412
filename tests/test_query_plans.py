"""Every group-list ordering is served by an index range scan, never a sort of the table.

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
