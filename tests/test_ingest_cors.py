"""CORS of the ingestion endpoints (issue 12): a browser SDK sending a header of its own
passes the preflight, the requested headers are echoed only as header names and bounded,
and caches are told what the answer depends on."""

from __future__ import annotations

import json
import uuid

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from tests.helpers import EVERYTHING
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import sentry_auth

ORIGIN = "https://shop.example"
#: What every answer allows, requested or not (Sentry's list).
DEFAULT_HEADERS = {
    "x-sentry-auth",
    "x-requested-with",
    "origin",
    "accept",
    "content-type",
    "content-encoding",
    "authentication",
    "authorization",
    "sentry-trace",
    "baggage",
}


def preflight(client: FlaskClient, project: Project, requested: str | None) -> object:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    if requested is not None:
        headers["Access-Control-Request-Headers"] = requested
    return client.options(f"/api/{project.id}/envelope/", headers=headers)


def allowed_headers(response: object) -> list[str]:
    value = response.headers["Access-Control-Allow-Headers"]  # type: ignore[attr-defined]
    return [name.strip() for name in value.split(",")]


def test_preflight_echoes_a_custom_header(client: FlaskClient, project: Project) -> None:
    response = preflight(client, project, "content-type, x-shop-tenant, X-Request-ID")
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN  # type: ignore[attr-defined]
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"  # type: ignore[attr-defined]
    names = allowed_headers(response)
    assert {"x-shop-tenant", "X-Request-ID"} <= set(names)
    assert DEFAULT_HEADERS <= {name.lower() for name in names}
    # Each once, whatever the case it was asked in.
    assert len({name.lower() for name in names}) == len(names)


def test_preflight_without_requested_headers_allows_the_defaults(
    client: FlaskClient, project: Project
) -> None:
    for requested in (None, "", " , ,"):
        names = allowed_headers(preflight(client, project, requested))
        assert {name.lower() for name in names} == DEFAULT_HEADERS


@pytest.mark.parametrize(
    "hostile",
    [
        "x-ok, bad header, x-\u20ac, x-also-ok",
        "x-ok,\tbad\theader,(x),x-also-ok",
        'x-ok, x"quoted", x-also-ok',
    ],
)
def test_requested_names_that_are_no_header_names_are_not_echoed(
    client: FlaskClient, project: Project, hostile: str
) -> None:
    names = allowed_headers(preflight(client, project, hostile))
    extra = [name for name in names if name.lower() not in DEFAULT_HEADERS]
    assert extra == ["x-ok", "x-also-ok"]


def test_the_echo_is_bounded(client: FlaskClient, project: Project) -> None:
    requested = ", ".join(f"x-custom-{n}" for n in range(2000))  # ~30 KB
    response = preflight(client, project, requested)
    value = response.headers["Access-Control-Allow-Headers"]  # type: ignore[attr-defined]
    assert len(value) < 1500
    names = allowed_headers(response)
    assert "x-custom-0" in names
    # Cut between names, never inside one.
    assert all(name in requested.split(", ") or name.lower() in DEFAULT_HEADERS for name in names)


def test_responses_vary_on_origin_and_requested_headers(
    client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    path = f"/api/{project.id}/envelope/"
    body = envelope(event_item({"event_id": uuid.uuid4().hex, "message": "from a browser"}))
    for response in (
        preflight(client, project, "x-shop-tenant"),
        client.post(path, data=body, headers={**sentry_auth(key), "Origin": ORIGIN}),
        # Without an Origin the answer differs (no CORS headers): a cache must know that.
        client.post(path, data=body, headers=sentry_auth(key)),
        client.post(path, data=body, headers={"Origin": ORIGIN}),  # a 401
    ):
        vary = {v.strip().lower() for v in response.headers["Vary"].split(",")}  # type: ignore[attr-defined]
        assert {"origin", "access-control-request-headers"} <= vary


def test_a_browser_sdk_with_a_custom_header_stores_its_event(
    client: FlaskClient, project: Project, key: ProjectKey, storage: object
) -> None:
    """What a browser does: the preflight names the custom header; the POST follows only
    if the answer allows every header it will carry."""
    response = preflight(client, project, "content-type,x-shop-tenant")
    sent = {"content-type", "x-shop-tenant"}
    assert sent <= {name.lower() for name in allowed_headers(response)}
    event_id = uuid.uuid4().hex
    posted = client.post(
        f"/api/{project.id}/envelope/?sentry_key={key.public_key}&sentry_version=7",
        data=envelope(event_item({"event_id": event_id, "message": "with a tenant header"})),
        headers={"Origin": ORIGIN, "X-Shop-Tenant": "42", "Content-Type": "text/plain"},
    )
    assert posted.status_code == 200, posted.data
    assert json.loads(posted.data) == {"id": event_id}
    assert posted.headers["Access-Control-Allow-Origin"] == ORIGIN
    events = storage.list_project_events(project.id, EVERYTHING)  # type: ignore[attr-defined]
    assert [event.event_id for event in events] == [event_id]
