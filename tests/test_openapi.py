"""The OpenAPI document (``/api/0/openapi.json``): a valid OpenAPI 3.1 document that
describes every endpoint the blueprint registers, served without credentials, built once
per app; and real responses that match the schemas it gives them."""

from __future__ import annotations

import gc
import typing as t
import weakref
from datetime import datetime
from datetime import timezone

import pytest
from flask import Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.openapi import _CACHE
from flask_sentry_api.openapi import build_document
from flask_sentry_api.openapi import openapi_document
from flask_sentry_api.openapi import openapi_path
from flask_sentry_api.testing import make_event
from flask_sentry_api.views import APIView
from flask_sentry_api.views import NotFoundView

UTC = timezone.utc
DOC_URL = "/api/0/openapi.json"
MISSING = 987654321
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def memory_app(**config: t.Any) -> Flask:
    app = Flask("openapi-test")
    app.config.update(config)
    SentryAPI(app, storage=MemoryStorage())
    return app


@pytest.fixture
def document(client: t.Any) -> dict[str, t.Any]:
    response = client.get(DOC_URL)
    assert response.status_code == 200
    return t.cast(dict[str, t.Any], response.get_json())


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()


def test_every_endpoint_is_documented_with_its_methods(app, document):
    documented = {
        path: {method.upper() for method in item if method in METHODS}
        for path, item in document["paths"].items()
    }
    expected = {}
    for rule in app.url_map.iter_rules():
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        if not rule.rule.startswith("/api/0/"):
            continue
        assert view_class is not None and issubclass(view_class, APIView), rule.rule
        if issubclass(view_class, NotFoundView):
            continue
        expected[openapi_path(rule.rule, "/api/0")] = set(view_class.verbs())
    assert documented == expected
    assert "/projects/{project_id}/groups/" in documented
    assert documented["/groups/{group_id}/"] == {"GET", "PUT", "DELETE", "HEAD", "OPTIONS"}


def test_every_operation_is_described_by_hand(document):
    operation_ids = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            assert "x-undocumented" not in operation, (method, path)
            assert "default" not in operation["responses"], (method, path)
            operation_ids.add(operation["operationId"])
            for response in operation["responses"].values():
                assert response["headers"]["Content-Language"]["required"] is True
    assert {"getProjectGroupIndex", "putProjectGroupIndex", "postGroupNotes"} <= operation_ids


def test_served_without_credentials_like_every_endpoint(client, document):
    response = client.get(DOC_URL)
    assert response.mimetype == "application/json"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert response.headers["Content-Language"] == "en"
    assert document["servers"] == [{"url": "/api/0"}]
    head = client.head(DOC_URL)
    assert head.status_code == 200 and head.data == b""
    options = client.options(DOC_URL)
    assert options.get_json()["methods"] == ["GET", "HEAD", "OPTIONS"]
    post = client.post(DOC_URL)
    assert post.status_code == 405
    assert post.get_json() == {"detail": 'Method "POST" not allowed.'}
    assert post.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_operations_security(document):
    basic = document["components"]["securitySchemes"]["basic"]
    assert set(basic) == {"type", "scheme", "description"}
    assert (basic["type"], basic["scheme"]) == ("http", "basic")
    # SPEC section 3: "username = public key, password = secret key".
    assert "username = public key" in basic["description"]
    assert "password = secret key" in basic["description"]
    assert document["security"] == [{"basic": []}, {"bearer": []}]
    paths = document["paths"]
    assert paths["/"]["get"]["security"] == [{}, {"basic": []}, {"bearer": []}]
    assert paths["/openapi.json"]["get"]["security"] == []
    assert paths["/groups/{group_id}/"]["options"]["security"] == []
    # A token needs the operation's scope (SPEC §10); a key with the api role has them all.
    assert paths["/groups/{group_id}/"]["get"]["security"] == [
        {"basic": []},
        {"bearer": ["event:read"]},
    ]
    assert paths["/projects/{project_id}/"]["put"]["security"][1] == {"bearer": ["project:write"]}
    releases = "/organizations/{organization_slug}/releases/"
    assert paths[releases]["post"]["security"][1] == {"bearer": ["project:releases"]}
    unauthorized = paths["/groups/{group_id}/"]["get"]["responses"]["401"]
    assert unauthorized["headers"]["WWW-Authenticate"]["schema"]["enum"] == [
        'Basic realm="api"',
        'Bearer realm="api"',
    ]


def test_parameters(app, client, auth, project, document):
    paths = document["paths"]
    group_list = {
        p["name"]: p for p in paths["/projects/{project_id}/groups/"]["get"]["parameters"]
    }
    assert set(group_list) == {
        "query",
        "status",
        "sort",
        "since",
        "until",
        "statsPeriod",
        "limit",
        "per_page",
        "cursor",
    }
    assert group_list["statsPeriod"]["schema"]["enum"] == ["24h", "14d", ""]
    assert group_list["sort"]["schema"]["enum"] == ["date", "new", "freq", "priority", ""]
    assert group_list["limit"]["schema"] == {"type": "integer", "minimum": 1}
    delete = paths["/projects/{project_id}/groups/"]["delete"]["parameters"]
    assert [{k: v for k, v in p.items() if k not in ("schema", "description")} for p in delete] == [
        {"in": "query", "name": "id", "required": True, "style": "form", "explode": True}
    ]
    assert isinstance(delete[0]["description"], str) and "repeat" in delete[0]["description"]
    # The documented ids are the ones the server takes: checked against its answers.
    ids_schema = Draft202012Validator(delete[0]["schema"])
    url = f"/api/0/projects/{project.id}/groups/"
    most = get_state(app).settings.max_bulk_ids
    for ids in ([0], [2**63 - 1], [2**63], [-1], ["x"], [1] * most, [1] * (most + 1)):
        documented = ids_schema.is_valid(ids)
        response = client.delete(url, query_string=[("id", str(i)) for i in ids], headers=auth)
        assert documented == (response.status_code != 400), (ids[:2], len(ids), response.json)
    path_parameters = paths["/groups/{group_id}/tags/{key}/values/"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in path_parameters] == [
        ("group_id", "path", True),
        ("key", "path", True),
    ]
    assert path_parameters[0]["schema"] == {"type": "integer"}


@pytest.mark.parametrize(
    "cursor,valid",
    [
        ("", True),
        ("1420837590:0:1", True),
        ("1420837590.25:3:0", True),
        ("1:2", False),
        ("a:0:0", False),
        ("1:-1:0", False),
        ("1:0:2", False),
    ],
)
def test_cursor_pattern(document, cursor, valid):
    parameters = document["paths"]["/groups/{group_id}/events/"]["get"]["parameters"]
    schema = next(p["schema"] for p in parameters if p["name"] == "cursor")
    assert Draft202012Validator(schema).is_valid(cursor) is valid


def test_request_bodies_come_from_the_marshmallow_schemas(document):
    schemas = document["components"]["schemas"]
    for name in ("ProjectUpdate", "GroupUpdate", "BulkGroupUpdate", "NoteCreate", "ReleaseCreate"):
        assert schemas[name]["additionalProperties"] is False, name
    assert set(schemas["GroupUpdate"]["properties"]) == {
        "status",
        "isBookmarked",
        "hasSeen",
        "isPublic",
    }
    assert set(schemas["BulkGroupUpdate"]["properties"]) == {
        "status",
        "isBookmarked",
        "hasSeen",
        "isPublic",
        "merge",
        "snoozeDuration",
    }
    assert schemas["NoteCreate"]["required"] == ["text"]
    assert schemas["ReleaseCreate"]["required"] == ["version"]
    assert schemas["GroupUpdate"]["properties"]["isPublic"]["anyOf"][0] == {"type": "boolean"}
    body = document["paths"]["/projects/{project_id}/groups/"]["put"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BulkGroupUpdate"
    }
    put = document["paths"]["/groups/{group_id}/"]["put"]["responses"]
    assert {"400", "413", "415"} <= set(put)


def test_list_responses_carry_a_link_header(document):
    paths = document["paths"]
    for path in (
        "/projects/{project_id}/groups/",
        "/groups/{group_id}/events/",
        "/groups/{group_id}/notes/",
        "/projects/{project_id}/releases/",
        "/groups/{group_id}/tags/{key}/values/",
        "/projects/{project_id}/tags/{key}/values/",
    ):
        for method in ("get", "head"):
            headers = paths[path][method]["responses"]["200"]["headers"]
            assert headers["Link"]["required"] is True, (method, path)
    assert "Link" not in paths["/groups/{group_id}/tags/"]["get"]["responses"]["200"]["headers"]
    assert "content" not in paths["/groups/{group_id}/"]["head"]["responses"]["200"]


def test_documents_follow_the_app_configuration():
    app = memory_app(SENTRY_API_URL_PREFIX="/sentry", SENTRY_API_AUTH_REALM="errors")
    client = app.test_client()
    assert client.get(DOC_URL).status_code == 404
    document = client.get("/sentry/openapi.json").get_json()
    assert document["servers"] == [{"url": "/sentry"}]
    assert "/projects/{project_id}/groups/" in document["paths"]
    unauthorized = document["paths"]["/events/{event_id}/"]["get"]["responses"]["401"]
    assert unauthorized["headers"]["WWW-Authenticate"]["schema"]["enum"] == [
        'Basic realm="errors"',
        'Bearer realm="errors"',
    ]
    mounted = client.get("/sentry/openapi.json", base_url="http://localhost/mount/")
    assert mounted.get_json()["servers"] == [{"url": "/mount/sentry"}]


def test_built_once_per_app_and_not_kept_alive():
    app, other = memory_app(), memory_app(SENTRY_API_MAX_BULK_IDS=5)
    first = openapi_document(app)
    assert openapi_document(app)["paths"] is first["paths"]
    bulk = openapi_document(other)["paths"]["/projects/{project_id}/groups/"]["put"]
    assert next(p for p in bulk["parameters"] if p["name"] == "id")["schema"]["maxItems"] == 5
    assert build_document(app) == {k: v for k, v in first.items() if k != "servers"}
    ref = weakref.ref(app)
    del app, first
    gc.collect()
    assert ref() is None
    assert len([a for a in _CACHE.keys() if a is other]) == 1


# -- real responses against the schemas the document gives them -------------------------


def validator(document: dict[str, t.Any], schema: dict[str, t.Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": document["components"]})


def response_schema(document, path, method, status):
    content = document["paths"][path][method]["responses"][str(status)]["content"]
    return content["application/json"]["schema"]


def assert_conforms(document, path, method, response):
    schema = response_schema(document, path, method, response.status_code)
    errors = list(validator(document, schema).iter_errors(response.get_json()))
    assert not errors, (path, method, response.get_json(), errors[0])


@pytest.fixture
def populated(storage, project):
    for n, title in enumerate(["ValueError: boom", "a log line", "KeyError: 'x'"]):
        saved = storage.save_event(
            project.id,
            make_event(
                title=title,
                type="error" if ":" in title else "default",
                metadata={"type": "ValueError", "value": "boom"} if ":" in title else {},
                timestamp=datetime(2015, 1, 9, 21, 6, 30, n * 125000, tzinfo=UTC),
                release="1.0",
                environment="prod",
                user={"id": "42"},
                tags=(("level", "error"), ("release", "1.0")),
                data={"entries": [{"type": "message", "data": {"formatted": title}}]},
            ),
        )
        storage.create_note(saved.group.id, "seen it")
    storage.create_release(project.id, "2.0")
    return saved


def test_real_responses_match_the_documented_schemas(client, auth, document, project, populated):
    group_id, event_id = populated.group.id, populated.event.id
    p = project.id
    cases = [
        ("/", "get", "/api/0/"),
        ("/projects/{project_id}/", "get", f"/api/0/projects/{p}/"),
        ("/projects/{project_id}/groups/", "get", f"/api/0/projects/{p}/groups/"),
        (
            "/projects/{project_id}/groups/",
            "get",
            f"/api/0/projects/{p}/groups/?statsPeriod=14d&query=",
        ),
        ("/projects/{project_id}/groups/", "get", f"/api/0/projects/{p}/groups/?statsPeriod="),
        ("/groups/{group_id}/", "get", f"/api/0/groups/{group_id}/"),
        ("/groups/{group_id}/events/", "get", f"/api/0/groups/{group_id}/events/"),
        ("/groups/{group_id}/events/latest/", "get", f"/api/0/groups/{group_id}/events/latest/"),
        ("/events/{event_id}/", "get", f"/api/0/events/{event_id}/"),
        ("/groups/{group_id}/notes/", "get", f"/api/0/groups/{group_id}/notes/"),
        ("/groups/{group_id}/tags/", "get", f"/api/0/groups/{group_id}/tags/"),
        (
            "/groups/{group_id}/tags/{key}/values/",
            "get",
            f"/api/0/groups/{group_id}/tags/level/values/",
        ),
        (
            "/projects/{project_id}/tags/{key}/values/",
            "get",
            f"/api/0/projects/{p}/tags/release/values/",
        ),
        ("/projects/{project_id}/releases/", "get", f"/api/0/projects/{p}/releases/"),
        (
            "/projects/{project_id}/releases/{version}/",
            "get",
            f"/api/0/projects/{p}/releases/1.0/",
        ),
        ("/projects/{project_id}/stats/", "get", f"/api/0/projects/{p}/stats/"),
        ("/groups/{group_id}/stats/", "get", f"/api/0/groups/{group_id}/stats/?resolution=1d"),
        ("/groups/{group_id}/", "options", f"/api/0/groups/{group_id}/"),
        ("/groups/{group_id}/", "get", f"/api/0/groups/{MISSING}/"),
        ("/projects/{project_id}/groups/", "get", f"/api/0/projects/{p}/groups/?sort=x"),
    ]
    for path, method, url in cases:
        response = client.open(url, method=method.upper(), headers=auth)
        assert response.status_code < 500, url
        assert_conforms(document, path, method, response)
    unauthenticated = client.get(f"/api/0/groups/{group_id}/")
    assert_conforms(document, "/groups/{group_id}/", "get", unauthenticated)


def test_real_write_responses_match_the_documented_schemas(
    client, auth, document, project, populated
):
    group_id, p = populated.group.id, project.id
    writes = [
        ("/projects/{project_id}/", "put", f"/api/0/projects/{p}/", {"name": "Shop"}),
        ("/projects/{project_id}/", "put", f"/api/0/projects/{p}/", {"slug": "NO"}),
        ("/projects/{project_id}/", "put", f"/api/0/projects/{p}/", {"bogus": 1}),
        ("/groups/{group_id}/", "put", f"/api/0/groups/{group_id}/", {"isBookmarked": "1"}),
        ("/groups/{group_id}/notes/", "post", f"/api/0/groups/{group_id}/notes/", {"text": "hi"}),
        ("/groups/{group_id}/notes/", "post", f"/api/0/groups/{group_id}/notes/", {"text": ""}),
        (
            "/projects/{project_id}/releases/",
            "post",
            f"/api/0/projects/{p}/releases/",
            {"version": "3.0"},
        ),
        (
            "/projects/{project_id}/groups/",
            "put",
            f"/api/0/projects/{p}/groups/?status=unresolved",
            {"status": "resolved"},
        ),
        (
            "/projects/{project_id}/groups/",
            "put",
            f"/api/0/projects/{p}/groups/?id={group_id}",
            {"isPublic": True, "hasSeen": "true"},
        ),
    ]
    for path, method, url, body in writes:
        response = client.open(url, method=method.upper(), headers=auth, json=body)
        assert response.status_code in (200, 201, 400), (url, response.get_json())
        assert_conforms(document, path, method, response)
    unparsable = client.put(
        f"/api/0/groups/{group_id}/",
        headers={**auth, "Content-Type": "application/json"},
        data=b"{",
    )
    assert_conforms(document, "/groups/{group_id}/", "put", unparsable)
    wrong_type = client.put(
        f"/api/0/groups/{group_id}/", headers={**auth, "Content-Type": "text/plain"}, data=b"x"
    )
    assert wrong_type.status_code == 415
    assert_conforms(document, "/groups/{group_id}/", "put", wrong_type)


# -- known server bugs the schemathesis run found ------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/0/events/%0A/", "/api/0/groups/1%0A/", "/api/0/no%0Asuch/thing/"]
)
def test_newline_in_a_path_gets_a_json_404(client, auth, url):
    response = client.get(url, headers=auth)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.headers.get("Content-Language") == "en"
    assert response.get_json() == {"detail": "Not found"}
