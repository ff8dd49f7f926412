"""Normalise an event as raven 6 or sentry-sdk 2 sends it into a storage ``NewEvent``.

Both protocol generations are read: raven's store payloads (integer levels, the
``sentry.interfaces.*`` keys, bare exception lists, tags as pairs) and the ``event`` items
of sentry-sdk envelopes (``logentry``, ``exception.values``, ``contexts``, ...).

Sentry's attitude is kept: a field of the wrong type is dropped or clamped (an old
timestamp becomes the receive time), but an interface of the wrong shape (exception values
that are not objects, frames that are not a list) is a
:class:`~flask_sentry_api.errors.BadRequest` naming it. No JSON input raises anything else.
Everything stored in ``NewEvent.data`` is plain JSON: finite floats, strings free of NUL
and lone surrogates (which PostgreSQL and UTF-8 encoders refuse), trimmed to SPEC §11's
bounds by :mod:`.trim` with what was cut noted in ``data["_meta"]``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any

from ..errors import BadRequest
from ..storage import NewEvent
from ..storage import is_valid_release_version
from . import grouping
from .interfaces import read_breadcrumbs
from .interfaces import read_contexts
from .interfaces import read_exceptions
from .interfaces import read_fingerprint
from .interfaces import read_message
from .interfaces import read_modules
from .interfaces import read_object
from .interfaces import read_request
from .interfaces import read_stacktrace
from .interfaces import read_threads
from .interfaces import read_user
from .interfaces import user_ident as make_user_ident
from .trim import MAX_TAG_VALUE
from .trim import Bag
from .trim import Meta
from .trim import clean
from .trim import drop_bag
from .trim import dumps
from .trim import fit_size
from .trim import keep_tags
from .trim import trim_str
from .values import MAX_MESSAGE
from .values import as_int
from .values import as_utc
from .values import attr
from .values import ellipsize
from .values import first_line
from .values import parse_time
from .values import safe_str

#: Old raven clients name interfaces by their Sentry class path.
LEGACY_ALIASES: dict[str, str] = {
    "sentry.interfaces.Exception": "exception",
    "sentry.interfaces.Message": "logentry",
    "sentry.interfaces.Http": "request",
    "sentry.interfaces.User": "user",
    "sentry.interfaces.Stacktrace": "stacktrace",
    "sentry.interfaces.Template": "template",
    "sentry.interfaces.Csp": "csp",
    "sentry.interfaces.Breadcrumbs": "breadcrumbs",
}

MAX_TITLE = 100
MAX_CULPRIT = 200
MAX_ENVIRONMENT = 64
MAX_SERVER_NAME = 128
MAX_LOGGER = 64
MAX_PLATFORM = 64
MAX_METADATA_VALUE = 1024
#: Accepted clock skew into the future, and the oldest event time kept as sent.
FUTURE_SKEW = timedelta(minutes=1)
MAX_AGE = timedelta(days=30)

_LEVEL_NAMES = {
    "debug": "debug",
    "info": "info",
    "log": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "fatal": "fatal",
    "critical": "fatal",
}
_LEVEL_NUMBERS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "fatal"}
_HEX32_RE = re.compile(r"[0-9a-f]{32}")
# Sentry's tag key rule: keys stay usable in "key:value" searches.
_TAG_KEY_RE = re.compile(r"[a-zA-Z0-9_.:-]+")


def normalize_event(payload: Mapping[str, Any], *, received: datetime) -> NewEvent:
    """Build the :class:`~flask_sentry_api.storage.NewEvent` for ``payload``.

    :param payload: the decoded store body or envelope ``event`` item.
    :param received: when the server got it; replaces a missing or implausible timestamp.
    :raises BadRequest: ``payload`` is not an object, ``event_id`` is not a UUID, or an
        interface has the wrong shape.
    """
    if not isinstance(payload, Mapping):
        raise BadRequest("Invalid event: expected a JSON object.")
    received = as_utc(received)
    event = dict(payload)
    for legacy, modern in LEGACY_ALIASES.items():
        if legacy in event:
            value = event.pop(legacy)
            event.setdefault(modern, value)

    meta = Meta()
    level = _level(event.get("level"))
    logger = attr(event.get("logger"), MAX_LOGGER)
    server_name = attr(event.get("server_name"), MAX_SERVER_NAME)
    release = _release(event.get("release"), meta.child("release"))
    environment = attr(event.get("environment"), MAX_ENVIRONMENT)
    user = read_user(event.get("user"), meta.child("user"))
    user_ident = make_user_ident(user)

    exceptions = read_exceptions(event.get("exception"), meta.child("exception"))
    stacktrace = read_stacktrace(event.get("stacktrace"), "stacktrace", meta.child("stacktrace"))
    if stacktrace is not None and len(exceptions) == 1 and exceptions[0]["stacktrace"] is None:
        # Old raven sent one exception plus a separate stacktrace interface; Sentry
        # treated that stack as the exception's.
        exceptions[0]["stacktrace"], stacktrace = stacktrace, None
    threads = read_threads(event.get("threads"), meta.child("threads"))
    logentry = read_message(event.get("logentry"), event.get("message"), meta)
    request = read_request(event.get("request"), meta.child("request"))
    breadcrumbs = read_breadcrumbs(event.get("breadcrumbs"), meta.child("breadcrumbs"))
    template = read_object(event.get("template"), "template", meta.child("template"))
    csp = read_object(event.get("csp"), "csp", meta.child("csp"))
    fingerprint = read_fingerprint(event.get("fingerprint"))

    log_message = logentry["formatted"] if logentry else ""
    metadata: dict[str, Any]
    if exceptions:
        event_type = "error"
        primary = exceptions[-1]  # Sentry orders causes first; the last one was raised last
        exc_type = primary["type"] or "Error"
        exc_value = primary["value"] or ""
        message = f"{exc_type}: {exc_value}" if exc_value else exc_type
        headline = first_line(exc_value)
        title = f"{exc_type}: {ellipsize(headline, MAX_TITLE)}" if headline else exc_type
        metadata = {"type": exc_type, "value": ellipsize(exc_value, MAX_METADATA_VALUE)}
    else:
        event_type = "default"
        message = log_message
        title = ellipsize(first_line(message), MAX_TITLE) or "<unlabeled event>"
        metadata = {"title": title}
    message = ellipsize(message, MAX_MESSAGE)

    culprit = attr(event.get("culprit"), None)
    if culprit is None:
        culprit = _derived_culprit(exceptions, stacktrace, threads)
    if culprit is None and request is not None:
        culprit = request.get("url")
    culprit = ellipsize(culprit, MAX_CULPRIT) if culprit else None

    entries: list[dict[str, Any]] = []
    # raven repeats "Type: value" as the message of errors; show a message only if it says
    # something the exception does not (a log line, for instance).
    if logentry and (not exceptions or logentry["formatted"] != message):
        entries.append({"type": "message", "data": logentry})
    if exceptions:
        entries.append(
            {
                "type": "exception",
                "data": {"values": exceptions, "hasSystemFrames": _has_system_frames(exceptions)},
            }
        )
    for kind, body in (
        ("stacktrace", stacktrace),
        ("threads", threads),
        ("template", template),
        ("request", request),
        ("breadcrumbs", breadcrumbs),
        ("csp", csp),
    ):
        if body is not None:
            entries.append({"type": kind, "data": body})

    checksum = event.get("checksum")
    group_hash = grouping.group_hash(
        {
            "exception": {"values": exceptions},
            "logentry": logentry,
            "message": log_message,
            "fingerprint": fingerprint,
            "checksum": safe_str(checksum) if isinstance(checksum, str) else None,
        }
    )

    extra = event.get("extra")
    sdk = event.get("sdk")
    data: dict[str, Any] = {
        "entries": entries,
        "extra": clean(extra, meta.child("extra")) if isinstance(extra, Mapping) else {},
        "contexts": read_contexts(event.get("contexts"), meta.child("contexts")),
        "sdk": clean(sdk, meta.child("sdk")) if isinstance(sdk, Mapping) else None,
        "fingerprint": fingerprint,
        "metadata": metadata,
        "type": event_type,
        "server_name": server_name,
        "transaction": attr(event.get("transaction"), MAX_CULPRIT),
        "modules": read_modules(event.get("modules")),
    }
    tags = _tags(
        event.get("tags"),
        derived=(
            ("level", level),
            ("logger", logger),
            ("server_name", server_name),
            ("release", release),
            ("environment", environment),
            ("user", user_ident),
        ),
        meta=meta.child("tags"),
    )
    fit_size(data, _size_tiers(data, meta), meta)

    return NewEvent(
        event_id=_event_id(event.get("event_id")),
        group_hash=group_hash,
        timestamp=_event_time(event.get("timestamp"), received),
        message=message,
        title=title,
        level=level,
        culprit=culprit,
        logger=logger,
        platform=attr(event.get("platform"), MAX_PLATFORM) or "other",
        type=event_type,
        metadata=metadata,
        release=release,
        environment=environment,
        user=user,
        user_ident=user_ident,
        tags=tags,
        data=data,
    )


def _level(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit() and len(text) < 4:
            return _LEVEL_NUMBERS.get(int(text), "error")
        return _LEVEL_NAMES.get(text, "error")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = as_int(value)
        return _LEVEL_NUMBERS.get(number, "error") if number is not None else "error"
    return "error"


def _release(value: Any, meta: Meta) -> str | None:
    """The event's release version, trimmed, or ``None``: like Relay, a version that breaks
    the rule (:func:`~flask_sentry_api.storage.is_valid_release_version`: too long, a
    control character, a slash, ``latest``, ...) is dropped, not cut, and noted in
    ``_meta`` as ``{"err": ["invalid_data"], "val": <the version sent>}``, so ingestion never
    makes a release the API could not reach."""
    text = attr(value, None)
    if text is None or is_valid_release_version(text):
        return text
    meta.note(err=["invalid_data"], val=trim_str(text))
    return None


def _event_id(value: Any) -> str:
    if value is None or value == "":
        return uuid.uuid4().hex
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "")
        if _HEX32_RE.fullmatch(text):
            return text
    raise BadRequest("Invalid event_id: expected a 32-character hexadecimal UUID.")


def _event_time(value: Any, received: datetime) -> datetime:
    moment = parse_time(value)
    # Sentry clamps rather than rejects: a wrong client clock must not lose the event.
    if moment is None or moment > received + FUTURE_SKEW or moment < received - MAX_AGE:
        return received
    return moment


def _tags(
    value: Any, *, derived: tuple[tuple[str, str | None], ...], meta: Meta
) -> tuple[tuple[str, str], ...]:
    """The event's tags, derived ones first (they are reserved); see :func:`.trim.keep_tags`."""
    sent = len(value) if isinstance(value, (Mapping, list)) else 0
    return keep_tags(_tag_pairs(value, derived), meta, sent=sent)


def _tag_pairs(
    value: Any, derived: tuple[tuple[str, str | None], ...]
) -> Iterator[tuple[str, str]]:
    """Candidate ``(key, value)`` tags, read lazily (an event may carry 100,000 of them)."""
    reserved = set()
    for derived_key, derived_text in derived:
        if derived_text:
            reserved.add(derived_key)
            yield derived_key, derived_text[:MAX_TAG_VALUE]
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list):
        items = (pair for pair in value if isinstance(pair, (list, tuple)) and len(pair) == 2)
    else:
        items = ()
    for raw_key, raw_value in items:
        key = attr(raw_key, None)
        if key is None or key in reserved or not _TAG_KEY_RE.fullmatch(key):
            continue
        if isinstance(raw_value, (Mapping, list)):
            text = dumps(raw_value).strip()
        elif isinstance(raw_value, bool):
            text = str(raw_value)
        else:
            text = attr(raw_value, None) or ""
        if text:
            yield key, text


def _size_tiers(data: dict[str, Any], meta: Meta) -> list[list[Bag]]:
    """What :func:`.trim.fit_size` may drop: bags first, then whole frame lists."""
    bags: list[Bag] = [
        drop_bag(data, "extra", meta.child("extra"), {}),
        drop_bag(data, "contexts", meta.child("contexts"), {}),
        drop_bag(data, "sdk", meta.child("sdk"), None),
        drop_bag(data, "modules", meta.child("modules"), {}),
    ]
    frame_lists: list[Bag] = []
    for entry in data["entries"]:
        kind, body = entry["type"], entry["data"]
        if kind == "breadcrumbs":
            bags.append(drop_bag(body, "values", meta.child("breadcrumbs").child("values"), []))
        elif kind == "request":
            for key in ("data", "cookies", "env", "headers", "query_string"):
                bags.append(drop_bag(body, key, meta.child("request").child(key), None))
        elif kind in ("template", "csp"):
            bags.append(drop_bag(entry, "data", meta.child(kind), {}))
        elif kind == "message":
            bags.append(drop_bag(body, "params", meta.child("logentry").child("params"), None))
        stacks: list[tuple[Meta, dict[str, Any] | None]] = []
        if kind == "exception":
            values_meta = meta.child("exception").child("values")
            for index, exc in enumerate(body["values"]):
                stacks.append((values_meta.child(index).child("stacktrace"), exc["stacktrace"]))
        elif kind == "threads":
            values_meta = meta.child("threads").child("values")
            for index, thread in enumerate(body["values"]):
                stacks.append((values_meta.child(index).child("stacktrace"), thread["stacktrace"]))
        elif kind == "stacktrace":
            stacks.append((meta.child("stacktrace"), body))
        for stack_meta, stack in stacks:
            if stack is None:
                continue
            frames_meta = stack_meta.child("frames")
            for index, frame in enumerate(stack["frames"]):
                bags.append(drop_bag(frame, "vars", frames_meta.child(index).child("vars"), None))
            frame_lists.append(drop_bag(stack, "frames", frames_meta, []))
    return [bags, frame_lists]


def _derived_culprit(
    exceptions: list[dict[str, Any]],
    stacktrace: dict[str, Any] | None,
    threads: dict[str, Any] | None,
) -> str | None:
    stacks = [exc["stacktrace"] for exc in reversed(exceptions)]
    stacks.append(stacktrace)
    if threads:
        ordered = sorted(threads["values"], key=lambda t: not (t["crashed"] or t["current"]))
        stacks.extend(thread["stacktrace"] for thread in ordered)
    for stack in stacks:
        culprit = _frames_culprit(stack["frames"]) if stack else None
        if culprit:
            return culprit
    return None


def _frames_culprit(frames: list[dict[str, Any]]) -> str | None:
    """``module in function`` of the innermost in-app frame, else of the innermost frame."""
    fallback = None
    for frame in reversed(frames):
        text = _frame_culprit(frame)
        if not text:
            continue
        if frame["in_app"]:
            return text
        if fallback is None:
            fallback = text
    return fallback


def _frame_culprit(frame: Mapping[str, Any]) -> str | None:
    where: str | None = frame["module"] or frame["filename"] or frame["abs_path"]
    function: str | None = frame["function"]
    if where and function:
        return f"{where} in {function}"
    return where or function


def _has_system_frames(exceptions: list[dict[str, Any]]) -> bool:
    frames = [
        frame
        for exc in exceptions
        if exc["stacktrace"] is not None
        for frame in exc["stacktrace"]["frames"]
    ]
    return any(frame["in_app"] for frame in frames) and not all(frame["in_app"] for frame in frames)
