"""Schema migrations of the default storage's tables, with the packaged Alembic environment.

The storage keeps its own version table (``<prefix>alembic_version``), so it never mixes
with a host's own Alembic history. Its tables are on the host's ``db.metadata`` (so
``db.create_all()`` makes them), which a host's Alembic autogenerate would otherwise claim:
:func:`include_object` (and optionally :func:`include_name`) leave them out of it::

    from flask_sentry_api.migrate import include_object

    Migrate(app, db, include_object=include_object)
"""

from __future__ import annotations

import functools
import typing as t
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .models import TABLE_INFO_KEY
from .models import declared_prefixes
from .models import table_names

#: The first revision: the schema of tables created before migrations were tracked.
BASELINE = "0001"


def alembic_config(connection: sa.Connection, table_prefix: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes.update(
        connection=connection,
        table_prefix=table_prefix,
        version_table=f"{table_prefix}alembic_version",
    )
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    return ScriptDirectory(str(Path(__file__).with_name("migrations")))


@functools.cache
def head_revision() -> str:
    return t.cast(str, script_directory().get_current_head())


def current_revision(connection: sa.Connection, table_prefix: str) -> str | None:
    version_table = f"{table_prefix}alembic_version"
    if not sa.inspect(connection).has_table(version_table):
        return None
    return connection.execute(sa.text(f"SELECT version_num FROM {version_table}")).scalar()


def lock_schema(connection: sa.Connection, table_prefix: str) -> None:
    """Hold the schema lock until ``connection``'s transaction ends.

    Every worker of a host migrates at boot; the lock makes them take turns, so the first
    migrates and the others then find the tables at head.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
            {"name": f"{table_prefix}alembic_version"},
        )
    elif connection.dialect.name == "sqlite":
        # pysqlite starts transactions lazily, at the first write: start one now, taking the
        # database's write lock, and run the DDL inside it.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_locked(
    connection: sa.Connection,
    table_prefix: str,
    revision: str = "head",
    *,
    head_tables: t.Sequence[sa.Table] = (),
) -> None:
    """Bring the tables to ``revision`` on a connection that holds :func:`lock_schema`.

    Tables that exist without a version table (made by ``db.create_all()``) are taken to be
    at the baseline revision and upgraded from there; a version table left behind by tables
    dropped outside the migrations (``db.drop_all()`` in a host's tests) is dropped with
    them, so the upgrade starts from an empty database.

    On an empty database, ``head_tables`` (the models' tables, which the tests hold to be
    exactly what the migrations make) are created at once and stamped ``head``, instead of
    replaying every revision: a new database, or every test of a host, is ready sooner.
    """
    current = current_revision(connection, table_prefix)
    if revision == "head" and current == head_revision():
        return  # the common case at every start-up: nothing to load or run
    has_tables = sa.inspect(connection).has_table(f"{table_prefix}project")
    if current is not None and not has_tables:
        connection.execute(sa.text(f"DROP TABLE {table_prefix}alembic_version"))
        current = None
    if current is None and not has_tables and revision == "head" and head_tables:
        sa.MetaData().create_all(connection, tables=list(head_tables))
        context = MigrationContext.configure(
            connection, opts={"version_table": f"{table_prefix}alembic_version"}
        )
        context.stamp(script_directory(), "head")
        return
    config = alembic_config(connection, table_prefix)
    if current is None and has_tables:
        command.stamp(config, BASELINE)
    command.upgrade(config, revision)


def upgrade(engine: sa.Engine, table_prefix: str, revision: str = "head") -> None:
    """Bring the tables to ``revision``, safely from several processes at once."""
    with engine.begin() as connection:
        lock_schema(connection, table_prefix)
        upgrade_locked(connection, table_prefix, revision)


def downgrade(engine: sa.Engine, table_prefix: str, revision: str) -> None:
    with engine.begin() as connection:
        lock_schema(connection, table_prefix)
        command.downgrade(alembic_config(connection, table_prefix), revision)


# -- the host's autogenerate ---------------------------------------------------------------
def storage_table_names() -> frozenset[str]:
    """Every name the storage's tables (version tables included) have in this process: those
    of each prefix :func:`~flask_sentry_api.models.build_models` declared. An app's default
    storage declares its prefix's models as the extension initialises, so ``flask db``
    commands, which load the app first, know its prefix; found in the database, these
    tables are told from the host's by name alone."""
    return frozenset().union(*(table_names(prefix) for prefix in declared_prefixes()))


def _is_storage_table(table: t.Any, names: frozenset[str]) -> bool:
    if table is None:
        return False
    info = getattr(table, "info", None)
    return (isinstance(info, dict) and TABLE_INFO_KEY in info) or table.name in names


def _table_of(obj: t.Any) -> t.Any:
    """The table a column, index or constraint belongs to (None if it has none)."""
    try:
        return getattr(obj, "table", None)
    except sa.exc.InvalidRequestError:  # a constraint not attached to a table
        return None


def include_object(
    obj: t.Any, name: str | None, type_: str, reflected: bool, compare_to: t.Any
) -> bool:
    """Alembic's ``include_object`` hook that leaves out the storage's tables.

    False for the storage's tables, of the models (marked in ``Table.info``) or found in the
    database (by name, its ``<prefix>alembic_version`` included), and for their columns,
    indexes and constraints; true for everything else. The storage migrates its tables
    itself (``flask sentry-api init-db``). A host with its own rule combines the two with
    ``and``.
    """
    names = storage_table_names()
    if type_ == "table":
        return not _is_storage_table(obj, names)
    return not any(
        _is_storage_table(_table_of(candidate), names) for candidate in (obj, compare_to)
    )


def include_name(name: str | None, type_: str, parent_names: t.Mapping[str, t.Any]) -> bool:
    """Alembic's ``include_name`` hook: the storage's tables found in the database (and
    their indexes and constraints) are not even reflected.

    Optional next to :func:`include_object`, which leaves them out too; a host whose
    database holds many rows of them saves the reflection.
    """
    names = storage_table_names()
    if type_ == "table":
        return name not in names
    return parent_names.get("table_name") not in names
