"""The packaged Alembic migrations produce exactly the schema the models declare."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_sentry_api.migrate import current_revision
from flask_sentry_api.migrate import downgrade
from flask_sentry_api.migrate import head_revision
from flask_sentry_api.migrate import upgrade
from flask_sentry_api.models import build_models
from tests.helpers import DATABASE_URL

PREFIX = "migtest_"


@pytest.fixture
def db() -> t.Iterator[SQLAlchemy]:
    app = Flask("migrations")
    app.config["SQLALCHEMY_DATABASE_URI"] = DATABASE_URL
    db = SQLAlchemy(app)
    models = build_models(db, PREFIX)
    with app.app_context():
        drop_everything(db.engine, models.tables)
        yield db
        drop_everything(db.engine, models.tables)
        db.engine.dispose()


def drop_everything(engine: sa.Engine, tables: list[sa.Table]) -> None:
    with engine.begin() as connection:
        sa.MetaData().drop_all(connection, tables=tables, checkfirst=True)
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {PREFIX}alembic_version"))


def schema_differences(db: SQLAlchemy) -> list[t.Any]:
    models = build_models(db, PREFIX)
    ours = {table.name for table in models.tables}
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": lambda name, type_, parent: type_ != "table" or name in ours,
            },
        )
        return list(compare_metadata(context, db.metadata))


def test_upgrade_from_empty_matches_the_models(db: SQLAlchemy) -> None:
    upgrade(db.engine, PREFIX)
    assert schema_differences(db) == []
    with db.engine.connect() as connection:
        assert current_revision(connection, PREFIX) == head_revision()


def test_downgrade_to_base_removes_the_tables(db: SQLAlchemy) -> None:
    upgrade(db.engine, PREFIX)
    downgrade(db.engine, PREFIX, "base")
    names = set(sa.inspect(db.engine).get_table_names())
    assert not {table.name for table in build_models(db, PREFIX).tables} & names


def test_tables_from_create_all_are_adopted_at_the_baseline(db: SQLAlchemy) -> None:
    db.metadata.create_all(db.engine, tables=build_models(db, PREFIX).tables)
    upgrade(db.engine, PREFIX)
    with db.engine.connect() as connection:
        assert current_revision(connection, PREFIX) == head_revision()
    assert schema_differences(db) == []


def test_upgrade_twice_is_a_no_op(db: SQLAlchemy) -> None:
    upgrade(db.engine, PREFIX)
    upgrade(db.engine, PREFIX)
    assert schema_differences(db) == []
