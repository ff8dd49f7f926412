"""The packaged Alembic migrations produce exactly the schema the models declare."""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import datetime
from datetime import timezone

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
from flask_sentry_api.sqlalchemy_storage import SQLAlchemyStorage
from flask_sentry_api.storage import ReleaseChanges
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


def test_a_0001_database_upgrades_keeping_its_releases(db: SQLAlchemy) -> None:
    upgrade(db.engine, PREFIX, "0001")
    created = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                f"INSERT INTO {PREFIX}project (id, slug, name, is_public, status,"
                " allowed_origins, date_created) VALUES (7, 'web', 'Web', false, 'active', '*',"
                " :created)"
            ),
            {"created": created},
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {PREFIX}release (id, project_id, version, date_created, first_event,"
                " last_event, new_groups) VALUES (3, 7, '1.0', :created, :created, :created, 2)"
            ),
            {"created": created},
        )
    upgrade(db.engine, PREFIX)
    with db.engine.connect() as connection:
        assert current_revision(connection, PREFIX) == head_revision()
    assert schema_differences(db) == []

    storage = SQLAlchemyStorage(db, table_prefix=PREFIX)
    release = storage.get_release(7, "1.0")
    assert release is not None
    assert (release.id, release.version, release.new_groups) == (3, "1.0", 2)
    assert (release.date_created, release.first_event, release.last_event) == (created,) * 3
    assert (release.ref, release.url, release.date_released, release.date_started) == (None,) * 4
    details = ReleaseChanges(ref="abc", date_released=created)
    assert storage.update_release(7, "1.0", details) == dataclasses.replace(
        release, ref="abc", date_released=created
    )
    token = storage.create_token(7, "f" * 64, ["project:read"])
    assert storage.get_token("f" * 64) == token
    db.session.remove()

    # And back: the release row stays, the new columns, table and index go.
    downgrade(db.engine, PREFIX, "0001")
    inspector = sa.inspect(db.engine)
    columns = {column["name"] for column in inspector.get_columns(f"{PREFIX}release")}
    assert not {"ref", "url", "date_released", "date_started"} & columns
    assert not inspector.has_table(f"{PREFIX}auth_token")
    indexes = {index["name"] for index in inspector.get_indexes(f"{PREFIX}event")}
    assert f"{PREFIX}event_project_id" not in indexes
    with db.engine.connect() as connection:
        assert current_revision(connection, PREFIX) == "0001"
        versions = connection.execute(sa.text(f"SELECT id, version FROM {PREFIX}release"))
        assert versions.all() == [(3, "1.0")]
    upgrade(db.engine, PREFIX)
    assert schema_differences(db) == []


def test_tables_partly_at_head_are_upgraded(db: SQLAlchemy) -> None:
    """A 0001 database that already has some of 0002 (tables a host's ``create_all()``
    re-created from newer models) still upgrades: what exists is kept."""
    upgrade(db.engine, PREFIX, "0001")
    models = build_models(db, PREFIX)
    db.metadata.create_all(db.engine, tables=[models.AuthToken.__table__])
    upgrade(db.engine, PREFIX)
    assert schema_differences(db) == []
