"""Who may see the dashboard and what its responses carry: the host's access decision, the
session-bound CSRF token of its forms, and the security headers of every response.

The dashboard is authenticated by whatever the browser sends by itself (a session cookie,
HTTP Basic credentials), unlike the API, so every state-changing form carries a token
bound to the session (:func:`csrf_token`, :func:`check_csrf`).
"""

from __future__ import annotations

import hmac
import secrets
import typing as t

from flask import Response
from flask import current_app
from flask import request
from flask import session

from .settings import DashboardSettings

#: Where the app's dashboard settings are kept (``app.extensions``).
EXTENSION_KEY = "sentry_api_dashboard"
#: The session key of the CSRF token, and the form field that must repeat it.
CSRF_SESSION_KEY = "_sentry_dashboard_csrf"
CSRF_FIELD = "csrf_token"

#: Sent with every dashboard response. No inline script or style is allowed: the pages
#: use classes and one stylesheet, and inline SVG elements for the charts.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """The request may not see the dashboard: ``reason`` says why (``unconfigured`` when
    no ``SENTRY_API_DASHBOARD_AUTH`` is set, ``denied`` when it said no)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadCSRFToken(Exception):
    """A form was posted without the session's CSRF token."""


def dashboard_settings() -> DashboardSettings:
    """The current app's dashboard settings."""
    return t.cast(DashboardSettings, current_app.extensions[EXTENSION_KEY])


def check_access() -> Response | None:
    """Ask the host's ``SENTRY_API_DASHBOARD_AUTH`` about this request.

    ``True`` lets it through; ``False`` or ``None`` refuses it (:class:`Refused`, a 403
    page); a :class:`~flask.Response` is sent instead of the page (a 401 with a
    ``WWW-Authenticate`` challenge, a redirect to the host's login page).
    """
    auth = dashboard_settings().auth
    if auth is None:
        raise Refused("unconfigured")
    decision = auth(request)
    if isinstance(decision, Response):
        return decision
    if decision is True:
        return None
    if decision is False or decision is None:
        raise Refused("denied")
    raise TypeError(
        f"SENTRY_API_DASHBOARD_AUTH must return True, False, None or a Response, got {decision!r}"
    )


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse (:class:`BadCSRFToken`) a POST whose form does not repeat the session's token."""
    expected = session.get(CSRF_SESSION_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not expected:
        raise BadCSRFToken()
    # Constant time, on bytes: compare_digest refuses non-ASCII str.
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise BadCSRFToken()


def add_security_headers(response: Response) -> Response:
    """After-request hook of the dashboard: :data:`SECURITY_HEADERS` on every response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def basic_auth(
    username: str, password: str, *, realm: str = "Sentry dashboard"
) -> t.Callable[[t.Any], bool | Response]:
    """A ``SENTRY_API_DASHBOARD_AUTH`` asking for one username and password (HTTP Basic).

    Compared in constant time; a request without them, or with others, gets a 401 with a
    ``WWW-Authenticate`` challenge, so the browser asks. Use it over HTTPS only: Basic
    credentials travel with every request.
    """
    if not username or not password:
        raise ValueError("basic_auth needs a non-empty username and password")
    if '"' in realm or not realm.isprintable():
        raise ValueError(f"realm must be printable and without quotes, got {realm!r}")
    expected_user, expected_password = username.encode(), password.encode()

    def check(request: t.Any) -> bool | Response:
        credentials = request.authorization
        if credentials is not None and credentials.type == "basic":
            user = (credentials.username or "").encode()
            given = (credentials.password or "").encode()
            # Both compared every time, so the time taken tells nothing about the username.
            user_ok = hmac.compare_digest(user, expected_user)
            password_ok = hmac.compare_digest(given, expected_password)
            if user_ok and password_ok:
                return True
        return Response(
            "Authentication required.\n",
            401,
            {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
            content_type="text/plain; charset=utf-8",
        )

    return check
