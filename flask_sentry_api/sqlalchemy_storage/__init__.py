"""The default :class:`~flask_sentry_api.storage.Storage`: the host's Flask-SQLAlchemy ``db``.

Supports SQLite (3.35+, the embedded default) and PostgreSQL. Every write method is one
transaction that either commits whole or rolls back whole; bulk operations are single
set-based statements, never a loop over rows in Python. Database connection failures
surface as :class:`~flask_sentry_api.storage.Unavailable` (HTTP 503).

The modules, bottom-up: :mod:`.statements` (dialect inserts, ``ON CONFLICT`` merges,
keyset bounds, the statement cache, error translation, SQLite's functions),
:mod:`.records` (rows to records), :mod:`.base` (the ``db``, session and dialect),
:mod:`.events` (the ``save_event`` write path), :mod:`.bulk_seed` (set-based bulk loading)
and :mod:`.storage` (:class:`SQLAlchemyStorage`, everything else).
"""

from __future__ import annotations

from .storage import SQLAlchemyStorage

__all__ = ["SQLAlchemyStorage"]
