"""Trim an event to SPEC §11's bounds in time linear in its input, noting the cuts in ``_meta``.

Like Sentry's Relay, ingestion stores a hostile or runaway event trimmed rather than
refusing it:

- free-form bags (``extra``, ``contexts``, ``sdk``, ``request.data``, breadcrumb data,
  frame vars, ...) keep :data:`MAX_DEPTH` levels and :data:`MAX_ENTRIES` entries per
  object or array; a container below the last level becomes ``"..."``;
- strings keep :data:`MAX_STRING` characters (a cut one ends in ``...``);
- a stack trace keeps :data:`MAX_FRAMES` frames, the outermost and innermost halves;
- an event keeps :data:`MAX_TAGS` tags; a tag whose key is longer than :data:`MAX_TAG_KEY`
  or whose value is longer than :data:`MAX_TAG_VALUE` is dropped;
- the stored ``data`` is at most :data:`MAX_EVENT_BYTES` of JSON: the largest bags (extra,
  contexts, breadcrumbs, frame vars, request bodies, ...) are dropped until it fits.

Only what is kept is visited: a million-element array costs fifty elements' work.

What was cut is recorded in ``data["_meta"]``, a tree that follows the event's paths as
sent (``extra``, ``request``, ``exception.values.<i>.stacktrace.frames``, ``tags``, ...;
indices are positions in the stored arrays). The key ``""`` of a node holds the note for
the value at that path:

- ``{"len": n}``: the string, object or array was shortened; it had ``n`` characters or
  entries (for ``tags``, ``n`` is the number of tags sent);
- ``{"rem": "depth"}``: the container was replaced by ``"..."`` (too deep);
- ``{"rem": "size", "len": n}``: the value (``n`` bytes of JSON) was dropped to fit the
  event size limit;
- ``{"err": ["invalid_data"], "val": v}``: the value ``v`` was dropped as invalid (Relay's
  form; a ``release`` that is not a valid version, see :mod:`.normalize`).

For example ``{"extra": {"a": {"": {"len": 1000000}}}}`` says ``extra.a`` kept 50 of its
1,000,000 entries. An event with nothing cut has no ``_meta``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import MutableMapping
from itertools import islice
from typing import Any

from .values import json_key
from .values import safe_repr
from .values import safe_str

#: Levels kept in free-form bags; a container below them becomes ``"..."``.
MAX_DEPTH = 5
#: Entries kept per object or array in free-form bags.
MAX_ENTRIES = 50
#: Longest string kept anywhere in an event (messages and exception values included).
MAX_STRING = 8192
#: Frames kept per stack trace: the first and last ``MAX_FRAMES // 2``.
MAX_FRAMES = 250
#: Tags kept per event.
MAX_TAGS = 200
#: Longest tag key and value; a tag with a longer one is dropped.
MAX_TAG_KEY = 32
MAX_TAG_VALUE = 200
#: Largest stored event, as JSON (UTF-8 bytes).
MAX_EVENT_BYTES = 256 * 1024

#: What replaces a container below :data:`MAX_DEPTH`.
DEPTH_MARK = "..."


class Meta:
    """A node of the ``_meta`` tree; children are attached only once something is noted."""

    __slots__ = ("_children", "_key", "_note", "_parent")

    def __init__(self, parent: Meta | None = None, key: str = "") -> None:
        self._parent = parent
        self._key = key
        self._children: dict[str, Meta] = {}
        self._note: dict[str, Any] = {}

    def child(self, key: str | int) -> Meta:
        """The node for ``key`` under this one (not part of the tree until noted)."""
        name = str(key)
        return self._children.get(name) or Meta(self, name)

    def note(self, **info: Any) -> None:
        """Record ``info`` for the value at this path."""
        self._note.update(info)
        node = self
        while node._parent is not None and node._parent._children.get(node._key) is not node:
            node._parent._children[node._key] = node
            node = node._parent

    def replace(self, **info: Any) -> None:
        """Record ``info`` for this path and forget what was noted below it."""
        self._children.clear()
        self._note.clear()
        self.note(**info)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: node.to_json() for key, node in self._children.items()}
        if self._note:
            out[""] = dict(self._note)
        return out


def _scratch(meta: Meta | None) -> Meta:
    return Meta() if meta is None else meta


def trim_str(text: str, meta: Meta | None = None, limit: int = MAX_STRING) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...``), made safe to store."""
    if len(text) > limit:
        _scratch(meta).note(len=len(text))
        text = text[: limit - 3] + "..."
    return safe_str(text)


def clean(value: Any, meta: Meta | None = None, depth: int = 0) -> Any:
    """``value`` as plain JSON within the bag bounds (depth, entries, string length)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return trim_str(value, meta)
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= MAX_DEPTH:
            _scratch(meta).note(rem="depth")
            return DEPTH_MARK
        if len(value) > MAX_ENTRIES:
            _scratch(meta).note(len=len(value))
        if meta is None:
            meta = Meta()
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in islice(value.items(), MAX_ENTRIES):
                name = trim_str(json_key(key))
                result[name] = clean(item, meta.child(name), depth + 1)
            return result
        return [
            clean(item, meta.child(index), depth + 1)
            for index, item in enumerate(islice(value, MAX_ENTRIES))
        ]
    return trim_str(safe_repr(value), meta)


def dumps(value: Any) -> str:
    """``value`` cleaned (see :func:`clean`) as JSON text."""
    return json.dumps(clean(value), sort_keys=True, ensure_ascii=False)


def keep_frames(frames: list[Any], meta: Meta | None = None) -> list[Any]:
    """The first and last ``MAX_FRAMES // 2`` of ``frames``, noting a cut."""
    if len(frames) <= MAX_FRAMES:
        return frames
    _scratch(meta).note(len=len(frames))
    half = MAX_FRAMES // 2
    return frames[:half] + frames[-half:]


def keep_tags(
    pairs: Iterator[tuple[str, str]], meta: Meta | None = None, *, sent: int = 0
) -> tuple[tuple[str, str], ...]:
    """The first :data:`MAX_TAGS` distinct valid tags of ``pairs`` (first key wins).

    ``pairs`` is consumed lazily and only until the limit is reached; a pair whose key or
    value is too long is dropped. ``sent`` is how many tags the event carried, for the note.
    """
    tags: dict[str, str] = {}
    dropped = False
    for key, text in pairs:
        if len(tags) >= MAX_TAGS:
            dropped = True
            break
        if len(key) > MAX_TAG_KEY or len(text) > MAX_TAG_VALUE:
            dropped = True
            continue
        tags.setdefault(key, text)
    if dropped:
        _scratch(meta).note(len=sent)
    return tuple(tags.items())


#: A bag that may be dropped to fit the size limit: its meta node, a reader, a dropper.
Bag = tuple[Meta, Callable[[], Any], Callable[[], None]]


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def drop_bag(container: MutableMapping[str, Any], key: str, meta: Meta, empty: Any) -> Bag:
    """A :data:`Bag` for ``container[key]``, replaced by ``empty`` when dropped."""

    def read() -> Any:
        return container.get(key)

    def drop() -> None:
        container[key] = empty

    return meta, read, drop


def fit_size(data: dict[str, Any], tiers: list[list[Bag]], root: Meta) -> None:
    """Drop the largest bags from ``data`` until it is within :data:`MAX_EVENT_BYTES`.

    ``tiers`` are tried in order, largest bag first within each (the last tiers hold what
    is dropped only as a last resort, like whole frame lists). Sizes are measured once
    each, so this is linear in the size of ``data``. ``_meta`` is set on ``data`` (from
    ``root``) when anything was noted.
    """
    total = json_size(data) + json_size(root.to_json())
    for bags in tiers:
        if total <= MAX_EVENT_BYTES:
            break
        sized = sorted(((json_size(read()), meta, drop) for meta, read, drop in bags), key=_first)
        while total > MAX_EVENT_BYTES and sized:
            size, meta, drop = sized.pop()
            if size <= 4:
                break  # nothing left worth dropping in this tier
            before = json_size(meta.to_json())
            drop()
            meta.replace(rem="size", len=size)
            total -= size - 4 + before - json_size(meta.to_json())  # the empty value stays
    notes = root.to_json()
    if notes:
        data["_meta"] = notes


def _first(item: tuple[int, Meta, Callable[[], None]]) -> int:
    return item[0]
