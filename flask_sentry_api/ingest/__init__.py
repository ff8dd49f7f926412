"""Event ingestion: parse, decode and normalise what Sentry SDKs send."""
