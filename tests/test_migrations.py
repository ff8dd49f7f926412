"""The packaged Alembic migrations produce exactly the schema the models declare."""

from __future__ import annotations

import dataclasses
import importlib
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
from flask_sentry_api.models import table_names
from flask_sentry_api.sqlalchemy_storage import SQLAlchemyStorage
from flask_sentry_api.storage import RateLimit
from flask_sentry_api.storage import ReleaseChanges
from flask_sentry_api.storage import is_valid_release_version
from flask_sentry_api.testing import make_event
from tests.helpers import DATABASE_URL
from tests.helpers import ON_POSTGRES

PREFIX = "migtest_"
#: The timestamp columns per table that revision 0003 completes on SQLite.
TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = importlib.import_module(
    "flask_sentry_api.migrations.versions.0003_clean_release_versions_and_timestamps"
).TIMESTAMP_COLUMNS


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


def test_the_migrations_make_exactly_the_named_tables(db: SQLAlchemy) -> None:
    """``table_names`` (what a host's autogenerate leaves out when found in the database)
    names every table the migrations make, the version table included."""
    upgrade(db.engine, PREFIX)
    names = {name for name in sa.inspect(db.engine).get_table_names() if name.startswith(PREFIX)}
    assert names == table_names(PREFIX)


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


#: Versions as ingestion stored them before 0003, and whether each is valid (reachable).
LEGACY_VERSIONS: dict[str, bool] = {
    "1.0": True,
    "my app 1.0": True,
    "web@2.0+build.7": True,
    "...": True,
    "Latest2": True,
    "mid\u00a0dle\u2028": False,
    "mid\u00a0dle": True,
    "\u00fc" * 200: True,
    "latest": False,
    "LaTeSt": False,
    ".": False,
    "..": False,
    "a\tb": False,
    "a\x01b": False,
    "a\x1fb": False,
    "del\x7f": False,
    "a/b": False,
    "a\\b": False,
    " lead": False,
    "trail ": False,
    "\u3000wide": False,
    "\u00a0": False,
    "": False,
}


def test_0003_drops_the_releases_the_api_cannot_reach(db: SQLAlchemy) -> None:
    """Issue 12: ingestion stored any ``release``; 0003 deletes the releases that break the
    version rule (and unsets their events' ``release``), keeping every other row."""
    upgrade(db.engine, PREFIX, "0002")
    storage = SQLAlchemyStorage(db, table_prefix=PREFIX)
    project = storage.create_project("Web")
    versions = dict(LEGACY_VERSIONS)
    if db.engine.dialect.name == "sqlite":
        versions["v" * 201] = False  # PostgreSQL's varchar(200) refused these already
    saved = {
        version: storage.save_event(project.id, make_event(title=f"e{n}", release=version))
        for n, version in enumerate(versions)
    }
    db.session.remove()
    with db.engine.connect() as connection:
        stored = connection.execute(sa.text(f"SELECT count(*) FROM {PREFIX}release")).scalar()
    assert stored == len(versions) - 1  # the event with "" has no release

    upgrade(db.engine, PREFIX)
    assert schema_differences(db) == []
    assert {version: is_valid_release_version(version) for version in versions} == versions
    valid = {version for version, ok in versions.items() if ok}
    with db.engine.connect() as connection:
        kept = connection.execute(sa.text(f"SELECT version FROM {PREFIX}release")).scalars()
        assert sorted(kept) == sorted(valid)
    for version, event in saved.items():
        stored_event = storage.get_event(event.event.id)
        assert stored_event is not None  # no event is lost
        assert stored_event.release == (version if version in valid else None)
        if version in valid:
            assert storage.get_release(project.id, version) is not None
    db.session.remove()


def _timestamp_texts(db: SQLAlchemy) -> list[str]:
    with db.engine.connect() as connection:
        return [
            value
            for table, columns in TIMESTAMP_COLUMNS.items()
            for column in columns
            for (value,) in connection.execute(
                sa.text(f'SELECT "{column}" FROM "{PREFIX}{table}" WHERE "{column}" IS NOT NULL')
            )
        ]


def test_0003_gives_sqlite_timestamps_the_orm_form(db: SQLAlchemy) -> None:
    """On SQLite every whole-second timestamp the old seed wrote gets the ORM's form; on
    PostgreSQL (real timestamps, one form) nothing changes."""
    upgrade(db.engine, PREFIX, "0002")
    storage = SQLAlchemyStorage(db, table_prefix=PREFIX)
    project = storage.create_project("Web")
    whole = datetime(2026, 11, 10, 7, 41, 32, tzinfo=timezone.utc)
    # No create_key (its model has 0004's columns): the row as the old seed wrote it, a naive
    # UTC datetime that pysqlite writes as '2026-11-10 07:41:32'.
    naive = whole.replace(tzinfo=None) if not ON_POSTGRES else whole
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                f"INSERT INTO {PREFIX}project_key (project_id, public_key, secret_key, roles,"
                " is_active, date_added) VALUES (:project, :public, :secret, 3, true, :added)"
            ),
            {"project": project.id, "public": "a" * 32, "secret": "b" * 32, "added": naive},
        )
    fraction = whole.replace(microsecond=250000)
    first = storage.save_event(project.id, make_event(timestamp=whole, release="1.0")).event
    storage.save_event(project.id, make_event(timestamp=fraction, release="1.0"))
    storage.create_note(first.group_id, "n")
    storage.update_release(project.id, "1.0", ReleaseChanges(date_released=whole))
    storage.create_token(project.id, "e" * 64, ["project:read"])
    db.session.remove()
    if ON_POSTGRES:
        before = _timestamp_texts(db)
        upgrade(db.engine, PREFIX)
        assert _timestamp_texts(db) == before
    else:
        # What the old seed wrote: whole seconds without the fraction, in every column.
        with db.engine.begin() as connection:
            for table, columns in TIMESTAMP_COLUMNS.items():
                for column in columns:
                    connection.execute(
                        sa.text(
                            f'UPDATE "{PREFIX}{table}" SET "{column}" = substr("{column}", 1, 19)'
                            f" WHERE \"{column}\" LIKE '%.000000'"
                        )
                    )
        before = _timestamp_texts(db)
        assert "2026-11-10 07:41:32" in before and "2026-11-10 07:41:32.250000" in before
        assert {len(value) for value in before} == {19, 26}
        upgrade(db.engine, PREFIX)
        after = _timestamp_texts(db)
        assert sorted(after) == sorted(v + ".000000" if len(v) == 19 else v for v in before)
        assert {len(value) for value in after} == {26}
    event = storage.get_event(first.id)
    assert event is not None and event.datetime == whole
    db.session.remove()


def test_0004_adds_key_rate_limits_keeping_the_keys(db: SQLAlchemy) -> None:
    upgrade(db.engine, PREFIX, "0003")
    storage = SQLAlchemyStorage(db, table_prefix=PREFIX)
    project = storage.create_project("Web")
    db.session.remove()
    with db.engine.begin() as connection:  # a key as 0003 stored it
        connection.execute(
            sa.text(
                f"INSERT INTO {PREFIX}project_key"
                " (project_id, public_key, secret_key, roles, is_active, date_added)"
                f" VALUES ({project.id}, '{'a' * 32}', '{'b' * 32}', 3, true,"
                " '2026-11-10 07:41:32.000000')"
            )
        )
    upgrade(db.engine, PREFIX)
    assert schema_differences(db) == []
    key = storage.get_key("a" * 32)
    assert key is not None and key.rate_limit is None
    assert storage.set_key_rate_limit("a" * 32, RateLimit(5, 60)) is True
    assert storage.get_key("a" * 32).rate_limit == RateLimit(5, 60)  # type: ignore[union-attr]
    db.session.remove()

    downgrade(db.engine, PREFIX, "0003")
    columns = {
        column["name"] for column in sa.inspect(db.engine).get_columns(f"{PREFIX}project_key")
    }
    assert "rate_limit_count" not in columns


def test_tables_dropped_outside_the_migrations_come_back_at_head(db: SQLAlchemy) -> None:
    """A host's tests ``db.drop_all()`` the tables but leave the version table: the next
    start-up must not run later migrations on tables that are gone."""
    upgrade(db.engine, PREFIX, "0002")
    models = build_models(db, PREFIX)
    db.metadata.drop_all(db.engine, tables=models.tables)

    storage = SQLAlchemyStorage(db, table_prefix=PREFIX)
    storage.init_schema()

    assert schema_differences(db) == []
    with db.engine.connect() as connection:
        assert current_revision(connection, PREFIX) == head_revision()
    assert storage.create_project("Back").id == 1
    db.session.remove()


def test_a_new_database_is_made_at_head_from_the_models(
    db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an empty database the storage creates the models' tables and stamps ``head``
    without replaying the revisions; what it makes is what the migrations make."""

    def replayed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the revisions were replayed on an empty database")

    monkeypatch.setattr("flask_sentry_api.migrate.command.upgrade", replayed)
    SQLAlchemyStorage(db, table_prefix=PREFIX).init_schema()

    assert schema_differences(db) == []
    names = {name for name in sa.inspect(db.engine).get_table_names() if name.startswith(PREFIX)}
    assert names == table_names(PREFIX)
    with db.engine.connect() as connection:
        assert current_revision(connection, PREFIX) == head_revision()
