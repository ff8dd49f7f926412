"""Auth tokens: how one is made, how it is kept (only its hash), and what its scopes allow.

Tokens look like Sentry's user auth tokens (``sntryu_`` and 64 hex digits), so tools that
check the format (sentry-cli) take them. Nothing here imports Flask.
"""

from __future__ import annotations

import hashlib
import secrets
import typing as t

from .storage import SCOPES

TOKEN_PREFIX = "sntryu_"
#: Longest string worth looking up as a token (ours are 71 characters).
MAX_TOKEN_LENGTH = 256

#: Which granted scopes satisfy a required one: a kind's ``write`` and ``admin`` include its
#: ``read``, ``admin`` includes ``write``, and releases may be managed with ``project:write``
#: (Sentry's permission classes list them the same way).
_SATISFIED_BY: dict[str, frozenset[str]] = {
    "project:read": frozenset({"project:read", "project:write", "project:admin"}),
    "project:write": frozenset({"project:write", "project:admin"}),
    "project:admin": frozenset({"project:admin"}),
    "project:releases": frozenset({"project:releases", "project:write", "project:admin"}),
    "event:read": frozenset({"event:read", "event:write", "event:admin"}),
    "event:write": frozenset({"event:write", "event:admin"}),
    "event:admin": frozenset({"event:admin"}),
    # The organization's listings show the projects: reading a project is enough.
    "org:read": frozenset({"org:read", "project:read", "project:write", "project:admin"}),
}


def new_token() -> str:
    """A fresh token (shown to its owner once; only :func:`hash_token` of it is stored)."""
    return TOKEN_PREFIX + secrets.token_hex(32)


def hash_token(token: str) -> str:
    """What a storage keeps of a token: its SHA-256, hex. Tokens carry 256 random bits, so
    an unsalted fast hash is enough (as Sentry and GitHub store theirs)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def plausible_token(token: str) -> bool:
    """Whether ``token`` is worth a lookup at all."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH and "\x00" not in token


def allows(granted: t.Collection[str], required: str) -> bool:
    """Whether scopes ``granted`` permit an operation that needs ``required``."""
    return not _SATISFIED_BY[required].isdisjoint(granted)


def check_scopes(scopes: t.Iterable[str]) -> tuple[str, ...]:
    """``scopes`` in :data:`SCOPES` order, without repeats.

    :raises ValueError: a scope Sentry does not have.
    """
    wanted = set(scopes)
    unknown = sorted(wanted.difference(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in wanted)
