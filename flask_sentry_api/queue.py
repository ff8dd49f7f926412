"""Queue mode (``SENTRY_API_INGEST_MODE = "celery"``): the ingestion endpoint publishes each
normalised event to Celery, and a Celery worker stores it; and what both modes do once an
event is stored (its signals).

Delivery is at least once: the endpoint answers 200 only once the broker has taken the
message (``retry=False``, short connection timeouts, publisher confirms on RabbitMQ), and
the worker acknowledges it only after the storage has committed (``acks_late``,
``reject_on_worker_lost``), so a worker killed mid-task leaves the message to be delivered
again. Storing twice is harmless: the storage keeps one event per ``(project, event_id)``
and answers a repeat with ``created=False``, which sends no signal.

The web side publishes one message per event, as soon as it is accepted. The worker stores
in batches: a task takes the messages waiting behind its own (up to
``SENTRY_API_CELERY_BATCH_SIZE`` events in all) and stores them in one transaction, so a
backlog drains many events per commit while a quiet queue adds no wait.

Celery is imported only by the functions that need it: importing this module (the ingestion
views do) costs nothing in sync mode, and works without Celery installed.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from datetime import datetime

from flask import Flask
from flask import current_app
from flask import request
from werkzeug.routing import BuildError

from . import errors
from . import signals
from .config import Settings
from .links import permalink_writer
from .state import get_state
from .storage import Group
from .storage import NewEvent
from .storage import Project
from .storage import SavedEvent
from .storage import Unavailable
from .storage import save_events

if t.TYPE_CHECKING:
    from celery import Celery  # type: ignore[import-untyped]
    from celery import Task
    from kombu import Message

logger = logging.getLogger("flask_sentry_api")

#: The name the web side publishes to and :func:`register_tasks` registers: the web process
#: needs no task object, so a host's Celery app publishes without importing the worker side.
TASK_NAME = "flask_sentry_api.store_event"
#: Where the package's own Celery app is kept in ``app.extensions``.
CELERY_EXTENSION_KEY = "sentry_api_celery"
#: Seconds before an event whose storage was unavailable is tried again (doubling, at most a
#: minute: less than the visibility timeout, which would deliver a waiting retry twice).
_STORAGE_RETRY_DELAY = 2
_STORAGE_RETRY_MAX_DELAY = 60


class QueueUnavailable(errors.StorageUnavailable):
    """The broker did not take the event: the SDK is told to send it again later."""

    default_detail = "The event queue is unavailable, try again later."


# -- messages ----------------------------------------------------------------------------------


def event_to_message(event: NewEvent) -> dict[str, t.Any]:
    """``event`` as JSON-ready values (the timestamp in ISO 8601, tags as pairs)."""
    message = {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    message["timestamp"] = event.timestamp.isoformat()
    message["tags"] = [list(pair) for pair in event.tags]
    message["metadata"] = dict(event.metadata)
    message["data"] = dict(event.data)
    if event.user is not None:
        message["user"] = dict(event.user)
    return message


def event_from_message(message: t.Mapping[str, t.Any]) -> NewEvent:
    """The :class:`NewEvent` that :func:`event_to_message` wrote."""
    known = {field.name for field in dataclasses.fields(NewEvent)}
    values = {name: value for name, value in message.items() if name in known}
    values["timestamp"] = datetime.fromisoformat(message["timestamp"])
    values["tags"] = tuple((str(key), str(value)) for key, value in message.get("tags", ()))
    return NewEvent(**values)


# -- the web side ------------------------------------------------------------------------------


def own_celery_app(settings: Settings) -> Celery:
    """The package's Celery app on ``SENTRY_API_CELERY_BROKER_URL``: it publishes to (and its
    worker consumes) ``SENTRY_API_CELERY_QUEUE``, fails fast when the broker is down, and
    acknowledges a message only once its event is stored."""
    from celery import Celery

    timeout = settings.celery_publish_timeout
    celery = Celery("flask_sentry_api", set_as_current=False)
    options = dict(settings.celery_options)
    transport_options = {
        # RabbitMQ: publish waits for the broker's confirm (py-amqp).
        "confirm_publish": True,
        # Redis: connect and command timeouts, so a dead broker is a fast 503.
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "max_retries": 0,
        # Redis: a killed worker's unacknowledged messages are delivered again after this
        # many seconds (Celery's default is an hour); tasks take milliseconds.
        "visibility_timeout": 300,
        **options.pop("broker_transport_options", {}),
    }
    celery.conf.update(
        broker_url=settings.celery_broker_url,
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        task_default_queue=settings.celery_queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_publish_retry=False,
        # A worker holds few unacknowledged messages: fewer to deliver again after a crash.
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
    )
    celery.conf.update(options)
    return celery


def celery_app_for(app: Flask) -> Celery:
    """The Celery app ``app`` publishes with: the host's (``SENTRY_API_CELERY_APP``), or the
    package's own, built once per app."""
    settings = get_state(app).settings
    if settings.celery_app is not None:
        return t.cast("Celery", settings.celery_app)
    celery = app.extensions.get(CELERY_EXTENSION_KEY)
    if celery is None:
        celery = app.extensions[CELERY_EXTENSION_KEY] = own_celery_app(settings)
    return t.cast("Celery", celery)


def enqueue_event(project_id: int, event: NewEvent) -> None:
    """Publish ``event`` for a worker to store; raise :class:`QueueUnavailable` (a 503 with
    ``Retry-After``) unless the broker took it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = get_state(app).settings
    celery = celery_app_for(app)
    # The worker has no request: it builds the signals' permalinks on this base URL.
    body = {
        "project_id": project_id,
        "event": event_to_message(event),
        "base_url": request.host_url,
    }
    try:
        celery.send_task(TASK_NAME, args=(body,), queue=settings.celery_queue, retry=False)
    except Exception as exc:  # kombu's and the client libraries' errors have no common base
        logger.warning("event %s not queued: %r", event.event_id, exc)
        raise QueueUnavailable(headers={"Retry-After": str(settings.celery_retry_after)}) from exc


# -- the worker side ---------------------------------------------------------------------------


def register_tasks(celery: Celery, app: Flask) -> Task:
    """Register the task that stores queued events on ``celery``, storing into ``app``'s
    storage (in its app context). Call it where the host's worker loads its Celery app; the
    ready-made :mod:`flask_sentry_api.worker` calls it for its own.

    Each run stores its own message's event together with those waiting behind it in the
    queue, up to ``SENTRY_API_CELERY_BATCH_SIZE`` in one transaction (see
    :func:`store_batch`)."""

    @celery.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
    )
    def store_event(task: Task, body: dict[str, t.Any]) -> None:
        with app.app_context():
            store_batch(task, body)

    return t.cast("Task", store_event)


def store_batch(task: Task, body: t.Mapping[str, t.Any]) -> None:
    """Store the event of the running task's message and of up to
    ``SENTRY_API_CELERY_BATCH_SIZE - 1`` more messages taken from the queue, in one
    transaction, then send their signals and acknowledge the messages taken.

    The messages taken are acknowledged only after the commit, and the task's own message
    after the task returns (``acks_late``): a worker killed before sees them all delivered
    again (RabbitMQ: as its connection drops; Redis: after the visibility timeout), and the
    storage's ``event_id`` dedupe keeps what it had committed from being stored twice. When
    the storage is unavailable, every message of the batch is published again to run after
    a delay (doubling with its retries, at most a minute) before its delivery is
    acknowledged. A message that is not a queued event is logged and dropped.
    """
    settings = get_state().settings
    taken: list[tuple[Message, t.Mapping[str, t.Any]]] = []
    pooled = None
    # Called directly (tests, a host's own code) there is no queue to take more from.
    if settings.celery_batch_size > 1 and not (
        task.request.called_directly or task.request.is_eager
    ):
        pooled = task.app.pool.acquire(block=True)
    try:
        if pooled is not None:
            taken = _take_messages(pooled, settings.celery_queue, settings.celery_batch_size - 1)
        try:
            _store_batch_bodies([body, *(taken_body for _, taken_body in taken)])
        except Unavailable as exc:
            retries = task.request.retries or 0
            for message, taken_body in taken:
                _publish_retry(task, settings.celery_queue, message, taken_body)
            raise task.retry(exc=exc, countdown=_retry_delay(retries)) from exc
        except BaseException:
            # The worker is stopping (or worse): give them back to be stored again.
            for message, _ in taken:
                message.requeue()
            raise
        for message, _ in taken:
            message.ack()
    finally:
        if pooled is not None:
            pooled.release()


def _store_batch_bodies(bodies: list[t.Mapping[str, t.Any]]) -> None:
    """:func:`store_messages`; when the batch fails otherwise than by
    :class:`~flask_sentry_api.storage.Unavailable`, each event alone, dropping (and logging)
    those that fail: one event the storage refuses must not keep the others out."""
    try:
        store_messages(bodies)
    except Unavailable:
        raise
    except Exception:
        if len(bodies) == 1:
            raise
        logger.exception("storing %d queued events failed: storing them one by one", len(bodies))
        for body in bodies:
            try:
                store_messages([body])
            except Unavailable:
                raise
            except Exception:
                logger.exception("queued event dropped: storing it failed")


def _take_messages(
    connection: t.Any, queue: str, most: int
) -> list[tuple[Message, t.Mapping[str, t.Any]]]:
    """Up to ``most`` of the messages waiting in ``queue``, unacknowledged, with their
    bodies; a broken message is logged and acknowledged (dropped), another task's message
    is given back (and ends the taking)."""
    from kombu import Queue

    taken: list[tuple[Message, t.Mapping[str, t.Any]]] = []
    try:
        source = Queue(queue).bind(connection.default_channel)
        while len(taken) < most:
            message = source.get(no_ack=False, accept=["json"])
            if message is None:
                break
            if message.headers.get("task") != TASK_NAME:
                message.requeue()
                break
            try:
                args = message.decode()[0]  # Celery's message protocol 2: args, kwargs, embed
                body = args[0]
                if not isinstance(body, dict):
                    raise TypeError(f"the task's argument is a {type(body).__name__}")
            except Exception as exc:
                logger.error("queued message %s dropped: %r", message.delivery_tag, exc)
                message.ack()
                continue
            taken.append((message, body))
    except Exception as exc:  # the broker's and its client's errors have no common base
        # Store what was taken: the rest waits in the queue for the next task.
        logger.warning("taking more queued events failed: %r", exc)
    return taken


def _retry_delay(retries: int) -> int:
    return int(min(_STORAGE_RETRY_DELAY * 2**retries, _STORAGE_RETRY_MAX_DELAY))


def _publish_retry(task: Task, queue: str, message: Message, body: t.Mapping[str, t.Any]) -> None:
    """Publish a taken message's event again to run after its retry delay, then acknowledge
    the message (published first: a crash between them stores it twice, deduplicated)."""
    retries = int(message.headers.get("retries") or 0)
    try:
        task.apply_async(
            args=(body,), queue=queue, countdown=_retry_delay(retries), retries=retries + 1
        )
    except Exception as exc:  # the broker is gone too: it gives the message back itself
        logger.warning("queued event not rescheduled: %r", exc)
        message.requeue()
        return
    message.ack()


def store_messages(bodies: t.Sequence[t.Mapping[str, t.Any]]) -> list[SavedEvent | None]:
    """Store queued events in the current app's storage, in one transaction when it can
    (:func:`~flask_sentry_api.storage.save_events`), and send the signals of each one
    created; None for an event whose project is gone or whose message is broken (both are
    logged and dropped). Raises :class:`~flask_sentry_api.storage.Unavailable` when the
    storage is (nothing of the batch is stored, the SQL storage's case)."""
    parsed: list[tuple[int, NewEvent, str | None] | None] = []
    for body in bodies:
        try:
            parsed.append(
                (int(body["project_id"]), event_from_message(body["event"]), body.get("base_url"))
            )
        except Exception as exc:
            logger.error("queued event dropped: its message is broken: %r", exc)
            parsed.append(None)
    items = [(project_id, event) for project_id, event, _ in filter(None, parsed)]
    stored = iter(save_events(get_state().storage, items) if items else [])
    results: list[SavedEvent | None] = []
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for entry in parsed:
        if entry is None:
            results.append(None)
            continue
        project_id, event, base_url = entry
        saved = next(stored)
        results.append(saved)
        if saved is None:
            logger.warning(
                "queued event %s dropped: project %s is gone", event.event_id, project_id
            )
        elif needs_signals(saved):
            with app.test_request_context(base_url=base_url):
                send_event_signals(project_id, saved)
    return results


def store_message(body: t.Mapping[str, t.Any]) -> SavedEvent | None:
    """Store one queued event in the current app's storage and send its signals; None when
    its project is gone (the event is dropped)."""
    return store_messages([body])[0]


# -- signals (both modes) ----------------------------------------------------------------------


def needs_signals(saved: SavedEvent) -> bool:
    """Whether storing ``saved`` has a receiver to tell; the check keeps the hot path free of
    the project read when none is connected."""
    return saved.created and bool(
        signals.event_stored.receivers
        or (saved.is_new_group and signals.issue_created.receivers)
        or (saved.is_regression and signals.issue_regressed.receivers)
    )


def send_event_signals(project_id: int, saved: SavedEvent) -> None:
    """Send :data:`~flask_sentry_api.signals.event_stored`, then ``issue_created`` or
    ``issue_regressed``, for an event the storage has committed."""
    project = get_state().storage.get_project(project_id)
    if project is None:  # deleted since the event was stored: nothing left to alert about
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    kwargs = {
        "project": project,
        "group": saved.group,
        "event": saved.event,
        "permalink": group_permalink(project, saved.group),
    }
    signals.send(signals.event_stored, app, **kwargs)
    if saved.is_new_group:
        signals.send(signals.issue_created, app, **kwargs)
    elif saved.is_regression:
        signals.send(signals.issue_regressed, app, **kwargs)


def group_permalink(project: Project, group: Group) -> str | None:
    """The group's ``permalink`` as the API serialises it; None when it cannot be built (no
    template, and only the ingestion blueprint is registered)."""
    try:
        return permalink_writer(project)(group)
    except BuildError:
        return None
