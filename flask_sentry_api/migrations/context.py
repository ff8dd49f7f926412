"""What a running migration needs to know: the table prefix of the storage it upgrades."""

from __future__ import annotations

from alembic import context


def table_prefix() -> str:
    return str(context.config.attributes.get("table_prefix", "sentry_"))
