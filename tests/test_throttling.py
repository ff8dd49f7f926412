"""Rate limits through the public surface (SPEC §11): ingestion per key (429 with
``Retry-After`` and ``X-Sentry-Rate-Limits``, decided before the body is read), the web API
per credential (``X-Sentry-Rate-Limit-*``), their settings, and a shared Redis store.

The Redis tests run when ``SENTRY_API_TEST_REDIS_URL`` names a server
(``redis://127.0.0.1:6379/15``); CI sets it. Every test limits fresh keys and tokens, whose
random names keep their windows apart in a shared Redis.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import io
import json
import logging
import os
import time
import typing as t
from datetime import datetime
from datetime import timezone
from pathlib import Path

import pytest
import requests
import sentry_sdk
from flask import Flask
from flask.testing import FlaskClient
from limits.storage import memory as limits_memory

from flask_sentry_api import get_state
from flask_sentry_api.errors import ConfigurationError
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.ratelimits import RateLimiter
from flask_sentry_api.ratelimits import SweepingMemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import RateLimit
from flask_sentry_api.storage import Storage
from flask_sentry_api.storage import TokenStorage
from flask_sentry_api.tokens import hash_token
from flask_sentry_api.tokens import new_token
from tests.helpers import EVERYTHING
from tests.helpers import basic_auth
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import event_payload
from tests.helpers import example_app_under_gunicorn
from tests.helpers import make_app
from tests.helpers import sentry_auth
from tests.helpers import zero_bomb

REDIS_URL = os.environ.get("SENTRY_API_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="SENTRY_API_TEST_REDIS_URL names no Redis server"
)


def started(app: Flask) -> Flask:
    """``app`` with an app context pushed until the test ends (as pytest-flask's ``app``)."""
    context = app.app_context()
    context.push()
    _pushed.append(context)
    return app


_pushed: list[t.Any] = []


@pytest.fixture(autouse=True)
def _pop_contexts() -> t.Iterator[None]:
    yield
    while _pushed:
        _pushed.pop().pop()


def post_event(client: FlaskClient, key: ProjectKey, **headers: str) -> t.Any:
    body = envelope(event_item(event_payload()))
    return client.post(
        f"/api/{key.project_id}/envelope/", data=body, headers={**sentry_auth(key), **headers}
    )


def stored(storage: Storage, project: Project) -> int:
    return len(storage.list_project_events(project.id, EVERYTHING))


# -- ingestion ----------------------------------------------------------------------------


def test_a_key_limited_to_5_per_60_stores_5_of_20(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(5, 60))
    responses = [post_event(client, key) for _ in range(20)]

    assert [r.status_code for r in responses] == [200] * 5 + [429] * 15
    assert stored(storage, project) == 5
    refused = responses[-1]
    assert refused.json == {
        "detail": "Rate limit exceeded: this key may send 5 events per 60 seconds."
    }
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    # What sentry-sdk obeys: <seconds>:<categories, none = all>:<scope>.
    assert refused.headers["X-Sentry-Rate-Limits"] == f"{retry_after}::key"
    assert refused.headers["X-Sentry-Error"] == refused.json["detail"]


def test_keys_without_their_own_limit_get_the_app_default() -> None:
    app = started(make_app({"SENTRY_API_INGEST_RATE_LIMIT": "3/60"}))
    storage = get_state(app).storage
    project = storage.create_project("Web")
    first, second = (storage.create_key(project.id, ROLE_STORE) for _ in range(2))
    client = app.test_client()

    assert [post_event(client, first).status_code for _ in range(5)] == [200] * 3 + [429] * 2
    # Windows are per key: the other key of the same project still has its three.
    assert [post_event(client, second).status_code for _ in range(4)] == [200] * 3 + [429]


def test_a_key_limit_overrides_the_default_both_ways() -> None:
    app = started(make_app({"SENTRY_API_INGEST_RATE_LIMIT": "2/60"}))
    storage = get_state(app).storage
    project = storage.create_project("Web")
    generous = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(4, 60))
    client = app.test_client()

    assert [post_event(client, generous).status_code for _ in range(5)] == [200] * 4 + [429]


@pytest.mark.parametrize("off", ["0", 0])
def test_zero_turns_the_default_off(off: object) -> None:
    app = started(make_app({"SENTRY_API_INGEST_RATE_LIMIT": off}))
    storage = get_state(app).storage
    key = storage.create_key(storage.create_project("Web").id, ROLE_STORE)
    client = app.test_client()

    assert {post_event(client, key).status_code for _ in range(30)} == {200}
    assert get_state(app).settings.ingest_rate_limit is None


def test_the_default_is_6000_per_60(app: Flask) -> None:
    assert get_state(app).settings.ingest_rate_limit == RateLimit(6000, 60)
    assert get_state(app).settings.api_rate_limit is None


class UnreadableBody(io.BytesIO):
    """A request body that counts (and refuses) every attempt to read it."""

    reads = 0

    def _refuse(self, *args: t.Any) -> t.NoReturn:
        type(self).reads += 1
        raise AssertionError("the body of an over-limit request was read")

    read = read1 = readinto = readline = readlines = _refuse


def test_an_over_limit_request_is_refused_before_its_body_is_read(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(1, 60))
    assert post_event(client, key).status_code == 200

    # A gzip bomb's ~1 MB, never to be read.
    body = UnreadableBody(b"\x1f\x8b" + b"\0" * (1024 * 1024))
    response = client.post(
        f"/api/{project.id}/store/",
        input_stream=body,
        headers={**sentry_auth(key), "Content-Encoding": "gzip"},
    )

    assert response.status_code == 429
    assert body.reads == 0


def test_a_gzip_bomb_from_an_over_limit_key_is_refused_without_inflating(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(1, 60))
    assert post_event(client, key).status_code == 200
    # 64 MiB of zeros in ~64 KB: inflating it would be refused as 413 by the inflate
    # bound, so a 429 shows the limit was decided first.
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)

    response = client.post(
        f"/api/{project.id}/store/",
        data=bomb,
        headers={**sentry_auth(key), "Content-Encoding": "gzip"},
    )

    assert response.status_code == 429
    assert stored(storage, project) == 1


def test_refused_requests_are_not_counted_against_a_wrong_key(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    """A request failing authentication is never counted, so nobody can use up another
    key's window with a made-up secret."""
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(2, 60))
    body = json.dumps(event_payload())
    for _ in range(5):
        wrong = client.post(
            f"/api/{project.id}/store/", data=body, headers=sentry_auth(key, secret="0" * 32)
        )
        assert wrong.status_code == 401

    assert [post_event(client, key).status_code for _ in range(3)] == [200, 200, 429]


def test_a_browser_sdk_can_read_the_rate_limit_headers(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(1, 60))
    assert post_event(client, key, Origin="https://shop.example").status_code == 200

    refused = post_event(client, key, Origin="https://shop.example")

    assert refused.status_code == 429
    exposed = {h.strip() for h in refused.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Sentry-Rate-Limits", "Retry-After"} <= exposed


def test_a_real_sentry_sdk_backs_off_after_a_429(
    app: Flask, live_server_url: str, storage: Storage, project: Project
) -> None:
    """sentry-sdk, unmodified, over HTTP: after the first 429 it stops sending for the
    Retry-After it was given, so 5 of its 20 events are stored and the rest are dropped by
    the SDK itself."""
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(5, 60))
    statuses: list[int] = []
    app.after_request(lambda response: statuses.append(response.status_code) or response)
    host = live_server_url.removeprefix("http://")
    dsn = f"http://{key.public_key}@{host}/{project.id}"
    sentry_sdk.init(dsn=dsn, default_integrations=False, send_client_reports=False)
    try:
        with sentry_sdk.isolation_scope():
            for number in range(20):
                sentry_sdk.capture_message(f"burst {number}")
                sentry_sdk.flush(timeout=10)
        transport = sentry_sdk.get_client().transport
    finally:
        sentry_sdk.get_client().close()

    assert stored(storage, project) == 5
    # One 429, then the SDK sent nothing more.
    assert statuses == [200] * 5 + [429]
    # The SDK read X-Sentry-Rate-Limits: every category (None) is paused for about a minute.
    paused_until = transport._disabled_until[None]  # type: ignore[union-attr]
    assert 0 < (paused_until - datetime.now(timezone.utc)).total_seconds() <= 60


# -- the web API --------------------------------------------------------------------------


def api_app(limit: str) -> Flask:
    """An app whose web API allows ``limit`` requests per credential ("0": no limit)."""
    return started(make_app({"SENTRY_API_RATE_LIMIT": limit}))


def test_web_api_limit_per_credential_with_headers_on_every_response() -> None:
    app = api_app("3/60")
    storage = get_state(app).storage
    project = storage.create_project("Web")
    key = storage.create_key(project.id, ROLE_API)
    client = app.test_client()
    url = f"/api/0/projects/{project.id}/"

    before = time.time()
    responses = [client.get(url, headers=basic_auth(key)) for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-Sentry-Rate-Limit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert {r.headers["X-Sentry-Rate-Limit-Limit"] for r in responses} == {"3"}
    reset = int(responses[0].headers["X-Sentry-Rate-Limit-Reset"])
    assert before <= reset <= time.time() + 61
    refused = responses[-1]
    assert refused.json == {"detail": "Too many requests."}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Errors after authentication are counted and carry the headers too.
    missing = client.get("/api/0/projects/999999/", headers=basic_auth(key))
    assert missing.headers["X-Sentry-Rate-Limit-Remaining"] == "0"


def test_web_api_windows_are_per_credential() -> None:
    app = api_app("2/60")
    storage = get_state(app).storage
    project = storage.create_project("Web")
    first, second = (storage.create_key(project.id, ROLE_API) for _ in range(2))
    token = new_token()
    assert isinstance(storage, TokenStorage)
    storage.create_token(project.id, hash_token(token), ("project:read",))
    client = app.test_client()
    url = f"/api/0/projects/{project.id}/"

    assert [client.get(url, headers=basic_auth(first)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert client.get(url, headers=basic_auth(second)).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert [client.get(url, headers=bearer).status_code for _ in range(3)] == [200, 200, 429]


def test_web_api_counts_only_authenticated_requests() -> None:
    app = api_app("1/60")
    storage = get_state(app).storage
    project = storage.create_project("Web")
    key = storage.create_key(project.id, ROLE_API)
    client = app.test_client()
    url = f"/api/0/projects/{project.id}/"

    for _ in range(3):
        assert client.get(url).status_code == 401
        assert client.get(url, headers=basic_auth(key, secret="0" * 32)).status_code == 401
        options = client.options(url)
        assert options.status_code == 200
        assert "X-Sentry-Rate-Limit-Limit" not in options.headers
    assert client.get("/api/0/").status_code == 200

    assert [client.get(url, headers=basic_auth(key)).status_code for _ in range(2)] == [200, 429]


def test_web_api_limit_is_off_by_default(client: FlaskClient, project: Project, auth: dict) -> None:
    responses = [client.get(f"/api/0/projects/{project.id}/", headers=auth) for _ in range(50)]

    assert {r.status_code for r in responses} == {200}
    assert not any("X-Sentry-Rate-Limit-Limit" in r.headers for r in responses)


def test_the_openapi_document_describes_the_429_when_the_limit_is_on() -> None:
    off, on = (
        api_app(limit).test_client().get("/api/0/openapi.json").json for limit in ("0", "1/60")
    )

    path = "/projects/{project_id}/"
    assert "429" not in off["paths"][path]["get"]["responses"]
    documented = on["paths"][path]["get"]["responses"]["429"]
    assert {"Retry-After", "X-Sentry-Rate-Limit-Remaining"} <= set(documented["headers"])
    assert "429" not in on["paths"]["/"]["get"]["responses"]  # the index needs no credentials


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("SENTRY_API_INGEST_RATE_LIMIT", "lots", "expected N/SECONDS"),
        ("SENTRY_API_INGEST_RATE_LIMIT", "5/0", "at least 1"),
        ("SENTRY_API_INGEST_RATE_LIMIT", "-5/60", "expected N/SECONDS"),
        ("SENTRY_API_INGEST_RATE_LIMIT", "5 per minute", "expected N/SECONDS"),
        ("SENTRY_API_INGEST_RATE_LIMIT", None, "must be 'N/SECONDS' or 0"),
        ("SENTRY_API_RATE_LIMIT", True, "must be 'N/SECONDS' or 0"),
        ("SENTRY_API_RATE_LIMIT", "40/１", "expected N/SECONDS"),
        ("SENTRY_API_RATE_LIMIT_STORAGE_URI", "nosuch://x", "unknown storage scheme"),
        ("SENTRY_API_RATE_LIMIT_STORAGE_URI", "", "non-empty string"),
        ("SENTRY_API_RATE_LIMIT_STRATEGY", "token-bucket", "must be one of"),
    ],
)
def test_bad_settings_stop_start_up(setting: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=setting) as raised:
        make_app({setting: value})
    assert message in str(raised.value)


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter", "moving-window"])
def test_every_strategy_limits(strategy: str) -> None:
    app = started(make_app({"SENTRY_API_RATE_LIMIT_STRATEGY": strategy}))
    storage = get_state(app).storage
    project = storage.create_project("Web")
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(2, 60))
    client = app.test_client()

    assert [post_event(client, key).status_code for _ in range(3)] == [200, 200, 429]


def test_an_unreachable_store_lets_requests_through_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1: every hit fails, and the host app keeps working.
    app = started(make_app({"SENTRY_API_RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}))
    storage = get_state(app).storage
    project = storage.create_project("Web")
    key = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(1, 60))
    client = app.test_client()

    with caplog.at_level(logging.WARNING, logger="flask_sentry_api"):
        statuses = [post_event(client, key).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    warnings = [r for r in caplog.records if "rate-limit store unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request


# -- keys ---------------------------------------------------------------------------------


def test_the_keys_endpoint_shows_each_keys_limit(
    client: FlaskClient, storage: Storage, project: Project, key: ProjectKey, auth: dict
) -> None:
    limited = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(100, 60))

    response = client.get(f"/api/0/projects/sentry/{project.slug}/keys/", headers=auth)

    assert response.status_code == 200
    by_key = {entry["public"]: entry["rateLimit"] for entry in response.json}
    assert by_key == {key.public_key: None, limited.public_key: {"count": 100, "window": 60}}


# -- several processes: one Redis ---------------------------------------------------------


@needs_redis
def test_apps_sharing_redis_share_each_keys_window() -> None:
    """Two apps (two worker processes, or two hosts) on one database and one Redis:
    a key limited to 5 per minute stores 5 events in all, however the requests spread."""
    config = {"SENTRY_API_RATE_LIMIT_STORAGE_URI": REDIS_URL}
    shared = MemoryStorage()
    first, second = (make_app(config, storage=shared) for _ in range(2))
    assert get_state(first).rate_limiter is not get_state(second).rate_limiter
    project = shared.create_project("Web")
    key = shared.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(5, 60))
    clients = [first.test_client(), second.test_client()]

    statuses = [post_event(clients[n % 2], key).status_code for n in range(20)]

    assert statuses.count(200) == 5
    assert statuses.count(429) == 15
    assert len(shared.list_project_events(project.id, EVERYTHING)) == 5


# -- the example app under gunicorn -------------------------------------------------------


def limited_key(
    database_url: str, rate_limit: RateLimit, monkeypatch: pytest.MonkeyPatch
) -> ProjectKey:
    """A fresh database for the example app, with one project and a key limited to
    ``rate_limit``, made before any worker starts."""
    import example_app

    monkeypatch.setenv("DATABASE_URL", database_url)
    app = example_app.create_app({"EXAMPLE_CREATE_DEMO_PROJECT": False})
    with app.app_context():
        storage = get_state(app).storage
        storage.init_schema()
        project = storage.create_project("Burst")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API, rate_limit=rate_limit)
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()
    return key


def count_events(url: str, key: ProjectKey) -> int:
    response = requests.get(
        f"{url}/api/0/projects/sentry/burst/events/", headers=basic_auth(key), timeout=30
    )
    assert response.status_code == 200
    return len(response.json())


@pytest.mark.live
@pytest.mark.load
@needs_redis
def test_redis_holds_the_limit_across_two_gunicorn_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two gunicorn servers of one worker each (two hosts, or two workers that each got
    half the requests) on one database and one Redis: 5 of 20 events are stored."""
    database_url = f"sqlite:///{tmp_path / 'burst.db'}"
    key = limited_key(database_url, RateLimit(5, 60), monkeypatch)
    env = {"DATABASE_URL": database_url, "FLASK_SENTRY_API_RATE_LIMIT_STORAGE_URI": REDIS_URL}
    with contextlib.ExitStack() as servers:
        urls = [
            servers.enter_context(example_app_under_gunicorn(tmp_path / f"{n}.log", env))[0]
            for n in range(2)
        ]

        def send(number: int) -> int:
            body = envelope(event_item(event_payload()))
            endpoint = f"{urls[number % 2]}/api/{key.project_id}/envelope/"
            return requests.post(
                endpoint, data=body, headers=sentry_auth(key), timeout=30
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(20)))
        stored_count = count_events(urls[0], key)

    assert sorted(statuses) == [200] * 5 + [429] * 15
    assert stored_count == 5


@pytest.mark.live
@pytest.mark.load
def test_a_gigabyte_gzip_bomb_from_an_over_limit_key_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'bomb.db'}"
    key = limited_key(database_url, RateLimit(1, 60), monkeypatch)
    bomb = zero_bomb(31, 1024)  # ~1 MB of gzip inflating to 1 GiB
    log = tmp_path / "gunicorn.log"
    with example_app_under_gunicorn(log, {"DATABASE_URL": database_url}) as (url, _):
        endpoint = f"{url}/api/{key.project_id}/store/"
        first = requests.post(endpoint, json=event_payload(), headers=sentry_auth(key), timeout=30)
        started = time.perf_counter()
        refused = requests.post(
            endpoint,
            data=bomb,
            headers={**sentry_auth(key), "Content-Encoding": "gzip"},
            timeout=30,
        )
        elapsed = time.perf_counter() - started
        stored_count = count_events(url, key)

    assert first.status_code == 200
    assert refused.status_code == 429
    assert refused.headers["X-Sentry-Rate-Limits"].endswith("::key")
    assert stored_count == 1
    # A figure for the README, not a threshold: these machines are shared and noisy.
    with capsys.disabled():
        print(f"\n1 GiB gzip bomb ({len(bomb):,} bytes), over-limit key: 429 in {elapsed:.3f} s")


def test_memory_windows_start_no_thread_per_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``limits``' memory storage starts an expiry thread on a hit once its last one has
    finished; ours sweeps on the hit instead, and still counts and expires windows."""
    started: list[object] = []

    class CountedTimer(limits_memory.threading.Timer):
        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            started.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(limits_memory.threading, "Timer", CountedTimer)
    limiter = RateLimiter("memory://")
    started.clear()  # the one timer the storage starts when it is made
    decisions = []
    for _ in range(20):
        limiter.storage.timer.join()  # the moment limits would start another thread
        decisions.append(limiter.hit(RateLimit(15, 60), "ingest", "key").allowed)
    assert started == []
    assert decisions == [True] * 15 + [False] * 5

    monkeypatch.setattr(SweepingMemoryStorage, "SWEEP_EVERY", 0.0)
    limiter.storage.expirations = dict.fromkeys(limiter.storage.expirations, 0.0)
    assert limiter.hit(RateLimit(15, 60), "ingest", "other").allowed
    # The hit swept the expired window of "key" away; "other" has its own.
    windows = [name for name in limiter.storage.storage if "/ingest/" in name]
    assert len(windows) == 1 and "/ingest/other/" in windows[0], windows
