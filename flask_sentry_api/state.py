"""Per-app state: the settings, storage, key and token lookups, credential cache and rate
limiter of one app.

:func:`build_state` resolves them once, when the extension is initialised (through
:meth:`~flask_sentry_api.SentryAPI.init_app` or ``app.register_blueprint``); the result is
kept in ``app.extensions["sentry_api"]`` and read back with :func:`get_state`. Nothing is
kept anywhere else, so one extension object can serve several apps.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import logging
import threading
import time
import typing as t
import weakref

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
Clock = t.Callable[[], float]
V = t.TypeVar("V")

logger = logging.getLogger("flask_sentry_api")

#: Seconds a looked-up key or token is trusted without asking the storage again, unless
#: ``SENTRY_API_CREDENTIAL_CACHE_TTL`` says otherwise (0 turns the cache off).
DEFAULT_CREDENTIAL_CACHE_TTL = 5.0
#: Most keys (and, apart, tokens) one app's cache holds; the least recently used go first.
CREDENTIAL_CACHE_SIZE = 10_000
#: The storage methods that change or remove a key (first argument: its public key) or a
#: token (first argument: its id); the cache forgets the credential when one is called.
_KEY_CHANGES = ("set_key_active", "set_key_rate_limit", "delete_key")
_TOKEN_CHANGES = ("delete_token",)
_WATCHERS = "_sentry_api_credential_caches"


class _LRU(t.Generic[V]):
    """At most ``size`` values, each trusted for ``ttl`` seconds of ``clock``."""

    def __init__(self, ttl: float, size: int, clock: Clock) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: collections.OrderedDict[str, tuple[float, V]] = collections.OrderedDict()

    def get(self, name: str) -> V | None:
        entry = self._entries.get(name)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._entries.pop(name, None)
            return None
        self._entries.move_to_end(name)
        return entry[1]

    def put(self, name: str, value: V) -> None:
        self._entries[name] = (self.clock() + self.ttl, value)
        self._entries.move_to_end(name)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, match: t.Callable[[str, V], bool]) -> None:
        for name in [name for name, (_, value) in self._entries.items() if match(name, value)]:
            self._entries.pop(name, None)

    def clear(self) -> None:
        self._entries.clear()


class CredentialCache:
    """The keys and tokens one app looked up recently, each trusted for ``ttl`` seconds.

    Authentication asks the storage (or the host's lookup) once per key or token per
    ``ttl`` instead of once per request. Only what was found is kept: an unknown key or
    token is asked again each time, so a key created a moment ago works at once (in every
    process), and a flood of made-up keys cannot push the real ones out. A change made
    through the app's storage in this process (``set_key_active``, ``set_key_rate_limit``,
    ``delete_key``, ``delete_token``: the CLI's disable-key, enable-key, set-rate-limit,
    delete-key and revoke-token) is forgotten at once; other processes see it within
    ``ttl`` seconds. Tokens are kept under their hash, never as given.
    """

    def __init__(
        self, ttl: float, size: int = CREDENTIAL_CACHE_SIZE, clock: Clock = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._keys: _LRU[ProjectKey] = _LRU(ttl, size, clock)
        self._tokens: _LRU[AuthToken] = _LRU(ttl, size, clock)

    def key(self, public_key: str, lookup: KeyLookup) -> ProjectKey | None:
        """The key ``lookup(public_key)`` found within the last ``ttl`` seconds, else what
        it finds now (kept when found)."""
        return self._cached(self._keys, public_key, public_key, lookup)

    def token(self, token: str, lookup: TokenLookup) -> AuthToken | None:
        """The token ``lookup(token)`` found within the last ``ttl`` seconds, else what it
        finds now (kept, under the token's hash, when found)."""
        return self._cached(self._tokens, hash_token(token), token, lookup)

    def _cached(
        self, entries: _LRU[V], name: str, argument: str, lookup: t.Callable[[str], V | None]
    ) -> V | None:
        if self.ttl <= 0:
            return lookup(argument)
        with self._lock:
            found = entries.get(name)
        if found is not None:
            return found
        # Asked outside the lock: a slow lookup holds up no other request.
        found = lookup(argument)
        if found is not None:
            with self._lock:
                entries.put(name, found)
        return found

    def forget_key(self, public_key: str) -> None:
        """Ask the lookup again next time ``public_key`` (any letter case) is used."""
        wanted = public_key.lower()
        with self._lock:
            self._keys.forget(lambda name, key: name.lower() == wanted)

    def forget_token(self, token_id: int) -> None:
        """Ask the lookup again next time the token with ``token_id`` is used."""
        with self._lock:
            self._tokens.forget(lambda name, token: token.id == token_id)

    def clear(self) -> None:
        """Forget every key and token (for a host that changed them some other way)."""
        with self._lock:
            self._keys.clear()
            self._tokens.clear()


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
    #: What :attr:`key_lookup` and :attr:`token_lookup` found recently.
    credentials: CredentialCache = dataclasses.field(
        default_factory=lambda: CredentialCache(DEFAULT_CREDENTIAL_CACHE_TTL)
    )


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
    credentials = CredentialCache(settings.credential_cache_ttl)
    _forget_on_change(chosen, credentials)
    return State(
        settings=settings,
        storage=chosen,
        key_lookup=lookup,
        token_lookup=tokens,
        rate_limiter=RateLimiter(settings.rate_limit_storage_uri, settings.rate_limit_strategy),
        key_lookup_injected=injected,
        credentials=credentials,
    )


def _forget_on_change(storage: Storage, cache: CredentialCache) -> None:
    """Have ``storage``'s key and token changes forget the changed credential in ``cache``
    as soon as they return.

    The storage's own methods are wrapped on the instance, so every caller (the CLI, the
    host's code, tests) is covered, and a storage shared by several apps keeps one wrapper
    that tells each app's cache (held weakly: a discarded app's cache is not kept alive).
    A storage whose attributes cannot be set relies on the cache's TTL alone.
    """
    for name in (*_KEY_CHANGES, *_TOKEN_CHANGES):
        method = getattr(storage, name, None)
        if not callable(method):
            continue
        watchers = getattr(method, _WATCHERS, None)
        if watchers is None:
            watchers = weakref.WeakSet()
            wrapper = _forgetting(method, name, watchers)
            try:
                setattr(storage, name, wrapper)
            except (AttributeError, TypeError):
                logger.debug(
                    "cannot watch %s.%s: credential changes wait for the TTL",
                    type(storage).__name__,
                    name,
                )
                continue
        watchers.add(cache)


def _forgetting(
    method: t.Callable[..., t.Any], name: str, watchers: weakref.WeakSet[CredentialCache]
) -> t.Callable[..., t.Any]:
    forget_key = name in _KEY_CHANGES

    @functools.wraps(method)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return method(*args, **kwargs)
        finally:
            # Even after a failure: the change may have been made before it.
            credential = args[0] if args else next(iter(kwargs.values()), None)
            for cache in list(watchers):
                if credential is None:
                    cache.clear()
                elif forget_key:
                    cache.forget_key(str(credential))
                else:
                    cache.forget_token(credential)

    setattr(wrapper, _WATCHERS, watchers)
    return wrapper


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
