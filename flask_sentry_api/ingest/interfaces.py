"""Normalise the interfaces of an event (exception, stack traces, message, request, ...).

Each ``read_*`` function takes what the SDK sent under one key and returns plain JSON in
the shape the Event API serves in ``entries``, or ``None`` when the key was absent. A value
of the wrong shape is a :class:`~flask_sentry_api.errors.BadRequest` naming the interface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import BadRequest
from .values import MAX_MESSAGE
from .values import MAX_NAME
from .values import MAX_TAG_VALUE
from .values import as_int
from .values import attr
from .values import clean
from .values import dumps
from .values import ellipsize
from .values import json_key
from .values import parse_time
from .values import raw_str
from .values import safe_repr
from .values import safe_str

MAX_EXCEPTION_TYPE = 128
MAX_EXCEPTION_VALUE = 4096
#: Frames kept per stack trace: the outermost and innermost halves, as Sentry trims.
MAX_FRAMES = 250
MAX_EXCEPTIONS = 50
MAX_BREADCRUMBS = 100

_FORMAT_SPEC_RE = re.compile(r"%(?:\([^)]*\))?[#0+ -]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_MAX_FORMAT_SPECS = 100
_MAX_FORMAT_OUTPUT = 1_000_000
_USER_IDENT_FIELDS = (
    ("id", "id"),
    ("username", "username"),
    ("email", "email"),
    ("ip_address", "ip"),
)


def read_object(value: Any, name: str) -> dict[str, Any] | None:
    """An interface kept as sent (``template``, ``csp``), cleaned to plain JSON."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest(f"Invalid {name} interface: expected an object.")
    cleaned: dict[str, Any] = clean(value)
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


def read_exceptions(value: Any) -> list[dict[str, Any]]:
    """Exception values, causes first as sent; the last one is the primary exception."""
    if isinstance(value, Mapping) and "values" not in value:
        value = [value]  # a single exception object, as some legacy clients send
    values = _values(value, "exception")
    skipped = max(len(values) - MAX_EXCEPTIONS, 0)
    result = []
    for index, item in enumerate(values[skipped:], start=skipped):
        raw_value = item.get("value")
        if isinstance(raw_value, (Mapping, list)):
            exc_value: str | None = dumps(raw_value)[:MAX_EXCEPTION_VALUE]
        else:
            exc_value = raw_str(raw_value, MAX_EXCEPTION_VALUE) or None
        exc = {
            "type": attr(item.get("type"), MAX_EXCEPTION_TYPE),
            "value": exc_value,
            "module": attr(item.get("module"), MAX_NAME),
            "mechanism": (
                clean(item["mechanism"]) if isinstance(item.get("mechanism"), Mapping) else None
            ),
            "stacktrace": read_stacktrace(
                item.get("stacktrace"), f"exception interface: values[{index}].stacktrace"
            ),
        }
        # Relay drops exceptions that say nothing at all; so do we.
        if exc["type"] or exc["value"] or exc["stacktrace"]:
            result.append(exc)
    return result


def read_stacktrace(value: Any, where: str) -> dict[str, Any] | None:
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
    if len(cleaned) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        omitted = [half, len(cleaned) - half]
        cleaned = cleaned[:half] + cleaned[-half:]
    return {"frames": [_frame(frame) for frame in cleaned], "framesOmitted": omitted}


def _frame(frame: Mapping[str, Any]) -> dict[str, Any]:
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
        "vars": clean(variables) if isinstance(variables, Mapping) else None,
    }


def _lines(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [raw_str(line, MAX_NAME) or "" for line in value]


def read_threads(value: Any) -> dict[str, Any] | None:
    """The ``threads`` interface (sentry-sdk puts ``attach_stacktrace`` stacks there)."""
    threads = []
    for index, item in enumerate(_values(value, "threads")):
        thread_id = item.get("id")
        threads.append(
            {
                "id": attr(thread_id, MAX_NAME),
                "name": attr(item.get("name"), MAX_NAME),
                "crashed": item.get("crashed") is True,
                "current": item.get("current") is True,
                "stacktrace": read_stacktrace(
                    item.get("stacktrace"), f"threads interface: values[{index}].stacktrace"
                ),
            }
        )
    return {"values": threads} if threads else None


def read_message(logentry: Any, message: Any) -> dict[str, Any] | None:
    """The message interface: ``logentry`` first, then the ``message`` attribute."""
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
        clean_params = clean(params) if isinstance(params, (list, Mapping)) else None
        if not formatted and template:
            formatted = _format(template, clean_params)
        if formatted:
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


def read_request(value: Any) -> dict[str, Any] | None:
    """The ``request`` (``sentry.interfaces.Http``) interface."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest("Invalid request interface: expected an object.")
    method = attr(value.get("method"), 16)
    env = value.get("env")
    return {
        "url": attr(value.get("url"), 2048),
        "method": method.upper() if method else None,
        "query_string": clean(value.get("query_string")),
        "fragment": attr(value.get("fragment"), 2048),
        "data": clean(value.get("data")),
        "headers": _pairs(value.get("headers")),
        "cookies": clean(value.get("cookies")),
        "env": clean(env) if isinstance(env, Mapping) else None,
    }


def _pairs(value: Any) -> list[list[str]] | None:
    """Headers as ``[[name, value], ...]``, from an object or a list of pairs."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):
        items = [tuple(pair) for pair in value if isinstance(pair, list) and len(pair) == 2]
    else:
        return None
    pairs = []
    for name, item in items:
        key = attr(name, MAX_NAME)
        text = raw_str(item, 8192) if not isinstance(item, (Mapping, list)) else dumps(item)
        if key is not None and text is not None:
            pairs.append([key, text])
    return pairs


def read_breadcrumbs(value: Any) -> dict[str, Any] | None:
    """The newest breadcrumbs, timestamps as ISO 8601 UTC; ``None`` when there are none."""
    crumbs = []
    for item in _values(value, "breadcrumbs")[-MAX_BREADCRUMBS:]:
        moment = parse_time(item.get("timestamp"))
        data = item.get("data")
        crumbs.append(
            {
                "type": attr(item.get("type"), 64) or "default",
                "category": attr(item.get("category"), MAX_NAME),
                "level": attr(item.get("level"), 16),
                "message": raw_str(item.get("message"), MAX_MESSAGE),
                "data": clean(data) if isinstance(data, Mapping) else None,
                "timestamp": moment.isoformat().replace("+00:00", "Z") if moment else None,
            }
        )
    return {"values": crumbs} if crumbs else None


def read_user(value: Any) -> dict[str, Any] | None:
    """The ``user`` interface; identity fields become strings."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest("Invalid user interface: expected an object.")
    user: dict[str, Any] = {}
    for key, item in value.items():
        if key in ("id", "username", "email", "ip_address", "name"):
            text = attr(item, MAX_NAME)
            # "{{auto}}" asks the server to fill in the client address, which only the
            # view knows; keep the placeholder out of the identity.
            if text is not None and text != "{{auto}}":
                user[key] = text
        elif item is not None:
            user[json_key(key)] = clean(item)
    return user or None


def user_ident(user: Mapping[str, Any] | None) -> str | None:
    """What counts as one user for a group: ``id:…``, ``username:…``, ``email:…`` or ``ip:…``."""
    if not user:
        return None
    for field, prefix in _USER_IDENT_FIELDS:
        if user.get(field):
            return f"{prefix}:{user[field]}"[:MAX_TAG_VALUE]
    return None


def read_contexts(value: Any) -> dict[str, Any]:
    """``contexts``: only object-valued entries are contexts."""
    if not isinstance(value, Mapping):
        return {}
    return {json_key(name): clean(ctx) for name, ctx in value.items() if isinstance(ctx, Mapping)}


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
