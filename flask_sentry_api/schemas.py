"""Marshmallow schemas: what the API emits (camelCase, string ids) and what it accepts.

Output schemas dump the storage records; request schemas validate partial PUT/POST bodies
(unknown fields are errors) and query strings. Request-scoped facts an output needs
(the project, permalinks, stats) come through :data:`SerializerContext`.
"""

from __future__ import annotations

import typing as t
from datetime import datetime
from datetime import timezone

from marshmallow import RAISE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import post_load
from marshmallow import utils
from marshmallow import validate
from marshmallow.experimental.context import Context

from .storage import GROUP_STATUSES

UTC = timezone.utc


class SerializerContext(t.TypedDict):
    project: t.Any
    permalink: t.Callable[[t.Any], str]


ContextT = Context[SerializerContext]


def format_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, milliseconds at most (``2015-01-09T21:06:30.125Z``)."""
    moment = moment.astimezone(UTC)
    # isoformat() rather than strftime(): a list page writes hundreds of these, and it
    # costs a third as much.
    timespec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


class APIDateTime(fields.Field[datetime]):
    def _serialize(
        self, value: datetime | None, attr: str | None, obj: t.Any, **kwargs: t.Any
    ) -> str | None:
        return format_datetime(value) if value is not None else None


class StringId(fields.Field[int]):
    """Integer ids travel as strings, as in Sentry."""

    def _serialize(
        self, value: int | None, attr: str | None, obj: t.Any, **kwargs: t.Any
    ) -> str | None:
        return str(value) if value is not None else None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CamelCaseSchema(Schema):
    """snake_case attributes, camelCase on the wire; unknown input fields are errors."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field[t.Any]) -> None:
        field_obj.data_key = _camel(field_obj.data_key or field_name)


#: JSON booleans plus the string spellings Sentry accepted ("1"/"0", "true"/"false").
def Flag(**kwargs: t.Any) -> fields.Boolean:  # noqa: N802 - reads like a field class
    return fields.Boolean(
        truthy={True, "true", "True", "1"}, falsy={False, "false", "False", "0"}, **kwargs
    )


class StatusField(fields.String):
    """A group status; ``ignored`` is Sentry's newer name for ``muted``."""

    def _deserialize(self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any) -> str:
        status = super()._deserialize(value, attr, data, **kwargs)
        status = "muted" if status == "ignored" else status
        if status not in GROUP_STATUSES:
            raise ValidationError(f"Must be one of: {', '.join(GROUP_STATUSES)}.")
        return status


# -- projects ----------------------------------------------------------------------------


class ProjectSchema(CamelCaseSchema):
    id = StringId()
    slug = fields.String()
    name = fields.String()
    is_public = fields.Boolean()
    date_created = APIDateTime()
    status = fields.String()
    options = fields.Method("dump_options")

    def dump_options(self, project: t.Any) -> dict[str, t.Any]:
        return {"sentry:origins": "\n".join(project.allowed_origins), "sentry:resolve_age": 0}


class ProjectOptionsSchema(Schema):
    """Sentry's project ``options`` a key may change."""

    class Meta:
        unknown = RAISE

    origins = fields.String(data_key="sentry:origins", validate=validate.Length(max=10000))


class ProjectUpdateSchema(CamelCaseSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    slug = fields.String(
        validate=[
            validate.Length(min=1, max=50),
            validate.Regexp(
                r"^[a-z0-9_-]+\Z",
                error="Use lowercase letters, digits, '-' and '_' only.",
            ),
        ]
    )
    is_public = Flag()
    #: ``{"sentry:origins": "https://a.example\nhttps://b.example"}`` (``*`` allows any):
    #: where browser SDKs may send events from.
    options = fields.Nested(ProjectOptionsSchema)

    @post_load
    def normalise(self, data: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
        options = data.pop("options", {})
        if "origins" in options:
            data["allowed_origins"] = tuple(
                line.strip() for line in options["origins"].splitlines() if line.strip()
            )
        if "name" in data:
            data["name"] = data["name"].strip()
            if not data["name"]:
                raise ValidationError("Must not be blank.", "name")
        return data


class ProjectRefSchema(CamelCaseSchema):
    id = StringId()
    name = fields.String()
    slug = fields.String()


# -- groups ------------------------------------------------------------------------------


class GroupSchema(CamelCaseSchema):
    id = StringId()
    short_id = fields.Method("dump_short_id")
    title = fields.String()
    culprit = fields.String(allow_none=True)
    permalink = fields.Method("dump_permalink")
    level = fields.String()
    logger = fields.String(allow_none=True)
    status = fields.String()
    is_resolved = fields.Method("dump_is_resolved")
    is_public = fields.Boolean()
    is_bookmarked = fields.Boolean()
    has_seen = fields.Boolean()
    count = fields.Function(lambda group: str(group.times_seen))
    user_count = fields.Integer()
    first_seen = APIDateTime()
    last_seen = APIDateTime()
    project = fields.Method("dump_project")
    metadata = fields.Dict()
    type = fields.String()
    num_comments = fields.Integer()
    time_spent = fields.Constant(None)

    def dump_short_id(self, group: t.Any) -> str:
        return f"{ContextT.get()['project'].slug.upper()}-{group.id}"

    def dump_permalink(self, group: t.Any) -> str:
        return ContextT.get()["permalink"](group)

    def dump_is_resolved(self, group: t.Any) -> bool:
        return bool(group.status == "resolved")

    def dump_project(self, group: t.Any) -> dict[str, t.Any]:
        return ProjectRefSchema().dump(ContextT.get()["project"])


def dump_group_list(
    groups: t.Sequence[t.Any], project: t.Any, permalink: t.Callable[[t.Any], str]
) -> list[dict[str, t.Any]]:
    """What ``GroupSchema(many=True).dump(groups)`` returns in the context of ``project``
    and ``permalink``, field for field and in the same order.

    Group lists are the hottest path of the API: marshmallow's per-field dispatch (and a
    ProjectRefSchema built per group) cost several times the database read of a page, so
    lists are written out here. GroupSchema stays the documented shape (the OpenAPI
    document is built from it): a field changed there must change here too.
    """
    ref = ProjectRefSchema().dump(project)
    short_prefix = f"{project.slug.upper()}-"

    def text(value: t.Any) -> str | None:
        return None if value is None else utils.ensure_text_type(value)

    def integer(value: t.Any) -> int | None:
        return None if value is None else int(value)

    def moment(value: datetime | None) -> str | None:
        return None if value is None else format_datetime(value)

    return [
        {
            "id": None if group.id is None else str(group.id),
            "shortId": f"{short_prefix}{group.id}",
            "title": text(group.title),
            "culprit": text(group.culprit),
            "permalink": permalink(group),
            "level": text(group.level),
            "logger": text(group.logger),
            "status": text(group.status),
            "isResolved": bool(group.status == "resolved"),
            "isPublic": group.is_public,
            "isBookmarked": group.is_bookmarked,
            "hasSeen": group.has_seen,
            "count": str(group.times_seen),
            "userCount": integer(group.user_count),
            "firstSeen": moment(group.first_seen),
            "lastSeen": moment(group.last_seen),
            "project": dict(ref),
            "metadata": None if group.metadata is None else dict(group.metadata),
            "type": text(group.type),
            "numComments": integer(group.num_comments),
            "timeSpent": None,
        }
        for group in groups
    ]


class GroupUpdateSchema(CamelCaseSchema):
    """``PUT /groups/<id>/``: a partial update of one group."""

    status = StatusField()
    is_bookmarked = Flag()
    has_seen = Flag()
    is_public = Flag()


class BulkGroupUpdateSchema(GroupUpdateSchema):
    """``PUT /projects/<id>/groups/``: changes applied to a selection of groups."""

    merge = Flag()
    # Accepted for compatibility; snoozing is not implemented, so only null or absent.
    snooze_duration = fields.Integer(allow_none=True, validate=validate.Range(min=0))


# -- events and notes --------------------------------------------------------------------


class EventSchema(CamelCaseSchema):
    id = StringId()
    event_id = fields.String(data_key="eventID")
    group_id = StringId(data_key="groupID")
    message = fields.String()
    title = fields.String()
    culprit = fields.String(allow_none=True)
    level = fields.String()
    logger = fields.String(allow_none=True)
    platform = fields.String(allow_none=True)
    date_created = APIDateTime(attribute="datetime")
    date_received = APIDateTime()
    release = fields.String(allow_none=True)
    environment = fields.String(allow_none=True)
    user = fields.Raw(allow_none=True)
    tags = fields.Function(lambda event: [{"key": k, "value": v} for k, v in event.tags])
    context = fields.Function(lambda event: event.data.get("extra") or {})
    contexts = fields.Function(lambda event: event.data.get("contexts") or {})
    sdk = fields.Function(lambda event: event.data.get("sdk"))
    fingerprints = fields.Function(lambda event: event.data.get("fingerprint") or [])
    metadata = fields.Function(lambda event: event.data.get("metadata") or {})
    type = fields.Function(lambda event: event.data.get("type") or "default")
    entries = fields.Function(lambda event: event.data.get("entries") or [])
    time_spent = fields.Constant(None)

    def on_bind_field(self, field_name: str, field_obj: fields.Field[t.Any]) -> None:
        if field_obj.data_key is None:
            super().on_bind_field(field_name, field_obj)


class NoteSchema(CamelCaseSchema):
    id = StringId()
    user = fields.Constant(None)
    type = fields.Constant("note")
    data = fields.Function(lambda note: {"text": note.text})
    date_created = APIDateTime()


class NoteCreateSchema(CamelCaseSchema):
    text = fields.String(required=True, validate=validate.Length(max=10000))

    @post_load
    def require_text(self, data: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
        if not data["text"].strip():
            raise ValidationError("Must not be blank.", "text")
        return data


# -- releases and tags -------------------------------------------------------------------


class ReleaseSchema(CamelCaseSchema):
    version = fields.String()
    date_created = APIDateTime()
    first_event = APIDateTime()
    last_event = APIDateTime()
    new_groups = fields.Integer()


class ReleaseCreateSchema(CamelCaseSchema):
    # Versions appear in URLs (`releases/<version>/`), so no slashes or blanks; the rest of
    # real-world version strings (1.2.0+build, my-app@2.0, a git sha) is allowed.
    version = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=200),
            validate.Regexp(
                r"^[^/\s\x00-\x1f\x7f]+\Z",
                error="Must not contain slashes, whitespace or control characters.",
            ),
            validate.NoneOf([".", "..", "latest"], error="This version name is reserved."),
        ],
    )


class TagValueSchema(CamelCaseSchema):
    key = fields.String()
    name = fields.Function(lambda tag: tag_label(tag.key))
    value = fields.String()
    count = fields.Integer(attribute="times_seen")
    first_seen = APIDateTime()
    last_seen = APIDateTime()


class TagKeySchema(CamelCaseSchema):
    key = fields.String()
    name = fields.Function(lambda summary: tag_label(summary.key))
    unique_values = fields.Integer()
    total_values = fields.Integer()
    top_values = fields.List(
        fields.Nested(TagValueSchema(only=("value", "count", "first_seen", "last_seen")))
    )


def tag_label(key: str) -> str:
    """A tag key's human name, as Sentry shows it (``server_name`` -> ``Server Name``)."""
    return key.removeprefix("sentry:").replace("_", " ").title()
