"""The default storage's tables, declared on the host's Flask-SQLAlchemy ``db.Model``.

The host keeps ownership of ``db``, its metadata and its migrations: :func:`build_models`
adds these classes to the host's declarative base once per ``db`` (and table prefix), so
``db.create_all()`` creates them with the host's own tables. Each table is marked in its
``info`` (:data:`TABLE_INFO_KEY`), so a host's Alembic autogenerate can leave them to the
storage's own migrations (:func:`flask_sentry_api.migrate.include_object`).
"""

from __future__ import annotations

import dataclasses
import typing as t
import weakref
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import mapped_column

from .storage import MAX_RELEASE_REF
from .storage import MAX_RELEASE_URL
from .storage import MAX_TOKEN_LABEL
from .storage import UTC

#: JSON on every backend, JSONB on PostgreSQL (smaller, and indexable should a host want it).
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


#: 64-bit ids, so every id the API accepts fits; SQLite's INTEGER is 64-bit already, and
#: only plain INTEGER primary keys are its auto-incrementing rowid.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Longest values of the columns whose length the API does not otherwise bound (Sentry's
#: limits): a release's ``ref`` and ``url``, an auth token's label and its kept tail.
RELEASE_REF_LENGTH = MAX_RELEASE_REF
RELEASE_URL_LENGTH = MAX_RELEASE_URL
TOKEN_LABEL_LENGTH = MAX_TOKEN_LABEL
TOKEN_LAST_CHARACTERS_LENGTH = 4


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite keeps no zone, so naive values read back as UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the sentry_api storage")
        if dialect.name == "sqlite":
            # Drop the zone so SQLite's string comparisons order every row the same way.
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: The key of every storage table's ``Table.info`` entry, whose value is the table prefix.
TABLE_INFO_KEY = "flask_sentry_api"

#: The storage's table names, less the prefix: ``<prefix><name>`` each.
TABLE_NAMES = (
    "project",
    "project_key",
    "group",
    "event",
    "note",
    "tag_value",
    "group_tag_value",
    "group_stat",
    "project_stat",
    "release",
    "auth_token",
)


def table_names(prefix: str) -> frozenset[str]:
    """The names of the storage's tables with ``prefix``, its version table included."""
    return frozenset({f"{prefix}alembic_version", *(prefix + name for name in TABLE_NAMES)})


@dataclasses.dataclass(frozen=True)
class Models:
    """The mapped classes of one ``db`` (attribute names match the tables' roles)."""

    Project: t.Any
    ProjectKey: t.Any
    Group: t.Any
    Event: t.Any
    Note: t.Any
    TagValue: t.Any
    GroupTagValue: t.Any
    GroupStat: t.Any
    ProjectStat: t.Any
    Release: t.Any
    AuthToken: t.Any

    @property
    def tables(self) -> list[sa.Table]:
        return [cls.__table__ for cls in dataclasses.astuple(self)]


_models_by_db: weakref.WeakKeyDictionary[t.Any, dict[str, Models]] = weakref.WeakKeyDictionary()


def build_models(db: t.Any, prefix: str = "sentry_") -> Models:
    """Declare (once per ``db`` and ``prefix``) the storage's models on ``db.Model``."""
    per_db = _models_by_db.setdefault(db, {})
    if prefix not in per_db:
        per_db[prefix] = _declare(db.Model, prefix)
    return per_db[prefix]


def declared_prefixes() -> set[str]:
    """The prefixes :func:`build_models` declared tables with, on any live ``db``."""
    return {prefix for per_db in list(_models_by_db.values()) for prefix in per_db}


def _declare(base: t.Any, prefix: str) -> Models:
    p = prefix
    # Class names carry the prefix too, so two prefixes can share one declarative registry.
    cls_prefix = "".join(part.capitalize() for part in prefix.split("_"))

    #: Each class by its :class:`Models` field name.
    declared: dict[str, t.Any] = {}

    def model(name: str, namespace: dict[str, t.Any]) -> None:
        options: dict[str, t.Any] = {"info": {TABLE_INFO_KEY: prefix}}
        if "id" in namespace:
            # SQLite would reuse a deleted row's id: an old permalink must never lead to a
            # new group or event.
            options["sqlite_autoincrement"] = True
        namespace["__table_args__"] = (*namespace.get("__table_args__", ()), options)
        declared[name] = type(cls_prefix + name, (base,), namespace)

    def project_fk() -> sa.ForeignKey:
        return sa.ForeignKey(f"{p}project.id", ondelete="CASCADE")

    model(
        "Project",
        {
            "__tablename__": f"{p}project",
            "id": mapped_column(IdType, primary_key=True),
            "slug": mapped_column(sa.String(200), nullable=False, unique=True),
            "name": mapped_column(sa.String(200), nullable=False),
            "is_public": mapped_column(sa.Boolean, nullable=False, default=False),
            "status": mapped_column(sa.String(32), nullable=False, default="active"),
            "allowed_origins": mapped_column(sa.Text, nullable=False, default="*"),
            "date_created": mapped_column(UTCDateTime, nullable=False),
        },
    )

    model(
        "ProjectKey",
        {
            "__tablename__": f"{p}project_key",
            "id": mapped_column(IdType, primary_key=True),
            "project_id": mapped_column(IdType, project_fk(), nullable=False, index=True),
            "public_key": mapped_column(sa.String(32), nullable=False, unique=True),
            "secret_key": mapped_column(sa.String(32), nullable=False),
            "roles": mapped_column(sa.Integer, nullable=False, default=1),
            "is_active": mapped_column(sa.Boolean, nullable=False, default=True),
            "label": mapped_column(sa.String(64), nullable=True),
            "date_added": mapped_column(UTCDateTime, nullable=False),
            # Sentry's key option rateLimit {count, window}; both null: the app's default.
            "rate_limit_count": mapped_column(sa.Integer, nullable=True),
            "rate_limit_window": mapped_column(sa.Integer, nullable=True),
        },
    )

    model(
        "Group",
        {
            "__tablename__": f"{p}group",
            "id": mapped_column(IdType, primary_key=True),
            "project_id": mapped_column(IdType, project_fk(), nullable=False),
            "hash": mapped_column(sa.String(32), nullable=False),
            "title": mapped_column(sa.String(255), nullable=False),
            "message": mapped_column(sa.Text, nullable=False, default=""),
            "culprit": mapped_column(sa.String(200), nullable=True),
            "logger": mapped_column(sa.String(64), nullable=True),
            "level": mapped_column(sa.String(16), nullable=False, default="error"),
            "type": mapped_column(sa.String(16), nullable=False, default="default"),
            "metadata_": mapped_column("metadata", JSONType, nullable=False, default=dict),
            "platform": mapped_column(sa.String(64), nullable=True),
            "status": mapped_column(sa.String(16), nullable=False, default="unresolved"),
            "is_public": mapped_column(sa.Boolean, nullable=False, default=False),
            "is_bookmarked": mapped_column(sa.Boolean, nullable=False, default=False),
            "has_seen": mapped_column(sa.Boolean, nullable=False, default=False),
            "times_seen": mapped_column(sa.BigInteger, nullable=False, default=1),
            "user_count": mapped_column(sa.Integer, nullable=False, default=0),
            "num_comments": mapped_column(sa.Integer, nullable=False, default=0),
            "first_seen": mapped_column(UTCDateTime, nullable=False),
            "last_seen": mapped_column(UTCDateTime, nullable=False),
            "resolved_at": mapped_column(UTCDateTime, nullable=True),
            "score": mapped_column(sa.BigInteger, nullable=False, default=0),
            "__table_args__": (
                sa.UniqueConstraint("project_id", "hash", name=f"{p}group_project_hash_key"),
                # One index per list ordering, with and without the status filter
                # (`query=` lists every status): a page is an index range scan at any depth.
                *(
                    sa.Index(f"{p}group_status_{column}", "project_id", "status", column, "id")
                    for column in ("last_seen", "first_seen", "times_seen", "score")
                ),
                *(
                    sa.Index(f"{p}group_{column}", "project_id", column, "id")
                    for column in ("last_seen", "first_seen", "times_seen", "score")
                ),
            ),
        },
    )

    def group_fk() -> sa.ForeignKey:
        return sa.ForeignKey(f"{p}group.id", ondelete="CASCADE")

    model(
        "Event",
        {
            "__tablename__": f"{p}event",
            "id": mapped_column(IdType, primary_key=True),
            "project_id": mapped_column(IdType, project_fk(), nullable=False),
            "group_id": mapped_column(IdType, group_fk(), nullable=False),
            "event_id": mapped_column(sa.String(32), nullable=False),
            "message": mapped_column(sa.Text, nullable=False, default=""),
            "title": mapped_column(sa.String(255), nullable=False),
            "culprit": mapped_column(sa.String(200), nullable=True),
            "level": mapped_column(sa.String(16), nullable=False),
            "logger": mapped_column(sa.String(64), nullable=True),
            "platform": mapped_column(sa.String(64), nullable=True),
            "datetime": mapped_column(UTCDateTime, nullable=False),
            "date_received": mapped_column(UTCDateTime, nullable=False),
            "release": mapped_column(sa.String(200), nullable=True),
            "environment": mapped_column(sa.String(64), nullable=True),
            "user": mapped_column(JSONType, nullable=True),
            "tags": mapped_column(JSONType, nullable=False, default=list),
            "data": mapped_column(JSONType, nullable=False, default=dict),
            "__table_args__": (
                sa.UniqueConstraint("project_id", "event_id", name=f"{p}event_project_event_key"),
                sa.Index(f"{p}event_group_id", "group_id", "id"),
                sa.Index(f"{p}event_group_datetime", "group_id", "datetime", "id"),
                # The project's event list is read by id.
                sa.Index(f"{p}event_project_id", "project_id", "id"),
            ),
        },
    )

    model(
        "Note",
        {
            "__tablename__": f"{p}note",
            "id": mapped_column(IdType, primary_key=True),
            "group_id": mapped_column(IdType, group_fk(), nullable=False),
            "text": mapped_column(sa.Text, nullable=False),
            "date_created": mapped_column(UTCDateTime, nullable=False),
            "__table_args__": (sa.Index(f"{p}note_group_id", "group_id", "id"),),
        },
    )

    def tag_columns() -> dict[str, t.Any]:
        return {
            "id": mapped_column(IdType, primary_key=True),
            "project_id": mapped_column(IdType, project_fk(), nullable=False),
            "key": mapped_column(sa.String(32), nullable=False),
            "value": mapped_column(sa.String(200), nullable=False),
            "times_seen": mapped_column(sa.BigInteger, nullable=False, default=0),
            "first_seen": mapped_column(UTCDateTime, nullable=False),
            "last_seen": mapped_column(UTCDateTime, nullable=False),
        }

    model(
        "TagValue",
        {
            "__tablename__": f"{p}tag_value",
            **tag_columns(),
            "__table_args__": (
                sa.UniqueConstraint(
                    "project_id", "key", "value", name=f"{p}tag_value_project_key_value_key"
                ),
                # Values are listed most seen first.
                sa.Index(f"{p}tag_value_by_count", "project_id", "key", "times_seen", "id"),
            ),
        },
    )

    model(
        "GroupTagValue",
        {
            "__tablename__": f"{p}group_tag_value",
            **tag_columns(),
            "group_id": mapped_column(IdType, group_fk(), nullable=False),
            "__table_args__": (
                sa.UniqueConstraint(
                    "group_id", "key", "value", name=f"{p}group_tag_value_group_key_value_key"
                ),
                sa.Index(f"{p}group_tag_value_by_count", "group_id", "key", "times_seen", "id"),
                sa.Index(f"{p}group_tag_value_project_key_value", "project_id", "key", "value"),
            ),
        },
    )

    # Event counts rolled up at ingestion per (group | project, resolution, bucket start),
    # so stats cost a few index rows per bucket whatever the number of events.
    model(
        "GroupStat",
        {
            "__tablename__": f"{p}group_stat",
            "group_id": mapped_column(IdType, group_fk(), primary_key=True),
            "resolution": mapped_column(sa.Integer, primary_key=True),
            "bucket": mapped_column(sa.BigInteger, primary_key=True),
            "count": mapped_column(sa.BigInteger, nullable=False, default=0),
        },
    )

    model(
        "ProjectStat",
        {
            "__tablename__": f"{p}project_stat",
            "project_id": mapped_column(IdType, project_fk(), primary_key=True),
            "resolution": mapped_column(sa.Integer, primary_key=True),
            "bucket": mapped_column(sa.BigInteger, primary_key=True),
            "count": mapped_column(sa.BigInteger, nullable=False, default=0),
        },
    )

    model(
        "Release",
        {
            "__tablename__": f"{p}release",
            "id": mapped_column(IdType, primary_key=True),
            "project_id": mapped_column(IdType, project_fk(), nullable=False),
            "version": mapped_column(sa.String(200), nullable=False),
            "date_created": mapped_column(UTCDateTime, nullable=False),
            "first_event": mapped_column(UTCDateTime, nullable=True),
            "last_event": mapped_column(UTCDateTime, nullable=True),
            "new_groups": mapped_column(sa.Integer, nullable=False, default=0),
            # What a deploy tool reports; the lengths are Sentry's.
            "ref": mapped_column(sa.String(RELEASE_REF_LENGTH), nullable=True),
            "url": mapped_column(sa.String(RELEASE_URL_LENGTH), nullable=True),
            "date_released": mapped_column(UTCDateTime, nullable=True),
            "date_started": mapped_column(UTCDateTime, nullable=True),
            "__table_args__": (
                sa.UniqueConstraint("project_id", "version", name=f"{p}release_version_key"),
                sa.Index(f"{p}release_project_id", "project_id", "id"),
            ),
        },
    )

    model(
        "AuthToken",
        {
            "__tablename__": f"{p}auth_token",
            "id": mapped_column(IdType, primary_key=True),
            "project_id": mapped_column(IdType, project_fk(), nullable=False),
            # Every authenticated request looks its token up by hash.
            "token_hash": mapped_column(sa.String(64), nullable=False, unique=True, index=True),
            # Space-separated (the storages refuse scopes with spaces), in the order given.
            "scopes": mapped_column(sa.Text, nullable=False, default=""),
            "label": mapped_column(sa.String(TOKEN_LABEL_LENGTH), nullable=True),
            "last_characters": mapped_column(
                sa.String(TOKEN_LAST_CHARACTERS_LENGTH), nullable=False, default=""
            ),
            "date_created": mapped_column(UTCDateTime, nullable=False),
            "__table_args__": (sa.Index(f"{p}auth_token_project_id", "project_id", "id"),),
        },
    )

    return Models(**declared)
