"""The ready-made Celery worker of queue mode: ``celery -A flask_sentry_api.worker worker``.

Importing this module creates the Flask app whose storage the worker writes to, named by the
``SENTRY_API_WORKER_APP`` environment variable, else by ``FLASK_APP``, in ``flask --app``'s
forms (``"myapp"``, ``"myapp:app"``, ``"myapp:create_app"``, ``"myapp:create_app('worker')"``;
a factory is called). That app's settings give the broker
(``SENTRY_API_CELERY_BROKER_URL``, and ``SENTRY_API_CELERY_OPTIONS``) and the queue
(``SENTRY_API_CELERY_QUEUE``) exactly as its web processes publish with, and :data:`app` is
the package's own Celery app with the storing task registered.

A host with its own Celery app runs its own worker instead, after calling
:func:`flask_sentry_api.queue.register_tasks` on it (and consuming ``-Q sentry_api``).
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask
from flask.cli import NoAppException
from flask.cli import ScriptInfo

from .errors import ConfigurationError
from .queue import own_celery_app
from .queue import register_tasks
from .state import get_state

if t.TYPE_CHECKING:
    from celery import Celery  # type: ignore[import-untyped]

#: The environment variable naming the host's Flask app or app factory (before ``FLASK_APP``).
APP_ENV = "SENTRY_API_WORKER_APP"


def load_flask_app(spec: str | None = None) -> Flask:
    """The Flask app ``spec`` (default: ``$SENTRY_API_WORKER_APP``, then ``$FLASK_APP``)
    names, found as ``flask --app`` finds it."""
    spec = spec or os.environ.get(APP_ENV) or os.environ.get("FLASK_APP")
    if not spec:
        raise ConfigurationError(
            f"the flask_sentry_api worker needs the host's Flask app: set {APP_ENV} (or"
            " FLASK_APP) to what `flask --app` takes, e.g. 'myapp:create_app'"
        )
    try:
        return ScriptInfo(app_import_path=spec, set_debug_flag=False).load_app()
    except NoAppException as exc:
        raise ConfigurationError(f"{APP_ENV}: cannot load the Flask app {spec!r}: {exc}") from exc


def make_worker(flask_app: Flask) -> Celery:
    """The package's own Celery app for ``flask_app``, with the storing task registered."""
    settings = get_state(flask_app).settings
    if settings.celery_broker_url is None:
        raise ConfigurationError(
            "the flask_sentry_api worker needs SENTRY_API_CELERY_BROKER_URL in the app's config"
        )
    celery = own_celery_app(settings)
    register_tasks(celery, flask_app)
    return celery


#: The Flask app the worker stores into.
flask_app = load_flask_app()
#: The Celery app ``celery -A flask_sentry_api.worker`` finds.
app = make_worker(flask_app)
