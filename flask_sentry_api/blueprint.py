"""The package's two blueprints, their URL rules and their error handlers.

``sentry_api`` is the web API, mounted at ``/api/0`` by default. Registering it (directly,
or through :meth:`SentryAPI.init_app`) also registers ``sentry_api_ingest``, the SDK
ingestion endpoints under ``SENTRY_API_INGEST_URL_PREFIX``, and the ``flask sentry-api``
commands. Each blueprint renders its own errors as JSON ``{"detail": ...}``; ingestion adds
``X-Sentry-Error`` and CORS headers.
"""

from __future__ import annotations

import logging
import typing as t

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import request
from flask.blueprints import BlueprintSetupState
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from . import errors
from .auth import basic_auth
from .cli import cli
from .http import ALL_METHODS
from .http import add_standard_headers
from .http import error_response
from .http import json_response
from .state import EXTENSION_KEY
from .state import build_state
from .state import get_state
from .storage import Unavailable
from .views.base import IndexView
from .views.base import NotFoundView
from .views.events import EventDetailsView
from .views.events import GroupEventsView
from .views.events import GroupLatestEventView
from .views.groups import GroupDetailsView
from .views.groups import GroupNotesView
from .views.groups import ProjectGroupIndexView
from .views.ingest import IngestView
from .views.ingest import add_cors_headers
from .views.ingest import envelope_payload
from .views.ingest import ingest_error_response
from .views.ingest import store_payload
from .views.openapi import OpenAPIView
from .views.projects import ProjectDetailsView
from .views.releases import ProjectReleasesView
from .views.releases import ReleaseDetailsView
from .views.stats import GroupStatsView
from .views.stats import ProjectStatsView
from .views.tags import GroupTagsView
from .views.tags import GroupTagValuesView
from .views.tags import ProjectTagKeyView
from .views.tags import ProjectTagValuesView

logger = logging.getLogger("flask_sentry_api")

blueprint = Blueprint("sentry_api", __name__, url_prefix="/api/0")
ingest_blueprint = Blueprint("sentry_api_ingest", __name__, url_prefix="/api")


class AnyPathConverter(PathConverter):
    """Werkzeug's ``path`` that also matches newlines, so no URL under the prefix escapes the
    JSON 404 into Flask's HTML one."""

    regex = "(?s:[^/].*?)"


ANY_PATH_CONVERTER = "sentry_api_any_path"


@blueprint.record_once
def _on_register(setup: BlueprintSetupState) -> None:
    app = t.cast(Flask, setup.app)
    app.url_map.converters[ANY_PATH_CONVERTER] = AnyPathConverter
    if EXTENSION_KEY not in app.extensions:
        # Registered with app.register_blueprint(): build the state from app.config.
        app.extensions[EXTENSION_KEY] = build_state(app)
    app.register_blueprint(ingest_blueprint, url_prefix=get_state(app).settings.ingest_url_prefix)
    app.cli.add_command(cli)


# -- URL rules ---------------------------------------------------------------------------

_WEB_RULES: list[tuple[str, str, t.Any]] = [
    ("/", "index", IndexView),
    ("/projects/<int:project_id>/", "project_details", ProjectDetailsView),
    ("/projects/<int:project_id>/groups/", "project_groups", ProjectGroupIndexView),
    ("/groups/<int:group_id>/", "group_details", GroupDetailsView),
    ("/groups/<int:group_id>/events/", "group_events", GroupEventsView),
    ("/groups/<int:group_id>/events/latest/", "group_latest_event", GroupLatestEventView),
    ("/groups/<int:group_id>/notes/", "group_notes", GroupNotesView),
    ("/events/<int:event_id>/", "event_details", EventDetailsView),
    ("/groups/<int:group_id>/stats/", "group_stats", GroupStatsView),
    ("/groups/<int:group_id>/tags/", "group_tags", GroupTagsView),
    ("/groups/<int:group_id>/tags/<key>/values/", "group_tag_values", GroupTagValuesView),
    ("/projects/<int:project_id>/stats/", "project_stats", ProjectStatsView),
    ("/projects/<int:project_id>/releases/", "project_releases", ProjectReleasesView),
    ("/projects/<int:project_id>/releases/<version>/", "release_details", ReleaseDetailsView),
    ("/projects/<int:project_id>/tags/<key>/", "project_tag_key", ProjectTagKeyView),
    ("/projects/<int:project_id>/tags/<key>/values/", "project_tag_values", ProjectTagValuesView),
    ("/openapi.json", "openapi", OpenAPIView),
    # Last: anything else under the prefix is a JSON 404.
    (f"/<{ANY_PATH_CONVERTER}:unknown>", "not_found", NotFoundView),
]

for _rule, _endpoint, _view in _WEB_RULES:
    blueprint.add_url_rule(
        _rule, view_func=_view.as_view(_endpoint), methods=ALL_METHODS, strict_slashes=False
    )

for _endpoint, _read_payload in (("store", store_payload), ("envelope", envelope_payload)):
    ingest_blueprint.add_url_rule(
        f"/<int:project_id>/{_endpoint}/",
        view_func=IngestView.as_view(_endpoint, _read_payload),
        methods=ALL_METHODS,
        strict_slashes=False,
    )


# -- errors ------------------------------------------------------------------------------

_HTTP_DETAILS = {
    404: "Not found",
    413: "Request body too large.",
}


def _as_api_error(error: HTTPException) -> errors.APIError:
    """Werkzeug's error (a 404 route, a 405, a 413 from MAX_CONTENT_LENGTH, ...) as ours."""
    status = error.code or 500
    if status == 405:
        detail = f'Method "{request.method}" not allowed.'
    elif status >= 500:
        detail = "Internal Error"
    else:
        detail = _HTTP_DETAILS.get(status, error.description or error.name)
    original_headers = dict(error.get_headers())
    kept: dict[str, str] = {
        name: original_headers[name]
        for name in ("Allow", "Retry-After")
        if name in original_headers
    }
    converted = errors.APIError(detail, headers=kept)
    converted.status_code = status  # type: ignore[misc]
    return converted


@blueprint.errorhandler(errors.APIError)
def _handle_api_error(error: errors.APIError) -> Response:
    response = error_response(error)
    if error.status_code == 401:
        # The web API asks for Basic credentials; SDKs (ingestion) are never challenged.
        response.headers["WWW-Authenticate"] = basic_auth.authenticate_header()
    return response


@blueprint.errorhandler(ValidationError)
def _handle_validation_error(error: ValidationError) -> Response:
    messages = error.normalized_messages()
    if not isinstance(messages, dict):  # pragma: no cover - schemas always name fields
        messages = {"non_field_errors": messages}
    return json_response(messages, 400)


@blueprint.errorhandler(HTTPException)
def _handle_http_exception(error: HTTPException) -> Response:
    return error_response(_as_api_error(error))


@ingest_blueprint.errorhandler(errors.APIError)
def _handle_ingest_error(error: errors.APIError) -> Response:
    return ingest_error_response(error)


@ingest_blueprint.errorhandler(HTTPException)
def _handle_ingest_http_exception(error: HTTPException) -> Response:
    return ingest_error_response(_as_api_error(error))


def _unavailable(error: Unavailable) -> errors.APIError:
    logger.warning("storage unavailable: %s", error)
    return errors.StorageUnavailable(headers={"Retry-After": "5"})


@blueprint.errorhandler(Unavailable)
def _handle_unavailable(error: Unavailable) -> Response:
    return error_response(_unavailable(error))


@ingest_blueprint.errorhandler(Unavailable)
def _handle_ingest_unavailable(error: Unavailable) -> Response:
    return ingest_error_response(_unavailable(error))


@blueprint.errorhandler(500)
@ingest_blueprint.errorhandler(500)
def _handle_internal_error(error: HTTPException) -> Response:
    # Flask has already logged the original exception with its traceback.
    return json_response({"detail": "Internal Error"}, 500)


blueprint.after_request(add_standard_headers)
ingest_blueprint.after_request(add_standard_headers)
ingest_blueprint.after_request(add_cors_headers)
