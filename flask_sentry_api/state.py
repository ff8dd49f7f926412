"""Per-app state: the settings, storage, key and token lookups and rate limiter of one app.

:func:`build_state` resolves them once, when the extension is initialised (through
:meth:`~flask_sentry_api.SentryAPI.init_app` or ``app.register_blueprint``); the result is
kept in ``app.extensions["sentry_api"]`` and read back with :func:`get_state`. Nothing is
kept anywhere else, so one extension object can serve several apps.
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
from .ratelimits import RateLimiter
from .storage import AuthToken
from .storage import ProjectKey
from .storage import Storage
from .storage import TokenStorage
from .tokens import hash_token

EXTENSION_KEY = "sentry_api"

KeyLookup = t.Callable[[str], "ProjectKey | None"]
TokenLookup = t.Callable[[str], "AuthToken | None"]


@dataclasses.dataclass(frozen=True)
class State:
    """What one app's API needs at request time."""

    settings: Settings
    storage: Storage
    key_lookup: KeyLookup
    token_lookup: TokenLookup
    rate_limiter: RateLimiter


def build_state(
    app: Flask, *, storage: t.Any = None, key_lookup: t.Any = None, token_lookup: t.Any = None
) -> State:
    """Resolve settings, storage, key and token lookup; arguments win over ``app.config``."""
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

    key = "SENTRY_API_TOKEN_LOOKUP"
    tokens = token_lookup if token_lookup is not None else resolve(app.config[key], key)
    if tokens is None:
        tokens = _stored_token_lookup(chosen)
    if not callable(tokens):
        raise ConfigurationError(f"{key} (or the token_lookup argument) must be callable")
    return State(
        settings=settings,
        storage=chosen,
        key_lookup=lookup,
        token_lookup=tokens,
        rate_limiter=RateLimiter(settings.rate_limit_storage_uri, settings.rate_limit_strategy),
    )


def _stored_token_lookup(storage: Storage) -> TokenLookup:
    if not isinstance(storage, TokenStorage):
        # A storage that keeps no tokens: only project keys authenticate.
        return lambda token: None
    return lambda token: storage.get_token(hash_token(token))


def _default_storage(app: Flask, settings: Settings) -> Storage:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        raise ConfigurationError(
            "SENTRY_API_STORAGE is not set and Flask-SQLAlchemy is not initialised on this"
            " app: call db.init_app(app) before SentryAPI.init_app(app), or set"
            " SENTRY_API_STORAGE."
        )
    # Imported here: a host that injects its own storage never loads SQLAlchemy code.
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
