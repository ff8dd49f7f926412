"""Initial schema: projects, keys, groups, events, notes, tags, stats and releases.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_sentry_api.migrations.context import table_prefix
from flask_sentry_api.models import IdType
from flask_sentry_api.models import JSONType
from flask_sentry_api.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    p = table_prefix()
    op.create_table(
        f"{p}project",
        sa.Column("id", IdType, nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("allowed_origins", sa.Text(), nullable=False),
        sa.Column("date_created", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        f"{p}group",
        sa.Column("id", IdType, nullable=False),
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("hash", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("culprit", sa.String(length=200), nullable=True),
        sa.Column("logger", sa.String(length=64), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("is_bookmarked", sa.Boolean(), nullable=False),
        sa.Column("has_seen", sa.Boolean(), nullable=False),
        sa.Column("times_seen", sa.BigInteger(), nullable=False),
        sa.Column("user_count", sa.Integer(), nullable=False),
        sa.Column("num_comments", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "hash", name=f"{p}group_project_hash_key"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        f"{p}group_first_seen", f"{p}group", ["project_id", "first_seen", "id"], unique=False
    )
    op.create_index(
        f"{p}group_last_seen", f"{p}group", ["project_id", "last_seen", "id"], unique=False
    )
    op.create_index(f"{p}group_score", f"{p}group", ["project_id", "score", "id"], unique=False)
    op.create_index(
        f"{p}group_status_first_seen",
        f"{p}group",
        ["project_id", "status", "first_seen", "id"],
        unique=False,
    )
    op.create_index(
        f"{p}group_status_last_seen",
        f"{p}group",
        ["project_id", "status", "last_seen", "id"],
        unique=False,
    )
    op.create_index(
        f"{p}group_status_score", f"{p}group", ["project_id", "status", "score", "id"], unique=False
    )
    op.create_index(
        f"{p}group_status_times_seen",
        f"{p}group",
        ["project_id", "status", "times_seen", "id"],
        unique=False,
    )
    op.create_index(
        f"{p}group_times_seen", f"{p}group", ["project_id", "times_seen", "id"], unique=False
    )
    op.create_table(
        f"{p}project_key",
        sa.Column("id", IdType, nullable=False),
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("public_key", sa.String(length=32), nullable=False),
        sa.Column("secret_key", sa.String(length=32), nullable=False),
        sa.Column("roles", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("date_added", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_key"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        f"ix_{p}project_key_project_id", f"{p}project_key", ["project_id"], unique=False
    )
    op.create_table(
        f"{p}project_stat",
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "resolution", "bucket"),
    )
    op.create_table(
        f"{p}release",
        sa.Column("id", IdType, nullable=False),
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("date_created", UTCDateTime(), nullable=False),
        sa.Column("first_event", UTCDateTime(), nullable=True),
        sa.Column("last_event", UTCDateTime(), nullable=True),
        sa.Column("new_groups", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "version", name=f"{p}release_version_key"),
        sqlite_autoincrement=True,
    )
    op.create_index(f"{p}release_project_id", f"{p}release", ["project_id", "id"], unique=False)
    op.create_table(
        f"{p}tag_value",
        sa.Column("id", IdType, nullable=False),
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("times_seen", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "project_id", "key", "value", name=f"{p}tag_value_project_key_value_key"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        f"{p}tag_value_by_count",
        f"{p}tag_value",
        ["project_id", "key", "times_seen", "id"],
        unique=False,
    )
    op.create_table(
        f"{p}event",
        sa.Column("id", IdType, nullable=False),
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("group_id", IdType, nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("culprit", sa.String(length=200), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("logger", sa.String(length=64), nullable=True),
        sa.Column("platform", sa.String(length=64), nullable=True),
        sa.Column("datetime", UTCDateTime(), nullable=False),
        sa.Column("date_received", UTCDateTime(), nullable=False),
        sa.Column("release", sa.String(length=200), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("user", JSONType, nullable=True),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.ForeignKeyConstraint(["group_id"], [f"{p}group.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "event_id", name=f"{p}event_project_event_key"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        f"{p}event_group_datetime", f"{p}event", ["group_id", "datetime", "id"], unique=False
    )
    op.create_index(f"{p}event_group_id", f"{p}event", ["group_id", "id"], unique=False)
    op.create_table(
        f"{p}group_stat",
        sa.Column("group_id", IdType, nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], [f"{p}group.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "resolution", "bucket"),
    )
    op.create_table(
        f"{p}group_tag_value",
        sa.Column("id", IdType, nullable=False),
        sa.Column("project_id", IdType, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("times_seen", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("group_id", IdType, nullable=False),
        sa.ForeignKeyConstraint(["group_id"], [f"{p}group.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], [f"{p}project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "group_id", "key", "value", name=f"{p}group_tag_value_group_key_value_key"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        f"{p}group_tag_value_by_count",
        f"{p}group_tag_value",
        ["group_id", "key", "times_seen", "id"],
        unique=False,
    )
    op.create_index(
        f"{p}group_tag_value_project_key_value",
        f"{p}group_tag_value",
        ["project_id", "key", "value"],
        unique=False,
    )
    op.create_table(
        f"{p}note",
        sa.Column("id", IdType, nullable=False),
        sa.Column("group_id", IdType, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("date_created", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], [f"{p}group.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(f"{p}note_group_id", f"{p}note", ["group_id", "id"], unique=False)


def downgrade() -> None:
    p = table_prefix()
    op.drop_table(f"{p}note")
    op.drop_table(f"{p}group_tag_value")
    op.drop_table(f"{p}group_stat")
    op.drop_table(f"{p}event")
    op.drop_table(f"{p}tag_value")
    op.drop_table(f"{p}release")
    op.drop_table(f"{p}project_stat")
    op.drop_table(f"{p}project_key")
    op.drop_table(f"{p}group")
    op.drop_table(f"{p}project")
