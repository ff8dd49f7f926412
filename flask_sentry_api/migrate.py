"""Schema migrations of the default storage's tables, with the packaged Alembic environment.

The storage keeps its own version table (``<prefix>alembic_version``), so it never mixes
with a host's own Alembic history.
"""

from __future__ import annotations

import functools
import typing as t
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

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
def head_revision() -> str:
    script = ScriptDirectory(str(Path(__file__).with_name("migrations")))
    return t.cast(str, script.get_current_head())


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


def upgrade_locked(connection: sa.Connection, table_prefix: str, revision: str = "head") -> None:
    """Bring the tables to ``revision`` on a connection that holds :func:`lock_schema`.

    Tables that exist without a version table (made by ``db.create_all()``) are taken to be
    at the baseline revision and upgraded from there; a version table left behind by tables
    dropped outside the migrations (``db.drop_all()`` in a host's tests) is dropped with
    them, so the upgrade starts from an empty database.
    """
    current = current_revision(connection, table_prefix)
    if revision == "head" and current == head_revision():
        return  # the common case at every start-up: nothing to load or run
    config = alembic_config(connection, table_prefix)
    has_tables = sa.inspect(connection).has_table(f"{table_prefix}project")
    if current is not None and not has_tables:
        connection.execute(sa.text(f"DROP TABLE {table_prefix}alembic_version"))
    elif current is None and has_tables:
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
