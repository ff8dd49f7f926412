"""The ``flask sentry-api`` commands, through Flask's CLI runner."""

from __future__ import annotations

import json
import re

from flask import Flask

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
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


def test_commands_create_tables_themselves() -> None:
    app = make_app()
    with app.app_context():
        app.extensions["sqlalchemy"].drop_all()
    code, output = invoke(app, "create-project", "Fresh", "--json")
    assert code == 0, output
    assert json.loads(output)["id"] == "1"
