"""The per-app credential cache: a key or token is looked up once per TTL, forgotten at once
when this process disables, deletes, re-limits or revokes it, never shared between apps."""

from __future__ import annotations

import typing as t
from datetime import datetime
from datetime import timezone

from flask import Flask
from flask.testing import FlaskClient

from flask_sentry_api import get_state
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.state import CredentialCache
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import AuthToken
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import RateLimit
from flask_sentry_api.storage import Storage
from flask_sentry_api.storage import TokenStorage
from flask_sentry_api.tokens import hash_token
from flask_sentry_api.tokens import new_token
from tests.helpers import basic_auth
from tests.helpers import captured_statements
from tests.helpers import event_payload
from tests.helpers import make_app
from tests.helpers import sentry_auth


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A lookup answering from a dict, counting its calls."""

    def __init__(self, answers: dict[str, t.Any] | None = None) -> None:
        self.answers: dict[str, t.Any] = answers if answers is not None else {}
        self.calls: list[str] = []

    def __call__(self, name: str) -> t.Any:
        self.calls.append(name)
        return self.answers.get(name)


def store(client: FlaskClient, project_id: int, key: ProjectKey | str) -> int:
    response = client.post(
        f"/api/{project_id}/store/", json=event_payload(), headers=sentry_auth(key)
    )
    return response.status_code


def project_get(client: FlaskClient, project: Project, headers: dict[str, str]) -> int:
    return client.get(f"/api/0/projects/{project.id}/", headers=headers).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_reads(app: Flask, action: t.Callable[[], object]) -> int:
    """How many statements ``action`` sends that read the key table."""
    return sum("FROM sentry_project_key" in sql for sql, _ in captured_statements(app, action))


# -- the cache itself ----------------------------------------------------------------------
ADDED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def key_of(project_id: int, public_key: str = "a" * 32) -> ProjectKey:
    return ProjectKey(
        id=1,
        project_id=project_id,
        public_key=public_key,
        secret_key="b" * 32,
        roles=ROLE_STORE | ROLE_API,
        is_active=True,
        date_added=ADDED,
    )


def test_a_found_key_is_kept_for_the_ttl_only() -> None:
    clock = Clock()
    cache = CredentialCache(5, clock=clock)
    lookup = Counting({"k": key_of(1)})
    assert cache.key("k", lookup) == cache.key("k", lookup) == key_of(1)
    assert lookup.calls == ["k"]
    clock.now += 4.9
    cache.key("k", lookup)
    assert lookup.calls == ["k"]
    clock.now += 0.1  # the entry has lived its five seconds
    cache.key("k", lookup)
    assert lookup.calls == ["k", "k"]


def test_an_unknown_credential_is_not_kept() -> None:
    cache = CredentialCache(5, clock=Clock())
    lookup = Counting()
    assert cache.key("k", lookup) is None
    assert cache.token("t", lookup) is None
    lookup.answers["k"] = key_of(1)  # created a moment later: found at once
    assert cache.key("k", lookup) == key_of(1)
    assert lookup.calls == ["k", "t", "k"]


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = CredentialCache(5, size=2, clock=Clock())
    lookup = Counting({name: key_of(1, name) for name in "abc"})
    for name in "aba":  # "a" used last, "b" least recently
        cache.key(name, lookup)
    cache.key("c", lookup)
    lookup.calls.clear()
    for name in "acb":
        cache.key(name, lookup)
    assert lookup.calls == ["b"]


def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache = CredentialCache(0, clock=Clock())
    lookup = Counting({"k": key_of(1)})
    cache.key("k", lookup)
    cache.key("k", lookup)
    assert lookup.calls == ["k", "k"]


def test_tokens_are_kept_under_their_hash() -> None:
    cache = CredentialCache(5, clock=Clock())
    token = AuthToken(
        id=7,
        project_id=1,
        token_hash="h",
        scopes=("event:read",),
        date_created=ADDED,
    )
    lookup = Counting({"secret-token": token})
    assert cache.token("secret-token", lookup) is token
    assert "secret-token" not in repr(vars(cache._tokens))
    assert hash_token("secret-token") in repr(vars(cache._tokens))
    cache.forget_token(7)
    cache.token("secret-token", lookup)
    assert lookup.calls == ["secret-token", "secret-token"]


# -- through the app -----------------------------------------------------------------------
def test_a_cached_key_is_not_read_again(
    app: Flask, client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    assert key_reads(app, lambda: store(client, project.id, key)) == 1
    assert key_reads(app, lambda: store(client, project.id, key)) == 0
    # The web API shares the entry, and still compares the secret every time.
    assert key_reads(app, lambda: project_get(client, project, basic_auth(key))) == 0
    assert project_get(client, project, basic_auth(key, "0" * 32)) == 401


def test_a_disabled_key_is_refused_at_once(
    client: FlaskClient, project: Project, key: ProjectKey, storage: Storage
) -> None:
    assert store(client, project.id, key) == 200
    assert project_get(client, project, basic_auth(key)) == 200
    storage.set_key_active(key.public_key, False)
    assert store(client, project.id, key) == 401
    assert project_get(client, project, basic_auth(key)) == 401
    storage.set_key_active(public_key=key.public_key, active=True)  # by keyword too
    assert store(client, project.id, key) == 200


def test_a_deleted_key_is_refused_at_once(
    client: FlaskClient, project: Project, key: ProjectKey, storage: Storage
) -> None:
    assert store(client, project.id, key) == 200
    storage.delete_key(key.public_key)
    assert store(client, project.id, key) == 401


def test_a_new_rate_limit_applies_at_once(
    client: FlaskClient, project: Project, key: ProjectKey, storage: Storage
) -> None:
    assert store(client, project.id, key) == 200
    storage.set_key_rate_limit(key.public_key, RateLimit(1, 60))
    assert store(client, project.id, key) == 200
    assert store(client, project.id, key) == 429


def test_cli_changes_are_seen_at_once(app: Flask, project: Project, key: ProjectKey) -> None:
    client = app.test_client()
    runner = app.test_cli_runner()
    assert store(client, project.id, key) == 200
    assert runner.invoke(args=["sentry-api", "disable-key", key.public_key]).exit_code == 0
    assert store(client, project.id, key) == 401
    assert runner.invoke(args=["sentry-api", "enable-key", key.public_key]).exit_code == 0
    assert store(client, project.id, key) == 200


def test_a_revoked_token_is_refused_at_once(
    app: Flask, client: FlaskClient, project: Project, storage: Storage
) -> None:
    assert isinstance(storage, TokenStorage)
    token = new_token()
    stored = storage.create_token(project.id, hash_token(token), ("project:read",))
    assert project_get(client, project, bearer(token)) == 200
    statements = captured_statements(app, lambda: project_get(client, project, bearer(token)))
    assert not any("FROM sentry_auth_token" in sql for sql, _ in statements)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["sentry-api", "revoke-token", str(stored.id)]).exit_code == 0
    assert project_get(client, project, bearer(token)) == 401


def test_host_lookups_are_cached_too() -> None:
    keys, tokens = Counting(), Counting()
    app = make_app(key_lookup=keys, token_lookup=tokens)
    with app.app_context():
        project = get_state(app).storage.create_project("Web")
    client = app.test_client()
    # Unknown at first, then known: not kept while unknown, kept once found.
    assert store(client, project.id, "host-key-1") == 401
    keys.answers["host-key-1"] = key_of(project.id, "host-key-1")
    assert store(client, project.id, "host-key-1") == 200
    assert store(client, project.id, "host-key-1") == 200
    assert keys.calls == ["host-key-1", "host-key-1"]
    tokens.answers["host-token-1"] = AuthToken(
        id=1,
        project_id=project.id,
        token_hash="",
        scopes=("project:read",),
        date_created=ADDED,
    )
    for _ in range(3):
        assert project_get(client, project, bearer("host-token-1")) == 200
    assert tokens.calls == ["host-token-1"]
    # A host that revokes in its own store tells the cache (or waits for the TTL).
    del tokens.answers["host-token-1"]
    get_state(app).credentials.clear()
    assert project_get(client, project, bearer("host-token-1")) == 401


def test_apps_do_not_share_credentials() -> None:
    first, second = MemoryStorage(), MemoryStorage()
    app_a = make_app(storage=first)
    app_b = make_app(storage=second)
    project = first.create_project("A")
    assert second.create_project("B").id == project.id  # the same id in both
    key = first.create_key(project.id, ROLE_STORE | ROLE_API)
    assert store(app_a.test_client(), project.id, key) == 200
    assert store(app_b.test_client(), project.id, key) == 401


def test_a_shared_storage_tells_every_app() -> None:
    shared = MemoryStorage()
    apps = [make_app(storage=shared), make_app(storage=shared)]
    project = shared.create_project("A")
    key = shared.create_key(project.id, ROLE_STORE | ROLE_API)
    for app in apps:
        assert store(app.test_client(), project.id, key) == 200
    shared.set_key_active(key.public_key, False)
    for app in apps:
        assert store(app.test_client(), project.id, key) == 401


def test_other_processes_changes_are_seen_after_the_ttl(
    app: Flask, client: FlaskClient, project: Project, key: ProjectKey
) -> None:
    """A change this process did not make (another worker's, a host's SQL) is seen once
    the entry expires."""
    clock = Clock()
    state = get_state(app)
    cache = state.credentials
    cache._keys.clock = cache._tokens.clock = clock  # noqa: SLF001 - the test's clock
    assert store(client, project.id, key) == 200
    with app.app_context():
        # Behind the cache's back: as another process would.
        table = state.storage.models.ProjectKey  # type: ignore[attr-defined]
        session = app.extensions["sqlalchemy"].session
        session.execute(
            table.__table__.update()
            .where(table.public_key == key.public_key)
            .values(is_active=False)
        )
        session.commit()
    assert store(client, project.id, key) == 200  # still trusted
    clock.now += cache.ttl
    assert store(client, project.id, key) == 401
