"""Statement building blocks of the SQL storage: dialect inserts, ``ON CONFLICT`` merges,
keyset bounds, the per-dialect statement cache, error translation and SQLite's functions.

Nothing here holds state about a database except :class:`StatementCache` (built statements,
per dialect) and the listener :func:`add_sqlite_functions` attaches to one engine at a time.
"""

from __future__ import annotations

import functools
import sqlite3
import typing as t
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from .. import storage as s

if t.TYPE_CHECKING:
    from sqlalchemy.orm import scoped_session
    from sqlalchemy.sql.elements import ColumnElement

    from ..pagination import Window

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
SelectT = t.TypeVar("SelectT", bound="sa.Select[t.Any]")
#: A dialect insert (SQLite's or PostgreSQL's): both have ``excluded`` and the
#: ``on_conflict_do_*`` methods.
DialectInsert = postgresql.Insert | sqlite.Insert
#: What an ``ON CONFLICT`` merge reads the current row's columns from: a mapped class or
#: a table's ``.c``.
Columns = t.Any

_MAX_DATETIME = datetime.max.replace(tzinfo=s.UTC)
#: The Unicode-aware lower() of SQLite connections (SQLite's own folds ASCII only).
SQLITE_LOWER = "sentry_api_lower"
_FUNCTIONS_ADDED = "sentry_api_functions"


# -- dialect inserts and ON CONFLICT merges ------------------------------------------------------
def dialect_insert(dialect: str, target: t.Any) -> DialectInsert:
    """An insert into ``target`` that supports ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


def merge_seen(stmt: DialectInsert, model: Columns, conflict: list[str]) -> DialectInsert:
    """``ON CONFLICT`` for tag rows: add the counts, widen first/last seen."""
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=conflict,
        set_={
            "times_seen": model.times_seen + excluded.times_seen,
            "first_seen": sa.case(
                (excluded.first_seen < model.first_seen, excluded.first_seen),
                else_=model.first_seen,
            ),
            "last_seen": sa.case(
                (excluded.last_seen > model.last_seen, excluded.last_seen),
                else_=model.last_seen,
            ),
        },
    )


def merge_count(stmt: DialectInsert, model: Columns, conflict: list[str]) -> DialectInsert:
    """``ON CONFLICT`` for stat rows: add the counts."""
    return stmt.on_conflict_do_update(
        index_elements=conflict, set_={"count": model.count + stmt.excluded.count}
    )


def merge_release(stmt: DialectInsert, Release: Columns) -> DialectInsert:  # noqa: N803 - a model
    """``ON CONFLICT`` for releases: widen first/last event, add the new groups."""
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["project_id", "version"],
        set_={
            "first_event": sa.case(
                (
                    sa.or_(
                        Release.first_event.is_(None),
                        excluded.first_event < Release.first_event,
                    ),
                    excluded.first_event,
                ),
                else_=Release.first_event,
            ),
            "last_event": sa.case(
                (
                    sa.or_(
                        Release.last_event.is_(None),
                        excluded.last_event > Release.last_event,
                    ),
                    excluded.last_event,
                ),
                else_=Release.last_event,
            ),
            "new_groups": Release.new_groups + excluded.new_groups,
        },
    )


#: The columns a tag roll-up inserts after its leading ones.
SEEN_COLUMNS = ["key", "value", "times_seen", "first_seen", "last_seen"]


def tag_rollup(
    model: Columns,
    leading: t.Sequence[t.Any],
    where: t.Sequence[ColumnElement[bool]],
    group_by: t.Sequence[t.Any] = (),
) -> sa.Select[t.Any]:
    """``leading`` columns, then each (key, value) of ``model``'s rows matching ``where`` with
    its summed count and widened first/last seen (:data:`SEEN_COLUMNS`).

    Ordered by key and value, so new rows get ids in a defined order.
    """
    return (
        sa.select(
            *leading,
            model.key,
            model.value,
            sa.func.sum(model.times_seen),
            sa.func.min(model.first_seen),
            sa.func.max(model.last_seen),
        )
        .where(*where)
        .group_by(*group_by, model.key, model.value)
        .order_by(model.key, model.value)
    )


def in_ids(dialect: str, column: t.Any, ids: t.Any) -> ColumnElement[bool]:
    """``column IN ids`` for a list of ids or a subquery.

    On PostgreSQL a list goes as one array parameter (``= ANY(:ids)``): an ``IN`` list
    binds every id separately, and at 100,000 ids binding and planning them cost more
    than the change itself (a bulk delete took 2.8 times the raw SQL).
    """
    if isinstance(ids, (list, tuple)) and dialect == "postgresql":
        # Bound as BIGINT[] (psycopg's dialect casts it), so the id indexes serve it.
        return t.cast(
            "ColumnElement[bool]",
            column == sa.any_(sa.literal(list(ids), postgresql.ARRAY(sa.BigInteger()))),
        )
    return t.cast("ColumnElement[bool]", column.in_(ids))


def in_ids_parameter(dialect: str, column: t.Any, name: str) -> ColumnElement[bool]:
    """``column IN :name`` for a statement built once (:class:`StatementCache`): the ids
    are bound at execution, as an array on PostgreSQL (see :func:`in_ids`), else as an
    expanding parameter."""
    if dialect == "postgresql":
        parameter = sa.bindparam(name, type_=postgresql.ARRAY(sa.BigInteger()))
        return t.cast("ColumnElement[bool]", column == sa.any_(parameter))
    return t.cast("ColumnElement[bool]", column.in_(sa.bindparam(name, expanding=True)))


# -- keyset reads ------------------------------------------------------------------------------
def from_epoch(seconds: int) -> datetime:
    """The aware UTC datetime of Unix ``seconds``, clamped to the representable range."""
    try:
        return datetime.fromtimestamp(seconds, s.UTC)
    except (OverflowError, OSError, ValueError):
        return _MAX_DATETIME if seconds > 0 else datetime.min.replace(tzinfo=s.UTC)


def key_bound(
    column: t.Any, op: str | None, value: int, *, seconds: bool = False
) -> ColumnElement[bool]:
    """``key <op> value``, kept a range on the indexed ``column``.

    With ``seconds``, the key is whole Unix seconds of a datetime column, so the bounds
    become second boundaries rather than a computed expression the index cannot serve.
    """
    if op is None:
        return sa.true()
    if not seconds:
        return {"<=": column <= value, "==": column == value, ">": column > value}[op]
    start, end = from_epoch(value), from_epoch(value + 1)
    if op == "<=":
        return t.cast("ColumnElement[bool]", column < end)
    if op == ">":
        return t.cast("ColumnElement[bool]", column >= end)
    return sa.and_(column >= start, column < end)


def keyset(
    stmt: SelectT, window: Window, column: t.Any, tiebreak: t.Any = None, *, seconds: bool = False
) -> SelectT:
    """Apply a pagination :class:`Window`: bound, ``(column, tiebreak)`` order, offset, limit."""
    columns = (column,) if tiebreak is None else (column, tiebreak)
    order = [c.desc() if window.descending else c.asc() for c in columns]
    return (
        stmt.where(key_bound(column, window.op, window.value, seconds=seconds))
        .order_by(*order)
        .offset(window.offset)
        .limit(window.limit)
    )


# -- the statement cache -------------------------------------------------------------------------
class StatementCache:
    """Statements built once per dialect, by name.

    For the statements every request or event runs (the key lookup, the eight of storing
    an event): built anew each time, SQLAlchemy constructs, coerces and cache-keys them,
    which cost several times the database work. Built once, with values as bound
    parameters, and executed on the session's connection, they cost little more than
    the query.
    """

    def __init__(self) -> None:
        self._statements: dict[tuple[t.Hashable, str], t.Any] = {}

    def get(
        self, connection: sa.Connection, name: t.Hashable, build: t.Callable[[], t.Any]
    ) -> t.Any:
        """The statement ``build()`` returns, built once per dialect (``connection``'s).

        ``name`` is any hashable: a string, or a tuple naming the shape of a query whose
        statement differs with the filters it has (:meth:`list_groups`).
        """
        # The connection's dialect, not the storage's, which asks the session for its bind
        # again for each statement an event looks up.
        cache_key = (name, connection.dialect.name)
        stmt = self._statements.get(cache_key)
        if stmt is None:
            stmt = self._statements[cache_key] = build()
        return stmt


# -- errors ------------------------------------------------------------------------------------
class HasSession(t.Protocol):
    """What :func:`translating_errors` needs of the object whose methods it wraps."""

    @property
    def session(self) -> scoped_session[t.Any]: ...


def rollback_quietly(owner: HasSession) -> None:
    """Roll back ``owner``'s session, ignoring any failure to do so."""
    try:
        owner.session.rollback()
    except Exception:  # noqa: BLE001 - the original error is the one worth raising
        pass


def translating_errors(method: F) -> F:
    """Roll back on any failure; report lost connections as :class:`storage.Unavailable`."""

    @functools.wraps(method)
    def wrapper(self: HasSession, *args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return method(self, *args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            rollback_quietly(self)
            raise s.Unavailable(f"database unavailable: {type(exc.orig).__name__}") from exc
        except sa.exc.DBAPIError as exc:
            rollback_quietly(self)
            if exc.connection_invalidated:
                raise s.Unavailable("database connection lost") from exc
            raise
        except BaseException:
            rollback_quietly(self)
            raise

    return t.cast(F, wrapper)


# -- SQLite functions ----------------------------------------------------------------------------
def _lower(text: str | None) -> str | None:
    return text.lower() if text else text


def _create_functions(dbapi_connection: t.Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)


def _on_connect(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    """Give a new SQLite connection of a storage's engine the storage's functions."""
    _create_functions(dbapi_connection)
    connection_record.info[_FUNCTIONS_ADDED] = True


def add_sqlite_functions(connection: sa.Connection) -> None:
    """Make sure ``connection`` (SQLite) has :data:`SQLITE_LOWER`, and every connection its
    engine opens from now on.

    Attached to the storage's engine only, never to :class:`sqlalchemy.Engine` as a whole:
    a host's other engines stay as they are. The connection at hand may predate the
    listener (a host that ran ``db.create_all()`` first), so it gets the function too.
    """
    engine = connection.engine
    if not sa.event.contains(engine, "connect", _on_connect):
        sa.event.listen(engine, "connect", _on_connect)
    pooled = connection.connection
    if not pooled.info.get(_FUNCTIONS_ADDED):
        _create_functions(pooled.dbapi_connection)
        pooled.info[_FUNCTIONS_ADDED] = True
