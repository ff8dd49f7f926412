"""Real, unmodified SDKs against a real HTTP server on 127.0.0.1: sentry-sdk 2.x (brotli and
gzip transports) posting envelopes, raven 6.10 posting to store; everything is read back
through ``/api/0/`` over HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import typing as t
import uuid
from pathlib import Path

import pytest
import raven
import requests
import sentry_sdk
from flask import Flask
from flask import Response
from flask import request
from raven.transport.http import HTTPTransport

from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from tests.helpers import LiveServer

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parent.parent
HERE = __name__  # the module sentry-sdk and raven name in culprits


class DemoError(Exception):
    pass


def divide(a: int, b: int) -> float:
    return a / b


def lookup(table: dict[str, int], name: str) -> int:
    return table[name]


def checkout(cart: str) -> None:
    raise DemoError(f"cannot check out {cart}")


class Live:
    """The server, the project's key, and what the server saw of the SDKs' requests."""

    def __init__(self, url: str, project: Project, key: ProjectKey) -> None:
        self.url, self.project, self.key = url, project, key
        self.encodings: list[str | None] = []
        self.statuses: list[int] = []
        host_port = url.removeprefix("http://")
        self.dsn = f"http://{key.public_key}@{host_port}/{project.id}"
        self.raven_dsn = f"http://{key.public_key}:{key.secret_key}@{host_port}/{project.id}"

    def api(self, method: str, path: str, **kwargs: t.Any) -> t.Any:
        response = requests.request(
            method,
            f"{self.url}/api/0{path}",
            auth=(self.key.public_key, self.key.secret_key),
            timeout=10,
            **kwargs,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def groups(self, query: str = "") -> dict[str, dict[str, t.Any]]:
        """The project's groups by title (query ``""``: every status)."""
        found = self.api("GET", f"/projects/{self.project.id}/groups/", params={"query": query})
        by_title = {group["title"]: group for group in found}
        assert len(by_title) == len(found), [g["title"] for g in found]
        return by_title

    def latest(self, group: dict[str, t.Any]) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], self.api("GET", f"/groups/{group['id']}/events/latest/"))

    def tags(self, group: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
        return {tag["key"]: tag for tag in self.api("GET", f"/groups/{group['id']}/tags/")}

    def resolve(self, group: dict[str, t.Any]) -> None:
        body = self.api("PUT", f"/groups/{group['id']}/", json={"status": "resolved"})
        assert body["status"] == "resolved"


@pytest.fixture
def live(app: Flask, project: Project, key: ProjectKey) -> t.Iterator[Live]:
    app.config["SERVER_NAME"] = None
    with LiveServer(app) as server:
        live = Live(server.url, project, key)

        @app.after_request
        def record(response: Response) -> Response:
            if (request.endpoint or "").startswith("sentry_api_ingest."):
                live.encodings.append(request.headers.get("Content-Encoding"))
                live.statuses.append(response.status_code)
            return response

        yield live


@contextlib.contextmanager
def sentry_sdk_client(dsn: str, **options: t.Any) -> t.Iterator[None]:
    """``sentry_sdk.init`` for one test, in its own scope; flushed and closed at the end."""
    sentry_sdk.init(dsn=dsn, default_integrations=False, send_client_reports=False, **options)
    try:
        with sentry_sdk.isolation_scope():
            yield
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close()


def raven_client(dsn: str, **options: t.Any) -> raven.Client:
    # raven's default transport is threaded: the synchronous one posts before returning, and
    # raise_send_errors turns a rejected event into an exception here.
    return raven.Client(
        dsn,
        install_sys_hook=False,
        install_logging_hook=False,
        transport=HTTPTransport,
        raise_send_errors=True,
        **options,
    )


TRANSPORTS = {
    "br": {},  # sentry-sdk's default whenever the brotli module is importable
    "gzip": {"_experiments": {"transport_compression_algo": "gzip"}},
}


@pytest.mark.parametrize("encoding", list(TRANSPORTS))
def test_sentry_sdk_errors_and_messages(live: Live, encoding: str) -> None:
    ids: dict[str, str | None] = {}
    with sentry_sdk_client(
        live.dsn, release="shop@1.0", environment="prod", **TRANSPORTS[encoding]
    ):
        assert sentry_sdk.get_client().transport._compression_algo == encoding  # type: ignore[union-attr]
        for user in ("alice", "bob"):  # the same bug, reached twice by two users
            sentry_sdk.set_user({"id": user})
            try:
                divide(1, 0)
            except ZeroDivisionError:
                ids["zero"] = sentry_sdk.capture_exception()
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("feature", "cart")
            try:
                lookup({}, "missing")
            except KeyError:
                ids["key"] = sentry_sdk.capture_exception()
        ids["message"] = sentry_sdk.capture_message("Disk almost full", level="warning")

    assert live.encodings == [encoding] * 4 and live.statuses == [200] * 4
    groups = live.groups()
    assert set(groups) == {
        "ZeroDivisionError: division by zero",
        "KeyError: 'missing'",
        "Disk almost full",
    }

    zero = groups["ZeroDivisionError: division by zero"]
    assert (zero["count"], zero["userCount"], zero["level"]) == ("2", 2, "error")
    assert zero["culprit"] == f"{HERE} in divide"
    assert zero["metadata"] == {"type": "ZeroDivisionError", "value": "division by zero"}
    assert (zero["type"], zero["status"]) == ("error", "unresolved")
    latest = live.latest(zero)
    assert latest["eventID"] == ids["zero"]
    assert (latest["user"]["id"], latest["release"], latest["environment"]) == (
        "bob",
        "shop@1.0",
        "prod",
    )
    assert latest["sdk"]["name"] == "sentry.python"
    [exception] = [e for e in latest["entries"] if e["type"] == "exception"]
    assert exception["data"]["values"][0]["stacktrace"]["frames"][-1]["function"] == "divide"
    assert live.tags(zero)["user"]["uniqueValues"] == 2

    key_error = groups["KeyError: 'missing'"]
    assert (key_error["count"], key_error["userCount"], key_error["culprit"]) == (
        "1",
        1,
        f"{HERE} in lookup",
    )
    assert {"key": "feature", "value": "cart"} in live.latest(key_error)["tags"]
    assert list(live.groups("feature:cart")) == ["KeyError: 'missing'"]

    message = groups["Disk almost full"]
    assert (message["level"], message["type"], message["count"]) == ("warning", "default", "1")
    assert live.latest(message)["eventID"] == ids["message"]

    assert set(live.groups("release:shop@1.0")) == set(groups)
    release = live.api("GET", f"/projects/{live.project.id}/releases/shop@1.0/")
    assert (release["version"], release["newGroups"]) == ("shop@1.0", 3)


def test_sentry_sdk_without_brotli_sends_gzip(live: Live) -> None:
    # A fresh interpreter where `import brotli` fails: the SDK falls back to gzip by itself.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["brotli"] = None
        import sentry_sdk
        sentry_sdk.init(dsn=sys.argv[1], default_integrations=False, send_client_reports=False)
        sentry_sdk.capture_message("Sent without brotli")
        sentry_sdk.flush(timeout=10)
        sentry_sdk.get_client().close()
        """
    )
    subprocess.run([sys.executable, "-c", script, live.dsn], check=True, timeout=60, cwd=ROOT)
    assert (live.encodings, live.statuses) == (["gzip"], [200])
    assert live.groups()["Sent without brotli"]["count"] == "1"


def test_sentry_sdk_regression_fingerprints_and_duplicates(live: Live) -> None:
    def fail(cart: str, *, fingerprint: list[str] | None = None, level: str | None = None) -> None:
        with sentry_sdk.new_scope() as scope:
            if fingerprint:
                scope.fingerprint = fingerprint
            if level:
                scope.set_level(level)
            try:
                checkout(cart)
            except DemoError:
                sentry_sdk.capture_exception()

    event_id = uuid.uuid4().hex
    with sentry_sdk_client(live.dsn):
        fail("cart-1")
        fail("cart-2")  # another value, same place: same group
        fail("cart-3", fingerprint=["{{ default }}", "tenant-a"])
        fail("cart-4", fingerprint=["{{ default }}", "tenant-a"], level="fatal")
        fail("cart-5", fingerprint=["{{ default }}", "tenant-b"])
        for _ in range(2):  # an SDK retry: the same event_id twice
            sentry_sdk.capture_event({"event_id": event_id, "message": "Retried", "level": "info"})
    assert live.statuses == [200] * 7

    groups = live.api("GET", f"/projects/{live.project.id}/groups/", params={"query": "DemoError"})
    by_count = sorted((g["count"], g["level"], g["title"]) for g in groups)
    assert by_count == [
        ("1", "error", "DemoError: cannot check out cart-5"),
        ("2", "error", "DemoError: cannot check out cart-1"),
        ("2", "fatal", "DemoError: cannot check out cart-3"),
    ]
    assert {g["culprit"] for g in groups} == {f"{HERE} in checkout"}
    retried = live.groups()["Retried"]
    assert retried["count"] == "1"
    events = live.api("GET", f"/groups/{retried['id']}/events/")
    assert [e["eventID"] for e in events] == [event_id]

    plain = next(g for g in groups if g["count"] == "2" and g["level"] == "error")
    live.resolve(plain)
    assert plain["id"] not in {g["id"] for g in live.groups("is:unresolved").values()}
    with sentry_sdk_client(live.dsn):
        fail("cart-6")
    again = live.api("GET", f"/groups/{plain['id']}/")
    assert (again["status"], again["count"]) == ("unresolved", "3")


def test_raven(live: Live) -> None:
    client = raven_client(live.raven_dsn, release="shop@2.0", environment="staging")
    for user in ("carol", "dave", "carol"):
        # raven skips an exception whose id() it has seen (ids get reused): forget them.
        client.context.clear()
        client.user_context({"id": user, "email": f"{user}@example.com"})
        try:
            lookup({"a": 1}, "b")
        except KeyError:
            client.captureException()
    client.context.clear()
    client.tags_context({"feature": "search"})
    assert client.captureMessage("Search index is stale", level="warning")
    client.context.clear()
    retry = uuid.uuid4().hex
    for _ in range(2):
        client.captureMessage("Sent twice by raven", data={"event_id": retry})
    client.context.clear()

    assert live.encodings == ["deflate"] * 6 and live.statuses == [200] * 6
    groups = live.groups()
    assert set(groups) == {"KeyError: 'b'", "Search index is stale", "Sent twice by raven"}
    key_error = groups["KeyError: 'b'"]
    assert (key_error["count"], key_error["userCount"]) == ("3", 2)
    assert (key_error["culprit"], key_error["level"]) == (f"{HERE} in lookup", "error")
    latest = live.latest(key_error)
    assert (latest["user"]["id"], latest["release"], latest["environment"]) == (
        "carol",
        "shop@2.0",
        "staging",
    )
    assert latest["sdk"]["name"] == "raven-python"

    stale = groups["Search index is stale"]
    assert (stale["level"], stale["count"], stale["userCount"]) == ("warning", "1", 0)
    assert {"key": "feature", "value": "search"} in live.latest(stale)["tags"]
    assert list(live.groups("feature:search")) == ["Search index is stale"]
    assert groups["Sent twice by raven"]["count"] == "1"

    live.resolve(key_error)
    client.context.clear()
    try:
        lookup({}, "b")
    except KeyError:
        client.captureException()
    again = live.api("GET", f"/groups/{key_error['id']}/")
    assert (again["status"], again["count"]) == ("unresolved", "4")


def test_raven_and_sentry_sdk_group_one_bug_together(live: Live) -> None:
    client = raven_client(live.raven_dsn)
    try:
        divide(2, 0)
    except ZeroDivisionError as exc:
        error = exc
    with sentry_sdk_client(live.dsn):
        sentry_sdk.capture_exception(error)
    # Sent after the flush: the fixture's in-memory database takes one request at a time.
    client.captureException((type(error), error, error.__traceback__))
    assert sorted(live.encodings) == ["br", "deflate"] and live.statuses == [200, 200]
    [group] = live.groups().values()
    assert (group["count"], group["culprit"]) == ("2", f"{HERE} in divide")


def test_error_header_with_odd_text_reaches_the_client(live: Live) -> None:
    # Used to crash the response (non-Latin-1 header) and leave the client waiting.
    path = (
        f"/api/{live.project.id}/store/?sentry_key={live.key.public_key}&sentry_version=%E2%82%AC"
    )
    response = requests.post(live.url + path, data=b"{}", timeout=10)
    assert response.status_code == 400
    assert response.headers["X-Sentry-Error"] == response.json()["detail"]
    assert "\\u20ac" in response.json()["detail"]


# -- the demo script (example_app/demo_errors.py) ----------------------------------------


def run_demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "example_app.demo_errors", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_demo_groups(groups: dict[str, dict[str, t.Any]]) -> None:
    assert set(groups) == {
        "ZeroDivisionError: division by zero",
        "KeyError: 'pear'",
        "CheckoutError: payment provider refused cart 1",
        "Demo: disk almost full",
    }
    checkout_group = groups["CheckoutError: payment provider refused cart 1"]
    assert (checkout_group["count"], checkout_group["userCount"]) == ("2", 1)
    assert checkout_group["culprit"] == "__main__ in checkout"  # run with -m
    assert groups["KeyError: 'pear'"]["culprit"] == "__main__ in price_of"
    assert groups["Demo: disk almost full"]["level"] == "warning"


def test_demo_script_with_dsn(live: Live) -> None:
    done = run_demo("--dsn", live.dsn)
    assert done.returncode == 0, done.stderr
    groups_url = f"{live.url}/api/0/projects/{live.project.id}/groups/"
    assert f"curl -u {live.key.public_key}:SECRET {groups_url}" in done.stdout
    assert live.statuses == [200] * 5
    check_demo_groups(live.groups())


def test_demo_script_finds_the_dsn_in_the_example_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from example_app import create_app

    database = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("DATABASE_URL", database)
    app = create_app()  # first start: creates project 1 and its key
    try:
        with LiveServer(app) as server:
            done = run_demo(DATABASE_URL=database, EXAMPLE_BASE_URL=server.url)
            assert done.returncode == 0, done.stderr
            match = re.search(r"curl -u ([0-9a-f]{32}):([0-9a-f]{32}) (\S+)", done.stdout)
            assert match, done.stdout
            public, secret, url = match.groups()
            assert url == f"{server.url}/api/0/projects/1/groups/"
            found = requests.get(url, auth=(public, secret), params={"query": ""}, timeout=10)
            assert found.status_code == 200
            check_demo_groups({group["title"]: group for group in found.json()})
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


def test_demo_script_without_any_dsn_says_how_to_get_one(tmp_path: Path) -> None:
    done = run_demo(
        DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}",
        FLASK_EXAMPLE_CREATE_DEMO_PROJECT="false",
    )
    assert done.returncode == 2
    assert "pass --dsn or set SENTRY_DSN" in done.stderr
    assert "flask --app example_app sentry-api create-key 1" in done.stderr


def test_demo_script_reports_a_server_that_is_not_there(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_demo("--dsn", f"http://{'a' * 32}@127.0.0.1:{port}/1")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"Cannot reach the server at http://127.0.0.1:{port} (")
    assert len(done.stderr.strip().splitlines()) == 1


def test_demo_script_with_url_checks_every_event_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from example_app import create_app

    database = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("DATABASE_URL", database)
    app = create_app()
    try:
        with LiveServer(app) as server:
            done = run_demo("--url", server.url, DATABASE_URL=database)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Stored 5 events at {server.url} (project 1).")
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
