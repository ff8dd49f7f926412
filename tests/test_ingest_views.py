"""The ingestion endpoints through the Flask test client, with hand-made bodies: every body
encoding and envelope framing, every rejection (a clear 4xx ``{"detail"}`` repeated in
``X-Sentry-Error``, and nothing stored), what an event does to its group, and CORS."""

from __future__ import annotations

import base64
import gzip
import json
import time
import typing as t
import zlib
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import brotli
import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from tests.helpers import MB
from tests.helpers import basic_auth
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import event_payload
from tests.helpers import make_app
from tests.helpers import near_misses
from tests.helpers import sentry_auth
from tests.helpers import zero_bomb

Event = dict[str, t.Any]
ENCODERS: dict[str | None, t.Callable[[bytes], bytes]] = {
    None: lambda data: data,
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # a zlib stream labelled deflate, as raven sends
    "br": brotli.compress,
}


def assert_error(response: TestResponse, status: int, fragment: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.json
    assert isinstance(body, dict) and list(body) == ["detail"]
    assert fragment in body["detail"]
    assert response.headers["X-Sentry-Error"] == body["detail"]


class Ingest:
    """A test client, a project and its key (store + api roles)."""

    def __init__(self, app: Flask, project: Project, key: ProjectKey) -> None:
        self.app, self.client, self.project, self.key = app, app.test_client(), project, key
        self.auth = basic_auth(key)

    def post(
        self,
        body: bytes,
        headers: dict[str, str] | None = None,
        kind: str = "store",
        encoding: str | None = None,
    ) -> TestResponse:
        headers = sentry_auth(self.key) if headers is None else headers
        if encoding:
            headers = {**headers, "Content-Encoding": encoding}
        return self.client.post(f"/api/{self.project.id}/{kind}/", data=body, headers=headers)

    def store(self, event: Event) -> str:
        response = self.post(json.dumps(event).encode())
        assert response.status_code == 200, response.json
        return t.cast(str, response.json["id"])

    def get(self, path: str, **params: str) -> t.Any:
        response = self.client.get(f"/api/0{path}", headers=self.auth, query_string=params)
        assert response.status_code == 200, response.json
        return response.json

    def groups(self, query: str = "") -> list[t.Any]:
        return t.cast(list[t.Any], self.get(f"/projects/{self.project.id}/groups/", query=query))

    def titles(self, query: str = "") -> list[str]:
        return [group["title"] for group in self.groups(query)]


@pytest.fixture
def ingest(app: Flask, project: Project, key: ProjectKey) -> Ingest:
    return Ingest(app, project, key)


# -- accepted bodies ---------------------------------------------------------------------

# fmt: off
BODIES: dict[str, tuple[str | None, t.Callable[[bytes], bytes]]] = {
    "json": (None, ENCODERS[None]),
    "gzip": ("gzip", ENCODERS["gzip"]),
    "deflate-zlib (raven)": ("deflate", ENCODERS["deflate"]),
    "deflate-raw": ("deflate", lambda d: zlib.compress(d)[2:-4]),  # no zlib header/trailer
    "br": ("br", ENCODERS["br"]),
    "base64": (None, base64.b64encode),
    "base64-zlib (old raven)": (None, lambda d: base64.b64encode(zlib.compress(d))),
    "gzip of base64-zlib": ("gzip", lambda d: gzip.compress(base64.b64encode(zlib.compress(d)))),
}
# fmt: on


@pytest.mark.parametrize("name", list(BODIES))
def test_store_decodes_every_body(ingest: Ingest, name: str) -> None:
    encoding, encode = BODIES[name]
    event = event_payload(f"Body sent as {name}")
    headers = sentry_auth(ingest.key, version="6", secret=ingest.key.secret_key)
    response = ingest.post(encode(json.dumps(event).encode()), headers, encoding=encoding)
    assert response.status_code == 200, response.json
    assert response.json == {"id": event["event_id"]}
    assert ingest.titles() == [f"Body sent as {name}"]


@pytest.mark.parametrize("length", [True, False], ids=["length-delimited", "newline-delimited"])
@pytest.mark.parametrize("encoding", [None, "gzip", "br"])
def test_envelope_stores_its_event_and_ignores_other_items(
    ingest: Ingest, length: bool, encoding: str | None
) -> None:
    event = event_payload("From an envelope")
    items = [({"type": "client_report"}, b'{"discarded_events": []}'), event_item(event)]
    if length:  # only a length lets a payload hold newlines
        items.insert(0, ({"type": "attachment", "filename": "a.txt"}, b"line 1\nline 2\n"))
    body = ENCODERS[encoding](envelope(*items, length=length))
    response = ingest.post(body, kind="envelope", encoding=encoding)
    assert response.status_code == 200, response.json
    assert response.json == {"id": event["event_id"]}
    assert ingest.titles() == ["From an envelope"]


def test_envelope_without_event_is_accepted_and_stores_nothing(ingest: Ingest) -> None:
    body = envelope(
        ({"type": "session"}, b'{"sid": "x", "status": "ok"}'),
        ({"type": "transaction"}, json.dumps(event_payload(type="transaction")).encode()),
    )
    response = ingest.post(body, kind="envelope")
    assert response.status_code == 200 and response.json == {}
    assert ingest.groups() == []


@pytest.mark.parametrize(
    "where", ["x-sentry-auth", "authorization", "query", "query+version", "secret", "v2.0"]
)
def test_credentials_are_read_from_every_place(ingest: Ingest, where: str) -> None:
    key = ingest.key
    path, headers = f"/api/{ingest.project.id}/store", {}  # no trailing slash: served the same
    if where in ("x-sentry-auth", "authorization"):
        headers = {where.title(): sentry_auth(key)["X-Sentry-Auth"]}
    elif where.startswith("query"):
        path += f"?sentry_key={key.public_key}" + ("&sentry_version=7" if "+" in where else "")
    else:
        headers = (
            sentry_auth(key, version="6", secret=key.secret_key)
            if where == "secret"
            else sentry_auth(key, version="2.0")
        )
    response = ingest.client.post(path, data=json.dumps(event_payload(where)), headers=headers)
    assert response.status_code == 200, response.json
    assert ingest.titles() == [where]


# -- rejections --------------------------------------------------------------------------

EVENT = json.dumps(event_payload("Never stored")).encode()
GZ = gzip.compress(EVENT, mtime=0)  # no timestamp: the same test ids in every xdist worker

# fmt: off
AUTH_CASES = {  # name: (which key and how it is sent, status, fragment of the detail)
    "no credentials": ("none", 401, "Missing authentication"),
    "basic auth only": ("basic", 401, "Missing authentication"),
    "unknown key": ("unknown", 401, "Invalid api key"),
    "malformed key": ("malformed", 401, "Invalid api key"),
    "wrong secret": ("wrong-secret", 401, "Invalid api key"),
    "another project's key": ("other", 403, "Project ID mismatch"),
    "key without store role": ("api-only", 403, "does not allow event storage"),
    "disabled key": ("disabled", 401, "API key is disabled"),
    "unknown version": ("version-8", 400, 'Unsupported protocol version "8"'),
    "no version": ("no-version", 400, "Missing sentry_version"),
}
# fmt: on


def credentials(ingest: Ingest, case: str) -> dict[str, str]:
    storage, project, key = get_state(ingest.app).storage, ingest.project, ingest.key
    if case in ("other", "api-only", "disabled"):
        owner = storage.create_project("Other").id if case == "other" else project.id
        made = storage.create_key(owner, ROLE_API if case == "api-only" else ROLE_STORE)
        if case == "disabled":
            storage.set_key_active(made.public_key, False)
        return sentry_auth(made)
    return {
        "none": {},
        "basic": basic_auth(key),
        "unknown": sentry_auth("a" * 32),
        "malformed": sentry_auth("nope"),
        "wrong-secret": sentry_auth(key, version="6", secret="0" * 32),
        "version-8": sentry_auth(key, version="8"),
        "no-version": {"X-Sentry-Auth": f"Sentry sentry_key={key.public_key}"},
    }[case]


@pytest.mark.parametrize("name", list(AUTH_CASES))
@pytest.mark.parametrize("kind", ["store", "envelope"])
def test_bad_credentials(ingest: Ingest, name: str, kind: str) -> None:
    case, status, detail = AUTH_CASES[name]
    body = envelope(event_item(json.loads(EVENT))) if kind == "envelope" else EVENT
    response = ingest.post(body, credentials(ingest, case), kind=kind)
    assert_error(response, status, detail)
    assert "WWW-Authenticate" not in response.headers  # SDKs do not speak Basic auth
    assert ingest.groups() == []


@pytest.mark.parametrize("where", ["x-sentry-auth", "authorization", "query"])
@pytest.mark.parametrize("kind", ["store", "envelope"])
def test_secret_one_character_off_is_refused(ingest: Ingest, kind: str, where: str) -> None:
    """A secret is compared whole: one of the same length that differs only in its last (or
    first, or middle) character is refused like any wrong one."""
    key = ingest.key

    def send(secret: str) -> TestResponse:
        body = envelope(event_item(json.loads(EVENT))) if kind == "envelope" else EVENT
        path = f"/api/{ingest.project.id}/{kind}/"
        if where == "query":
            query = {"sentry_key": key.public_key, "sentry_version": "7", "sentry_secret": secret}
            return ingest.client.post(path, data=body, query_string=query)
        header = sentry_auth(key, secret=secret)["X-Sentry-Auth"]
        return ingest.client.post(path, data=body, headers={where.title(): header})

    for secret in near_misses(key.secret_key).values():
        assert len(secret) == len(key.secret_key) and secret != key.secret_key
        assert_error(send(secret), 401, "Invalid api key")
    assert ingest.groups() == []
    # Control: the key's own secret, sent the same way, is accepted.
    assert send(key.secret_key).status_code == 200
    assert len(ingest.groups()) == 1


# fmt: off
BODY_CASES = {  # name: (endpoint, body, Content-Encoding, status, fragment of the detail)
    "invalid JSON": ("store", b'{"message": "x",', None, 400, "malformed JSON"),
    "JSON array": ("store", b"[1, 2]", None, 400, "expected a JSON object"),
    "empty body": ("store", b"", None, 400, "empty"),
    "truncated gzip": ("store", GZ[: len(GZ) // 2], "gzip", 400, "truncated"),
    "gzip garbage": ("store", b"\x1f\x8bnot gzip", "gzip", 400, "Bad data decoding request"),
    "bad base64": ("store", b"eJzLSM3J!!!yVcrPL8pJAQA=", None, 400, "malformed JSON"),
    "base64 of text": ("store", base64.b64encode(b"hello there"), None, 400, "malformed JSON"),
    "truncated b64-zlib": ("store", base64.b64encode(zlib.compress(EVENT)[:-6]), None, 400,
                           "truncated"),
    "unknown encoding": ("store", EVENT, "compress", 415, 'Content-Encoding "compress"'),
    "bad event_id": ("store", b'{"event_id": "42", "message": "x"}', None, 400, "event_id"),
    "bad exception": ("store", b'{"exception": {"values": [1]}}', None, 400, "exception"),
    "length too long": ("envelope", b'{}\n{"type":"event","length":99}\n{}\n', None, 400,
                        "past the end"),
    "length too short": ("envelope", b'{}\n{"type":"event","length":3}\n{"message":"x"}\n',
                         None, 400, "length mismatch"),
    "length not a number": ("envelope", b'{}\n{"type":"event","length":"2"}\n{}\n', None, 400,
                            "non-negative integer"),
    "envelope header": ("envelope", b'nope\n{"type":"event"}\n{}\n', None, 400, "envelope header"),
    "item without type": ("envelope", b'{}\n{"length":2}\n{}\n', None, 400, "string type"),
    "event not JSON": ("envelope", b'{}\n{"type":"event"}\n{"message":\n', None, 400,
                       "Invalid event"),
    "empty envelope": ("envelope", b"", None, 400, "empty"),
}
# fmt: on


@pytest.mark.parametrize("name", list(BODY_CASES))
def test_bad_bodies(ingest: Ingest, name: str) -> None:
    kind, body, encoding, status, detail = BODY_CASES[name]
    assert_error(ingest.post(body, kind=kind, encoding=encoding), status, detail)
    assert ingest.groups() == []


@pytest.mark.parametrize(("version", "shown"), [("%0A7", "\\n7"), ("%E2%82%AC", "\\u20ac")])
def test_odd_versions_are_escaped_in_the_error_header(
    ingest: Ingest, version: str, shown: str
) -> None:
    # A newline or non-Latin-1 text echoed into X-Sentry-Error used to crash the response.
    query = f"?sentry_key={ingest.key.public_key}&sentry_version={version}"
    response = ingest.client.post(f"/api/{ingest.project.id}/store/{query}", data=EVENT)
    assert_error(response, 400, f'Unsupported protocol version "{shown}"')
    assert response.headers["X-Sentry-Error"].isascii()


def test_other_methods_get_a_json_405(ingest: Ingest) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = ingest.client.open(f"/api/{ingest.project.id}/envelope/", method=method)
        assert_error(response, 405, f'Method "{method}" not allowed.')
        assert response.headers["Allow"] == "POST, OPTIONS"


def test_oversized_body_is_413() -> None:
    app = make_app({"SENTRY_API_MAX_EVENT_SIZE": 1000})
    try:
        with app.app_context():
            storage = get_state(app).storage
            project = storage.create_project("Small")
            small = Ingest(app, project, storage.create_key(project.id, ROLE_STORE | ROLE_API))
        fits = json.dumps(event_payload("fits")).encode()
        assert len(fits) < 900 and small.post(fits).status_code == 200
        big = json.dumps(event_payload("too big", extra={"pad": "x" * 1000})).encode()
        for kind, body in (("store", big), ("envelope", envelope(event_item(json.loads(big))))):
            assert_error(small.post(body, kind=kind), 413, "larger than 1000 bytes")
        assert small.titles() == ["fits"]
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].drop_all()
            app.extensions["sqlalchemy"].engine.dispose()


def test_zero_bomb_is_a_valid_stream() -> None:
    assert gzip.decompress(zero_bomb(31, 3)) == bytes(3 * MB)
    assert zlib.decompress(zero_bomb(15, 3)) == bytes(3 * MB)


BOMBS = {
    # ~520 KB of gzip inflating to 512 MiB (the body itself is under the 1 MiB bound).
    "gzip 512 MiB": ("envelope", lambda: zero_bomb(31, 512)),
    # ~20 KB of gzip inflating to 5.6 MB of base64 text, whose zlib data inflates to 4 GiB.
    "gzip of base64-zlib 4 GiB": (
        "store",
        lambda: gzip.compress(base64.b64encode(zero_bomb(15, 4096))),
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_zip_bomb_is_413(ingest: Ingest, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    kind, build = BOMBS[name]
    bomb = build()
    assert len(bomb) < 600_000
    started = time.perf_counter()
    response = ingest.post(bomb, kind=kind, encoding="gzip")
    elapsed = time.perf_counter() - started
    assert_error(response, 413, f"larger than {20 * MB} bytes")
    assert ingest.groups() == []
    with capsys.disabled():
        print(f"\n{name}: {len(bomb)} bytes sent, refused in {elapsed:.2f}s")


# -- what events do to groups ------------------------------------------------------------

BASE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def minutes_in(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def exception(function: str, value: str = "bad input") -> dict[str, t.Any]:
    frame = {
        "module": "shop.cart",
        "function": function,
        "filename": "shop/cart.py",
        "in_app": True,
    }
    return {"values": [{"type": "ValueError", "value": value, "stacktrace": {"frames": [frame]}}]}


def test_same_event_id_twice_is_stored_once(ingest: Ingest) -> None:
    event = event_payload("Sent twice")
    assert ingest.store(event) == event["event_id"]
    response = ingest.post(envelope(event_item(event)), kind="envelope")
    assert response.status_code == 200 and response.json == {"id": event["event_id"]}
    [group] = ingest.groups()
    assert group["count"] == "1"
    events = ingest.get(f"/groups/{group['id']}/events/")
    assert [e["eventID"] for e in events] == [event["event_id"]]


def test_events_update_their_group(ingest: Ingest) -> None:
    def send(function: str, level: str, minutes: int) -> tuple[str, str, str, str, str]:
        ingest.store(
            event_payload(
                exception=exception(function),
                level=level,
                timestamp=minutes_in(minutes),
                fingerprint=["x"],
            )
        )
        [g] = ingest.groups()
        return g["level"], g["culprit"], g["count"], g["firstSeen"], g["lastSeen"]

    assert send("add", "warning", 0) == (
        "warning",
        "shop.cart in add",
        "1",
        minutes_in(0),
        minutes_in(0),
    )
    assert ingest.titles() == ["ValueError: bad input"]
    assert send("remove", "fatal", 10) == (
        "fatal",
        "shop.cart in remove",
        "2",
        minutes_in(0),
        minutes_in(10),
    )
    # An older event is counted but does not move lastSeen, level or culprit back.
    assert send("old", "debug", 5) == (
        "fatal",
        "shop.cart in remove",
        "3",
        minutes_in(0),
        minutes_in(10),
    )


def test_new_event_reopens_a_resolved_group(ingest: Ingest) -> None:
    ingest.store(event_payload("Flaky job failed"))
    [group] = ingest.groups()
    path = f"/api/0/groups/{group['id']}/"
    response = ingest.client.put(path, json={"status": "resolved"}, headers=ingest.auth)
    assert response.status_code == 200 and response.json["status"] == "resolved"
    assert ingest.groups("is:unresolved") == []
    ingest.store(event_payload("Flaky job failed"))
    [group] = ingest.groups("is:unresolved")
    assert (group["status"], group["count"]) == ("unresolved", "2")


def test_tags_users_and_release(ingest: Ingest) -> None:
    for user, browser in (("1", "Firefox"), ("2", "Chrome"), ("1", "Firefox")):
        ingest.store(
            event_payload(
                "Tagged",
                user={"id": user},
                tags={"browser": browser},
                release="shop@2.0",
                environment="prod",
            )
        )
    [group] = ingest.groups()
    assert (group["count"], group["userCount"]) == ("3", 2)
    for query in ("browser:Chrome", "release:shop@2.0", "environment:prod", "user:id:2"):
        assert [g["id"] for g in ingest.groups(query)] == [group["id"]], query
    assert ingest.groups("browser:Safari") == []
    tags = {tag["key"]: tag for tag in ingest.get(f"/groups/{group['id']}/tags/")}
    top = {value["value"]: value["count"] for value in tags["browser"]["topValues"]}
    assert top == {"Firefox": 2, "Chrome": 1}
    assert tags["user"]["uniqueValues"] == 2
    release = ingest.get(f"/projects/{ingest.project.id}/releases/shop@2.0/")
    assert (release["version"], release["newGroups"]) == ("shop@2.0", 1)


def test_fingerprints(ingest: Ingest) -> None:
    def group_of(**fields: t.Any) -> str:
        event_id = ingest.store(event_payload(**{"exception": exception("pay"), **fields}))
        for group in ingest.groups():
            if ingest.get(f"/groups/{group['id']}/events/latest/")["eventID"] == event_id:
                return t.cast(str, group["id"])
        raise AssertionError(event_id)

    default = group_of()
    assert group_of(fingerprint=["{{ default }}"]) == default
    tenant_a = group_of(fingerprint=["{{ default }}", "tenant-a"])
    tenant_b = group_of(fingerprint=["{{default}}", "tenant-b"])
    assert len({default, tenant_a, tenant_b}) == 3
    other_value = exception("pay", "other value")
    assert group_of(fingerprint=["{{ default }}", "tenant-a"], exception=other_value) == tenant_a
    custom = group_of(fingerprint=["payments"])
    assert group_of(fingerprint=["payments"], exception=exception("refund")) == custom
    assert custom not in {default, tenant_a, tenant_b}


# -- CORS --------------------------------------------------------------------------------

ORIGIN = "https://shop.example"


def test_preflight(ingest: Ingest) -> None:
    response = ingest.client.options(
        f"/api/{ingest.project.id}/envelope/?sentry_key=abc",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower().replace(" ", "").split(",")
    assert {"content-type", "x-sentry-auth", "content-encoding"} <= set(allowed)
    assert "X-Sentry-Error" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_browser_post_with_origin(ingest: Ingest) -> None:
    project = get_state(ingest.app).storage.get_project(ingest.project.id)
    assert project is not None and project.allowed_origins == ("*",)  # the default
    path = f"/api/{project.id}/store/?sentry_key={ingest.key.public_key}&sentry_version=7"
    event = json.dumps(event_payload("From a browser"))
    response = ingest.client.post(path, data=event, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    # Errors carry CORS headers too, so the browser SDK can read X-Sentry-Error.
    denied = ingest.client.post(f"/api/{project.id}/store/", data=b"{}", headers={"Origin": ORIGIN})
    assert_error(denied, 401, "Missing authentication")
    assert denied.headers["Access-Control-Allow-Origin"] == "*"
    no_origin = ingest.client.post(path, data=json.dumps(event_payload("Without Origin")))
    assert no_origin.status_code == 200
    assert "Access-Control-Allow-Origin" not in no_origin.headers
    assert set(ingest.titles()) == {"From a browser", "Without Origin"}


def test_origin_outside_the_project_list_is_403(ingest: Ingest) -> None:
    with ingest.app.app_context():  # no storage method sets origins yet: write the column
        storage: t.Any = get_state(ingest.app).storage
        storage.session.execute(sa.update(storage.models.Project).values(allowed_origins=ORIGIN))
        storage.session.commit()
    path = f"/api/{ingest.project.id}/store/?sentry_key={ingest.key.public_key}"
    denied = ingest.client.post(path, data=EVENT, headers={"Origin": "https://evil.example"})
    assert_error(denied, 403, "Invalid origin: https://evil.example")
    assert ingest.groups() == []
    allowed = ingest.client.post(path, data=EVENT, headers={"Origin": ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
