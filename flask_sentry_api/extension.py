"""The Flask extension: :class:`SentryAPI` resolves settings and collaborators per app.

Per-app state lives in ``app.extensions["sentry_api"]`` (a :class:`State`); nothing is kept
on the extension object for a particular app, so one :class:`SentryAPI` can serve several
apps (app factories, tests).
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import Flask
from flask import current_app

from .config import Settings
from .config import load_settings
from .config import resolve
from .errors import ConfigurationError
from .storage import ProjectKey
from .storage import Storage

EXTENSION_KEY = "sentry_api"

KeyLookup = t.Callable[[str], "ProjectKey | None"]


@dataclasses.dataclass(frozen=True)
class State:
    """What one app's API needs at request time."""

    settings: Settings
    storage: Storage
    key_lookup: KeyLookup


class SentryAPI:
    """Serve Sentry's Web API v0 (and the SDK ingestion endpoints) from a Flask app.

    :param app: initialise on this app right away (otherwise call :meth:`init_app`).
    :param storage: a :class:`~flask_sentry_api.storage.Storage`, a factory
        ``callable(app)`` or a ``"module:attr"`` string; wins over ``SENTRY_API_STORAGE``.
        The default is :class:`~flask_sentry_api.SQLAlchemyStorage` on the app's
        Flask-SQLAlchemy instance.
    :param key_lookup: ``callable(public_key) -> ProjectKey | None`` (or an import string);
        wins over ``SENTRY_API_KEY_LOOKUP``. The default asks the storage.

    Every ``SENTRY_API_*`` setting, with its default, is listed in
    :data:`flask_sentry_api.config.DEFAULTS` and the README.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        storage: t.Any = None,
        key_lookup: t.Any = None,
    ) -> None:
        self.storage = storage
        self.key_lookup = key_lookup
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the settings, build the state and register the blueprint and CLI."""
        from .blueprint import blueprint

        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask_sentry_api is already registered on this app: call init_app (or"
                " register_blueprint(flask_sentry_api.blueprint)) once per application."
            )
        state = build_state(app, storage=self.storage, key_lookup=self.key_lookup)
        app.extensions[EXTENSION_KEY] = state
        app.register_blueprint(blueprint, url_prefix=state.settings.url_prefix)


def build_state(app: Flask, *, storage: t.Any = None, key_lookup: t.Any = None) -> State:
    """Resolve settings, storage and key lookup; arguments win over ``app.config``."""
    settings = load_settings(app.config)

    key = "SENTRY_API_STORAGE"
    chosen = storage if storage is not None else resolve(app.config[key], key)
    if chosen is None:
        chosen = _default_storage(app, settings)
    elif not isinstance(chosen, Storage) and callable(chosen):
        chosen = chosen(app)
    if not isinstance(chosen, Storage):
        raise ConfigurationError(
            f"{key} (or the storage argument) must provide the flask_sentry_api.Storage"
            f" interface, got {type(chosen).__name__}"
        )

    key = "SENTRY_API_KEY_LOOKUP"
    lookup = key_lookup if key_lookup is not None else resolve(app.config[key], key)
    if lookup is None:
        lookup = chosen.get_key
    if not callable(lookup):
        raise ConfigurationError(f"{key} (or the key_lookup argument) must be callable")
    return State(settings=settings, storage=chosen, key_lookup=lookup)


def _default_storage(app: Flask, settings: Settings) -> Storage:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        raise ConfigurationError(
            "SENTRY_API_STORAGE is not set and Flask-SQLAlchemy is not initialised on this"
            " app: call db.init_app(app) before SentryAPI.init_app(app), or set"
            " SENTRY_API_STORAGE."
        )
    from .sqlalchemy_storage import SQLAlchemyStorage

    return SQLAlchemyStorage(db, table_prefix=settings.table_prefix)


def get_state(app: Flask | None = None) -> State:
    """The :class:`State` of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    try:
        return t.cast(State, target.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "flask_sentry_api is not initialised on this app: call SentryAPI(app) or"
            " app.register_blueprint(flask_sentry_api.blueprint)."
        ) from None
