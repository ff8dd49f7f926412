"""The ``sentry_api`` Blueprint: URL rules, request body parsing and the JSON error shape.

Mounted at ``/api/0`` by default. Registering it (directly, or through
:meth:`SentryAPI.init_app`) also registers the SDK ingestion rules under
``SENTRY_API_INGEST_URL_PREFIX`` and the ``flask sentry-api`` commands.
"""

from __future__ import annotations

import json
import logging
import typing as t

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask.blueprints import BlueprintSetupState
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from . import errors
from .extension import EXTENSION_KEY
from .extension import build_state
from .extension import get_state
from .storage import Unavailable

logger = logging.getLogger("flask_sentry_api")

#: Every route answers these, so an unsupported verb reaches the view and gets a JSON 405.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

blueprint = Blueprint("sentry_api", __name__, url_prefix="/api/0")


class AnyPathConverter(PathConverter):
    """Werkzeug's ``path`` that also matches newlines, so no URL under the prefix escapes the
    JSON 404 into Flask's HTML one."""

    regex = "(?s:[^/].*?)"


ANY_PATH_CONVERTER = "sentry_api_any_path"


@blueprint.record_once
def _on_register(setup: BlueprintSetupState) -> None:
    from .cli import cli
    from .ingest_views import register_ingest_rules

    app = setup.app
    app.url_map.converters[ANY_PATH_CONVERTER] = AnyPathConverter
    if EXTENSION_KEY not in app.extensions:
        # Registered with app.register_blueprint(): build the state from app.config.
        app.extensions[EXTENSION_KEY] = build_state(app)
    register_ingest_rules(app, get_state(app).settings.ingest_url_prefix)
    app.cli.add_command(cli)


def _add(rule: str, view: t.Any) -> None:
    blueprint.add_url_rule(rule, view_func=view, methods=ALL_METHODS, strict_slashes=False)


def _register_routes() -> None:
    from . import event_views
    from . import group_views
    from . import openapi_view
    from . import project_views
    from . import release_views
    from . import stats_views
    from . import tag_views
    from .views import IndexView
    from .views import NotFoundView

    _add("/", IndexView.as_view("index"))
    _add("/projects/<int:project_id>/", project_views.ProjectDetailsView.as_view("project_details"))
    _add(
        "/projects/<int:project_id>/groups/",
        group_views.ProjectGroupIndexView.as_view("project_groups"),
    )
    _add("/groups/<int:group_id>/", group_views.GroupDetailsView.as_view("group_details"))
    _add("/groups/<int:group_id>/events/", event_views.GroupEventsView.as_view("group_events"))
    _add(
        "/groups/<int:group_id>/events/latest/",
        event_views.GroupLatestEventView.as_view("group_latest_event"),
    )
    _add("/groups/<int:group_id>/notes/", group_views.GroupNotesView.as_view("group_notes"))
    _add("/events/<int:event_id>/", event_views.EventDetailsView.as_view("event_details"))
    _add("/groups/<int:group_id>/stats/", stats_views.GroupStatsView.as_view("group_stats"))
    _add("/groups/<int:group_id>/tags/", tag_views.GroupTagsView.as_view("group_tags"))
    _add(
        "/groups/<int:group_id>/tags/<key>/values/",
        tag_views.GroupTagValuesView.as_view("group_tag_values"),
    )
    _add("/projects/<int:project_id>/stats/", stats_views.ProjectStatsView.as_view("project_stats"))
    _add(
        "/projects/<int:project_id>/releases/",
        release_views.ProjectReleasesView.as_view("project_releases"),
    )
    _add(
        "/projects/<int:project_id>/releases/<version>/",
        release_views.ReleaseDetailsView.as_view("release_details"),
    )
    _add(
        "/projects/<int:project_id>/tags/<key>/",
        tag_views.ProjectTagKeyView.as_view("project_tag_key"),
    )
    _add(
        "/projects/<int:project_id>/tags/<key>/values/",
        tag_views.ProjectTagValuesView.as_view("project_tag_values"),
    )
    _add("/openapi.json", openapi_view.OpenAPIView.as_view("openapi"))
    _add(f"/<{ANY_PATH_CONVERTER}:unknown>", NotFoundView.as_view("not_found"))


# -- responses and errors ----------------------------------------------------------------


def json_response(
    data: t.Any, status: int = 200, headers: t.Mapping[str, str] | None = None
) -> Response:
    response = (
        jsonify(data)
        if data is not None
        else current_app.response_class(b"", mimetype="application/json")
    )
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def error_response(error: errors.APIError) -> Response:
    response = json_response({"detail": error.detail}, error.status_code, error.headers)
    if error.status_code == 401:
        realm = get_state().settings.auth_realm
        response.headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    return response


@blueprint.errorhandler(errors.APIError)
def _handle_api_error(error: errors.APIError) -> Response:
    return error_response(error)


@blueprint.errorhandler(ValidationError)
def _handle_validation_error(error: ValidationError) -> Response:
    messages = error.normalized_messages()
    if not isinstance(messages, dict):  # pragma: no cover - schemas always name fields
        messages = {"non_field_errors": messages}
    return json_response(messages, 400)


_HTTP_DETAILS = {
    404: "Not found",
    413: "Request body too large.",
}


@blueprint.errorhandler(HTTPException)
def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 405:
        detail = f'Method "{request.method}" not allowed.'
    elif status >= 500:
        detail = "Internal Error"
    else:
        detail = _HTTP_DETAILS.get(status, error.description or error.name)
    response = json_response({"detail": detail}, status)
    original_headers = dict(error.get_headers())
    for name in ("Allow", "Retry-After"):
        if name in original_headers:
            response.headers[name] = original_headers[name]
    return response


@blueprint.errorhandler(Unavailable)
def _handle_unavailable(error: Unavailable) -> Response:
    logger.warning("storage unavailable: %s", error)
    return error_response(errors.StorageUnavailable(headers={"Retry-After": "5"}))


@blueprint.errorhandler(500)
def _handle_internal_error(error: HTTPException) -> Response:
    # Flask has already logged the original exception with its traceback.
    return json_response({"detail": "Internal Error"}, 500)


@blueprint.after_request
def _add_standard_headers(response: Response) -> Response:
    response.headers["Content-Language"] = "en"
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    allow = view_class.allow_header() if hasattr(view_class, "allow_header") else ""
    if allow:
        response.headers["Allow"] = allow
    if response.status_code != 401:
        # Flask-HTTPAuth challenges on its 403 too, with its own default realm.
        response.headers.pop("WWW-Authenticate", None)
    return response


# -- request bodies ----------------------------------------------------------------------


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _storable(value: t.Any) -> bool:
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def json_body() -> dict[str, t.Any]:
    """The request's JSON object (``{}`` when empty), bounded by SENTRY_API_MAX_BODY_SIZE."""
    limit = get_state().settings.max_body_size
    if request.content_length is not None and request.content_length > limit:
        raise errors.PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise errors.PayloadTooLarge(f"Request body is larger than {limit} bytes.")
    if not raw.strip():
        return {}
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        shown = request.content_type or ""
        raise errors.UnsupportedMediaType(f"Unsupported media type '{shown}' in request.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise errors.ParseError("JSON parse error - body is not valid UTF-8") from None
    except RecursionError:
        raise errors.ParseError("JSON parse error - nesting is too deep") from None
    except ValueError as exc:
        raise errors.ParseError(f"JSON parse error - {exc}") from None
    if not isinstance(data, dict):
        raise errors.ParseError("JSON parse error - expected an object")
    if not _storable(data):
        # Databases store neither NUL characters nor lone surrogates (from "\ud800"
        # escapes): refuse them here rather than fail in the middle of a write.
        raise errors.ParseError("JSON parse error - strings must be valid, NUL-free unicode")
    return data


_register_routes()
