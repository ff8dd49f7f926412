"""Compute the hash that puts an event into a group (Sentry's fingerprint logic).

Order of precedence:

1. ``checksum``: a 32-hex value is the hash itself, anything else is hashed (raven's
   ``checksum=`` argument, kept by later Sentry);
2. ``fingerprint``: a list whose ``{{ default }}`` entries expand to the default components;
3. the default components: for exceptions the in-app frames (module, or file, and
   function; line numbers left out so a bug keeps its group when code above it moves) and
   the type of each exception in the chain; exceptions without usable frames give type and
   value; anything else gives its message.

The functions read the shapes :mod:`.normalize` produces (and the SDKs send), and tolerate
anything else: they never raise on odd data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

_DEFAULT_RE = re.compile(r"\{\{\s*default\s*\}\}")
_HEX32_RE = re.compile(r"[0-9a-fA-F]{32}")


def default_hash_components(event: Mapping[str, Any]) -> list[str]:
    """The strings the default grouping hashes for ``event``."""
    values = _exception_values(event)
    if values:
        frame_lists = [_frames(value.get("stacktrace")) for value in values]
        # Only in-app frames count when there are any, so the same bug reached through a
        # different framework path stays one group; otherwise every frame counts.
        in_app_only = any(frame.get("in_app") is True for frames in frame_lists for frame in frames)
        components: list[str] = []
        has_frames = False
        for value, frames in zip(values, frame_lists, strict=True):
            for frame in frames:
                if in_app_only and frame.get("in_app") is not True:
                    continue
                part = _frame_component(frame)
                if part:
                    components.extend(part)
                    has_frames = True
            components.append(_text(value.get("type")))
        if has_frames:
            return components
        components = []
        for value in values:
            components.extend((_text(value.get("type")), _text(value.get("value"))))
        if any(components):
            return components
    return [_message(event)]


def group_hash(event: Mapping[str, Any]) -> str:
    """The 32-hex group hash of ``event``."""
    checksum = event.get("checksum")
    if isinstance(checksum, str) and checksum:
        if _HEX32_RE.fullmatch(checksum):
            return checksum.lower()
        # Tagged, so a checksum never collides with a message or fingerprint of that text.
        return _md5(["checksum", checksum])
    return _md5(_expand_fingerprint(event))


def _expand_fingerprint(event: Mapping[str, Any]) -> list[str]:
    fingerprint = event.get("fingerprint")
    if not isinstance(fingerprint, list) or not fingerprint:
        return default_hash_components(event)
    parts: list[str] = []
    for entry in fingerprint:
        text = entry if isinstance(entry, str) else _stringify(entry)
        if _DEFAULT_RE.fullmatch(text.strip()):
            parts.extend(default_hash_components(event))
        else:
            parts.append(text)
    return parts


def _stringify(value: Any) -> str:
    try:
        return str(value)
    except RecursionError:
        # A nested list too deep to print; such a fingerprint still needs a stable part.
        return type(value).__name__


def _md5(parts: Iterable[str]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        # Length-prefixed, so ["ab", "c"] and ["a", "bc"] cannot collide.
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    return digest.hexdigest()


def _exception_values(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    exception = event.get("exception")
    if isinstance(exception, Mapping):
        # A single exception object, as some legacy clients send, is a one-value list.
        values = exception["values"] if "values" in exception else [exception]
    else:
        values = exception
    if not isinstance(values, list):
        return []
    return [value for value in values if isinstance(value, Mapping)]


def _frames(stacktrace: Any) -> list[Mapping[str, Any]]:
    if not isinstance(stacktrace, Mapping):
        return []
    frames = stacktrace.get("frames")
    if not isinstance(frames, list):
        return []
    return [frame for frame in frames if isinstance(frame, Mapping)]


def _frame_component(frame: Mapping[str, Any]) -> tuple[str, str] | None:
    where = _text(frame.get("module")) or _text(frame.get("filename"))
    where = where or _text(frame.get("abs_path"))
    function = _text(frame.get("function"))
    if not where and not function:
        return None
    return where, function


def _message(event: Mapping[str, Any]) -> str:
    # The template, not the formatted text: "user %s failed" logged for many users is
    # one problem, as in Sentry's message grouping.
    for key in ("logentry", "sentry.interfaces.Message"):
        entry = event.get(key)
        if isinstance(entry, Mapping):
            for field in ("message", "formatted"):
                text = _text(entry.get(field))
                if text:
                    return text
    message = event.get("message")
    if isinstance(message, Mapping):
        return _text(message.get("message")) or _text(message.get("formatted"))
    return _text(message)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    return ""
