"""The default storage's Alembic migration environment (``flask sentry-api upgrade``)."""
