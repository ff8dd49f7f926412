"""HTTP Basic authentication with a project key, and the permissions scoping it to its project.

Username = public key, password = secret key of an active ``<prefix>project_key`` row, as
flask_sentry_api checks them (401 otherwise); a key without the Web API role is then refused
(403) by :class:`KeyHasAPIRole`, a key of another project by :class:`KeyOwnsProject`.

Why not DRF's own ``BasicAuthentication``: it looks the pair up as a ``django.contrib.auth``
user, whose stored password is a PBKDF2 hash (1,000,000 SHA-256 iterations in Django 5.2),
so every request would spend most of its time hashing and the benchmark would measure that
instead of the framework. Our keys are random secrets compared in constant time, so the
peer does the same with ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import typing as t

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.authentication import get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import ProjectKey

#: flask_sentry_api.storage.ROLE_API ("Web API access"), not imported so the peer's
#: workers load no Flask code.
ROLE_API = 2


class KeyUser:
    """The principal of a request: one project key (what ``request.user`` is)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: ProjectKey) -> None:
        self.key = key
        self.project_id: int = key.project_id

    def __str__(self) -> str:
        return self.key.public_key


class ProjectKeyAuthentication(BaseAuthentication):
    """``Authorization: Basic base64(public:secret)`` against the project key table."""

    def authenticate(self, request: Request) -> tuple[KeyUser, ProjectKey] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"basic":
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid basic header.")
        try:
            public_key, sep, secret_key = (
                base64.b64decode(auth[1], validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise exceptions.AuthenticationFailed("Invalid basic header.") from exc
        if not sep:
            raise exceptions.AuthenticationFailed("Invalid basic header.")
        key = ProjectKey.objects.filter(public_key=public_key, is_active=True).first()
        # An unknown key and a wrong secret get the same answer: no key enumeration.
        expected = key.secret_key if key is not None else ""
        valid = hmac.compare_digest(expected.encode(), secret_key.encode())
        if key is None or not valid:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return KeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="api"'


class KeyHasAPIRole(BasePermission):
    """Only keys with "Web API access" may call ``/api/0/``: a store-only key is a 403."""

    message = "Key does not allow API access"

    def has_permission(self, request: Request, view: t.Any) -> bool:
        return bool(request.user.key.roles & ROLE_API)


class KeyOwnsProject(BasePermission):
    """A key reaches its own project and what lies under it; anything else is a 403."""

    def has_permission(self, request: Request, view: t.Any) -> bool:
        project_id = view.kwargs.get("project_id")
        return project_id is None or request.user.project_id == project_id

    def has_object_permission(self, request: Request, view: t.Any, obj: t.Any) -> bool:
        return bool(request.user.project_id == obj.project_id)
