"""Queue mode (``SENTRY_API_INGEST_MODE = "celery"``): the ingestion endpoint publishes each
normalised event to Celery, and a Celery worker stores it; and what both modes do once an
event is stored (its signals).

Delivery is at least once: the endpoint answers 200 only once the broker has taken the
message (``retry=False``, short connection timeouts, publisher confirms on RabbitMQ), and
the task acknowledges it only after the storage has committed (``acks_late``,
``reject_on_worker_lost``), so a worker killed mid-task leaves the message to be delivered
again. Storing twice is harmless: the storage keeps one event per ``(project, event_id)``
and answers a repeat with ``created=False``, which sends no signal.

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
from flask import url_for
from werkzeug.routing import BuildError

from . import errors
from . import signals
from .config import Settings
from .state import get_state
from .storage import Group
from .storage import NewEvent
from .storage import Project
from .storage import SavedEvent
from .storage import Unavailable

if t.TYPE_CHECKING:
    from celery import Celery  # type: ignore[import-untyped]
    from celery import Task

logger = logging.getLogger("flask_sentry_api")

#: The name the web side publishes to and :func:`register_tasks` registers: the web process
#: needs no task object, so a host's Celery app publishes without importing the worker side.
TASK_NAME = "flask_sentry_api.store_event"
#: Where the package's own Celery app is kept in ``app.extensions``.
CELERY_EXTENSION_KEY = "sentry_api_celery"
#: Seconds before a task whose storage was unavailable runs again (doubling, at most a minute:
#: less than the visibility timeout, which would deliver a waiting retry twice).
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
    ready-made :mod:`flask_sentry_api.worker` calls it for its own."""

    @celery.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        autoretry_for=(Unavailable,),
        retry_backoff=_STORAGE_RETRY_DELAY,
        retry_backoff_max=_STORAGE_RETRY_MAX_DELAY,
        max_retries=None,
    )
    def store_event(task: Task, body: dict[str, t.Any]) -> None:
        with app.app_context():
            store_message(body)

    return t.cast("Task", store_event)


def store_message(body: t.Mapping[str, t.Any]) -> SavedEvent | None:
    """Store one queued event in the current app's storage and send its signals; None when
    its project is gone (the event is dropped)."""
    project_id = int(body["project_id"])
    event = event_from_message(body["event"])
    try:
        saved = get_state().storage.save_event(project_id, event)
    except LookupError:
        logger.warning("queued event %s dropped: project %s is gone", event.event_id, project_id)
        return None
    if needs_signals(saved):
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        with app.test_request_context(base_url=body.get("base_url")):
            send_event_signals(project_id, saved)
    return saved


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
    """The group's ``permalink`` as the API serialises it (``SENTRY_API_PERMALINK_TEMPLATE``,
    or the group's API URL); None when neither can be built (only this blueprint is
    registered, and no template)."""
    template = get_state().settings.permalink_template
    if template is not None:
        return template.format(
            base_url=request.host_url.rstrip("/"),
            project_id=project.id,
            project_slug=project.slug,
            group_id=group.id,
        )
    try:
        return url_for("sentry_api.group_details", group_id=group.id, _external=True)
    except BuildError:
        return None
