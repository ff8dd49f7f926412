"""Queue mode (``SENTRY_API_INGEST_MODE = "celery"``): the endpoint enqueues, a real Celery
worker process stores, every event exactly once, a worker killed mid-task included; a broker
that is down is a fast 503 with ``Retry-After`` and nothing stored.

The tests with a worker need a broker, named by ``SENTRY_API_TEST_BROKER_URL``
(``redis://127.0.0.1:6379/14`` or ``amqp://guest:guest@127.0.0.1:5672//``); each uses a
queue of its own. They run on a file SQLite database the worker process shares, or on the
PostgreSQL database of ``SENTRY_API_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import typing as t
import uuid
from collections import Counter
from datetime import datetime
from datetime import timezone
from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_sentry_api import SentryAPI
from flask_sentry_api import event_stored
from flask_sentry_api import get_state
from flask_sentry_api.config import load_settings
from flask_sentry_api.errors import ConfigurationError
from flask_sentry_api.ingest.normalize import normalize_event
from flask_sentry_api.queue import TASK_NAME
from flask_sentry_api.queue import event_from_message
from flask_sentry_api.queue import event_to_message
from flask_sentry_api.queue import register_tasks
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import ProjectKey
from tests.helpers import DATABASE_URL
from tests.helpers import EVERYTHING
from tests.helpers import ON_POSTGRES
from tests.helpers import ROOT
from tests.helpers import envelope
from tests.helpers import event_item
from tests.helpers import event_payload
from tests.helpers import make_app
from tests.helpers import sentry_auth

BROKER_ENV = "SENTRY_API_TEST_BROKER_URL"
BROKER_URL = os.environ.get(BROKER_ENV)
needs_broker = pytest.mark.skipif(
    not BROKER_URL,
    reason=f"names no Celery broker: set {BROKER_ENV} (e.g. redis://127.0.0.1:6379/14)",
)
#: Where nothing listens: the broker is down.
DEAD_BROKER = "redis://127.0.0.1:1/0"
#: How long a test waits for a worker before failing (not a threshold: a hang guard).
WAIT = 60.0

# What the worker process (tests.test_queue_mode:worker_app) reads from its environment.
_DB_ENV = "QUEUE_TEST_DATABASE_URL"
_QUEUE_ENV = "QUEUE_TEST_QUEUE"
_KILL_ENV = "QUEUE_TEST_KILL_MARKER"
_SIGNALS_ENV = "QUEUE_TEST_SIGNALS_LOG"
_DIE_WHEN_ENV = "QUEUE_TEST_DIE_WHEN"
#: The message of the event whose worker dies right after storing it, before acknowledging.
DIE = "die after storing this one"


def queue_config(broker_url: str, queue: str = "sentry_api") -> dict[str, t.Any]:
    return {
        "SENTRY_API_INGEST_MODE": "celery",
        "SENTRY_API_CELERY_BROKER_URL": broker_url,
        "SENTRY_API_CELERY_QUEUE": queue,
        "SENTRY_API_CELERY_PUBLISH_TIMEOUT": 2,
        "SENTRY_API_CELERY_RETRY_AFTER": 17,
        "SENTRY_API_CELERY_OPTIONS": {
            # Redis: a killed worker's messages come back within a few seconds, not an hour.
            # (RabbitMQ gives them back as soon as the connection drops.)
            "broker_transport_options": {
                "visibility_timeout": 1,
                "unacked_restore_interval": 1,
                "unacked_restore_throttle": 1,
            }
        },
    }


# -- the worker process's app ------------------------------------------------------------------


def worker_app() -> Flask:
    """The host app of the worker process (``SENTRY_API_WORKER_APP``): the test's database
    and broker, a receiver that records the signals, and one that kills the process once
    when it meets the :data:`DIE` event: as its task starts (``before`` storing) or right
    after the storage committed it (``after``), before the task returns and so before its
    message is acknowledged."""
    from celery.signals import task_prerun

    app = Flask("queue_worker")
    url = os.environ[_DB_ENV]
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SERVER_NAME="testserver.local",
        **queue_config(os.environ[BROKER_ENV], os.environ[_QUEUE_ENV]),
    )
    if url.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    SQLAlchemy(app)
    SentryAPI(app)
    kill_marker = Path(os.environ[_KILL_ENV])
    signals_log = Path(os.environ[_SIGNALS_ENV])
    die_when = os.environ.get(_DIE_WHEN_ENV)

    def die_once() -> None:
        if not kill_marker.exists():
            kill_marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    @event_stored.connect_via(app, weak=False)
    def record(sender: Flask, event: t.Any, permalink: str | None, **extra: t.Any) -> None:
        with signals_log.open("a") as log:
            log.write(json.dumps([event.event_id, permalink]) + "\n")
        if event.message == DIE and die_when == "after":
            die_once()

    @task_prerun.connect(weak=False)
    def before(args: tuple[t.Any, ...] = (), **extra: t.Any) -> None:
        if die_when == "before" and args and args[0]["event"]["message"] == DIE:
            die_once()

    return app


class Worker:
    """``celery -A flask_sentry_api.worker worker`` as a real process: the solo pool (the
    task runs in the worker process itself) or the prefork pool with one child."""

    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        queue: str,
        die_when: str = "never",
        pool: str = "solo",
    ) -> None:
        assert BROKER_URL is not None
        self.log = tmp_path / f"worker-{uuid.uuid4().hex[:8]}.log"
        env = dict(
            os.environ,
            SENTRY_API_WORKER_APP="tests.test_queue_mode:worker_app",
            **{
                BROKER_ENV: BROKER_URL,
                _DB_ENV: database_url,
                _QUEUE_ENV: queue,
                _KILL_ENV: str(tmp_path / "killed"),
                _SIGNALS_ENV: str(tmp_path / "signals.log"),
                _DIE_WHEN_ENV: die_when,
            },
        )
        command = [sys.executable, "-m", "celery", "-A", "flask_sentry_api.worker", "worker"]
        command += ["--pool", pool, "--concurrency", "1", "--loglevel", "INFO"]
        command += ["-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def queue_app(tmp_path: Path) -> t.Iterator[tuple[Flask, str, str]]:
    """The web app in queue mode, on a database the worker process shares, with a queue of
    its own; and that database's URL and the queue's name."""
    assert BROKER_URL is not None
    database_url = DATABASE_URL if ON_POSTGRES else f"sqlite:///{tmp_path / 'queue.db'}"
    queue = f"sentry_api_test_{uuid.uuid4().hex}"
    app = make_app({"SQLALCHEMY_DATABASE_URI": database_url, **queue_config(BROKER_URL, queue)})
    yield app, database_url, queue
    _purge(app, queue)


def _purge(app: Flask, queue: str) -> None:
    from flask_sentry_api.queue import celery_app_for

    celery = celery_app_for(app)
    with celery.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)
        connection.default_channel.queue_delete(queue)


def _key(app: Flask) -> tuple[int, ProjectKey]:
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Queued")
        return project.id, storage.create_key(project.id, ROLE_STORE)


def _stored(app: Flask, project_id: int) -> Counter[str]:
    """How many times each event id is stored."""
    with app.app_context():
        events = get_state(app).storage.list_project_events(project_id, EVERYTHING)
        app.extensions["sqlalchemy"].session.remove()
    return Counter(event.event_id for event in events)


def _wait_for(condition: t.Callable[[], bool], worker: Worker) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not get there in {WAIT}s:\n{worker.output()[-3000:]}")
        time.sleep(0.05)


def _post(app: Flask, project_id: int, key: ProjectKey, payload: dict[str, t.Any]) -> str:
    response = app.test_client().post(
        f"/api/{project_id}/store/", json=payload, headers=sentry_auth(key)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return t.cast(str, response.get_json()["id"])


# -- without a broker --------------------------------------------------------------------------


def test_an_event_survives_the_queue_message() -> None:
    payload = event_payload(
        "Boom",
        level="warning",
        timestamp="2024-05-01T12:00:00.123456Z",
        tags={"browser": "Firefox"},
        user={"id": "42", "email": "a@example.com"},
        release="1.0",
        extra={"nested": {"list": [1, 2.5, None, "x"]}},
    )
    event = normalize_event(payload, received=datetime.now(timezone.utc))

    message = json.loads(json.dumps(event_to_message(event)))

    assert event_from_message(message) == event


def test_a_down_broker_is_a_503_with_retry_after_and_nothing_stored() -> None:
    host = make_app(queue_config(DEAD_BROKER))
    project_id, key = _key(host)

    response = host.test_client().post(
        f"/api/{project_id}/store/", json=event_payload(), headers=sentry_auth(key)
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "17"
    assert response.get_json() == {"detail": "The event queue is unavailable, try again later."}
    assert response.headers["X-Sentry-Error"] == response.get_json()["detail"]
    assert _stored(host, project_id) == Counter()


def test_queue_mode_still_authenticates_before_enqueueing() -> None:
    host = make_app(queue_config(DEAD_BROKER))
    project_id, _ = _key(host)

    response = host.test_client().post(f"/api/{project_id}/store/", json=event_payload())

    assert response.status_code == 401


def test_a_host_celery_app_publishes_and_its_worker_stores() -> None:
    from celery import Celery

    celery = Celery("host", broker="memory://", set_as_current=False)
    host = make_app(
        {"SENTRY_API_INGEST_MODE": "celery", "SENTRY_API_CELERY_APP": celery},
    )
    register_tasks(celery, host)
    project_id, key = _key(host)

    event_id = _post(host, project_id, key, event_payload("Queued by the host's app"))
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue("sentry_api")
        message = queue.get(timeout=5)
        assert message.headers["task"] == TASK_NAME
        args, _, _ = message.decode()  # Celery's message protocol 2: args, kwargs, embed
        message.ack()
        queue.close()
    assert _stored(host, project_id) == Counter()
    celery.tasks[TASK_NAME](*args)  # what the host's worker runs

    assert _stored(host, project_id) == Counter({event_id: 1})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SENTRY_API_INGEST_MODE": "queue"}, "SENTRY_API_INGEST_MODE must be one of"),
        ({"SENTRY_API_INGEST_MODE": "celery"}, "needs SENTRY_API_CELERY_APP"),
        (
            {"SENTRY_API_INGEST_MODE": "celery", "SENTRY_API_CELERY_APP": "nowhere:celery"},
            "SENTRY_API_CELERY_APP: cannot import",
        ),
        (
            {**queue_config(DEAD_BROKER), "SENTRY_API_CELERY_PUBLISH_TIMEOUT": 0},
            "SENTRY_API_CELERY_PUBLISH_TIMEOUT must be a positive number",
        ),
        (
            {**queue_config(DEAD_BROKER), "SENTRY_API_CELERY_OPTIONS": ["x"]},
            "SENTRY_API_CELERY_OPTIONS must be a dict",
        ),
        ({"SENTRY_API_CELERY_APP": "collections:OrderedDict"}, "must be a Celery app"),
        ({"SENTRY_API_CELERY_BROKER_URL": ""}, "SENTRY_API_CELERY_BROKER_URL must be"),
        ({"SENTRY_API_CELERY_QUEUE": ""}, "SENTRY_API_CELERY_QUEUE must be"),
        ({"SENTRY_API_CELERY_RETRY_AFTER": 0}, "SENTRY_API_CELERY_RETRY_AFTER must be"),
    ],
)
def test_bad_queue_settings_stop_start_up(config: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(dict(config))


def test_celery_mode_without_celery_installed_stops_start_up() -> None:
    script = (
        "import sys; sys.modules['celery'] = None\n"
        "import importlib.util; real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'celery' else real(name, *a)\n"
        "import flask_sentry_api, flask_sentry_api.views.ingest\n"
        "from flask_sentry_api.config import load_settings\n"
        "load_settings({'SENTRY_API_INGEST_MODE': 'sync'})\n"
        "load_settings({'SENTRY_API_INGEST_MODE': 'celery',"
        " 'SENTRY_API_CELERY_BROKER_URL': 'redis://x'})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert 'ConfigurationError: SENTRY_API_INGEST_MODE = "celery" needs Celery' in result.stderr


# -- with a broker and a real worker process ----------------------------------------------------


@needs_broker
def test_a_worker_stores_every_queued_event_once(
    queue_app: tuple[Flask, str, str], tmp_path: Path
) -> None:
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    first = event_payload("First")
    sent = [_post(app, project_id, key, first)]
    sent += [_post(app, project_id, key, event_payload(f"Event {n}")) for n in range(10)]
    by_envelope = event_payload("Sent in an envelope")
    response = app.test_client().post(
        f"/api/{project_id}/envelope/",
        data=envelope(event_item(by_envelope)),
        headers=sentry_auth(key),
    )
    assert response.get_json() == {"id": by_envelope["event_id"]}
    sent.append(by_envelope["event_id"])
    # An SDK's retry of an event the queue holds already.
    assert _post(app, project_id, key, first) == sent[0]
    assert _stored(app, project_id) == Counter()  # nothing stored until a worker runs

    worker = Worker(tmp_path, database_url, queue)
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), worker)
        # The duplicate's message is the last: once the log says so, it has been handled.
        _wait_for(lambda: worker.output().count("succeeded") >= len(sent) + 1, worker)
    finally:
        worker.stop()

    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))
    signalled = [json.loads(line) for line in (tmp_path / "signals.log").read_text().splitlines()]
    assert sorted(event_id for event_id, _ in signalled) == sorted(sent)
    assert all(
        permalink.startswith("http://testserver.local/api/0/groups/") for _, permalink in signalled
    )


@needs_broker
@pytest.mark.parametrize("die_when", ["before", "after"])
def test_a_worker_killed_mid_task_loses_nothing_and_stores_nothing_twice(
    queue_app: tuple[Flask, str, str], tmp_path: Path, die_when: str
) -> None:
    """kill -9 of the worker while it holds unacknowledged messages: as the DIE event's task
    starts (nothing stored: the message must come again) or once it is committed (stored:
    the message comes again and must not store it twice)."""
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Before {n}")) for n in range(5)]
    sent.append(_post(app, project_id, key, event_payload(DIE)))
    sent += [_post(app, project_id, key, event_payload(f"After {n}")) for n in range(10)]

    first = Worker(tmp_path, database_url, queue, die_when)
    try:
        # It kills itself at the DIE event, before acknowledging that message (and those it
        # had prefetched).
        first.process.wait(timeout=WAIT)
    finally:
        first.stop()
    assert first.process.returncode == -signal.SIGKILL, first.output()[-3000:]
    stored_before = _stored(app, project_id)
    assert stored_before[sent[5]] == (1 if die_when == "after" else 0)
    assert sum(stored_before.values()) < len(sent)  # it died mid-way

    second = Worker(tmp_path, database_url, queue)
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), second)
        # Every message the first worker did not acknowledge comes again (the DIE event's,
        # stored already, among them) and is handled: the log says so once per task.
        unacknowledged = len(sent) - first.output().count("succeeded")
        _wait_for(lambda: second.output().count("succeeded") >= unacknowledged, second)
    finally:
        second.stop()

    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))


@needs_broker
def test_a_killed_pool_process_gives_its_message_back(
    queue_app: tuple[Flask, str, str], tmp_path: Path
) -> None:
    """The prefork pool's child dies (kill -9) as the DIE event's task starts: the worker
    gives the message back to the broker (``reject_on_worker_lost``), a new child stores it."""
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Before {n}")) for n in range(3)]
    sent.append(_post(app, project_id, key, event_payload(DIE)))
    sent += [_post(app, project_id, key, event_payload(f"After {n}")) for n in range(3)]

    worker = Worker(tmp_path, database_url, queue, die_when="before", pool="prefork")
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), worker)
        _wait_for(lambda: worker.output().count("succeeded") >= len(sent), worker)
        assert worker.process.poll() is None  # only its pool process died
    finally:
        worker.stop()

    assert (tmp_path / "killed").exists()
    assert "WorkerLostError" in worker.output()
    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))
