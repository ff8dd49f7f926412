"""The group list written the idiomatic Django REST framework way, as a benchmark peer.

It reads the tables flask_sentry_api's SQLAlchemy storage creates (unmanaged models) and
serves ``GET /api/0/projects/<project_id>/groups/`` with a generic ``ListAPIView``, a
``ModelSerializer`` and ``CursorPagination``. Run it from the repository root::

    BENCH_DATABASE_URL=sqlite:////tmp/bench.db \\
        gunicorn benchmarks.peers.drf.wsgi:application -b 127.0.0.1:8001
    curl -u PUBLIC:SECRET http://127.0.0.1:8001/api/0/projects/1/groups/

``BENCH_DATABASE_URL`` is an SQLAlchemy-style URL (``sqlite:////abs/path.db`` or
``postgresql+psycopg://user[:password]@host:port/dbname``); ``BENCH_TABLE_PREFIX`` (default
``sentry_``) names the tables. See README.md for the differences from our endpoint.
"""
