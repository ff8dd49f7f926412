"""Packaging metadata for flask-sentry-api (build configuration lives in pyproject.toml)."""

import re
from pathlib import Path

from setuptools import find_packages
from setuptools import setup

HERE = Path(__file__).parent
# The version is written once, in the package (flask_sentry_api.__version__); read, not
# imported, since the package's dependencies need not be installed yet.
VERSION = re.search(
    r'^__version__ = "([^"]+)"$',
    (HERE / "flask_sentry_api" / "__init__.py").read_text(encoding="utf-8"),
    re.MULTILINE,
)
if VERSION is None:
    raise RuntimeError("no __version__ line in flask_sentry_api/__init__.py")

setup(
    name="flask-sentry-api",
    version=VERSION.group(1),
    description=(
        "Sentry's Web API v0 and SDK ingestion endpoints as an installable Flask blueprint"
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",
    packages=find_packages(include=["flask_sentry_api", "flask_sentry_api.*"]),
    package_data={
        "flask_sentry_api": [
            "py.typed",
            "migrations/script.py.mako",
            "migrations/versions/*.py",
            # The dashboard's templates, stylesheet and script (flask_sentry_api.dashboard).
            "dashboard/templates/sentry_dashboard/*.html",
            "dashboard/static/*.css",
            "dashboard/static/*.js",
        ]
    },
    include_package_data=True,
    install_requires=[
        "Flask>=3.0",
        "Flask-SQLAlchemy>=3.1",
        "SQLAlchemy>=2.0.14",
        "marshmallow>=4.0",
        "Flask-HTTPAuth>=4.8",
        # flask_sentry_api.signals (Flask 3 depends on it too).
        "blinker>=1.6",
        "alembic>=1.13",
        "apispec>=6.10",
        # sentry-sdk sends Content-Encoding: br whenever the client has brotli; without a
        # decoder the server answers 415 and the SDK drops the event without retrying.
        "brotli>=1.1",
        # The API's JSON responses (flask_sentry_api.http.encode_json), same bytes as jsonify.
        "orjson>=3.9",
        # Rate-limit windows (Flask-Limiter's core): memory:// here, redis:// with [redis].
        "limits>=4.0",
        # Swagger UI's files for the API reference page (<prefix>/docs/): only its dist/
        # folder is used. It depends on Flask alone; Swagger UI 5 is the first to read
        # OpenAPI 3.1 (our document), so not the 4.x releases.
        "flask-swagger-ui>=5.0",
    ],
    extras_require={
        "brotli": ["brotli>=1.1"],
        # SENTRY_API_RATE_LIMIT_STORAGE_URI = "redis://...": limits shared by workers and hosts.
        "redis": ["limits[redis]>=4.0"],
        # SENTRY_API_INGEST_MODE = "celery": the endpoint enqueues, Celery workers store
        # (README "Queue mode"). kombu's Redis transport needs redis-py; RabbitMQ needs nothing more.
        "celery": ["celery[redis]>=5.3"],
        "postgres": ["psycopg[binary]>=3.1"],
        # The benchmarks and their Django REST framework peer (benchmarks/).
        "bench": [
            "gunicorn>=23.0",
            "requests>=2.31",
            "psycopg[binary]>=3.1",
            "Django>=5.2",  # the peer's CompositePrimaryKey
            "djangorestframework>=3.15",
            "pyinstrument>=4.6",
        ],
        "test": [
            "pytest>=8.0",
            "pytest-flask>=1.3",
            "pytest-timeout>=2.3",
            # The suite runs on every core (pyproject.toml: -n auto).
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "requests>=2.31",
            "sentry-sdk>=2.0",
            "raven>=6.10",
            "brotli>=1.1",
            "psycopg[binary]>=3.1",
            "limits[redis]>=4.0",
            "ruff>=0.5",
            # Type check (pyproject.toml [tool.mypy]); Flask, SQLAlchemy, marshmallow, apispec,
            # alembic and click ship their own types, brotli and Flask-HTTPAuth have none.
            "mypy>=1.11",
            "gunicorn>=23.0",
            "jsonschema>=4.18",
            "openapi-spec-validator>=0.9",
            "schemathesis>=4.32",
            "sentry-cli==2.58.6",  # the real client of tests/test_sentry_cli.py
            # A host app with CSRFProtect (tests/test_host_app.py): the blueprints exempt
            # themselves.
            "Flask-WTF>=1.2",
            # A host app migrating its own models with Flask-Migrate beside the package's.
            "Flask-Migrate>=4.0",
            # Queue mode (tests/test_queue_mode.py): a real worker process and broker.
            "celery[redis]>=5.3",
            # The dashboard's browser tests drive the system's Chromium and chromedriver
            # (Debian's chromium, chromium-driver); Selenium is given the driver's path.
            "selenium>=4.51",
        ],
    },
    classifiers=[
        "Framework :: Flask",
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: BSD License",
        "Topic :: System :: Monitoring",
    ],
)
