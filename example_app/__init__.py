"""A small host application: Flask + Flask-SQLAlchemy + flask_sentry_api on SQLite.

Run it with ``flask --app example_app run``. The database is ``instance/sentry_api.db``,
or whatever SQLAlchemy URL the ``DATABASE_URL`` environment variable names. On first start
it creates the tables and a demo project with a key, and prints how to call the API.

The dashboard is on, at ``/sentry/``: HTTP Basic, user ``admin`` and the password in
``EXAMPLE_DASHBOARD_PASSWORD``; without that variable it refuses every page and says why.
Every start prints its URL.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import typing as t

import click
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.cli import make_dsn
from flask_sentry_api.dashboard import basic_auth
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE

db = SQLAlchemy()
sentry_api = SentryAPI()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    database_url = os.environ.get("DATABASE_URL") or (
        "sqlite:///" + os.path.join(app.instance_path, "sentry_api.db")
    )
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=database_url,
        # The URL printed in the first-start instructions and the demo DSN.
        EXAMPLE_BASE_URL=os.environ.get("EXAMPLE_BASE_URL") or _served_url(),
        EXAMPLE_CREATE_DEMO_PROJECT=True,
        # The dashboard's password (user "admin"); None leaves the dashboard closed.
        EXAMPLE_DASHBOARD_PASSWORD=os.environ.get("EXAMPLE_DASHBOARD_PASSWORD") or None,
        # Mounted at SENTRY_API_DASHBOARD_URL_PREFIX (/sentry), refused until AUTH is set.
        SENTRY_API_DASHBOARD=True,
    )
    if database_url.startswith("sqlite"):
        # Wait for a concurrent writer instead of failing with "database is locked".
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    else:
        # A database server restarted while a worker idles leaves dead connections in its
        # pool; test each one as it is checked out instead of failing the next request.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    # FLASK_SENTRY_API_MAX_PAGE_SIZE=50 and the like configure the extension from the shell.
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.update(test_config)
    password = app.config["EXAMPLE_DASHBOARD_PASSWORD"]
    if password and app.config.get("SENTRY_API_DASHBOARD_AUTH") is None:
        app.config["SENTRY_API_DASHBOARD_AUTH"] = basic_auth("admin", password)
    if not app.config.get("SECRET_KEY"):
        # The dashboard's forms keep a CSRF token in Flask's signed session: one key for
        # every worker and every restart, kept in the instance folder.
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)

    db.init_app(app)
    sentry_api.init_app(app)

    with app.app_context():
        if db.engine.dialect.name == "sqlite" and db.engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            sa.event.listen(db.engine, "connect", _sync_at_checkpoints)
            # Readers no longer wait for the writer (the mode is stored in the file).
            with db.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        storage = get_state(app).storage
        storage.init_schema()
        if app.config["EXAMPLE_CREATE_DEMO_PROJECT"] and storage.get_project(1) is None:
            _create_demo_project(app)
    if app.config["SENTRY_API_DASHBOARD"]:
        click.echo(f"Dashboard: {dashboard_line(app)}", err=True)
    return app


def dashboard_line(app: Flask) -> str:
    """The dashboard's URL and how to open it, as printed at every start."""
    url = f"{app.config['EXAMPLE_BASE_URL']}{app.config['SENTRY_API_DASHBOARD_URL_PREFIX']}/"
    if app.config["EXAMPLE_DASHBOARD_PASSWORD"]:
        return f"{url} (user admin, the password in EXAMPLE_DASHBOARD_PASSWORD)"
    if app.config.get("SENTRY_API_DASHBOARD_AUTH") is not None:
        return url
    return f"{url} (closed: set EXAMPLE_DASHBOARD_PASSWORD to open it as user admin)"


def instance_secret_key(instance_path: str) -> str:
    """The app's ``SECRET_KEY``, made once and kept in ``<instance>/secret_key`` (mode
    0600), so every gunicorn worker and every restart signs sessions with the same key."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except FileNotFoundError:
        pass
    # Written whole under another name, then linked into place: a worker starting at the
    # same moment either finds no file or the whole key, never half of one, and whichever
    # link lands first is the key every worker uses.
    descriptor, temporary = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    with open(path, encoding="ascii") as file:
        return file.read().strip()


def _served_url() -> str:
    """Where ``flask run`` is about to listen (its ``--host`` and ``--port``), read from the
    command that is loading the app; ``http://127.0.0.1:5000`` (its default) otherwise."""
    context = click.get_current_context(silent=True)
    params = context.params if context is not None and context.info_name == "run" else {}
    host = params.get("host") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # every interface: this machine is reached at loopback
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{params.get('port') or 5000}"


def _sync_at_checkpoints(dbapi_connection: t.Any, _record: t.Any) -> None:
    """``synchronous=NORMAL`` on each new SQLite connection (the setting is not stored).

    Under WAL it keeps the database consistent through any crash and loses nothing when
    the process dies; only an OS crash or power cut can undo the last commits, which are
    synced at the next checkpoint. Each commit no longer waits for an fsync, which was the
    largest single cost of storing an event.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _create_demo_project(app: Flask) -> None:
    storage = get_state(app).storage
    project = storage.create_project("Demo")
    key = storage.create_key(project.id, ROLE_STORE | ROLE_API, label="demo")
    base_url = app.config["EXAMPLE_BASE_URL"]
    # Printed once, when the key is created; the secret is never logged afterwards.
    click.echo(
        "\nCreated the demo project and its key:\n"
        f"  curl -u {key.public_key}:{key.secret_key} {base_url}/api/0/projects/{project.id}/\n"
        f"  DSN for Sentry SDKs: {make_dsn(base_url, key)}\n"
        f"  Demo errors: python -m example_app.demo_errors --url {base_url}\n"
        "  More keys: flask --app example_app sentry-api create-key 1\n",
        err=True,
    )
