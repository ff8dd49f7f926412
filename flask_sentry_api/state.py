"""Per-app state: the settings, storage, key and token lookups and rate limiter of one app.

:func:`build_state` resolves them once, when the extension is initialised (through
:meth:`~flask_sentry_api.SentryAPI.init_app` or ``app.register_blueprint``); the result is
kept in ``app.extensions["sentry_api"]`` and read back with :func:`get_state`. Nothing is
kept anywhere else, so one extension object can serve several apps.
"""

from __future__ import annotations

import dataclasses
import inspect
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
    #: Whether :attr:`key_lookup` is the host's (injected or configured) rather than the
    #: storage's own ``get_key``: only a host's keys may name a project the storage lacks,
    #: or have another form than the storage's 32 hex digits.
    key_lookup_injected: bool = False


def build_state(
    app: Flask, *, storage: t.Any = None, key_lookup: t.Any = None, token_lookup: t.Any = None
) -> State:
    """Resolve settings, storage, key and token lookup; arguments win over ``app.config``."""
    settings = load_settings(app.config)

    chosen = _storage(app, settings, storage)

    key = "SENTRY_API_KEY_LOOKUP"
    lookup = key_lookup if key_lookup is not None else resolve(app.config[key], key)
    injected = lookup is not None
    if lookup is None:
        lookup = chosen.get_key
    _check_lookup(lookup, f"{key} (or the key_lookup argument)", "public_key", "ProjectKey")

    key = "SENTRY_API_TOKEN_LOOKUP"
    tokens = token_lookup if token_lookup is not None else resolve(app.config[key], key)
    if tokens is None:
        tokens = _stored_token_lookup(chosen)
    _check_lookup(tokens, f"{key} (or the token_lookup argument)", "token", "AuthToken")
    return State(
        settings=settings,
        storage=chosen,
        key_lookup=lookup,
        token_lookup=tokens,
        rate_limiter=RateLimiter(settings.rate_limit_storage_uri, settings.rate_limit_strategy),
        key_lookup_injected=injected,
    )


def _storage(app: Flask, settings: Settings, given: t.Any) -> Storage:
    """The storage named by the ``storage`` argument or ``SENTRY_API_STORAGE``: an instance,
    a class (created with no arguments), or a factory ``callable(app)``."""
    key = "SENTRY_API_STORAGE"
    source = f"{key} (or the storage argument)"
    chosen = given if given is not None else resolve(app.config[key], key)
    if chosen is None:
        return _default_storage(app, settings)
    # A class is checked first: a runtime Protocol accepts a class that has the methods as
    # an instance, whose unbound methods then fail on every request.
    if isinstance(chosen, type):
        chosen = _instantiate(chosen, source)
    elif not isinstance(chosen, Storage) and callable(chosen):
        chosen = chosen(app)
    if isinstance(chosen, type) or not isinstance(chosen, Storage):
        raise ConfigurationError(
            f"{source} must provide the flask_sentry_api.Storage interface (an instance, a"
            f" class, or a factory callable(app) returning an instance), got {chosen!r}"
        )
    return chosen


def _instantiate(cls: type, source: str) -> t.Any:
    try:
        # Only the call's shape is checked, so a TypeError raised by the constructor's own
        # code is not mistaken for a class that needs arguments.
        inspect.signature(cls).bind()
    except TypeError as exc:
        raise ConfigurationError(
            f"{source}: the class {cls.__module__}.{cls.__qualname__} cannot be created"
            f" without arguments ({exc}); give an instance, or a factory callable(app)"
            " returning one"
        ) from exc
    except ValueError:
        pass  # no signature to inspect (a C type): the call itself tells
    return cls()


def _check_lookup(lookup: t.Any, source: str, argument: str, result: str) -> None:
    if isinstance(lookup, type) or not callable(lookup):
        # A class is callable too, but calling it builds an object, never a lookup's answer.
        raise ConfigurationError(
            f"{source} must be a callable({argument}) -> {result} | None (a function or a"
            f" bound method, not a class), got {lookup!r}"
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
