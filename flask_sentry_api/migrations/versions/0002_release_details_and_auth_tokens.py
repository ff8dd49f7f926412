"""Release details (ref, url, release and deploy dates), auth tokens, project event index.

Revision ID: 0002
Revises: 0001

Tables that ``db.create_all()`` made from newer models already have some of this: they are
adopted at the baseline (:func:`flask_sentry_api.migrate.upgrade_locked`) and upgraded from
there, so each step is skipped when what it adds is present.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from alembic import op

from flask_sentry_api.migrations.context import table_prefix
from flask_sentry_api.models import IdType
from flask_sentry_api.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _release_columns() -> list[sa.Column[t.Any]]:
    return [
        sa.Column("ref", sa.String(length=250), nullable=True),
        sa.Column("url", sa.String(length=200), nullable=True),
        sa.Column("date_released", UTCDateTime(), nullable=True),
        sa.Column("date_started", UTCDateTime(), nullable=True),
    ]


def upgrade() -> None:
    p = table_prefix()
    inspector = sa.inspect(op.get_bind())
    release_columns = {column["name"] for column in inspector.get_columns(f"{p}release")}
    for column in _release_columns():
        if column.name not in release_columns:
            op.add_column(f"{p}release", column)

    event_indexes = {index["name"] for index in inspector.get_indexes(f"{p}event")}
    if f"{p}event_project_id" not in event_indexes:
        op.create_index(f"{p}event_project_id", f"{p}event", ["project_id", "id"], unique=False)

    if not inspector.has_table(f"{p}auth_token"):
        op.create_table(
            f"{p}auth_token",
            sa.Column("id", IdType, nullable=False),
            sa.Column("project_id", IdType, nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("scopes", sa.Text(), nullable=False),
            sa.Column("label", sa.String(length=255), nullable=True),
            sa.Column("last_characters", sa.String(length=4), nullable=False),
            sa.Column("date_created", UTCDateTime(), nullable=False),
            sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sqlite_autoincrement=True,
        )
        op.create_index(
            f"ix_{p}auth_token_token_hash", f"{p}auth_token", ["token_hash"], unique=True
        )
        op.create_index(
            f"{p}auth_token_project_id", f"{p}auth_token", ["project_id", "id"], unique=False
        )


def downgrade() -> None:
    p = table_prefix()
    op.drop_table(f"{p}auth_token")
    op.drop_index(f"{p}event_project_id", table_name=f"{p}event")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ has it): a batch would copy the table.
    for column in reversed(_release_columns()):
        op.drop_column(f"{p}release", column.name)
