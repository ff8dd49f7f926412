"""Alembic revisions of the default storage's tables."""
