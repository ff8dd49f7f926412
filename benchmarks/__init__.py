"""Reproducible performance measurements of flask-sentry-api: ``python -m benchmarks``.

Every figure is a ratio against a baseline measured in the same run on the same machine
(a bare Flask app, a Django REST framework peer, raw SQL, an OFFSET pager), so the numbers
travel between machines better than absolute requests per second do.
"""
