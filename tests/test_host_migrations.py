"""A host app's own Flask-Migrate history leaves the storage's tables to the storage.

The host has its own model on the same ``db`` and runs Flask-Migrate (its Python API, as
``flask db`` does) with ``include_object=flask_sentry_api.migrate.include_object``:
autogenerate then proposes the host's tables only, never the storage's (their
``<prefix>alembic_version`` included), before and after ``flask sentry-api init-db``.
"""

from __future__ import annotations

import typing as t
import uuid
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_sentry_api import SentryAPI
from flask_sentry_api.migrate import head_revision
from flask_sentry_api.migrate import include_name
from flask_sentry_api.migrate import include_object
from flask_sentry_api.models import TABLE_NAMES
from flask_sentry_api.models import build_models
from flask_sentry_api.models import table_names
from tests.helpers import DATABASE_URL
from tests.helpers import ON_POSTGRES
from tests.helpers import close_after_test

# Flask-Migrate 4.1's env.py tries Flask-SQLAlchemy 2's db.get_engine() first.
pytestmark = pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")

needs_postgresql = pytest.mark.skipif(
    not ON_POSTGRES, reason="SENTRY_API_TEST_DATABASE_URL names no PostgreSQL database"
)

#: Flask-Migrate's ``Migrate`` keyword arguments giving it the package's helper.
WITH_HELPER: dict[str, t.Any] = {"include_object": include_object}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgresql)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[dict[str, t.Any]]:
    """Flask-SQLAlchemy settings of an empty database: a SQLite file, or a schema of its own
    on the PostgreSQL database under test (so no other test's table is reflected)."""
    if request.param == "sqlite":
        yield {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'host.db'}"}
        return
    schema = f"hostmig_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield {
            "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}},
        }
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def host_db() -> SQLAlchemy:
    """The host's ``db`` with its own model (a table the host's migrations own)."""
    db = SQLAlchemy()

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_user"
        id = sa.Column(sa.Integer, primary_key=True)
        email = sa.Column(sa.String(200), nullable=False, unique=True, index=True)

    return db


def host_app(
    database: t.Mapping[str, t.Any],
    directory: Path,
    migrate: t.Mapping[str, t.Any] | None = WITH_HELPER,
    *,
    db: SQLAlchemy | None = None,
    prefix: str | None = None,
) -> Flask:
    """A host app with Flask-Migrate given ``migrate`` (None: without the package's helper)."""
    app = Flask("hostmig")
    app.config.update(TESTING=True, **database)
    if prefix is not None:
        app.config["SENTRY_API_TABLE_PREFIX"] = prefix
    db = db if db is not None else host_db()
    db.init_app(app)
    SentryAPI(app)
    flask_migrate.Migrate(app, db, directory=str(directory), **(migrate or {}))
    return close_after_test(app)


def init_repository(app: Flask) -> Path:
    """``flask db init``; the repository's env.py left without its logging set-up, which
    would reconfigure (and disable) every logger of the test process."""
    directory = Path(app.extensions["migrate"].directory)
    with app.app_context():
        flask_migrate.init(directory=str(directory))
    env = directory / "env.py"
    text = env.read_text()
    assert "fileConfig(config.config_file_name)" in text
    env.write_text(text.replace("fileConfig(config.config_file_name)", "pass"))
    return directory


def autogenerate(app: Flask, message: str) -> str | None:
    """``flask db migrate``: the new script's text, None when it proposed nothing."""
    versions = Path(app.extensions["migrate"].directory) / "versions"
    before = set(versions.glob("*.py"))
    with app.app_context():
        flask_migrate.migrate(directory=str(versions.parent), message=message)
    new = set(versions.glob("*.py")) - before
    assert len(new) <= 1
    return new.pop().read_text() if new else None


def upgrade(app: Flask) -> None:
    with app.app_context():
        flask_migrate.upgrade(directory=app.extensions["migrate"].directory)


def init_db(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["sentry-api", "init-db"])
    assert result.exit_code == 0, result.output


def table_names_in(app: Flask) -> set[str]:
    with app.app_context():
        return set(sa.inspect(app.extensions["sqlalchemy"].engine).get_table_names())


def version(app: Flask, table: str) -> str | None:
    with app.app_context(), app.extensions["sqlalchemy"].engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT version_num FROM {table}")).scalar()


def storage_tables(prefix: str = "sentry_") -> set[str]:
    return {prefix + name for name in TABLE_NAMES}


# -- the host's autogenerate ---------------------------------------------------------------
def test_autogenerate_proposes_the_hosts_tables_only(
    database: dict[str, t.Any], tmp_path: Path
) -> None:
    app = host_app(database, tmp_path / "migrations")
    init_repository(app)

    # An empty database: the host's first migration creates its table, none of the storage's.
    script = autogenerate(app, "users")
    assert script is not None
    assert "op.create_table('host_user'" in script
    assert "sentry_" not in script and "alembic_version" not in script
    upgrade(app)
    assert table_names_in(app) == {"host_user", "alembic_version"}

    # The storage makes and migrates its own tables, with its own version table.
    init_db(app)
    assert table_names_in(app) == {
        "host_user",
        "alembic_version",
        "sentry_alembic_version",
        *storage_tables(),
    }

    # The next autogenerate finds nothing to do: no drop of the storage's version table,
    # no change to its tables, indexes or constraints.
    assert autogenerate(app, "nothing") is None

    # Both histories stay where they are, through another round of each.
    upgrade(app)
    init_db(app)
    assert autogenerate(app, "still nothing") is None
    assert version(app, "sentry_alembic_version") == head_revision()
    host_revision = version(app, "alembic_version")
    assert host_revision is not None and host_revision != head_revision()


def test_without_the_helper_autogenerate_claims_the_storage_tables(
    database: dict[str, t.Any], tmp_path: Path
) -> None:
    """What the helper prevents (the issue's report), so the test above can fail."""
    app = host_app(database, tmp_path / "migrations", migrate=None)
    init_repository(app)

    script = autogenerate(app, "everything")
    assert script is not None
    for name in storage_tables():
        assert f"op.create_table('{name}'" in script
    (script_path,) = (Path(app.extensions["migrate"].directory) / "versions").glob("*.py")
    script_path.unlink()

    init_db(app)
    script = autogenerate(app, "drop theirs")
    assert script is not None
    assert "op.drop_table('sentry_alembic_version')" in script


def test_a_hosts_own_filters_combine_with_the_helpers(
    database: dict[str, t.Any], tmp_path: Path
) -> None:
    """A host that filters too joins its rule with ``and``; ``include_name`` keeps the
    storage's tables found in the database from being reflected at all."""
    db = host_db()

    class Legacy(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "legacy_report"
        id = sa.Column(sa.Integer, primary_key=True)

    def hosts_rule(obj: t.Any, name: str | None, type_: str, *args: t.Any) -> bool:
        return not (type_ == "table" and name == "legacy_report")

    def combined(*args: t.Any) -> bool:
        return include_object(*args) and hosts_rule(*args)

    options = {"include_object": combined, "include_name": include_name}
    app = host_app(database, tmp_path / "migrations", options, db=db)
    init_repository(app)
    init_db(app)  # the storage's tables first this time
    script = autogenerate(app, "users")
    assert script is not None
    assert "op.create_table('host_user'" in script
    assert "legacy_report" not in script and "sentry_" not in script


def test_the_helpers_leave_out_every_part_of_the_storage_tables() -> None:
    db = host_db()
    models = build_models(db, "parts_")
    ours = [table for table in db.metadata.sorted_tables if table.name.startswith("parts_")]
    assert {table.name for table in ours} == {table.name for table in models.tables}
    assert {table.name for table in ours} == table_names("parts_") - {"parts_alembic_version"}
    host = db.metadata.tables["host_user"]
    for table, expected in [(host, True), *((table, False) for table in ours)]:
        parts: list[tuple[t.Any, str]] = [(table, "table")]
        parts += [(column, "column") for column in table.columns]
        parts += [(index, "index") for index in table.indexes]
        parts += [(constraint, "unique_constraint") for constraint in table.constraints]
        for part, type_ in parts:
            assert include_object(part, part.name, type_, False, None) is expected, part
            assert include_object(part, part.name, type_, True, part) is expected, part
        assert include_name(table.name, "table", {"schema_name": None}) is expected
        assert include_name("ix", "index", {"table_name": table.name}) is expected
    # Found only in the database: the version table, by the name its prefix gives it.
    version_table = sa.Table("parts_alembic_version", sa.MetaData())
    assert include_object(version_table, version_table.name, "table", True, None) is False
    assert include_name("parts_alembic_version", "table", {"schema_name": None}) is False


# -- table prefixes ------------------------------------------------------------------------
def test_each_prefix_makes_and_migrates_its_own_tables_only(
    database: dict[str, t.Any], tmp_path: Path
) -> None:
    """Two apps on one ``db`` and one database, with different prefixes: ``init-db`` (the
    storage's schema creation) of each makes its tables only, and neither app's
    autogenerate claims the other's."""
    db = host_db()
    first = host_app(database, tmp_path / "first", db=db, prefix="one_")
    second = host_app(database, tmp_path / "second", db=db, prefix="two_")

    init_db(first)
    assert table_names_in(first) == {"one_alembic_version", *storage_tables("one_")}
    init_db(second)
    assert table_names_in(first) == {
        "one_alembic_version",
        "two_alembic_version",
        *storage_tables("one_"),
        *storage_tables("two_"),
    }
    assert version(first, "one_alembic_version") == head_revision()
    assert version(second, "two_alembic_version") == head_revision()

    for app in (first, second):
        init_repository(app)
        script = autogenerate(app, "users")
        assert script is not None
        assert "op.create_table('host_user'" in script
        assert "one_" not in script and "two_" not in script and "sentry_" not in script
