"""The SDK ingestion endpoints: ``POST /api/<project_id>/store/`` and ``.../envelope/``.

They live outside the web API prefix because that is where every Sentry SDK posts. Errors
are JSON ``{"detail": ...}`` with the same text in ``X-Sentry-Error`` (what SDKs log), and
browser SDKs get CORS headers for the project's allowed origins.
"""

from __future__ import annotations

import hmac
import re
import typing as t
from datetime import datetime
from datetime import timezone

from flask import Flask
from flask import Response
from flask import jsonify
from flask import request
from flask.views import MethodView

from . import errors
from .extension import get_state
from .ingest.auth import INVALID_KEY
from .ingest.auth import parse_sentry_auth
from .ingest.body import decode_store_payload
from .ingest.body import read_body
from .ingest.envelope import parse_envelope
from .ingest.normalize import normalize_event
from .storage import ROLE_STORE
from .storage import ProjectKey
from .storage import Unavailable

_CORS_ALLOW_HEADERS = (
    "X-Sentry-Auth, X-Requested-With, Origin, Accept, Content-Type, Content-Encoding,"
    " Authentication, Authorization, sentry-trace, baggage"
)
_CORS_EXPOSE_HEADERS = "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After"
#: Every verb reaches the view, so one the endpoints lack gets a JSON 405, not an HTML page.
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: What may not travel in a header value: controls (CR/LF would be refused by Werkzeug)
#: and anything outside ASCII (the server writes headers as Latin-1).
_UNSAFE_HEADER_RE = re.compile(r"[^\x20-\x7e]")

PayloadReader = t.Callable[[bytes], "dict[str, t.Any] | None"]


def register_ingest_rules(app: Flask, prefix: str) -> None:
    """Add the ingestion rules to ``app``; their endpoints belong to the ``sentry_api``
    blueprint, so its after-request hooks apply to them too."""
    for name, read_payload in (("store", store_payload), ("envelope", envelope_payload)):
        app.add_url_rule(
            f"{prefix}/<int:project_id>/{name}/",
            endpoint=f"sentry_api.ingest_{name}",
            view_func=IngestView.as_view(f"ingest_{name}", read_payload),
            methods=_ALL_METHODS,
            strict_slashes=False,
        )


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
        try:
            if request.method == "OPTIONS":
                response = jsonify({})
            elif request.method == "POST":
                response = self.ingest(project_id)
            else:
                raise errors.MethodNotAllowed(
                    f'Method "{request.method}" not allowed.',
                    headers={"Allow": self.allow_header()},
                )
        except errors.APIError as exc:
            response = _error(exc)
        except Unavailable:
            response = _error(errors.StorageUnavailable(headers={"Retry-After": "5"}))
        _add_cors_headers(response)
        return response

    def ingest(self, project_id: int) -> Response:
        state = get_state()
        key = self.authenticate(project_id)
        if request.headers.get("Origin"):
            self.check_origin(key)
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
        state.storage.save_event(project_id, event)
        return jsonify({"id": event.event_id})

    def authenticate(self, project_id: int) -> ProjectKey:
        auth = parse_sentry_auth(request.headers, request.args)
        key = get_state().key_lookup(auth.public_key)
        if key is None:
            raise errors.AuthenticationFailed(INVALID_KEY)
        if auth.secret_key is not None and not hmac.compare_digest(
            auth.secret_key.encode("utf-8", "replace"), key.secret_key.encode()
        ):
            raise errors.AuthenticationFailed(INVALID_KEY)
        if not key.is_active:
            # 401 as in Sentry's store API and for the web API (SPEC section 2).
            raise errors.AuthenticationFailed("API key is disabled")
        if not key.has_role(ROLE_STORE):
            raise errors.PermissionDenied("Key does not allow event storage access")
        if key.project_id != project_id:
            raise errors.PermissionDenied("Project ID mismatch: the key belongs to another project")
        return key

    def check_origin(self, key: ProjectKey) -> None:
        project = get_state().storage.get_project(key.project_id)
        allowed = project.allowed_origins if project is not None else ()
        if "*" not in allowed and request.headers["Origin"] not in allowed:
            shown = _header_safe(request.headers["Origin"][:100])
            raise errors.PermissionDenied(f"Invalid origin: {shown}")


def store_payload(raw: bytes) -> dict[str, t.Any] | None:
    """The legacy ``store`` body (raven and SDKs before envelopes): one event."""
    return decode_store_payload(raw, max_inflated=get_state().settings.max_inflated_size)


def envelope_payload(raw: bytes) -> dict[str, t.Any] | None:
    """An envelope's ``event`` item (sentry-sdk 2.x), or None when it carries none."""
    return parse_envelope(raw).event_payload()


def _error(error: errors.APIError) -> Response:
    response = jsonify({"detail": error.detail})
    response.status_code = error.status_code
    response.headers.update(error.headers)
    response.headers["X-Sentry-Error"] = _header_safe(error.detail[:200])
    return response


def _header_safe(text: str) -> str:
    """``text`` with controls and non-ASCII characters escaped (``\\n``, ``\\u20ac``), so
    it can be sent as a header value; printable ASCII is unchanged."""
    return _UNSAFE_HEADER_RE.sub(lambda m: ascii(m.group())[1:-1], text)


def _add_cors_headers(response: Response) -> None:
    origin = request.headers.get("Origin")
    if not origin:
        return
    response.headers["Access-Control-Allow-Origin"] = origin if response.status_code < 400 else "*"
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = _CORS_ALLOW_HEADERS
    response.headers["Access-Control-Expose-Headers"] = _CORS_EXPOSE_HEADERS
    response.headers["Vary"] = "Origin"
