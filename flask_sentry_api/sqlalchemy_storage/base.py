"""The SQL storage's plumbing: its ``db``, models, session and dialect, shared by the write
path (:mod:`.events`) and the rest of the storage (:mod:`.storage`)."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from ..models import Models
from ..models import build_models
from . import statements as sql

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from flask_sqlalchemy.session import Session
    from sqlalchemy.orm import scoped_session
    from sqlalchemy.sql.elements import ColumnElement

R = t.TypeVar("R")


class SQLStorageBase:
    """A Flask-SQLAlchemy ``db`` and the storage's models on it, with the helpers every
    query of the storage uses."""

    def __init__(self, db: SQLAlchemy, *, table_prefix: str = "sentry_") -> None:
        self.db = db
        self.table_prefix = table_prefix
        self.models: Models = build_models(db, table_prefix)
        self._statements = sql.StatementCache()

    @property
    def session(self) -> scoped_session[Session]:
        return self.db.session

    @property
    def engine(self) -> sa.Engine:
        """The engine the storage's tables are on (the session's bind for them)."""
        return t.cast(sa.Engine, self.session.get_bind())

    @property
    def dialect(self) -> str:
        return str(self.session.get_bind().dialect.name)

    def _statement(
        self, connection: sa.Connection, name: str, build: t.Callable[[], t.Any]
    ) -> t.Any:
        """The statement ``build()`` returns, built once per dialect (see
        :class:`~.statements.StatementCache`)."""
        return self._statements.get(connection, name, build)

    def _insert(self, model: t.Any) -> sql.DialectInsert:
        """A dialect insert that supports ``ON CONFLICT`` (SQLite and PostgreSQL)."""
        return sql.dialect_insert(self.dialect, model)

    def _in_ids(self, column: t.Any, ids: t.Any) -> ColumnElement[bool]:
        """``column IN ids`` for a list of ids or a subquery (see :func:`~.statements.in_ids`)."""
        return sql.in_ids(self.dialect, column, ids)

    def _lower(self, column: t.Any) -> ColumnElement[t.Any]:
        # SQLite's lower() folds ASCII letters only; PostgreSQL's folds every letter.
        if self.dialect == "sqlite":
            # On the connection the query will run on: the function is added per engine
            # (and per connection it already had), not to every engine in the process.
            sql.add_sqlite_functions(self.session.connection())
            return sa.func.sentry_api_lower(column)  # statements.SQLITE_LOWER
        return sa.func.lower(column)

    def _begin_write(self) -> None:
        """Start the write transaction now, holding the database's write lock on SQLite.

        pysqlite opens a transaction only at the first INSERT/UPDATE/DELETE, and SQLite has
        no ``SELECT ... FOR UPDATE``: the rows a write reads first (the groups a merge or a
        delete locks on PostgreSQL) could change under it, and a merge racing a delete
        orphaned events. ``BEGIN IMMEDIATE`` takes the lock at the start instead, so writers
        take turns (waiting up to the connection's busy timeout). A transaction already open
        on the connection is kept as it is; PostgreSQL needs nothing (its row locks do it).
        """
        if self.dialect != "sqlite":
            return
        connection = self.session.connection()
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and not getattr(dbapi_connection, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _commit_returning(self, record: t.Callable[[], R]) -> R:
        """Commit, returning ``record()`` built from the rows before the commit expires them:
        reading them afterwards would start a transaction left open (and holding locks) until
        the session is removed."""
        self.session.flush()
        result = record()
        self.session.commit()
        return result
