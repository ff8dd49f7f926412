"""The Flask extension object: :class:`SentryAPI` validates an app's settings, builds its
state and registers the blueprints and commands.

Per-app state lives in ``app.extensions["sentry_api"]`` (a :class:`~flask_sentry_api.state.State`);
nothing is kept on the extension object for a particular app, so one :class:`SentryAPI`
can serve several apps (app factories, tests).
"""

from __future__ import annotations

import typing as t

from flask import Flask

from .blueprint import blueprint
from .dashboard import init_dashboard
from .state import EXTENSION_KEY
from .state import State as State
from .state import build_state
from .state import get_state as get_state

__all__ = ["EXTENSION_KEY", "SentryAPI", "State", "build_state", "get_state"]


class SentryAPI:
    """Serve Sentry's Web API v0 (and the SDK ingestion endpoints) from a Flask app.

    :param app: initialise on this app right away (otherwise call :meth:`init_app`).
    :param storage: a :class:`~flask_sentry_api.storage.Storage`, a storage class (created
        with no arguments), a factory ``callable(app)`` or a ``"module:attr"`` string naming
        one of these; wins over ``SENTRY_API_STORAGE``.
        The default is :class:`~flask_sentry_api.SQLAlchemyStorage` on the app's
        Flask-SQLAlchemy instance.
    :param key_lookup: ``callable(public_key) -> ProjectKey | None`` (or an import string);
        wins over ``SENTRY_API_KEY_LOOKUP``. The default asks the storage.
    :param token_lookup: ``callable(token) -> AuthToken | None`` (or an import string);
        wins over ``SENTRY_API_TOKEN_LOOKUP``. The default asks the storage for the token's
        hash, when the storage keeps tokens (:class:`~flask_sentry_api.storage.TokenStorage`).

    Every ``SENTRY_API_*`` setting, with its default, is listed in
    :data:`flask_sentry_api.config.DEFAULTS` and the README; another ``SENTRY_API_*`` key is
    warned about (:class:`~flask_sentry_api.config.SentryAPIConfigWarning`). The web API is
    mounted at ``SENTRY_API_URL_PREFIX``; registering :data:`flask_sentry_api.blueprint`
    directly with its own ``url_prefix=`` mounts it there instead.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        storage: t.Any = None,
        key_lookup: t.Any = None,
        token_lookup: t.Any = None,
    ) -> None:
        self.storage = storage
        self.key_lookup = key_lookup
        self.token_lookup = token_lookup
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the settings, build the state and register the blueprints and CLI."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask_sentry_api is already registered on this app: call init_app (or"
                " register_blueprint(flask_sentry_api.blueprint)) once per application."
            )
        state = build_state(
            app, storage=self.storage, key_lookup=self.key_lookup, token_lookup=self.token_lookup
        )
        app.extensions[EXTENSION_KEY] = state
        app.register_blueprint(blueprint, url_prefix=state.settings.url_prefix)
        # The optional dashboard (SENTRY_API_DASHBOARD): nothing is registered when it is off.
        settings = get_state(app).settings
        init_dashboard(
            app, api_prefix=settings.url_prefix, ingest_prefix=settings.ingest_url_prefix
        )
