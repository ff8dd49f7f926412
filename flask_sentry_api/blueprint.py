"""The package's two blueprints, their URL rules and their error handlers.

``sentry_api`` is the web API, mounted at ``/api/0`` by default. Registering it (directly,
or through :meth:`SentryAPI.init_app`) also registers ``sentry_api_ingest``, the SDK
ingestion endpoints under ``SENTRY_API_INGEST_URL_PREFIX``, and the ``flask sentry-api``
commands. Each blueprint renders its own errors as JSON ``{"detail": ...}``; ingestion adds
``X-Sentry-Error`` and CORS headers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import typing as t

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import got_request_exception
from flask import request
from flask.blueprints import BlueprintSetupState
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import default_exceptions
from werkzeug.routing import BaseConverter
from werkzeug.routing import PathConverter

from . import csrf
from . import errors
from .auth import challenge
from .cli import cli
from .http import add_standard_headers
from .http import error_response
from .http import json_response
from .openapi import openapi_document
from .openapi import openapi_path
from .state import EXTENSION_KEY
from .state import build_state
from .state import get_state
from .storage import Unavailable
from .throttling import add_rate_limit_headers
from .views.apidocs import APIDocsAssetView
from .views.apidocs import APIDocsView
from .views.base import IndexView
from .views.base import NotFoundView
from .views.events import EventDetailsView
from .views.events import GroupEventDetailsView
from .views.events import GroupEventsView
from .views.events import GroupLatestEventView
from .views.events import ProjectEventDetailsView
from .views.events import ProjectEventsView
from .views.events import SDKEventDetailsView
from .views.groups import GroupDetailsView
from .views.groups import GroupNotesView
from .views.groups import OrganizationIssuesView
from .views.groups import ProjectGroupIndexView
from .views.ingest import IngestView
from .views.ingest import add_cors_headers
from .views.ingest import envelope_payload
from .views.ingest import ingest_error_response
from .views.ingest import store_payload
from .views.openapi import OpenAPIView
from .views.organizations import OrganizationDetailsView
from .views.organizations import OrganizationIndexView
from .views.organizations import OrganizationProjectsView
from .views.organizations import ProjectKeysView
from .views.projects import ProjectDetailsView
from .views.releases import OrganizationReleaseDetailsView
from .views.releases import OrganizationReleasesView
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
ORGANIZATION_CONVERTER = "sentry_api_organization"
SDK_EVENT_ID_CONVERTER = "sentry_api_sdk_event_id"


class SDKEventIdConverter(BaseConverter):
    """An SDK's event id (32 hex digits, or a UUID), tried before ``int``: an id whose hex
    digits all happen to be decimal is still the SDK's, not a row id."""

    regex = "[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    weight = 10


def organization_converter(slug: str) -> type[BaseConverter]:
    """A converter matching only the app's organization slug: a path naming another
    organization is no endpoint at all (a 404 before anything else)."""
    return type("OrganizationConverter", (BaseConverter,), {"regex": re.escape(slug)})


@blueprint.record_once
def _on_register(setup: BlueprintSetupState) -> None:
    app = t.cast(Flask, setup.app)
    app.url_map.converters[ANY_PATH_CONVERTER] = AnyPathConverter
    app.url_map.converters[SDK_EVENT_ID_CONVERTER] = SDKEventIdConverter
    if EXTENSION_KEY not in app.extensions:
        # Registered with app.register_blueprint(): build the state from app.config.
        app.extensions[EXTENSION_KEY] = build_state(app)
    _settle_url_prefix(app, setup)
    organization = get_state(app).settings.organization
    app.url_map.converters[ORGANIZATION_CONVERTER] = organization_converter(organization)
    app.register_blueprint(ingest_blueprint, url_prefix=get_state(app).settings.ingest_url_prefix)
    app.cli.add_command(cli)


def _settle_url_prefix(app: Flask, setup: BlueprintSetupState) -> None:
    """Mount the web API at ``SENTRY_API_URL_PREFIX``, unless ``register_blueprint`` was given
    its own ``url_prefix``: then that one is the API's prefix, for the OpenAPI document too.

    This runs before the URL rules are added (deferred functions run in the order they were
    recorded), so the rules follow ``setup.url_prefix`` as set here.
    """
    state = get_state(app)
    if setup.options.get("url_prefix") is None:
        # The blueprint's own "/api/0" would otherwise win over the setting.
        setup.url_prefix = state.settings.url_prefix
        return
    # Flask joins "/x/" and "/x" alike; the settings keep the form without the slash.
    effective = (setup.url_prefix or "").rstrip("/")
    if effective != state.settings.url_prefix:
        settings = dataclasses.replace(state.settings, url_prefix=effective)
        app.extensions[EXTENSION_KEY] = dataclasses.replace(state, settings=settings)
        app.config["SENTRY_API_URL_PREFIX"] = effective


# -- URL rules ---------------------------------------------------------------------------

#: Sentry's later paths (SPEC §10): a project by organization and slug (or id), an issue by
#: id or short id.
_PROJECT = f"/projects/<{ORGANIZATION_CONVERTER}:organization_slug>/<project_id_or_slug>"
_ORGANIZATION = f"/organizations/<{ORGANIZATION_CONVERTER}:organization_slug>"
_ISSUE = "/issues/<issue_id>"

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
    (f"/events/<{SDK_EVENT_ID_CONVERTER}:event_id>/", "sdk_event_details", SDKEventDetailsView),
    ("/organizations/", "organizations", OrganizationIndexView),
    (f"{_ORGANIZATION}/", "organization_details", OrganizationDetailsView),
    (f"{_ORGANIZATION}/projects/", "organization_projects", OrganizationProjectsView),
    (f"{_ORGANIZATION}/issues/", "organization_issues", OrganizationIssuesView),
    (f"{_ORGANIZATION}/issues/<issue_id>/", "organization_issue_details", GroupDetailsView),
    (f"{_ORGANIZATION}/releases/", "organization_releases", OrganizationReleasesView),
    (
        f"{_ORGANIZATION}/releases/<version>/",
        "organization_release_details",
        OrganizationReleaseDetailsView,
    ),
    (f"{_PROJECT}/", "org_project_details", ProjectDetailsView),
    (f"{_PROJECT}/issues/", "org_project_issues", ProjectGroupIndexView),
    (f"{_PROJECT}/groups/", "org_project_groups", ProjectGroupIndexView),
    (f"{_PROJECT}/events/", "org_project_events", ProjectEventsView),
    (f"{_PROJECT}/events/<event_id>/", "org_project_event_details", ProjectEventDetailsView),
    (f"{_PROJECT}/releases/", "org_project_releases", ProjectReleasesView),
    (f"{_PROJECT}/releases/<version>/", "org_project_release_details", ReleaseDetailsView),
    (f"{_PROJECT}/keys/", "org_project_keys", ProjectKeysView),
    (f"{_PROJECT}/stats/", "org_project_stats", ProjectStatsView),
    (f"{_PROJECT}/tags/<key>/", "org_project_tag_key", ProjectTagKeyView),
    (f"{_PROJECT}/tags/<key>/values/", "org_project_tag_values", ProjectTagValuesView),
    (f"{_ISSUE}/", "issue_details", GroupDetailsView),
    (f"{_ISSUE}/events/", "issue_events", GroupEventsView),
    (f"{_ISSUE}/events/<event_id>/", "issue_event_details", GroupEventDetailsView),
    (f"{_ISSUE}/notes/", "issue_notes", GroupNotesView),
    (f"{_ISSUE}/tags/", "issue_tags", GroupTagsView),
    (f"{_ISSUE}/tags/<key>/values/", "issue_tag_values", GroupTagValuesView),
    (f"{_ISSUE}/stats/", "issue_stats", GroupStatsView),
    ("/openapi.json", "openapi", OpenAPIView),
    # The document as a Swagger UI page; ``/docs`` (no slash) redirects there.
    ("/docs/", "openapi_docs", APIDocsView),
    ("/docs/<asset>", "openapi_docs_asset", APIDocsAssetView),
    # Last: anything else under the prefix is a JSON 404.
    (f"/<{ANY_PATH_CONVERTER}:unknown>", "not_found", NotFoundView),
]

for _rule, _endpoint, _view in _WEB_RULES:
    blueprint.add_url_rule(_rule, view_func=_view.as_view(_endpoint), strict_slashes=False)

_INGEST_ENDPOINTS = (("store", store_payload), ("envelope", envelope_payload))
for _endpoint, _read_payload in _INGEST_ENDPOINTS:
    ingest_blueprint.add_url_rule(
        f"/<int:project_id>/{_endpoint}/",
        view_func=IngestView.as_view(_endpoint, _read_payload),
        strict_slashes=False,
    )


def _accept_every_method(endpoints: t.Iterable[str]) -> t.Callable[[BlueprintSetupState], None]:
    """A deferred setup function letting every method reach the views of ``endpoints``.

    Routing would answer a method a rule does not list (TRACE, PROPFIND, any token at all)
    with Werkzeug's HTML 405, outside the blueprint's error handlers, and an ``Allow``
    listing every method of every rule the path matches. With no method list (Werkzeug's
    ``methods=None``) the request reaches the view instead, which answers the JSON 405
    with its endpoint's own ``Allow``. Flask's ``add_url_rule`` always sets a list, so it
    is lifted once the rules exist.
    """
    names = frozenset(endpoints)

    def setup(state: BlueprintSetupState) -> None:
        prefix = f"{state.name_prefix}.{state.name}.".lstrip(".")
        for rule in state.app.url_map.iter_rules():
            if rule.endpoint.startswith(prefix) and rule.endpoint[len(prefix) :] in names:
                rule.methods = None

    return setup


# After the rules above: deferred functions run in the order they were recorded.
blueprint.record(_accept_every_method(endpoint for _, endpoint, _ in _WEB_RULES))
ingest_blueprint.record(_accept_every_method(endpoint for endpoint, _ in _INGEST_ENDPOINTS))


@blueprint.before_request
def _check_path_values() -> None:
    """A 404 for an OPTIONS request whose path values the OpenAPI document does not allow
    (an issue id or short id, a tag key's pattern, a slug's length, ...).

    Routing checks only the converters. The other verbs get that 404 from their view, after
    the credentials; OPTIONS needs none and reads no storage, so the document's own rules
    decide here, and a malformed path is a 404 on every verb.
    """
    if request.method != "OPTIONS" or request.url_rule is None or not request.view_args:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    prefix = get_state().settings.url_prefix.rstrip("/")
    path_item = openapi_document(app)["paths"].get(openapi_path(request.url_rule.rule, prefix))
    for parameter in (path_item or {}).get("parameters", ()):
        value = request.view_args.get(parameter["name"])
        if parameter["in"] == "path" and value is not None:
            if not _conforms(value, parameter["schema"]):
                raise errors.NotFound()


def _conforms(value: t.Any, schema: dict[str, t.Any]) -> bool:
    """Whether a path value matches a parameter's JSON Schema: the keywords the document's
    path parameters use (``anyOf``, integer, ``enum``, lengths, ``pattern``)."""
    if "anyOf" in schema:
        return any(_conforms(value, variant) for variant in schema["anyOf"])
    if schema.get("type") == "integer":
        return isinstance(value, int)  # the ``int`` converter's, never a string
    if not isinstance(value, str):
        return False
    return (
        ("enum" not in schema or value in schema["enum"])
        and schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
        and ("pattern" not in schema or re.search(schema["pattern"], value) is not None)
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
        # The web API asks for credentials in the scheme the request tried (Basic when it
        # tried none); SDKs (ingestion) are never challenged.
        response.headers["WWW-Authenticate"] = challenge()
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


# -- in a host app -------------------------------------------------------------------------
#
# Flask looks an error's handler up by status code first (the blueprint's, then the app's),
# then by class along the exception's MRO (the blueprint's, then the app's). A host's
# ``errorhandler(404)`` would beat the blueprints' ``HTTPException`` handlers, and its
# ``errorhandler(Exception)`` would answer a bug before Flask's 500: so each blueprint also
# handles every status code Werkzeug has, and ``Exception``.

for _code in default_exceptions:
    if _code != 500:
        blueprint.register_error_handler(_code, _handle_http_exception)
        ingest_blueprint.register_error_handler(_code, _handle_ingest_http_exception)


@blueprint.errorhandler(Exception)
@ingest_blueprint.errorhandler(Exception)
def _handle_bug(error: Exception) -> Response:
    """A bug: what Flask does with an unhandled exception, but the answer is the JSON 500.

    Handled here, the exception never reaches Flask's own handling, so this does its part:
    re-raise when the app propagates exceptions (testing, debug), else send
    ``got_request_exception`` (error reporters such as sentry-sdk listen to it) and log the
    traceback.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    propagate = app.config["PROPAGATE_EXCEPTIONS"]
    if propagate is None:
        propagate = app.testing or app.debug
    if propagate:
        raise error
    got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=error)
    app.log_exception((type(error), error, error.__traceback__))
    return json_response({"detail": "Internal Error"}, 500)


@blueprint.record_once
def _exempt_from_csrf(setup: BlueprintSetupState) -> None:
    # Key and token authenticated, never by cookie: a host's Flask-WTF CSRFProtect has
    # nothing to protect here (flask_sentry_api.csrf).
    csrf.install(t.cast(Flask, setup.app), (blueprint, ingest_blueprint))


blueprint.after_request(add_standard_headers)
blueprint.after_request(add_rate_limit_headers)
ingest_blueprint.after_request(add_standard_headers)
ingest_blueprint.after_request(add_cors_headers)
