"""Rate limits applied to requests: ingestion per project key, the web API per credential.

Both are decided from the credentials alone, before a body is read or decompressed, so an
over-limit client costs one store round trip however large or hostile its body is.
Ingestion answers in the words SDKs obey (``Retry-After`` and ``X-Sentry-Rate-Limits``);
the web API reports its window on every response (``X-Sentry-Rate-Limit-*``).
"""

from __future__ import annotations

from flask import Response
from flask import g

from . import errors
from .auth import Credential
from .ratelimits import Decision
from .state import get_state
from .storage import ProjectKey

_DECISION = "sentry_api_rate_limit"


def throttle_ingestion(key: ProjectKey) -> None:
    """Count an event against its key's limit (the key's own, else
    ``SENTRY_API_INGEST_RATE_LIMIT``).

    :raises RateLimited: the key's window is full.
    """
    state = get_state()
    limit = key.rate_limit or state.settings.ingest_rate_limit
    if limit is None:
        return
    decision = state.rate_limiter.hit(limit, "ingest", key.public_key, report=False)
    if not decision.allowed:
        retry_after = str(decision.retry_after)
        raise errors.RateLimited(
            f"Rate limit exceeded: this key may send {limit.count} events per"
            f" {limit.window} seconds.",
            # Category-less, key-scoped: sentry-sdk pauses every kind of item it sends.
            headers={"Retry-After": retry_after, "X-Sentry-Rate-Limits": f"{retry_after}::key"},
        )


def throttle_api(credential: Credential) -> None:
    """Count a web API request against its credential's ``SENTRY_API_RATE_LIMIT`` window.

    :raises RateLimited: the window is full.
    """
    state = get_state()
    limit = state.settings.api_rate_limit
    if limit is None:
        return
    if credential.key is not None:
        identifier = f"key:{credential.key.public_key}"
    elif credential.token is not None:
        identifier = f"token:{credential.token.token_hash or credential.token.id}"
    else:  # pragma: no cover - every credential comes from a key or a token
        return
    decision = state.rate_limiter.hit(limit, "api", identifier)
    setattr(g, _DECISION, decision)
    if not decision.allowed:
        raise errors.RateLimited(
            "Too many requests.", headers={"Retry-After": str(decision.retry_after)}
        )


def add_rate_limit_headers(response: Response) -> Response:
    """After-request hook of the web API: the window of the request's credential."""
    decision: Decision | None = g.get(_DECISION)
    if decision is not None:
        response.headers["X-Sentry-Rate-Limit-Limit"] = str(decision.limit.count)
        response.headers["X-Sentry-Rate-Limit-Remaining"] = str(decision.remaining)
        response.headers["X-Sentry-Rate-Limit-Reset"] = str(int(decision.reset_at))
    return response
