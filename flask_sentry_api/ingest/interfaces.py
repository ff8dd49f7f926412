"""Normalise the interfaces of an event (exception, stack traces, message, request, ...).

Each ``read_*`` function takes what the SDK sent under one key and returns plain JSON in
the shape the Event API serves in ``entries``, or ``None`` when the key was absent. A value
of the wrong shape is a :class:`~flask_sentry_api.errors.BadRequest` naming the interface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import islice
from typing import Any

from ..errors import BadRequest
from .trim import MAX_ENTRIES
from .trim import MAX_FRAMES
from .trim import Meta
from .trim import clean
from .trim import dumps
from .trim import keep_frames
from .values import MAX_MESSAGE
from .values import MAX_NAME
from .values import MAX_TAG_VALUE
from .values import as_int
from .values import attr
from .values import ellipsize
from .values import json_key
from .values import parse_time
from .values import raw_str
from .values import safe_repr
from .values import safe_str

MAX_EXCEPTION_TYPE = 128
MAX_EXCEPTION_VALUE = 4096
MAX_EXCEPTIONS = 50
MAX_BREADCRUMBS = 100

_FORMAT_SPEC_RE = re.compile(r"%(?:\([^)]*\))?[#0+ -]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_MAX_FORMAT_SPECS = 100
_MAX_FORMAT_OUTPUT = 200_000  # messages keep 8,192 characters anyway
_USER_IDENT_FIELDS = (
    ("id", "id"),
    ("username", "username"),
    ("email", "email"),
    ("ip_address", "ip"),
)


def read_object(value: Any, name: str, meta: Meta | None = None) -> dict[str, Any] | None:
    """An interface kept as sent (``template``, ``csp``), cleaned to plain JSON."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest(f"Invalid {name} interface: expected an object.")
    cleaned: dict[str, Any] = clean(value, meta)
    return cleaned


def _values(value: Any, name: str) -> list[Mapping[str, Any]]:
    """The objects of a ``{"values": [...]}`` interface (a bare list is accepted)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        items = value.get("values")
        if items is None:
            return []
    elif isinstance(value, list):
        items = value
    else:
        raise BadRequest(f"Invalid {name} interface: expected an object with a values list.")
    if not isinstance(items, list):
        raise BadRequest(f"Invalid {name} interface: values must be a list.")
    result: list[Mapping[str, Any]] = []
    for index, item in enumerate(items):
        if item is None:
            continue  # Relay skips nulls too
        if not isinstance(item, Mapping):
            raise BadRequest(f"Invalid {name} interface: values[{index}] is not an object.")
        result.append(item)
    return result


def read_exceptions(value: Any, meta: Meta | None = None) -> list[dict[str, Any]]:
    """Exception values, causes first as sent; the last one is the primary exception."""
    if isinstance(value, Mapping) and "values" not in value:
        value = [value]  # a single exception object, as some legacy clients send
    values = _values(value, "exception")
    skipped = max(len(values) - MAX_EXCEPTIONS, 0)
    values_meta = (meta or Meta()).child("values")
    if skipped:
        values_meta.note(len=len(values))
    result: list[dict[str, Any]] = []
    for index, item in enumerate(values[skipped:], start=skipped):
        item_meta = values_meta.child(len(result))
        raw_value = item.get("value")
        if isinstance(raw_value, (Mapping, list)):
            exc_value: str | None = dumps(raw_value)
        else:
            exc_value = raw_str(raw_value, MAX_EXCEPTION_VALUE + 1) or None
        if exc_value is not None and len(exc_value) > MAX_EXCEPTION_VALUE:
            sent = len(raw_value) if isinstance(raw_value, str) else len(exc_value)
            item_meta.child("value").note(len=sent)
            exc_value = exc_value[:MAX_EXCEPTION_VALUE]
        mechanism = item.get("mechanism")
        exc = {
            "type": attr(item.get("type"), MAX_EXCEPTION_TYPE),
            "value": exc_value,
            "module": attr(item.get("module"), MAX_NAME),
            "mechanism": (
                clean(mechanism, item_meta.child("mechanism"))
                if isinstance(mechanism, Mapping)
                else None
            ),
            "stacktrace": read_stacktrace(
                item.get("stacktrace"),
                f"exception interface: values[{index}].stacktrace",
                item_meta.child("stacktrace"),
            ),
        }
        # Relay drops exceptions that say nothing at all; so do we.
        if exc["type"] or exc["value"] or exc["stacktrace"]:
            result.append(exc)
    return result


def read_stacktrace(value: Any, where: str, meta: Meta | None = None) -> dict[str, Any] | None:
    """``{"frames": [...], "framesOmitted": ...}``; ``where`` names it in errors."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest(f"Invalid {where}: expected an object.")
    frames = value.get("frames")
    if frames is None:
        frames = []
    if not isinstance(frames, list):
        raise BadRequest(f"Invalid {where}: frames must be a list.")
    cleaned = []
    for index, frame in enumerate(frames):
        if frame is None:
            continue
        if not isinstance(frame, Mapping):
            raise BadRequest(f"Invalid {where}: frames[{index}] is not an object.")
        cleaned.append(frame)
    omitted = None
    frames_meta = (meta or Meta()).child("frames")
    if len(cleaned) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        omitted = [half, len(cleaned) - half]
        cleaned = keep_frames(cleaned, frames_meta)
    return {
        "frames": [_frame(frame, frames_meta.child(i)) for i, frame in enumerate(cleaned)],
        "framesOmitted": omitted,
    }


def _frame(frame: Mapping[str, Any], meta: Meta) -> dict[str, Any]:
    in_app = frame.get("in_app")
    variables = frame.get("vars")
    return {
        "filename": attr(frame.get("filename"), MAX_NAME),
        "abs_path": attr(frame.get("abs_path"), MAX_NAME),
        "module": attr(frame.get("module"), MAX_NAME),
        "function": attr(frame.get("function"), MAX_NAME),
        "lineno": as_int(frame.get("lineno")),
        "colno": as_int(frame.get("colno")),
        "in_app": in_app if isinstance(in_app, bool) else None,
        "context_line": raw_str(frame.get("context_line"), MAX_NAME),
        "pre_context": _lines(frame.get("pre_context")),
        "post_context": _lines(frame.get("post_context")),
        "vars": clean(variables, meta.child("vars")) if isinstance(variables, Mapping) else None,
    }


def _lines(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [raw_str(line, MAX_NAME) or "" for line in value]


def read_threads(value: Any, meta: Meta | None = None) -> dict[str, Any] | None:
    """The ``threads`` interface (sentry-sdk puts ``attach_stacktrace`` stacks there)."""
    threads = []
    values_meta = (meta or Meta()).child("values")
    for index, item in enumerate(_values(value, "threads")):
        thread_id = item.get("id")
        threads.append(
            {
                "id": attr(thread_id, MAX_NAME),
                "name": attr(item.get("name"), MAX_NAME),
                "crashed": item.get("crashed") is True,
                "current": item.get("current") is True,
                "stacktrace": read_stacktrace(
                    item.get("stacktrace"),
                    f"threads interface: values[{index}].stacktrace",
                    values_meta.child(index).child("stacktrace"),
                ),
            }
        )
    return {"values": threads} if threads else None


def read_message(logentry: Any, message: Any, meta: Meta | None = None) -> dict[str, Any] | None:
    """The message interface: ``logentry`` first, then the ``message`` attribute.

    ``meta`` is the event's ``_meta`` root: notes go under ``logentry`` or ``message``.
    """
    root = meta or Meta()
    for name, value in (("logentry", logentry), ("message", message)):
        if value is None:
            continue
        if isinstance(value, Mapping):
            template = attr(value.get("message"), None)
            params = value.get("params")
            formatted = attr(value.get("formatted"), None)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            template, params, formatted = attr(value, None), None, None
        else:
            raise BadRequest(f"Invalid {name}: expected a string or an object.")
        node = root.child(name)
        clean_params = (
            clean(params, node.child("params")) if isinstance(params, (list, Mapping)) else None
        )
        if not formatted and template:
            formatted = _format(template, clean_params)
        if formatted:
            if len(formatted) > MAX_MESSAGE:
                node.child("formatted").note(len=len(formatted))
            if template and len(template) > MAX_MESSAGE:
                node.child("message").note(len=len(template))
            return {
                "message": ellipsize(template or formatted, MAX_MESSAGE),
                "params": clean_params or None,
                "formatted": ellipsize(formatted, MAX_MESSAGE),
            }
    return None


def _format(template: str, params: Any) -> str:
    """``template % params`` when that is safe and works, else ``template`` unchanged."""
    if not params:
        return template
    args: Any = tuple(params) if isinstance(params, list) else params
    specs = list(_FORMAT_SPEC_RE.finditer(template))
    if len(specs) > _MAX_FORMAT_SPECS:
        return template
    for spec in specs:
        # "%*d" or "%999999999d" would allocate whatever the client asks for.
        for size in spec.groups():
            if size == "*" or (size and len(size) > 3):
                return template
    values = params.values() if isinstance(params, Mapping) else params
    longest = max((len(safe_repr(item)) for item in values), default=0)
    if len(specs) * (longest + 1000) > _MAX_FORMAT_OUTPUT:
        return template
    try:
        return safe_str(template % args)
    except Exception:  # noqa: BLE001 - client templates are arbitrary text
        return template


def read_request(value: Any, meta: Meta | None = None) -> dict[str, Any] | None:
    """The ``request`` (``sentry.interfaces.Http``) interface."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest("Invalid request interface: expected an object.")
    meta = meta or Meta()
    method = attr(value.get("method"), 16)
    env = value.get("env")
    return {
        "url": attr(value.get("url"), 2048),
        "method": method.upper() if method else None,
        "query_string": clean(value.get("query_string"), meta.child("query_string")),
        "fragment": attr(value.get("fragment"), 2048),
        "data": clean(value.get("data"), meta.child("data")),
        "headers": _pairs(value.get("headers"), meta.child("headers")),
        "cookies": clean(value.get("cookies"), meta.child("cookies")),
        "env": clean(env, meta.child("env")) if isinstance(env, Mapping) else None,
    }


def _pairs(value: Any, meta: Meta) -> list[list[str]] | None:
    """Headers as ``[[name, value], ...]``, from an object or a list of pairs."""
    if isinstance(value, Mapping):
        items: Any = islice(value.items(), MAX_ENTRIES)
    elif isinstance(value, list):
        pairs_sent = (tuple(pair) for pair in value if isinstance(pair, list) and len(pair) == 2)
        items = islice(pairs_sent, MAX_ENTRIES)
    else:
        return None
    if len(value) > MAX_ENTRIES:
        meta.note(len=len(value))
    pairs = []
    for name, item in items:
        key = attr(name, MAX_NAME)
        text = raw_str(item, 8192) if not isinstance(item, (Mapping, list)) else dumps(item)
        if key is not None and text is not None:
            pairs.append([key, text])
    return pairs


def read_breadcrumbs(value: Any, meta: Meta | None = None) -> dict[str, Any] | None:
    """The newest breadcrumbs, timestamps as ISO 8601 UTC; ``None`` when there are none."""
    crumbs = []
    values = _values(value, "breadcrumbs")
    values_meta = (meta or Meta()).child("values")
    if len(values) > MAX_BREADCRUMBS:
        values_meta.note(len=len(values))
    for index, item in enumerate(values[-MAX_BREADCRUMBS:]):
        crumb_meta = values_meta.child(index)
        moment = parse_time(item.get("timestamp"))
        data = item.get("data")
        crumbs.append(
            {
                "type": attr(item.get("type"), 64) or "default",
                "category": attr(item.get("category"), MAX_NAME),
                "level": attr(item.get("level"), 16),
                "message": _message_str(item.get("message"), crumb_meta.child("message")),
                "data": clean(data, crumb_meta.child("data"))
                if isinstance(data, Mapping)
                else None,
                "timestamp": moment.isoformat().replace("+00:00", "Z") if moment else None,
            }
        )
    return {"values": crumbs} if crumbs else None


def _message_str(value: Any, meta: Meta) -> str | None:
    if isinstance(value, str) and len(value) > MAX_MESSAGE:
        meta.note(len=len(value))
    return raw_str(value, MAX_MESSAGE)


def read_user(value: Any, meta: Meta | None = None) -> dict[str, Any] | None:
    """The ``user`` interface; identity fields become strings."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest("Invalid user interface: expected an object.")
    meta = meta or Meta()
    user: dict[str, Any] = {}
    if len(value) > MAX_ENTRIES:
        meta.note(len=len(value))
    for key, item in islice(value.items(), MAX_ENTRIES):
        if key in ("id", "username", "email", "ip_address", "name"):
            text = attr(item, MAX_NAME)
            # "{{auto}}" asks the server to fill in the client address, which only the
            # view knows; keep the placeholder out of the identity.
            if text is not None and text != "{{auto}}":
                user[key] = text
        elif item is not None:
            name = json_key(key)
            user[name] = clean(item, meta.child(name), 1)
    return user or None


def user_ident(user: Mapping[str, Any] | None) -> str | None:
    """What counts as one user for a group: ``id:…``, ``username:…``, ``email:…`` or ``ip:…``."""
    if not user:
        return None
    for field, prefix in _USER_IDENT_FIELDS:
        if user.get(field):
            return f"{prefix}:{user[field]}"[:MAX_TAG_VALUE]
    return None


def read_contexts(value: Any, meta: Meta | None = None) -> dict[str, Any]:
    """``contexts``: only object-valued entries are contexts (a bag: see :mod:`.trim`)."""
    if not isinstance(value, Mapping):
        return {}
    meta = meta or Meta()
    if len(value) > MAX_ENTRIES:
        meta.note(len=len(value))
    contexts = {}
    for name, ctx in islice(value.items(), MAX_ENTRIES):
        if isinstance(ctx, Mapping):
            key = json_key(name)
            contexts[key] = clean(ctx, meta.child(key), 1)
    return contexts


def read_modules(value: Any) -> dict[str, str]:
    """raven's ``modules``: package name to version."""
    if not isinstance(value, Mapping):
        return {}
    modules: dict[str, str] = {}
    for name, version in value.items():
        text = attr(version, MAX_NAME)
        if text is not None:
            modules[json_key(name)] = text
    return modules


def read_fingerprint(value: Any) -> list[str] | None:
    """The fingerprint as strings; ``None`` unless a non-empty list was sent."""
    if not isinstance(value, list) or not value:
        return None
    parts: list[str] = []
    for entry in value:
        if isinstance(entry, str):
            parts.append(safe_str(entry))
        elif entry is None or isinstance(entry, (bool, int, float)):
            parts.append(str(entry))
        else:
            parts.append(dumps(entry))
    return parts
