"""The package's exception root and the HTTP errors that render as ``{"detail": ...}``.

Nothing here imports Flask: pure modules (pagination, search, ingestion parsing) raise
these, and :mod:`flask_sentry_api.blueprint` turns them into JSON responses.
"""

from __future__ import annotations

import typing as t


class APIError(Exception):
    """Root of every error the API answers on purpose.

    Subclasses set :attr:`status_code` and :attr:`default_detail`; an instance may carry
    its own ``detail`` and extra response ``headers``.
    """

    status_code: t.ClassVar[int] = 500
    default_detail: t.ClassVar[str] = "Internal Error"

    def __init__(
        self, detail: str | None = None, *, headers: t.Mapping[str, str] | None = None
    ) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(APIError):
    status_code = 400
    default_detail = "Bad request"


class InvalidCursor(BadRequest):
    default_detail = "Invalid cursor parameter."


class ParseError(BadRequest):
    default_detail = "Malformed request."


class AuthenticationFailed(APIError):
    """Credentials were sent but are not valid (an unknown key or token, a wrong secret, a
    malformed header: one text for all, SPEC §2)."""

    status_code = 401
    default_detail = "Invalid api key"


class NotAuthenticated(AuthenticationFailed):
    """No credentials were sent."""

    default_detail = "Authentication credentials were not provided."


class PermissionDenied(APIError):
    status_code = 403
    default_detail = "You do not have permission to perform this action."


class NotFound(APIError):
    status_code = 404
    default_detail = "Not found"


class MethodNotAllowed(APIError):
    status_code = 405
    default_detail = "Method not allowed."


class PayloadTooLarge(APIError):
    status_code = 413
    default_detail = "Request body too large."


class UnsupportedMediaType(APIError):
    status_code = 415
    default_detail = "Unsupported media type in request."


class RateLimited(APIError):
    status_code = 429
    default_detail = "Creation of this event was denied due to rate limiting."


class StorageUnavailable(APIError):
    status_code = 503
    default_detail = "Storage is unavailable, try again later."


class ConfigurationError(RuntimeError):
    """A ``SENTRY_API_*`` setting or constructor argument is invalid (raised at start-up)."""
