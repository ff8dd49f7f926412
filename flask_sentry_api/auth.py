"""Project-key HTTP Basic authentication of the web API (Flask-HTTPAuth).

The username is a key's public key and the password its secret. An unknown key and a
wrong secret get the same 401 after the same constant-time comparison, so responses do
not reveal which public keys exist.
"""

from __future__ import annotations

import hmac
import typing as t

from flask import Response
from flask import g
from flask_httpauth import HTTPBasicAuth

from .errors import AuthenticationFailed
from .errors import PermissionDenied
from .extension import get_state
from .storage import ProjectKey

#: Compared against when the key is unknown, so both failures cost the same.
_UNKNOWN_KEY_SECRET = b"0" * 32

basic_auth = HTTPBasicAuth()


def check_credentials(public_key: str, secret: str) -> ProjectKey | None:
    """The active key these credentials name, or None. Raises 401 for a disabled key."""
    # A name no key could have is not worth a lookup (NUL is not even storable).
    plausible = 0 < len(public_key) <= 256 and "\x00" not in public_key
    key = get_state().key_lookup(public_key) if plausible else None
    expected = key.secret_key.encode() if key is not None else _UNKNOWN_KEY_SECRET
    matches = hmac.compare_digest(secret.encode("utf-8", "replace"), expected)
    if key is None or not matches:
        return None
    if not key.is_active:
        raise AuthenticationFailed("Key is disabled")
    return key


@basic_auth.verify_password
def _verify_password(username: str, password: str) -> ProjectKey | None:
    key = check_credentials(username, password)
    if key is not None:
        g._sentry_api_key = key
    return key


@basic_auth.get_user_roles
def _roles(key: ProjectKey) -> list[str]:
    return key.role_names


@basic_auth.error_handler
def _auth_error(status: int) -> Response:
    from .blueprint import error_response

    if status == 403:
        return error_response(PermissionDenied("Key does not allow API access"))
    return error_response(AuthenticationFailed())


def current_key() -> ProjectKey:
    """The key that authenticated the current request."""
    return t.cast(ProjectKey, g._sentry_api_key)
