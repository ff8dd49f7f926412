"""Schemathesis against a live server: every operation of ``/api/0/openapi.json`` is fuzzed
with valid credentials, and every response must be documented (status, content type,
headers, body) and none may be a 5xx.

Random ids would almost never name a stored object, so the test maps the generated path
ids onto the objects that exist (the key's project, another project's objects, a missing
id) and tops the data up before each operation, since DELETE and bulk PUT operations
consume it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
import threading
import time
import typing as t
import zlib
from base64 import b64encode
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
import requests
import schemathesis
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis.errors import Flaky
from schemathesis.checks import CHECKS as SCHEMATHESIS_CHECKS
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.checks import positive_data_acceptance

from flask_sentry_api import GroupQuery
from flask_sentry_api import SentryAPI
from flask_sentry_api import get_state
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from flask_sentry_api.testing import make_event
from tests.helpers import EVERYTHING
from tests.helpers import LiveServer
from tests.helpers import make_app

UTC = timezone.utc

#: Hypothesis examples per operation in the fuzzing phase; the examples and coverage
#: phases add their own deterministic cases (most of the ~10,000 requests of a run).
#: ``.ci/run`` asks for 50.
MAX_EXAMPLES = int(os.environ.get("SENTRY_API_SCHEMATHESIS_EXAMPLES", "10"))
#: Scenarios of the stateful test (each a chain of up to 6 linked operations); CI runs 60.
STATEFUL_EXAMPLES = int(os.environ.get("SENTRY_API_SCHEMATHESIS_STATEFUL", "15"))
#: A whole run must send at least this many requests (~10,000 at 10 examples), a part of a
#: run (an xdist worker's share of the operations) its part of them.
MIN_REQUESTS = 3000

# Every check schemathesis has (what ``schemathesis run --checks all`` runs): conformance of
# each response, schema-violating requests refused, schema-valid ones accepted, 405s with
# ``Allow``, credentials not ignored, deleted objects gone.
load_all_checks()
CHECKS = SCHEMATHESIS_CHECKS.get_all()

#: Ids no object has.
MISSING_ID = 987654321
TAG_KEYS = ("level", "release", "server_name", "environment", "nothing")
VERSIONS = ("2.0", "1.1", "9.9-missing")


def _served_document() -> dict[str, t.Any]:
    """The document ``/api/0/openapi.json`` serves with the default settings.

    Schemathesis needs the schema when tests are collected, before the live server
    exists; an app on the in-memory storage serves the same document (the live fixture
    checks that).
    """
    app = Flask("openapi-document")
    SentryAPI(app, storage=MemoryStorage())
    response = app.test_client().get("/api/0/openapi.json")
    assert response.status_code == 200
    return t.cast(dict[str, t.Any], response.get_json())


DOCUMENT = _served_document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {"generation": {"deterministic": True, "with-security-parameters": False}}
    ),
)


OPERATIONS = sum(
    method in ("get", "put", "post", "delete", "head", "options")
    for path_item in DOCUMENT["paths"].values()
    for method in path_item
)


class RequestCounter:
    """WSGI middleware counting responses by status."""

    def __init__(self, app: t.Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}

    def __call__(self, environ: t.Any, start_response: t.Any) -> t.Any:
        def counting_start_response(status: str, headers: t.Any, *args: t.Any) -> t.Any:
            code = int(status.split()[0])
            with self.lock:
                self.statuses[code] = self.statuses.get(code, 0) + 1
            return start_response(status, headers, *args)

        return self.app(environ, counting_start_response)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@dataclasses.dataclass
class LiveAPI:
    url: str
    app: Flask
    headers: dict[str, str]
    session: requests.Session
    counter: RequestCounter
    project: Project
    other: Project
    batches: int = 0
    #: Operations tested so far (one pytest item each).
    operations: int = 0


def _add_groups(storage: Storage, project: Project, batch: int, count: int) -> None:
    """``count`` groups of three events each: messages and exceptions, tags, a release."""
    now = datetime.now(UTC)
    for n in range(count):
        level = ("error", "warning", "info", "fatal", "debug")[n % 5]
        is_error = n % 2 == 0
        title = f"ValueError: boom {batch}.{n}" if is_error else f"boom {batch}.{n}"
        metadata = (
            {"type": "ValueError", "value": f"boom {batch}.{n}"} if is_error else {"title": title}
        )
        for k in range(3):
            saved = storage.save_event(
                project.id,
                make_event(
                    title=title,
                    message=f"boom {batch}.{n}",
                    type="error" if is_error else "default",
                    metadata=metadata,
                    timestamp=now - timedelta(hours=n, minutes=k),
                    level=level,
                    release=f"1.{n % 3}",
                    environment="prod" if n % 2 else "staging",
                    user={"id": str(k)},
                    user_ident=f"id:{k}",
                    tags=(
                        ("level", level),
                        ("release", f"1.{n % 3}"),
                        ("environment", "prod" if n % 2 else "staging"),
                        ("server_name", f"web{k}"),
                    ),
                    data={
                        "entries": [{"type": "message", "data": {"formatted": title}}],
                        "extra": {"n": n},
                        "contexts": {"runtime": {"name": "CPython"}},
                        "sdk": {"name": "sentry.python", "version": "2.0"},
                        "fingerprint": ["{{ default }}"],
                        "metadata": metadata,
                        "type": "error" if is_error else "default",
                    },
                ),
            )
        if n % 3 == 0:
            storage.create_note(saved.group.id, f"looked at {title}")


def _top_up(live: LiveAPI) -> None:
    """Make sure both projects have unresolved groups with events, notes, tags, releases."""
    storage = get_state(live.app).storage
    with live.app.app_context():
        for project in (live.project, live.other):
            groups = storage.list_groups(project.id, GroupQuery(status="unresolved"), EVERYTHING)
            tags = storage.list_tag_values(project.id, "level", EVERYTHING)
            if len(groups) < 4 or not tags:
                live.batches += 1
                _add_groups(storage, project, live.batches, 6)
            if storage.get_release(project.id, VERSIONS[0]) is None:
                storage.create_release(project.id, VERSIONS[0])


def _known_ids(live: LiveAPI) -> dict[str, list[t.Any]]:
    """Path parameter values worth sending: the key's objects first, another project's
    objects, then an id nothing has."""
    storage = get_state(live.app).storage
    with live.app.app_context():
        own = storage.list_groups(live.project.id, GroupQuery(), EVERYTHING)
        other = storage.list_groups(live.other.id, GroupQuery(), EVERYTHING)
        own_events = [e.id for g in own[:3] for e in storage.list_events(g.id, EVERYTHING)]
        other_events = [e.id for e in storage.list_events(other[0].id, EVERYTHING)][:1]
    return {
        "project_id": [live.project.id, live.other.id, MISSING_ID],
        "group_id": [g.id for g in own[:8]] + [other[0].id, MISSING_ID],
        "event_id": own_events[:6] + other_events + [MISSING_ID],
        "key": list(TAG_KEYS),
        "version": list(VERSIONS),
    }


def _steer(path_parameters: dict[str, t.Any], known: dict[str, list[t.Any]]) -> dict[str, t.Any]:
    """Map generated path values onto known objects, deterministically.

    A non-negative integer id ``n`` becomes ``known[n % len(known)]``; a string becomes a
    known value two times in three. Anything else (negative numbers, the wrong types of
    negative testing) is kept, so the router's 404 is still exercised.
    """
    steered = dict(path_parameters)
    for name, value in path_parameters.items():
        choices = known.get(name)
        if not choices:
            continue
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)  # the coverage phase sends path values as strings
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            steered[name] = choices[value % len(choices)]
        elif isinstance(value, str) and name in ("key", "version"):
            pick = zlib.crc32(value.encode("utf-8", "surrogatepass"))
            if pick % 3:
                steered[name] = choices[pick % len(choices)]
    return steered


def _without_newline(value: t.Any) -> t.Any:
    """A newline in a path gets Flask's HTML 404 (a known server bug, see
    ``test_openapi.py::test_newline_in_a_path_gets_a_json_404``): send a CR instead.
    Generated path values arrive percent-encoded."""
    if not isinstance(value, str):
        return value
    return re.sub("%0a", "%0D", value.replace("\n", "\r"), flags=re.IGNORECASE)


#: Seconds per bucket of each stats ``resolution`` (empty: the default, ``1h``).
RESOLUTIONS = {"10s": 10, "1h": 3600, "1d": 86400, "": 3600}
MAX_BUCKETS = 1000


def _keep_prose_rules(case: t.Any, project: Project) -> None:
    """Keep a generated schema-valid request within the rules the document states in words,
    which no JSON Schema of one parameter can: ``limit`` and ``per_page`` are synonyms
    (give one, or the same value), and stats span at most 1,000 buckets."""
    query = case.query or {}
    if "limit" in query and "per_page" in query and query["limit"] != query["per_page"]:
        query = {name: value for name, value in query.items() if name != "per_page"}
    positive = case.meta is None or not case.meta.generation.mode.is_negative
    if positive and case.path.endswith("/stats/") and "since" in query:
        since, until = query["since"], query.get("until")
        step = RESOLUTIONS.get(str(query.get("resolution", "")), 3600)
        if not (
            isinstance(since, int)
            and isinstance(until, int)
            and 0 <= until - since <= step * MAX_BUCKETS
        ):
            # Without ``since`` the span is a day before ``until``, within the limit.
            query = {name: value for name, value in query.items() if name != "since"}
    if case.query is not None:
        case.query = query
    body = case.body if isinstance(case.body, dict) else None
    ids = query.get("id")
    if body is not None and case.method == "PUT":
        # Without ids a bulk change reaches a whole project: only its status may change; a
        # merge names two groups at least. Only flags with valid values are dropped (in
        # negative cases too, which schemathesis may label so for a valid body), so a
        # violating one is kept.
        dropped = BULK_FLAGS if ids is None else ("merge",)
        if ids is None or not isinstance(ids, list) or len({str(i) for i in ids}) < 2:
            for name in dropped:
                if body.get(name) in FLAG_VALUES:
                    del body[name]
    if positive and body is not None and case.method == "POST" and case.path.endswith("/releases/"):
        # A release belongs to projects that exist (the organization's path needs one), and
        # the 2015 path refuses a version that exists.
        body["projects"] = [str(project.id)]  # its slug may have been changed by a PUT
        if isinstance(body.get("version"), str):
            body["version"] = f"{body['version'][:190]}-{next(_RELEASE_NUMBERS)}"


_RELEASE_NUMBERS = itertools.count()
#: Every spelling of a boolean the group bodies accept (0 and 1 equal False and True).
FLAG_VALUES = (True, False, "true", "True", "1", "false", "False", "0")
#: What a bulk change without ``id`` parameters may not change (the document says so in
#: words).
BULK_FLAGS = ("isBookmarked", "hasSeen", "isPublic", "merge")


def _unstorable(value: t.Any) -> bool:
    """Whether a body holds text no database stores (NUL, lone surrogates), which the API
    refuses with a 400 that no JSON Schema of a string can announce."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return "\x00" in value
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def _excluded_checks(case: t.Any) -> list[t.Any]:
    """The checks a case cannot be held to: see :func:`_negates_something` and
    :func:`_unstorable`; and Sentry's later paths ignore unknown release fields (as Sentry
    does, for sentry-cli), which the release components, shared with the 2015 paths that
    refuse them, do not say."""
    excluded = []
    if not _negates_something(case) or (
        "{organization_slug}" in case.path and "/releases/" in case.path
    ):
        excluded.append(negative_data_rejection)
    if _unstorable(case.body):
        excluded.append(positive_data_acceptance)
    return excluded


def _negated_parameters(case: t.Any) -> set[str]:
    """The names of the parameters a negative case violates (every path parameter when it
    does not say which); none for a positive case."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return set()
    data = meta.phase.data
    named = {getattr(data, "parameter", None)}
    named |= {mutation.parameter for mutation in getattr(data, "mutations", ())}
    named.discard(None)
    return t.cast(set[str], named) or set(case.path_parameters or ())


def _negates_something(case: t.Any) -> bool:
    """Whether a case is what it claims: a negative case names what it violates. Schemathesis
    can label a case negative whose violation was lost on the way (a path value longer than
    ``maxLength`` only in its percent-encoded form: "Positive test case", no mutation); the
    server rightly accepts it, so "schema-violating request accepted" would be its error."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return True
    data = meta.phase.data
    description = getattr(data, "description", "")
    return not (
        description == "Positive test case"
        and getattr(data, "parameter", None) is None
        and not getattr(data, "mutations", ())
    )


def _steer_ints(
    path_parameters: dict[str, t.Any], known: dict[str, list[t.Any]]
) -> dict[str, t.Any]:
    """:func:`_steer` for generated integers only (values taken from responses are kept)."""
    return {
        name: _steer({name: value}, known)[name] if isinstance(value, int) else value
        for name, value in path_parameters.items()
    }


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[LiveAPI]:
    database_url = os.environ.get("SENTRY_API_TEST_DATABASE_URL")
    if database_url:
        config: dict[str, t.Any] = {"SQLALCHEMY_DATABASE_URI": database_url}
    else:
        # A file, not the in-memory default: the server's threads need their own connections.
        path = tmp_path_factory.mktemp("schemathesis") / "api.db"
        config = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 30}},
        }
    app = make_app({**config, "SERVER_NAME": None})
    storage = get_state(app).storage
    with app.app_context():
        project = storage.create_project("Web")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
        other = storage.create_project("Other")
    counter = RequestCounter(app.wsgi_app)
    app.wsgi_app = counter  # type: ignore[method-assign]
    token = b64encode(f"{key.public_key}:{key.secret_key}".encode()).decode()
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    started = time.monotonic()
    try:
        with LiveServer(app) as server, requests.Session() as session:
            served = session.get(f"{server.url}/api/0/openapi.json")
            assert served.json() == DOCUMENT
            live = LiveAPI(
                url=server.url,
                app=app,
                headers={"Authorization": f"Basic {token}"},
                session=session,
                counter=counter,
                project=project,
                other=other,
            )
            yield live
    finally:
        access_log.setLevel(level)
        with app.app_context():
            db = app.extensions["sqlalchemy"]
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {counter.total} requests in {elapsed:.1f}s,"
        f" by status: {dict(sorted(counter.statuses.items()))}"
    )
    # A -k selection of a few operations proves nothing either way.
    if live.operations >= 10:
        assert counter.total >= MIN_REQUESTS * live.operations / OPERATIONS, counter.statuses


@pytest.fixture
def known(live_api: LiveAPI) -> dict[str, list[t.Any]]:
    live_api.operations += 1
    _top_up(live_api)
    return _known_ids(live_api)


@pytest.mark.live
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(
    case: t.Any, live_api: LiveAPI, known: dict[str, list[t.Any]]
) -> None:
    if case.path_parameters:
        # A value that makes the case negative is kept: steered onto a known object, it
        # would be valid, and its acceptance no fault of the server.
        negated = _negated_parameters(case)
        steered = _steer(case.path_parameters, known)
        case.path_parameters = {
            name: _without_newline(value if name in negated else steered[name])
            for name, value in case.path_parameters.items()
        }
    _keep_prose_rules(case, live_api.project)
    ids = (case.query or {}).get("id")
    if isinstance(ids, list):
        # Bulk PUT/DELETE: name some real groups too (merges, flag changes, deletes).
        case.query = {
            **case.query,
            "id": [_steer({"group_id": value}, known)["group_id"] for value in ids],
        }
    case.call_and_validate(
        base_url=f"{live_api.url}/api/0",
        headers=live_api.headers,
        session=live_api.session,
        checks=CHECKS,
        excluded_checks=_excluded_checks(case),
    )


class Saved(t.NamedTuple):
    """Every row of the app's tables, to put the database back exactly as it was."""

    rows: dict[sa.Table, list[dict[str, t.Any]]]


def _save_rows(app: Flask) -> Saved:
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        with db.engine.connect() as connection:
            return Saved(
                {
                    table: [dict(row._mapping) for row in connection.execute(sa.select(table))]
                    for table in db.metadata.sorted_tables
                }
            )


def _restore_rows(app: Flask, saved: Saved) -> None:
    """Put back the saved rows (and, on PostgreSQL, the id sequences), so every scenario of
    the state machine starts from the same data and gets the same answers."""
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
            for table in db.metadata.sorted_tables:
                if saved.rows[table]:
                    connection.execute(table.insert(), saved.rows[table])
                if connection.dialect.name == "postgresql" and "id" in table.c:
                    connection.execute(
                        sa.text(
                            "SELECT setval(pg_get_serial_sequence(:t, 'id'),"
                            f" COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                        ),
                        {"t": table.name},
                    )


@pytest.mark.live
def test_linked_operations_conform(live_api: LiveAPI) -> None:
    """Stateful: follow the document's links (group list -> group -> latest event -> event,
    release created -> read -> deleted, ...) and validate every response.

    Every scenario starts from the same rows (put back before each), so a replayed choice
    sequence meets the same answers; a ``Flaky`` outcome (a failure that does not
    reproduce, or data generation that changes between runs) fails the test.
    """
    _top_up(live_api)
    known = _known_ids(live_api)
    saved = _save_rows(live_api.app)
    base_url = f"{live_api.url}/api/0"
    failures: list[BaseException] = []
    linked_steps: dict[str, int] = {}

    class Workflows(schema.as_state_machine()):  # type: ignore[misc]
        def step(self, input: t.Any) -> t.Any:
            if input.transition is not None and input.is_applied:
                linked_steps[input.transition.id] = linked_steps.get(input.transition.id, 0) + 1
            return super().step(input)

        def before_call(self, case: t.Any) -> None:
            _keep_prose_rules(case, live_api.project)
            # Root steps have generated ids; ids taken from responses are strings.
            if case.path_parameters:
                case.path_parameters = {
                    name: _without_newline(value)
                    for name, value in _steer_ints(case.path_parameters, known).items()
                }

        def get_call_kwargs(self, case: t.Any) -> dict[str, t.Any]:
            return {"base_url": base_url, "headers": live_api.headers, "session": live_api.session}

        def validate_response(
            self, response: t.Any, case: t.Any, additional_checks: t.Any = None, **kwargs: t.Any
        ) -> None:
            try:
                case.validate_response(
                    response,
                    checks=CHECKS,
                    excluded_checks=_excluded_checks(case),
                    transport_kwargs=kwargs,
                )
            except Exception as exc:
                failures.append(exc)
                raise

        def setup(self) -> None:
            _restore_rows(live_api.app, saved)

    try:
        Workflows.run(
            settings=settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=6,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    except Flaky as flaky:
        if failures:
            raise failures[0] from flaky
        pytest.fail(f"the stateful run ended as Flaky: {flaky}")
    finally:
        _restore_rows(live_api.app, saved)
    print(f"\nstateful: linked steps: {linked_steps}")
    assert len(linked_steps) >= 10, linked_steps
