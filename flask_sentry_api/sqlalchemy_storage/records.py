"""Rows to records: the frozen :mod:`flask_sentry_api.storage` dataclasses the SQL storage
returns, built from ORM instances or plain result rows alike (attribute access), and group
lists from plain rows by position (:func:`groups`)."""

from __future__ import annotations

import dataclasses
import json
import typing as t
from collections.abc import Iterable
from datetime import datetime

import orjson
import sqlalchemy as sa

from .. import storage as s
from ..models import UTCDateTime

#: A mapped instance or a result row: the mappers read attributes only.
Row = t.Any


def aware(value: datetime) -> datetime:
    """``value`` with UTC attached when the database handed it back naive."""
    return value if value.tzinfo is not None else value.replace(tzinfo=s.UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None


def group_columns(table: sa.Table) -> list[sa.ColumnElement[t.Any]]:
    """The group table's columns, named like the mapped attributes :func:`group` reads."""
    return [c.label("metadata_") if c.name == "metadata" else c for c in table.c]


#: The fields of a group record, in order: :func:`group_list_columns` selects them so.
GROUP_FIELDS = tuple(field.name for field in dataclasses.fields(s.Group))


class _ListDateTime(sa.types.TypeDecorator[datetime]):
    """A :class:`~flask_sentry_api.models.UTCDateTime` column read for a list: SQLite's
    text parsed by ``datetime.fromisoformat`` in one step, rather than by SQLAlchemy's
    parser and then the zone attached by a second type. PostgreSQL's driver hands back
    datetimes already."""

    impl = sa.String
    cache_ok = True

    def process_result_value(self, value: t.Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                # SQLite's text has no zone (it is UTC): parsing it with one is several
                # times cheaper than attaching it afterwards with replace().
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:  # text with a zone of its own
                value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return t.cast(datetime, value.replace(tzinfo=s.UTC))
        return t.cast(datetime, value.astimezone(s.UTC))


class _ListJSON(sa.types.TypeDecorator[t.Any]):
    """A JSON column read for a list: SQLite's text decoded by orjson (PostgreSQL's driver
    decodes JSONB itself); what orjson refuses, the stdlib decodes as before."""

    impl = sa.Text
    cache_ok = True

    def process_result_value(self, value: t.Any, dialect: sa.Dialect) -> t.Any:
        if dialect.name != "sqlite" or not isinstance(value, str):
            return value
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return json.loads(value)


def group_list_columns(table: sa.Table) -> list[sa.ColumnElement[t.Any]]:
    """The group table's columns in the order of :data:`GROUP_FIELDS`, for :func:`groups`,
    with the datetime and JSON columns read by the list's faster types (same values)."""
    columns: list[sa.ColumnElement[t.Any]] = []
    for name in GROUP_FIELDS:
        column = table.c[name]
        if isinstance(column.type, UTCDateTime):
            columns.append(sa.type_coerce(column, _ListDateTime()).label(name))
        elif name == "metadata":
            columns.append(sa.type_coerce(column, _ListJSON()).label(name))
        else:
            columns.append(column)
    return columns


def groups(rows: Iterable[t.Sequence[t.Any]]) -> list[s.Group]:
    """Group records from result rows of :func:`group_list_columns`, for a list.

    What :func:`group` builds, at half the cost: a page is a hundred records of 22 fields,
    and a frozen dataclass's ``__init__`` sets each through ``object.__setattr__``. Here
    each record's ``__dict__`` is filled at once (what ``__init__`` would leave there), and
    the values are taken as the column types hand them back: booleans, integers and aware
    UTC datetimes (:class:`~flask_sentry_api.models.UTCDateTime`) already.
    """
    new = object.__new__
    fields = GROUP_FIELDS
    metadata_index = fields.index("metadata")
    out = []
    for row in rows:
        record = new(s.Group)
        values = dict(zip(fields, row, strict=True))
        if row[metadata_index] is None:
            values["metadata"] = {}
        record.__dict__.update(values)
        out.append(record)
    return out


def project(row: Row) -> s.Project:
    origins = tuple(o for o in (row.allowed_origins or "").split("\n") if o)
    return s.Project(
        id=row.id,
        slug=row.slug,
        name=row.name,
        is_public=bool(row.is_public),
        date_created=aware(row.date_created),
        status=row.status,
        allowed_origins=origins,
    )


def key(row: Row) -> s.ProjectKey:
    return s.ProjectKey(
        id=row.id,
        project_id=row.project_id,
        public_key=row.public_key,
        secret_key=row.secret_key,
        roles=row.roles,
        is_active=bool(row.is_active),
        date_added=aware(row.date_added),
        label=row.label,
        rate_limit=(
            s.RateLimit(row.rate_limit_count, row.rate_limit_window)
            if row.rate_limit_count is not None
            else None
        ),
    )


def group(row: Row) -> s.Group:
    return s.Group(
        id=row.id,
        project_id=row.project_id,
        hash=row.hash,
        title=row.title,
        culprit=row.culprit,
        message=row.message,
        logger=row.logger,
        level=row.level,
        type=row.type,
        metadata=row.metadata_ or {},
        platform=row.platform,
        status=row.status,
        is_public=bool(row.is_public),
        is_bookmarked=bool(row.is_bookmarked),
        has_seen=bool(row.has_seen),
        times_seen=int(row.times_seen),
        user_count=int(row.user_count),
        first_seen=aware(row.first_seen),
        last_seen=aware(row.last_seen),
        resolved_at=_aware_or_none(row.resolved_at),
        num_comments=int(row.num_comments),
        score=int(row.score),
    )


def event(row: Row) -> s.Event:
    return s.Event(
        id=row.id,
        project_id=row.project_id,
        group_id=row.group_id,
        event_id=row.event_id,
        message=row.message,
        title=row.title,
        culprit=row.culprit,
        level=row.level,
        logger=row.logger,
        platform=row.platform,
        datetime=aware(row.datetime),
        date_received=aware(row.date_received),
        release=row.release,
        environment=row.environment,
        user=row.user,
        tags=tuple((str(k), str(v)) for k, v in (row.tags or [])),
        data=row.data or {},
    )


def release(row: Row) -> s.Release:
    return s.Release(
        id=row.id,
        project_id=row.project_id,
        version=row.version,
        date_created=aware(row.date_created),
        first_event=_aware_or_none(row.first_event),
        last_event=_aware_or_none(row.last_event),
        new_groups=int(row.new_groups),
        ref=row.ref,
        url=row.url,
        date_released=_aware_or_none(row.date_released),
        date_started=_aware_or_none(row.date_started),
    )


def token(row: Row) -> s.AuthToken:
    return s.AuthToken(
        id=row.id,
        project_id=row.project_id,
        token_hash=row.token_hash,
        scopes=tuple(row.scopes.split()),
        date_created=aware(row.date_created),
        label=row.label,
        last_characters=row.last_characters,
    )


def tag_value(row: Row) -> s.TagValue:
    return s.TagValue(
        id=row.id,
        key=row.key,
        value=row.value,
        times_seen=int(row.times_seen),
        first_seen=aware(row.first_seen),
        last_seen=aware(row.last_seen),
    )


def note(row: Row) -> s.Note:
    return s.Note(
        id=row.id, group_id=row.group_id, text=row.text, date_created=aware(row.date_created)
    )
