"""Authentication: the one key check of the web API and of ingestion, and auth tokens.

Parsing, verifying and challenging are kept apart, as in DRF's ``authentication.py``:
the web API's credentials are parsed by Flask-HTTPAuth (:data:`basic_auth` for project keys
and ``<token>:``, :data:`token_auth` for ``Bearer <token>``), an SDK's by
:func:`flask_sentry_api.ingest.auth.parse_sentry_auth`; keys are verified by
:func:`check_key`, tokens by :func:`check_token`; the 401 challenge comes from
:func:`challenge`. Either way the request then acts as a :class:`Credential`.

An unknown key and a wrong secret get the same 401 after the same constant-time
comparison, so responses do not reveal which public keys exist; an unknown token, a
malformed ``Authorization`` header and a key a host's lookup returns for a project the
storage does not have (its events could never be read) get that 401 too (``Invalid api
key``, SPEC §2), and only a request sending no ``Authorization`` at all is told that none
was provided. Both paths accept the same key forms
(:data:`~flask_sentry_api.ingest.auth.PUBLIC_KEY_PATTERN`). A DSN's public key alone (Basic
``<public>:``) is never a credential: an empty password means a token.

The keys and tokens a lookup finds are kept for ``SENTRY_API_CREDENTIAL_CACHE_TTL``
seconds per app (:class:`~flask_sentry_api.state.CredentialCache`); the secret is still
compared in constant time on every request.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import typing as t

from flask import request
from flask_httpauth import HTTPBasicAuth
from flask_httpauth import HTTPTokenAuth

from .errors import AuthenticationFailed
from .errors import NotAuthenticated
from .errors import PermissionDenied
from .ingest.auth import INVALID_KEY
from .ingest.auth import SentryAuth
from .ingest.auth import is_hex_key
from .ingest.auth import is_public_key
from .ingest.auth import normalize_public_key
from .state import get_state
from .storage import MAX_ID
from .storage import ROLE_API
from .storage import ROLE_STORE
from .storage import SCOPES
from .storage import AuthToken
from .storage import ProjectKey
from .tokens import allows
from .tokens import plausible_token

logger = logging.getLogger("flask_sentry_api")

#: Compared against when the key is unknown, so both failures cost the same.
_UNKNOWN_KEY_SECRET = b"0" * 32

#: What each kind of client is told, in the words Sentry used for it: the web API
#: (SPEC §2) and the store API.
_INVALID = {ROLE_API: AuthenticationFailed.default_detail, ROLE_STORE: INVALID_KEY}
_DISABLED = {ROLE_API: "Key is disabled", ROLE_STORE: "API key is disabled"}
_MISSING_ROLE = {
    ROLE_API: "Key does not allow API access",
    ROLE_STORE: "Key does not allow event storage access",
}


def check_key(
    public_key: str, secret: str | None, *, role: int | None, project_id: int | None = None
) -> ProjectKey:
    """The active key that ``public_key`` and ``secret`` name, allowed ``role`` (and, if
    given, belonging to ``project_id``).

    ``secret`` None means the client sent none (SDKs with a modern DSN): only the public
    key is checked. ``role`` None checks no role.

    :raises AuthenticationFailed: unknown key, wrong secret (one message for both) or a
        disabled key.
    :raises PermissionDenied: the key lacks ``role``, or belongs to another project.
    """
    client = role if role is not None else ROLE_API
    key = _lookup_key(public_key)
    matches = True
    if secret is not None:
        expected = key.secret_key.encode() if key is not None else _UNKNOWN_KEY_SECRET
        matches = hmac.compare_digest(secret.encode("utf-8", "replace"), expected)
    if key is None or not matches:
        raise AuthenticationFailed(_INVALID[client])
    if not key.is_active:
        raise AuthenticationFailed(_DISABLED[client])
    if role is not None and not key.has_role(role):
        raise PermissionDenied(_MISSING_ROLE[client])
    if project_id is not None and key.project_id != project_id:
        raise PermissionDenied("Project ID mismatch: the key belongs to another project")
    return key


def _lookup_key(public_key: str) -> ProjectKey | None:
    """The key the app's lookup finds for ``public_key``, if it names a project the storage
    has; None for anything else, so the caller answers it like an unknown key.

    :raises TypeError: the host's lookup returned something other than a
        :class:`ProjectKey` or None (a bug in the host: the request is a logged 500).
    """
    # A name no key could have is not worth a lookup (nor could it reach the web API and
    # ingestion alike); the storage's own keys are always 32 hex digits.
    state = get_state()
    if not is_public_key(public_key) or not (state.key_lookup_injected or is_hex_key(public_key)):
        return None
    # What is cached is the key as checked below: a host's key of a missing project is
    # never kept, so it is asked (and logged) again each time.
    return state.credentials.key(normalize_public_key(public_key), _checked_lookup)


def _checked_lookup(public_key: str) -> ProjectKey | None:
    state = get_state()
    key = state.key_lookup(public_key)
    if key is None or not state.key_lookup_injected:
        return key
    if not isinstance(key, ProjectKey):
        raise TypeError(
            "the key lookup (SENTRY_API_KEY_LOOKUP or the key_lookup argument) must return"
            f" a flask_sentry_api.ProjectKey or None, got {type(key).__qualname__}"
        )
    project_id = key.project_id
    # An id no storage can hold (past int64) is not worth a query that might fail on it.
    valid_id = isinstance(project_id, int) and 0 < project_id <= MAX_ID
    if not valid_id or state.storage.get_project(project_id) is None:
        # Stored under a project that does not exist, the event could never be read: the
        # key is as good as unknown to the client, and a mistake the host should hear of.
        logger.warning(
            "the key lookup returned key %s of project %r, which the storage does not"
            " have: answered as an unknown key",
            key.public_key,
            key.project_id,
        )
        return None
    return key


def check_sdk_credentials(credentials: SentryAuth, project_id: int) -> ProjectKey:
    """The key an SDK's credentials name, if it may store events in ``project_id``.

    :raises BadRequest: the credentials' protocol version is missing or unsupported,
        checked only once the key is known to be valid (a 401 comes before any 400).
    """
    key = _store_key(credentials, project_id)
    if credentials.version_error is not None:
        raise credentials.version_error
    return key


def _store_key(credentials: SentryAuth, project_id: int) -> ProjectKey:
    return check_key(
        credentials.public_key, credentials.secret_key, role=ROLE_STORE, project_id=project_id
    )


@dataclasses.dataclass(frozen=True)
class Credential:
    """Who a web API request acts as: one project, and the scopes it holds there.

    A project key with the Web API role holds every scope; a token holds its own.
    """

    project_id: int
    scopes: frozenset[str]
    key: ProjectKey | None = None
    token: AuthToken | None = None

    def allows(self, scope: str) -> bool:
        return allows(self.scopes, scope)

    @property
    def scope_list(self) -> list[str]:
        return [scope for scope in SCOPES if scope in self.scopes]


def check_token(token: str) -> Credential:
    """The credential an auth token grants.

    :raises AuthenticationFailed: unknown or revoked token (the same 401 as a bad key).
    """
    state = get_state()
    found = state.credentials.token(token, state.token_lookup) if plausible_token(token) else None
    if found is None:
        raise AuthenticationFailed(_INVALID[ROLE_API])
    return Credential(found.project_id, frozenset(found.scopes), token=found)


def key_credential(key: ProjectKey) -> Credential:
    return Credential(key.project_id, frozenset(SCOPES), key=key)


class RealmBasicAuth(HTTPBasicAuth):
    """Flask-HTTPAuth's Basic scheme, challenging in the app's ``SENTRY_API_AUTH_REALM``
    (the realm is per app, so it cannot be a constructor argument)."""

    def authenticate_header(self) -> str:
        return f'Basic realm="{get_state().settings.auth_realm}"'


class RealmTokenAuth(HTTPTokenAuth):
    """``Authorization: Bearer <token>``, challenging in the app's realm."""

    def authenticate_header(self) -> str:
        return f'Bearer realm="{get_state().settings.auth_realm}"'


basic_auth = RealmBasicAuth()
token_auth = RealmTokenAuth(scheme="Bearer")


@basic_auth.verify_password
def _verify_password(username: str, password: str) -> Credential:
    # Failures raise: the blueprint renders them as JSON, and a 403 carries no challenge.
    if not request.headers.get("Authorization"):
        raise NotAuthenticated()
    if not password:
        # sentry-cli 2 sends its API key (here: a token) as the username, password empty.
        # A header Werkzeug cannot parse arrives here too, as an empty token.
        return check_token(username)
    return key_credential(check_key(username, password, role=ROLE_API))


@token_auth.verify_token
def _verify_token(token: str) -> Credential:
    return check_token(token)


@basic_auth.error_handler
@token_auth.error_handler
def _auth_error(status: int) -> t.NoReturn:  # pragma: no cover - the checks raise first
    raise AuthenticationFailed()


def uses_bearer() -> bool:
    """Whether the current request authenticates with ``Authorization: Bearer``."""
    return bool(token_auth.is_compatible_auth(request.headers))


def challenge() -> str:
    """The ``WWW-Authenticate`` value of a 401: the scheme the request tried (Basic
    when it tried none)."""
    return (token_auth if uses_bearer() else basic_auth).authenticate_header()


def current_credential() -> Credential:
    """The credential that authenticated the current request."""
    return t.cast(Credential, basic_auth.current_user())
