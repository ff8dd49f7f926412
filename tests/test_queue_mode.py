"""Queue mode (``SENTRY_API_INGEST_MODE = "celery"``): the endpoint enqueues, a real Celery
worker process stores, in batches of many events per transaction, every event exactly once,
a worker killed mid-batch included; a broker that is down is a fast 503 with ``Retry-After``
and nothing stored.

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
from flask_sentry_api.storage import Unavailable
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
_TRACE_ENV = "QUEUE_TEST_TRACE"
_BATCH_SIZE_ENV = "QUEUE_TEST_BATCH_SIZE"
#: The message of the event whose worker dies while storing it (see :func:`worker_app`).
DIE = "die while storing this one"


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
                "unacked_restore_limit": 100,
                # A worker killed (at a test's end) while it restored messages leaves the
                # lock behind: it must not stop the next tests' restores for minutes.
                "unacked_mutex_expire": 5,
            }
        },
    }


# -- the worker process's app ------------------------------------------------------------------


def worker_app() -> Flask:
    """The host app of the worker process (``SENTRY_API_WORKER_APP``): the test's database
    and broker, a receiver that records the signals, and hooks that kill the process once
    when it stores the :data:`DIE` event, before its message (and those stored with it) is
    acknowledged: as the batch holding it reaches the storage (``received``), once every
    statement of the batch ran but before its commit (``uncommitted``), or right after the
    commit (``committed``, as its signal is sent). With ``unavailable`` the storage raises
    :class:`~flask_sentry_api.storage.Unavailable` for the first batch instead.

    The trace file gets a line per batch stored (``stored N``), per commit of a batch
    (``commit``) and per task finished (``done N``: its batch's messages are acknowledged).
    """
    import sqlalchemy as sa
    from celery.signals import task_postrun
    from celery.signals import task_prerun

    app = Flask("queue_worker")
    url = os.environ[_DB_ENV]
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SERVER_NAME="testserver.local",
        SENTRY_API_CELERY_BATCH_SIZE=int(os.environ.get(_BATCH_SIZE_ENV, "100")),
        **queue_config(os.environ[BROKER_ENV], os.environ[_QUEUE_ENV]),
    )
    if url.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    db = SQLAlchemy(app)
    SentryAPI(app)
    kill_marker = Path(os.environ[_KILL_ENV])
    signals_log = Path(os.environ[_SIGNALS_ENV])
    trace_log = Path(os.environ[_TRACE_ENV])
    die_when = os.environ.get(_DIE_WHEN_ENV)
    storing: list[t.Any] = []  # the batch being stored, while it is
    last_batch = [0]

    def trace(line: str) -> None:
        with trace_log.open("a") as log:
            log.write(line + "\n")

    def die_once() -> None:
        if not kill_marker.exists():
            kill_marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    storage = get_state(app).storage
    save_event, save_events = storage.save_event, storage.save_events

    def storing_batch(items: list[tuple[int, t.Any]], store: t.Callable[[], t.Any]) -> t.Any:
        storing[:] = items
        trace(f"storing {len(items)}" + (" with DIE" if _holds_die(items) else ""))
        if die_when == "received" and _holds_die(items):
            die_once()
        if die_when == "unavailable" and not kill_marker.exists():
            kill_marker.touch()  # once: the storage is back for the retries
            raise Unavailable("the test's database is down")
        try:
            result = store()
        finally:
            storing.clear()
        trace(f"stored {len(items)}")
        last_batch[0] += len(items)
        return result

    # The worker stores through save_events; save_event is the storage's own per-event path.
    storage.save_events = lambda items: storing_batch(list(items), lambda: save_events(items))  # type: ignore[method-assign]
    storage.save_event = lambda project_id, event: storing_batch(  # type: ignore[method-assign]
        [(project_id, event)], lambda: save_event(project_id, event)
    )

    def on_commit(connection: t.Any) -> None:
        if storing:
            trace("commit")
            if die_when == "uncommitted" and _holds_die(storing):
                die_once()

    with app.app_context():
        sa.event.listen(db.engine, "commit", on_commit)

    @event_stored.connect_via(app, weak=False)
    def record(sender: Flask, event: t.Any, permalink: str | None, **extra: t.Any) -> None:
        with signals_log.open("a") as log:
            log.write(json.dumps([event.event_id, permalink]) + "\n")
        if event.message == DIE and die_when == "committed":
            die_once()

    @task_prerun.connect(weak=False)
    def before(**extra: t.Any) -> None:
        last_batch[0] = 0

    @task_postrun.connect(weak=False)
    def after(**extra: t.Any) -> None:
        trace(f"done {last_batch[0]}")

    return app


def _holds_die(items: t.Sequence[tuple[int, t.Any]]) -> bool:
    return any(event.message == DIE for _, event in items)


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
        batch_size: int = 100,
    ) -> None:
        assert BROKER_URL is not None
        name = uuid.uuid4().hex[:8]
        self.log = tmp_path / f"worker-{name}.log"
        self.trace = tmp_path / f"worker-{name}.trace"
        self.trace.touch()
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
                _TRACE_ENV: str(self.trace),
                _BATCH_SIZE_ENV: str(batch_size),
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

    def traced(self, what: str) -> list[int]:
        """The numbers of the trace's ``what`` lines (``stored``, ``done``), or a 0 for
        each (``commit``)."""
        lines = self.trace.read_text().splitlines()
        return [
            int(line.split()[1]) if " " in line else 0 for line in lines if line.split()[0] == what
        ]

    def handled(self) -> int:
        """How many messages the worker's finished tasks handled: their events stored (or
        found stored), signals sent, messages acknowledged (the task's own right after)."""
        return sum(self.traced("done"))


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
        # Every message handled, the duplicate's included: none sends a signal twice.
        _wait_for(lambda: worker.handled() >= len(sent) + 1, worker)
    finally:
        worker.stop()

    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))
    signalled = [json.loads(line) for line in (tmp_path / "signals.log").read_text().splitlines()]
    assert sorted(event_id for event_id, _ in signalled) == sorted(sent)
    assert all(
        permalink.startswith("http://testserver.local/api/0/groups/") for _, permalink in signalled
    )


@needs_broker
@pytest.mark.parametrize("batch_size", [100, 1])
def test_a_worker_stores_a_backlog_in_few_transactions(
    queue_app: tuple[Flask, str, str], tmp_path: Path, batch_size: int
) -> None:
    """A backlog of 40 events: a task takes the messages waiting behind its own and stores
    them in one transaction. The worker holds a few prefetched messages, each its own task
    (and transaction, once the queue is empty), so a handful of commits in all; with
    ``SENTRY_API_CELERY_BATCH_SIZE = 1`` one commit per event."""
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Event {n % 3}")) for n in range(40)]

    worker = Worker(tmp_path, database_url, queue, batch_size=batch_size)
    try:
        _wait_for(lambda: worker.handled() >= len(sent), worker)
    finally:
        worker.stop()

    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))
    commits = len(worker.traced("commit"))
    if batch_size == 1:
        assert commits == len(sent)
        assert set(worker.traced("stored")) == {1}
    else:
        assert commits == len(worker.traced("stored")) <= len(sent) // 4
        assert max(worker.traced("stored")) > len(sent) // 2


@needs_broker
@pytest.mark.parametrize("die_when", ["received", "uncommitted", "committed"])
def test_a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    queue_app: tuple[Flask, str, str], tmp_path: Path, die_when: str
) -> None:
    """kill -9 of the worker while it stores a batch that holds the DIE event amid others:
    as the batch reaches the storage, once its statements ran but before the commit
    (nothing of it stored: its messages must come again), or right after the commit
    (stored: they come again and must not be stored twice)."""
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Before {n}")) for n in range(5)]
    sent.append(_post(app, project_id, key, event_payload(DIE)))
    sent += [_post(app, project_id, key, event_payload(f"After {n}")) for n in range(10)]

    first = Worker(tmp_path, database_url, queue, die_when)
    try:
        # It kills itself storing the DIE event, before acknowledging its batch's messages
        # (and those it had prefetched).
        first.process.wait(timeout=WAIT)
    finally:
        first.stop()
    assert first.process.returncode == -signal.SIGKILL, first.output()[-3000:]
    dying = [line for line in first.trace.read_text().splitlines() if "DIE" in line]
    assert len(dying) == 1 and int(dying[0].split()[1]) > 1  # a batch, DIE among others
    stored_before = _stored(app, project_id)
    assert stored_before[sent[5]] == (1 if die_when == "committed" else 0)
    assert sum(first.traced("done")) < len(sent)  # it died before acknowledging them all

    second = Worker(tmp_path, database_url, queue)
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), second)
        # Every message the first worker did not acknowledge comes again (those of the DIE
        # event's batch among them, stored already when it died after the commit) and is
        # handled.
        unacknowledged = len(sent) - sum(first.traced("done"))
        _wait_for(lambda: second.handled() >= unacknowledged, second)
    finally:
        second.stop()

    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))
    signals_log = tmp_path / "signals.log"
    signalled = [json.loads(line)[0] for line in signals_log.read_text().splitlines()]
    # At most once each: a redelivered event stored before sends none (and so the events a
    # worker killed between the commit and their signals never send theirs).
    assert len(signalled) == len(set(signalled)) and set(signalled) <= set(sent)
    if die_when != "committed":
        assert sorted(signalled) == sorted(sent)


@needs_broker
def test_a_batch_the_storage_could_not_take_is_stored_later(
    queue_app: tuple[Flask, str, str], tmp_path: Path
) -> None:
    """The storage is unavailable for the first batch: every event of it is tried again
    later (published again with a delay), none is lost, none stored twice."""
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Event {n}")) for n in range(12)]

    worker = Worker(tmp_path, database_url, queue, die_when="unavailable")
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), worker)
        _wait_for(lambda: worker.handled() >= len(sent), worker)
    finally:
        worker.stop()

    failed = worker.trace.read_text().splitlines()[0].split()
    assert failed[0] == "storing" and int(failed[1]) > 1  # a batch, not one event
    assert "Retry in 2s" in worker.output()
    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))


@needs_broker
def test_a_killed_pool_process_gives_its_messages_back(
    queue_app: tuple[Flask, str, str], tmp_path: Path
) -> None:
    """The prefork pool's child dies (kill -9) as the batch holding the DIE event reaches
    the storage: the worker gives the task's message back to the broker
    (``reject_on_worker_lost``), the broker the messages the child took (RabbitMQ: as the
    child's connection drops; Redis: after the visibility timeout), a new child stores
    them."""
    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Before {n}")) for n in range(3)]
    sent.append(_post(app, project_id, key, event_payload(DIE)))
    sent += [_post(app, project_id, key, event_payload(f"After {n}")) for n in range(3)]

    worker = Worker(tmp_path, database_url, queue, die_when="received", pool="prefork")
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), worker)
        _wait_for(lambda: worker.handled() >= len(sent), worker)
        assert worker.process.poll() is None  # only its pool process died
    finally:
        worker.stop()

    assert (tmp_path / "killed").exists()
    assert "WorkerLostError" in worker.output()
    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))


@needs_broker
def test_a_broken_message_is_dropped_and_the_batch_stored(
    queue_app: tuple[Flask, str, str], tmp_path: Path
) -> None:
    """A message that is no queued event (a body the worker cannot read) amid a backlog is
    logged and dropped; the events around it are stored."""
    from flask_sentry_api.queue import celery_app_for

    app, database_url, queue = queue_app
    project_id, key = _key(app)
    sent = [_post(app, project_id, key, event_payload(f"Before {n}")) for n in range(6)]
    celery = celery_app_for(app)
    with app.app_context():
        celery.send_task(TASK_NAME, args=({"project_id": project_id, "event": {}},), queue=queue)
        celery.send_task(TASK_NAME, args=("not a dict",), queue=queue)
    sent += [_post(app, project_id, key, event_payload(f"After {n}")) for n in range(6)]

    worker = Worker(tmp_path, database_url, queue)
    try:
        _wait_for(lambda: sum(_stored(app, project_id).values()) >= len(sent), worker)
        _wait_for(lambda: worker.output().count("dropped") >= 2, worker)
    finally:
        worker.stop()

    assert _stored(app, project_id) == Counter(dict.fromkeys(sent, 1))
