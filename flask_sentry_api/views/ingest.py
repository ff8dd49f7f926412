"""The SDK ingestion endpoints: ``POST /api/<project_id>/store/`` and ``.../envelope/``.

They live outside the web API prefix because that is where every Sentry SDK posts, in a
blueprint of their own (``sentry_api_ingest``). Errors are JSON ``{"detail": ...}`` with
the same text in ``X-Sentry-Error`` (what SDKs log), and browser SDKs get CORS headers for
the project's allowed origins.
"""

from __future__ import annotations

import re
import typing as t
from datetime import datetime
from datetime import timezone

from flask import Response
from flask import jsonify
from flask import request
from flask.views import MethodView

from .. import errors
from ..auth import check_sdk_credentials
from ..http import error_response
from ..http import header_safe
from ..ingest.auth import parse_sentry_auth
from ..ingest.body import decode_store_payload
from ..ingest.body import read_body
from ..ingest.envelope import parse_envelope
from ..ingest.normalize import normalize_event
from ..queue import enqueue_event
from ..queue import needs_signals
from ..queue import send_event_signals as send_event_signals
from ..state import get_state
from ..storage import ProjectKey
from ..throttling import throttle_ingestion

#: Headers a browser SDK may always send (Sentry's list); a preflight's own requested
#: headers are allowed too (:func:`add_cors_headers`).
_CORS_ALLOW_HEADERS = (
    "X-Sentry-Auth",
    "X-Requested-With",
    "Origin",
    "Accept",
    "Content-Type",
    "Content-Encoding",
    "Authentication",
    "Authorization",
    "sentry-trace",
    "baggage",
)
_CORS_EXPOSE_HEADERS = "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After"

PayloadReader = t.Callable[[bytes], "dict[str, t.Any] | None"]


class IngestView(MethodView):
    """Authenticates the SDK, decodes the body, normalises and stores the event."""

    init_every_request = False
    provide_automatic_options = False

    def __init__(self, read_payload: PayloadReader) -> None:
        self.read_payload = read_payload

    @classmethod
    def allow_header(cls) -> str:
        return "POST, OPTIONS"

    def dispatch_request(self, project_id: int) -> Response:  # type: ignore[override]
        if request.method == "OPTIONS":
            return jsonify({})
        if request.method != "POST":
            raise errors.MethodNotAllowed(
                f'Method "{request.method}" not allowed.', headers={"Allow": self.allow_header()}
            )
        return self.ingest(project_id)

    def ingest(self, project_id: int) -> Response:
        state = get_state()
        key = self.authenticate(project_id)
        if request.headers.get("Origin"):
            self.check_origin(key)
        # Before the body is read: an over-limit client's body is never inflated.
        throttle_ingestion(key)
        settings = state.settings
        raw = read_body(
            request.stream,
            content_encoding=request.headers.get("Content-Encoding"),
            max_body=settings.max_event_size,
            max_inflated=settings.max_inflated_size,
        )
        payload = self.read_payload(raw)
        if payload is None:
            return jsonify({})
        event = normalize_event(payload, received=datetime.now(timezone.utc))
        if settings.ingest_mode == "celery":
            # Answered only once the broker holds the event; a worker stores it.
            enqueue_event(project_id, event)
            return jsonify({"id": event.event_id})
        saved = state.storage.save_event(project_id, event)
        # The storage has committed: receivers may only add to a success.
        if needs_signals(saved):
            send_event_signals(project_id, saved)
        return jsonify({"id": event.event_id})

    def authenticate(self, project_id: int) -> ProjectKey:
        # A bad protocol version is a 400 only for a valid key: every other request is a
        # 401 first (SPEC §11).
        credentials = parse_sentry_auth(request.headers, request.args, defer_version_error=True)
        return check_sdk_credentials(credentials, project_id)

    def check_origin(self, key: ProjectKey) -> None:
        project = get_state().storage.get_project(key.project_id)
        allowed = project.allowed_origins if project is not None else ()
        if "*" not in allowed and request.headers["Origin"] not in allowed:
            shown = header_safe(request.headers["Origin"][:100])
            raise errors.PermissionDenied(f"Invalid origin: {shown}")


def store_payload(raw: bytes) -> dict[str, t.Any] | None:
    """The legacy ``store`` body (raven and SDKs before envelopes): one event."""
    return decode_store_payload(raw, max_inflated=get_state().settings.max_inflated_size)


def envelope_payload(raw: bytes) -> dict[str, t.Any] | None:
    """An envelope's ``event`` item (sentry-sdk 2.x), or None when it carries none."""
    return parse_envelope(raw).event_payload()


def ingest_error_response(error: errors.APIError) -> Response:
    """The JSON error, its text also in ``X-Sentry-Error`` (what SDKs log)."""
    response = error_response(error)
    response.headers["X-Sentry-Error"] = header_safe(error.detail[:200])
    return response


#: How much of a preflight's ``Access-Control-Request-Headers`` is echoed: more than any
#: browser SDK asks for, little enough to keep the response's headers small.
_CORS_MAX_REQUESTED = 1024
#: A header name (RFC 9110 ``token``): anything else in the list is not echoed.
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _allowed_headers() -> str:
    """The default headers and those the request's preflight asks for, once each.

    Browsers refuse the actual request if one header it will carry is missing from the
    answer, so an SDK configured with a custom header (``tracePropagationTargets``
    headers, a proxy's token) would lose its events: the request's own list is echoed,
    bounded, and only as header names (which are safe in a header value).
    """
    requested = request.headers.get("Access-Control-Request-Headers", "")
    if len(requested) > _CORS_MAX_REQUESTED:
        requested = requested[:_CORS_MAX_REQUESTED].rpartition(",")[0]
    allowed = list(_CORS_ALLOW_HEADERS)
    seen = {name.lower() for name in allowed}
    for name in (part.strip() for part in requested.split(",")):
        if _HEADER_NAME_RE.fullmatch(name) and name.lower() not in seen:
            seen.add(name.lower())
            allowed.append(name)
    return ", ".join(allowed)


def add_cors_headers(response: Response) -> Response:
    """After-request hook: let a browser SDK on another origin post and read errors."""
    # Whatever the request sent, the answer depends on these two headers: a cache must
    # not hand one origin's (or one preflight's) answer to another.
    response.vary.update(("Origin", "Access-Control-Request-Headers"))
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = (
            origin if response.status_code < 400 else "*"
        )
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = _allowed_headers()
        response.headers["Access-Control-Expose-Headers"] = _CORS_EXPOSE_HEADERS
    return response
