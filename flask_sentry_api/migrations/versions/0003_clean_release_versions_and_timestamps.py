"""Clean data older writers left: releases the API cannot reach, whole-second SQLite times.

Revision ID: 0003
Revises: 0002

- **Release versions.** Ingestion used to store any ``release`` string, so a version
  like ``latest``, ``..`` or one holding a tab or a slash was listed but never readable or
  deletable at ``.../releases/<version>/``. Such releases are deleted, and the ``release``
  of every event naming one is set to ``NULL``: what ingestion now does with them
  (:func:`flask_sentry_api.storage.is_valid_release_version`). The events themselves, and
  their tags (``release`` included: the one record of the version sent), stay.
- **Timestamps, SQLite only.** SQLite stores times as text, compared as text; the ORM
  writes ``2026-11-10 07:41:32.000000``, but the old bulk seed wrote whole seconds as
  ``2026-11-10 07:41:32``, a second form of the same instant that the cursors' ``=`` bound
  missed. Every timestamp column value in that form gets the ORM's ``.000000``.

Both are set-based statements (one per table or column), the predicates written in SQL
for each dialect. The rule is frozen here as it was at this revision. Downgrading keeps
the data as it is (nothing the previous revision cannot read).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_sentry_api.migrations.context import table_prefix

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The timestamp columns of each table (without the prefix) at this revision.
TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "project": ("date_created",),
    "project_key": ("date_added",),
    "group": ("first_seen", "last_seen", "resolved_at"),
    "event": ("datetime", "date_received"),
    "note": ("date_created",),
    "tag_value": ("first_seen", "last_seen"),
    "group_tag_value": ("first_seen", "last_seen"),
    "release": ("date_created", "first_event", "last_event", "date_released", "date_started"),
    "auth_token": ("date_created",),
}
#: The whole-second text form (GLOB matches the whole value).
_WHOLE_SECONDS_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"

MAX_VERSION = 200
RESERVED_VERSIONS = (".", "..", "latest")
#: Characters a version may not hold: C0 controls (NUL never reaches storage), DEL, slash,
#: backslash.
_BAD_CHARACTERS = "\x01-\x1f\x7f/\\"
#: Whitespace (Python's ``str.isspace``) outside the C0 range, which may not start or end
#: a version; the C0 ones are refused anywhere.
_EDGE_SPACES = " \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _invalid_version(column: sa.ColumnElement[str], dialect: str) -> sa.ColumnElement[bool]:
    """``column`` breaks the release version rule, as SQL of ``dialect``."""
    common = [
        column == "",
        sa.func.lower(column).in_(RESERVED_VERSIONS),
        sa.func.length(column) > MAX_VERSION,  # characters, on both databases
    ]
    if dialect == "sqlite":
        # GLOB brackets take ranges of code points and no escapes (``\\`` is itself).
        return sa.or_(
            *common,
            column.op("GLOB")(sa.literal(f"*[{_BAD_CHARACTERS}]*")),
            column.op("GLOB")(sa.literal(f"[{_EDGE_SPACES}]*")),
            column.op("GLOB")(sa.literal(f"*[{_EDGE_SPACES}]")),
        )
    # PostgreSQL's regular expressions: a backslash escapes inside brackets too.
    bad = _BAD_CHARACTERS.replace("\\", "\\\\")
    return sa.or_(
        *common,
        column.op("~")(sa.literal(f"[{bad}]")),
        column.op("~")(sa.literal(f"^[{_EDGE_SPACES}]|[{_EDGE_SPACES}]$")),
    )


def _clean_release_versions(connection: sa.Connection, prefix: str) -> None:
    dialect = connection.dialect.name
    event = sa.table(f"{prefix}event", sa.column("release", sa.String))
    release = sa.table(f"{prefix}release", sa.column("version", sa.String))
    connection.execute(
        sa.update(event)
        .where(event.c.release.is_not(None), _invalid_version(event.c.release, dialect))
        .values(release=None)
    )
    connection.execute(sa.delete(release).where(_invalid_version(release.c.version, dialect)))


def _complete_sqlite_timestamps(connection: sa.Connection, prefix: str) -> None:
    for name, columns in TIMESTAMP_COLUMNS.items():
        table = sa.table(f"{prefix}{name}", *(sa.column(column, sa.String) for column in columns))
        for column in columns:
            col = table.c[column]
            connection.execute(
                sa.update(table)
                .where(col.op("GLOB")(sa.literal(_WHOLE_SECONDS_GLOB)))
                .values({column: col.concat(".000000")})
            )


def upgrade() -> None:
    connection = op.get_bind()
    prefix = table_prefix()
    _clean_release_versions(connection, prefix)
    if connection.dialect.name == "sqlite":
        _complete_sqlite_timestamps(connection, prefix)


def downgrade() -> None:
    pass  # the cleaned data is valid at 0002 too
