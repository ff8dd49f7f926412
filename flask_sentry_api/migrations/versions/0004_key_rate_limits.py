"""Per-key ingestion rate limits (Sentry's key option ``rateLimit``).

Revision ID: 0004
Revises: 0003

Tables that ``db.create_all()`` made from newer models may have the columns already:
each is added only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_sentry_api.migrations.context import table_prefix

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("rate_limit_count", "rate_limit_window")


def upgrade() -> None:
    table = f"{table_prefix()}project_key"
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}
    for name in _COLUMNS:
        if name not in present:
            op.add_column(table, sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    table = f"{table_prefix()}project_key"
    for name in reversed(_COLUMNS):
        op.drop_column(table, name)
