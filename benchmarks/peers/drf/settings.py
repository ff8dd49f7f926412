"""Django settings of the DRF peer: the database from ``BENCH_DATABASE_URL``, nothing else.

Only ``rest_framework`` and this app are installed: no auth, admin, sessions or
contenttypes, since the peer keeps no users and renders no pages. The middleware is what
``startproject`` would keep for a JSON API without sessions or CSRF-protected forms.
"""

from __future__ import annotations

import os
import typing as t
from urllib.parse import unquote
from urllib.parse import urlsplit

TABLE_PREFIX = os.environ.get("BENCH_TABLE_PREFIX", "sentry_")


def database_from_url(url: str) -> dict[str, t.Any]:
    """Django's ``DATABASES["default"]`` for an SQLAlchemy-style URL (SQLite or PostgreSQL)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path or path == ":memory:":
            raise ValueError("BENCH_DATABASE_URL must name an SQLite file the tables live in")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # As the example app: wait for a concurrent writer instead of failing at once.
            "OPTIONS": {"timeout": 30},
        }
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgresql+psycopg", "postgres"):
        raise ValueError(f"unsupported BENCH_DATABASE_URL scheme: {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Keep connections across requests, as SQLAlchemy's pool does for our app, and
        # test a reused one first, as its pool_pre_ping does.
        "CONN_MAX_AGE": None,
        "CONN_HEALTH_CHECKS": True,
    }


SECRET_KEY = os.environ.get("BENCH_DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["rest_framework", "benchmarks.peers.drf"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "benchmarks.peers.drf.urls"
WSGI_APPLICATION = "benchmarks.peers.drf.wsgi.application"

DATABASES = {"default": database_from_url(os.environ["BENCH_DATABASE_URL"])}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # One connection per worker thread for its lifetime, like the pool on the Flask side.
    DATABASES["default"]["CONN_MAX_AGE"] = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
# The API speaks English only, as ours does; no translation catalogues to look up.
USE_I18N = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "benchmarks.peers.drf.authentication.ProjectKeyAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSONRenderer with sorted keys, ASCII escapes and a final newline: the bytes
    # Flask's JSON provider writes for our API (see renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["benchmarks.peers.drf.renderers.SortedJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Without django.contrib.auth there is no AnonymousUser to fall back to.
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}

# With DEBUG off Django would only mail errors to ADMINS; the harness reads gunicorn's log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
