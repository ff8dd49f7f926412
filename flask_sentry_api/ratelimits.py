"""Rate-limit counting in a shared store, through the ``limits`` library (Flask-Limiter's core).

One :class:`RateLimiter` per app counts hits per ``(scope, identifier)``: ingestion counts
per project key (``scope="ingest"``), the web API per credential (``scope="api"``). The
windows live where ``SENTRY_API_RATE_LIMIT_STORAGE_URI`` says: ``memory://`` is one
process's memory (each gunicorn worker counts apart), ``redis://host:port/db`` is shared
by every worker and host.

A store that cannot be reached lets requests through (and logs, at most once a minute):
losing the limit for a while costs the host app less than refusing every event and
request while Redis is down.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import typing as t

from limits import RateLimitItem
from limits import RateLimitItemPerSecond
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage
from limits.storage import Storage
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES
from limits.strategies import RateLimiter as Strategy

from .errors import ConfigurationError
from .storage import RateLimit

logger = logging.getLogger("flask_sentry_api")

#: The ``limits`` strategies ``SENTRY_API_RATE_LIMIT_STRATEGY`` may name.
STRATEGY_NAMES = tuple(STRATEGIES)
#: A Redis that stops answering must not hold a worker for long (seconds; a URI's own
#: ``?socket_timeout=`` wins).
_REDIS_TIMEOUTS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
_KEY_PREFIX = "sentry_api"
_WARN_EVERY = 60.0


class SweepingMemoryStorage(MemoryStorage):
    """``memory://`` without a thread per hit.

    ``limits``' in-memory storage expires windows from a timer thread, which it starts anew
    on every hit once the last one has finished (10 ms later): on nearly every ingestion
    request, a tenth of its cost in a profile. Here the hit itself sweeps the expired
    windows, at most once a second; a window's own expiry is checked as it is read anyway.
    """

    SWEEP_EVERY = 1.0

    def __init__(self, uri: str | None = None, **options: t.Any) -> None:
        self._swept_at = time.monotonic()
        super().__init__(uri, **options)

    # The name ``MemoryStorage.__schedule_expiry`` has inside ``limits``.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_EVERY:
            self._swept_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def _storage(storage_uri: str, options: dict[str, t.Any]) -> Storage:
    if storage_uri.startswith("memory://"):
        return SweepingMemoryStorage(storage_uri, **options)
    # A synchronous scheme gives a synchronous storage.
    return t.cast(Storage, storage_from_string(storage_uri, **options))


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome of one hit: allowed or not, and the window's state after it."""

    allowed: bool
    limit: RateLimit
    remaining: int
    #: When the window's count drops again (epoch seconds).
    reset_at: float

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before trying again (at least 1)."""
        return max(1, math.ceil(self.reset_at - time.time()))


class RateLimiter:
    """Counts hits against :class:`~flask_sentry_api.storage.RateLimit` windows.

    :param storage_uri: a ``limits`` storage URI (``memory://``, ``redis://...``,
        ``rediss://``, ``redis+sentinel://``, ``memcached://``, ...).
    :param strategy: ``fixed-window`` (the default: one counter per window, what Sentry's
        quotas do), ``sliding-window-counter`` or ``moving-window``.
    :raises ConfigurationError: an unknown scheme or strategy, or a store whose client
        library is not installed (``pip install 'flask-sentry-api[redis]'``).
    """

    def __init__(self, storage_uri: str, strategy: str = "fixed-window") -> None:
        options: dict[str, t.Any] = {"wrap_exceptions": True}
        if storage_uri.startswith(("redis", "rediss")):
            options.update(_REDIS_TIMEOUTS)
            options["key_prefix"] = _KEY_PREFIX
        try:
            self.storage = _storage(storage_uri, options)
        except LimitsConfigurationError as exc:
            raise ConfigurationError(f"SENTRY_API_RATE_LIMIT_STORAGE_URI: {exc}") from exc
        if strategy not in STRATEGIES:
            raise ConfigurationError(
                f"SENTRY_API_RATE_LIMIT_STRATEGY must be one of {list(STRATEGY_NAMES)},"
                f" got {strategy!r}"
            )
        self._strategy: Strategy = STRATEGIES[strategy](self.storage)  # type: ignore[arg-type]
        self._warn_lock = threading.Lock()
        self._warned_at = -_WARN_EVERY

    def hit(
        self, limit: RateLimit, scope: str, identifier: str, *, report: bool = True
    ) -> Decision:
        """Count one hit; not allowed once the window already holds ``limit.count``.

        :param report: read the window's remaining count and reset time back (one more
            store round trip); without it an allowed hit reports a full window.
        """
        item = _item(limit)
        try:
            allowed = self._strategy.hit(item, scope, identifier)
            if allowed and not report:
                return Decision(True, limit, limit.count, time.time() + limit.window)
            stats = self._strategy.get_window_stats(item, scope, identifier)
        except Exception as exc:  # noqa: BLE001 - any store failure: let the request through
            self._warn_unavailable(exc)
            return Decision(True, limit, limit.count, time.time() + limit.window)
        return Decision(allowed, limit, stats.remaining, stats.reset_time)

    def _warn_unavailable(self, exc: Exception) -> None:
        with self._warn_lock:
            now = time.monotonic()
            if now - self._warned_at < _WARN_EVERY:
                return
            self._warned_at = now
        logger.warning("rate-limit store unavailable, not limiting: %s", exc)


def _item(limit: RateLimit) -> RateLimitItem:
    return RateLimitItemPerSecond(limit.count, limit.window, namespace="SENTRY_API")
