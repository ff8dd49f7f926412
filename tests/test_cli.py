"""The ``flask sentry-api`` commands, through Flask's CLI runner."""

from __future__ import annotations

import hashlib
import json
import re
import typing as t

import pytest
from flask import Flask

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import SCOPES
from flask_sentry_api.storage import RateLimit
from tests.helpers import add_group
from tests.helpers import basic_auth
from tests.helpers import make_app

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def invoke(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["sentry-api", *args])
    return result.exit_code, result.output


def test_init_db_creates_missing_tables(app: Flask) -> None:
    app.extensions["sqlalchemy"].drop_all()
    code, output = invoke(app, "init-db")
    assert code == 0, output
    assert "ready" in output
    assert get_state(app).storage.get_project(1) is None  # the tables exist again


def test_create_project_prints_keys_and_dsn(app: Flask) -> None:
    code, output = invoke(
        app, "create-project", "Web Shop", "--url", "https://errors.example.com/base"
    )
    assert code == 0, output
    fields = dict(line.split(None, 1) for line in output.strip().splitlines())
    assert fields["id:"] == "1"
    assert fields["slug:"] == "web-shop"
    assert HEX32.match(fields["publicKey:"]) and HEX32.match(fields["secretKey:"])
    assert fields["dsn:"] == f"https://{fields['publicKey:']}@errors.example.com/base/1"
    key = get_state(app).storage.get_key(fields["publicKey:"])
    assert key.roles == ROLE_STORE | ROLE_API and key.secret_key == fields["secretKey:"]


def test_create_project_json_and_the_key_works(app: Flask) -> None:
    code, output = invoke(app, "create-project", "Web", "--slug", "frontend", "--json")
    assert code == 0, output
    record = json.loads(output)
    assert set(record) >= {"id", "slug", "publicKey", "secretKey", "dsn"}
    assert record["slug"] == "frontend"
    assert record["dsn"] == f"http://{record['publicKey']}@127.0.0.1:5000/{record['id']}"
    key = get_state(app).storage.get_key(record["publicKey"])
    response = app.test_client().get(f"/api/0/projects/{record['id']}/", headers=basic_auth(key))
    assert response.status_code == 200


def test_create_project_with_a_taken_slug_fails_cleanly(app: Flask) -> None:
    assert invoke(app, "create-project", "A", "--slug", "same")[0] == 0
    code, output = invoke(app, "create-project", "B", "--slug", "same")
    assert code == 2
    assert "already in use" in output


def test_create_key_roles(app: Flask) -> None:
    invoke(app, "create-project", "Web")
    code, output = invoke(app, "create-key", "1", "--role", "store", "--json")
    assert code == 0, output
    record = json.loads(output)
    assert record["id"] == "1" and record["slug"] == "web"
    assert get_state(app).storage.get_key(record["publicKey"]).roles == ROLE_STORE
    record = json.loads(invoke(app, "create-key", "1", "--json")[1])
    assert get_state(app).storage.get_key(record["publicKey"]).roles == ROLE_STORE | ROLE_API


def test_create_key_for_a_missing_project(app: Flask) -> None:
    code, output = invoke(app, "create-key", "42")
    assert code == 2
    assert "no project with id 42" in output


def test_disable_key(app: Flask) -> None:
    record = json.loads(invoke(app, "create-project", "Web", "--json")[1])
    code, output = invoke(app, "disable-key", record["publicKey"])
    assert code == 0, output
    storage = get_state(app).storage
    assert storage.get_key(record["publicKey"]).is_active is False
    response = app.test_client().get(
        "/api/0/projects/1/", headers=basic_auth(storage.get_key(record["publicKey"]))
    )
    assert response.get_json() == {"detail": "Key is disabled"}
    assert invoke(app, "disable-key", "f" * 32)[0] == 2


def test_create_key_with_a_rate_limit(app: Flask) -> None:
    invoke(app, "create-project", "Web")
    code, output = invoke(app, "create-key", "1", "--rate-limit", "100/60", "--json")
    assert code == 0, output
    record = json.loads(output)
    assert record["rateLimit"] == {"count": 100, "window": 60}
    assert get_state(app).storage.get_key(record["publicKey"]).rate_limit == RateLimit(100, 60)
    code, output = invoke(app, "create-key", "1")
    assert code == 0, output
    assert "rateLimit: default" in output


@pytest.mark.parametrize("value", ["100", "0", "0/60", "100/0", "many/60", "-1/60", "default"])
def test_create_key_with_a_bad_rate_limit_is_a_usage_error(app: Flask, value: str) -> None:
    invoke(app, "create-project", "Web")
    code, output = invoke(app, "create-key", "1", "--rate-limit", value)
    assert code == 2
    assert "N/SECONDS" in output
    assert len(get_state(app).storage.list_keys(1)) == 1  # the project's own key only


def test_set_rate_limit_and_back_to_the_default(app: Flask) -> None:
    public_key = json.loads(invoke(app, "create-project", "Web", "--json")[1])["publicKey"]
    storage = get_state(app).storage

    code, output = invoke(app, "set-rate-limit", public_key, "5/60")
    assert code == 0, output
    assert output.strip() == f"Key {public_key} is limited to 5 events per 60 s."
    assert storage.get_key(public_key).rate_limit == RateLimit(5, 60)

    code, output = invoke(app, "set-rate-limit", public_key, "default")
    assert code == 0, output
    assert "the default" in output
    assert storage.get_key(public_key).rate_limit is None

    assert invoke(app, "set-rate-limit", "f" * 32, "5/60")[0] == 2
    code, output = invoke(app, "set-rate-limit", public_key, "five")
    assert code == 2 and "N/SECONDS" in output


def test_commands_create_tables_themselves() -> None:
    app = make_app()
    with app.app_context():
        app.extensions["sqlalchemy"].drop_all()
    code, output = invoke(app, "create-project", "Fresh", "--json")
    assert code == 0, output
    assert json.loads(output)["id"] == "1"


# -- auth tokens (SPEC §10) ------------------------------------------------------------------

TOKEN = re.compile(r"^sntryu_[0-9a-f]{64}$")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_project(app: Flask, name: str = "Web") -> dict[str, str]:
    code, output = invoke(app, "create-project", name, "--json")
    assert code == 0, output
    return t.cast(dict[str, str], json.loads(output))


def create_token(app: Flask, *args: str) -> dict[str, t.Any]:
    result = app.test_cli_runner().invoke(args=["sentry-api", "create-token", *args, "--json"])
    assert result.exit_code == 0, result.output
    return t.cast(dict[str, t.Any], json.loads(result.stdout))


def test_create_token_json_with_every_scope_by_default(app: Flask) -> None:
    project = make_project(app)
    record = create_token(app, project["id"])
    # SPEC §10's fields, and perhaps the token's id (what revoke-token takes).
    assert {"token", "project", "scopes"} <= set(record) <= {"token", "id", "project", "scopes"}
    [stored] = get_state(app).storage.list_tokens()
    assert record.get("id", str(stored.id)) == str(stored.id)
    assert TOKEN.match(record["token"])
    assert record["project"] == project["id"]
    assert record["scopes"] == list(SCOPES)
    client = app.test_client()
    assert client.get("/api/0/", headers=bearer(record["token"])).get_json() == {
        "version": "0",
        "auth": {"project": project["id"], "scopes": list(SCOPES)},
    }
    response = client.get(
        f"/api/0/projects/sentry/{project['slug']}/", headers=bearer(record["token"])
    )
    assert response.status_code == 200
    assert response.get_json()["id"] == project["id"]
    # Each token is new.
    assert create_token(app, project["id"])["token"] != record["token"]


def test_create_token_with_chosen_scopes(app: Flask) -> None:
    project = make_project(app)
    storage = get_state(app).storage
    group_id = add_group(storage, storage.get_project(int(project["id"])), "a")
    record = create_token(
        app,
        project["id"],
        "--scopes",
        "event:read",
        "--scopes",
        "project:read",
        "--scopes",
        "event:read",
    )
    assert record["scopes"] == ["project:read", "event:read"]  # SCOPES order, no repeats
    client = app.test_client()
    headers = bearer(record["token"])
    assert client.get(f"/api/0/issues/{group_id}/", headers=headers).status_code == 200
    response = client.put(
        f"/api/0/issues/{group_id}/", headers=headers, json={"status": "resolved"}
    )
    assert response.status_code == 403
    assert response.get_json() == {"detail": "You do not have permission to perform this action."}
    assert storage.get_group(group_id).status == "unresolved"
    assert client.get("/api/0/", headers=headers).get_json()["auth"]["scopes"] == [
        "project:read",
        "event:read",
    ]


@pytest.mark.parametrize("scope", ["project:delete", "EVENT:READ", "org:write", ""])
def test_create_token_with_an_unknown_scope_is_a_usage_error(app: Flask, scope: str) -> None:
    project = make_project(app)
    code, output = invoke(app, "create-token", project["id"], "--scopes", scope)
    assert code == 2, output
    assert "--scopes" in output
    assert "sntryu_" not in output
    assert get_state(app).storage.list_tokens() == []


def test_create_token_for_an_unknown_project(app: Flask) -> None:
    make_project(app)
    for project_id in ("42", "0"):
        code, output = invoke(app, "create-token", project_id)
        assert code == 2, output
        assert f"no project with id {project_id}" in output
        assert "sntryu_" not in output
    code, output = invoke(app, "create-token", "web")  # an id, not a slug
    assert code == 2, output
    assert get_state(app).storage.list_tokens() == []


def test_create_token_plain_output_shows_the_token_once(app: Flask) -> None:
    project = make_project(app)
    result = app.test_cli_runner().invoke(
        args=["sentry-api", "create-token", project["id"], "--scopes", "project:releases"]
    )
    assert result.exit_code == 0, result.output
    tokens = re.findall(r"sntryu_[0-9a-f]+", result.output)
    assert len(tokens) == 1 and TOKEN.match(tokens[0])
    token = tokens[0]
    [stored] = get_state(app).storage.list_tokens()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.last_characters == token[-4:]
    assert stored.scopes == ("project:releases",)
    fields = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
    assert fields["token:"] == token
    assert fields["id:"] == str(stored.id)
    assert fields["project:"] == project["id"]
    assert fields["scopes:"] == "project:releases"
    assert "cannot be shown again" in result.output
    response = app.test_client().post(
        f"/api/0/projects/{project['id']}/releases/", headers=bearer(token), json={"version": "1.0"}
    )
    assert response.status_code == 201


def test_list_tokens_never_shows_a_token(app: Flask) -> None:
    web, other = make_project(app), make_project(app, "Other")
    first = create_token(app, web["id"], "--label", "ci deploys")
    second = create_token(app, other["id"], "--scopes", "event:read")
    stored = {t.project_id: t for t in get_state(app).storage.list_tokens()}

    code, output = invoke(app, "list-tokens")
    assert code == 0, output
    for record in (first, second):
        assert record["token"] not in output
        assert record["token"][7:] not in output
        assert record["token"][-4:] in output
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t")[0] == str(stored[int(web["id"])].id)
    assert "ci deploys" in lines[0] and f"project {web['id']}" in lines[0]
    assert lines[1].split("\t")[0] == str(stored[int(other["id"])].id)
    assert "event:read" in lines[1] and "event:write" not in lines[1]

    code, output = invoke(app, "list-tokens", "--json")
    assert code == 0, output
    records = json.loads(output)
    assert [r["id"] for r in records] == [
        str(stored[int(web["id"])].id),
        str(stored[int(other["id"])].id),
    ]
    assert [r["project"] for r in records] == [web["id"], other["id"]]
    assert [r["tokenLastCharacters"] for r in records] == [
        first["token"][-4:],
        second["token"][-4:],
    ]
    assert records[0]["scopes"] == list(SCOPES) and records[1]["scopes"] == ["event:read"]
    assert records[0]["label"] == "ci deploys" and records[1]["label"] is None
    for record in (first, second):
        assert record["token"] not in output and record["token"][7:] not in output

    code, output = invoke(app, "list-tokens", "--project", other["id"], "--json")
    assert code == 0, output
    assert [r["project"] for r in json.loads(output)] == [other["id"]]
    code, output = invoke(app, "list-tokens", "--project", "42")
    assert (code, output.strip()) == (0, "")


def test_revoke_token(app: Flask) -> None:
    project = make_project(app)
    revoked, kept = create_token(app, project["id"]), create_token(app, project["id"])
    storage = get_state(app).storage
    ids = [t.id for t in storage.list_tokens()]
    client = app.test_client()
    url = f"/api/0/projects/{project['id']}/"
    assert client.get(url, headers=bearer(revoked["token"])).status_code == 200

    code, output = invoke(app, "revoke-token", str(ids[0]))
    assert code == 0, output
    assert f"Token {ids[0]} is revoked" in output
    response = client.get(url, headers=bearer(revoked["token"]))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert client.get(url, headers=bearer(kept["token"])).status_code == 200
    assert [t.id for t in storage.list_tokens()] == ids[1:]

    code, output = invoke(app, "revoke-token", str(ids[0]))
    assert code == 2
    assert f"no token with id {ids[0]}" in output
    code, output = invoke(app, "revoke-token", "999")
    assert code == 2 and "no token with id 999" in output
    assert invoke(app, "revoke-token", "abc")[0] == 2
    assert client.get(url, headers=bearer(kept["token"])).status_code == 200


def test_create_token_label_length(app: Flask) -> None:
    project = make_project(app)
    code, output = invoke(app, "create-token", project["id"], "--label", "x" * 10_000)
    assert code == 2, output
    assert "--label" in output
    assert get_state(app).storage.list_tokens() == []
    record = create_token(app, project["id"], "--label", "x" * 255)
    assert TOKEN.match(record["token"])
    assert get_state(app).storage.list_tokens()[0].label == "x" * 255


# -- finding projects and keys again ---------------------------------------------------------


def test_list_projects(app: Flask) -> None:
    code, output = invoke(app, "list-projects")
    assert (code, output) == (0, "")
    assert json.loads(invoke(app, "list-projects", "--json")[1]) == []
    web, other = make_project(app, "Web Shop"), make_project(app, "Other")
    invoke(app, "create-key", web["id"])
    get_state(app).storage.update_project(int(other["id"]), {"slug": "a-first"})

    code, output = invoke(app, "list-projects")
    assert code == 0, output
    assert output.splitlines() == [
        f"{web['id']}\tweb-shop\tWeb Shop\t2 keys",
        f"{other['id']}\ta-first\tOther\t1 key",
    ]
    code, output = invoke(app, "list-projects", "--json")
    assert code == 0, output
    assert json.loads(output) == [
        {"id": web["id"], "slug": "web-shop", "name": "Web Shop", "keys": 2},
        {"id": other["id"], "slug": "a-first", "name": "Other", "keys": 1},
    ]


def key_blocks(output: str) -> list[dict[str, str]]:
    """``list-keys`` text output as one field dict per key."""
    return [
        {label.rstrip(":"): value for label, _, value in (line.partition(" ") for line in block)}
        for block in (chunk.splitlines() for chunk in output.strip().split("\n\n"))
    ]


def test_list_keys_text_hides_secrets_unless_asked(app: Flask) -> None:
    web, other = make_project(app), make_project(app, "Other")
    extra = json.loads(
        invoke(app, "create-key", web["id"], "--role", "store", "--rate-limit", "10/60", "--json")[
            1
        ]
    )
    invoke(app, "disable-key", extra["publicKey"])
    created = [web, extra, other]

    code, output = invoke(app, "list-keys", "--url", "https://errors.example.com")
    assert code == 0, output
    for record in created:
        assert record["secretKey"] not in output
    blocks = key_blocks(output)
    assert [block["publicKey"].strip() for block in blocks] == [r["publicKey"] for r in created]
    assert all("secretKey" not in block for block in blocks)
    first, second, third = ({k: v.strip() for k, v in block.items()} for block in blocks)
    assert first["project"] == f"{web['id']} (web)"
    assert first["roles"] == "store, api" and second["roles"] == "store"
    assert (first["active"], second["active"]) == ("yes", "no")
    assert (first["rateLimit"], second["rateLimit"]) == ("default", "10/60")
    assert first["dsn"] == f"https://{web['publicKey']}@errors.example.com/{web['id']}"
    assert third["project"] == f"{other['id']} (other)"

    code, output = invoke(app, "list-keys", "--show-secrets")
    assert code == 0, output
    blocks = key_blocks(output)
    assert [block["secretKey"].strip() for block in blocks] == [r["secretKey"] for r in created]


def test_list_keys_json_secrets_are_null_unless_asked(app: Flask) -> None:
    web, other = make_project(app), make_project(app, "Other")
    get_state(app).storage.set_key_rate_limit(other["publicKey"], RateLimit(5, 1))

    code, output = invoke(app, "list-keys", "--json")
    assert code == 0, output
    for record in (web, other):
        assert record["secretKey"] not in output
    records = json.loads(output)
    assert [r["publicKey"] for r in records] == [web["publicKey"], other["publicKey"]]
    assert [r["secretKey"] for r in records] == [None, None]
    assert records[0] == {
        "publicKey": web["publicKey"],
        "secretKey": None,
        "project": web["id"],
        "slug": "web",
        "roles": ["store", "api"],
        "isActive": True,
        "label": None,
        "rateLimit": None,
        "dsn": web["dsn"],
        "dateCreated": records[0]["dateCreated"],
    }
    assert records[1]["rateLimit"] == {"count": 5, "window": 1}

    code, output = invoke(app, "list-keys", "--json", "--show-secrets", "--project", other["id"])
    assert code == 0, output
    records = json.loads(output)
    assert [(r["publicKey"], r["secretKey"]) for r in records] == [
        (other["publicKey"], other["secretKey"])
    ]


def test_list_keys_usage_errors(app: Flask) -> None:
    code, output = invoke(app, "list-keys", "--project", "42")
    assert code == 2 and "no project with id 42" in output
    code, output = invoke(app, "list-keys", "--url", "errors.example.com")
    assert code == 2 and "not an http(s) URL" in output
    assert invoke(app, "list-keys", "--project", "web")[0] == 2
    make_project(app)
    code, output = invoke(app, "list-keys", "--project", "1", "--json")
    assert code == 0 and len(json.loads(output)) == 1


def test_enable_key(app: Flask) -> None:
    record = make_project(app)
    storage = get_state(app).storage
    key = storage.get_key(record["publicKey"])
    url = f"/api/0/projects/{record['id']}/"
    client = app.test_client()
    assert invoke(app, "disable-key", record["publicKey"])[0] == 0
    assert client.get(url, headers=basic_auth(key)).status_code == 401

    code, output = invoke(app, "enable-key", record["publicKey"])
    assert code == 0, output
    assert output.strip() == f"Key {record['publicKey']} is enabled."
    assert storage.get_key(record["publicKey"]).is_active is True
    assert client.get(url, headers=basic_auth(key)).status_code == 200
    assert invoke(app, "enable-key", record["publicKey"])[0] == 0  # already enabled: fine

    code, output = invoke(app, "enable-key", "f" * 32)
    assert code == 2 and "no such key" in output


def test_delete_key(app: Flask) -> None:
    record = make_project(app)
    kept = json.loads(invoke(app, "create-key", record["id"], "--json")[1])
    storage = get_state(app).storage
    key = storage.get_key(record["publicKey"])
    url = f"/api/0/projects/{record['id']}/"
    client = app.test_client()
    assert client.get(url, headers=basic_auth(key)).status_code == 200

    code, output = invoke(app, "delete-key", record["publicKey"])
    assert code == 0, output
    assert output.strip() == f"Key {record['publicKey']} is deleted."
    assert storage.get_key(record["publicKey"]) is None
    response = client.get(url, headers=basic_auth(key))
    assert response.status_code == 401
    assert (
        client.get(url, headers=basic_auth(storage.get_key(kept["publicKey"]))).status_code == 200
    )
    listed = json.loads(invoke(app, "list-keys", "--json")[1])
    assert [r["publicKey"] for r in listed] == [kept["publicKey"]]

    code, output = invoke(app, "delete-key", record["publicKey"])
    assert code == 2 and "no such key" in output
    assert invoke(app, "enable-key", record["publicKey"])[0] == 2
