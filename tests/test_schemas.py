"""The schemas module: the hand-written group list dump against GroupSchema, the shape it
must reproduce byte for byte, and the date format every object uses."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from flask_sentry_api.schemas import ContextT
from flask_sentry_api.schemas import GroupSchema
from flask_sentry_api.schemas import dump_group_list
from flask_sentry_api.schemas import format_datetime
from flask_sentry_api.storage import GroupChanges
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import Project
from flask_sentry_api.testing import EVERYTHING
from flask_sentry_api.testing import make_event

UTC = timezone.utc
PROJECT = Project(
    id=7,
    name="Back End",
    slug="back-end",
    is_public=False,
    date_created=datetime(2026, 1, 1, tzinfo=UTC),
)


def with_schema(groups, project, permalink):
    with ContextT({"project": project, "permalink": permalink}):
        return GroupSchema(many=True).dump(groups)


def permalink(group):
    return f"https://errors.example/issues/{group.id}/"


def as_text(dumped):
    """Serialised as the response is: key order and value types both show."""
    return json.dumps(dumped)


@pytest.fixture
def stored_groups(storage, project):
    base = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    for n, (hash_, fields) in enumerate(
        [
            ("plain", {}),
            ("with-culprit", {"culprit": "app.views in index", "logger": "django"}),
            ("error", {"level": "fatal", "tags": (("user", "id:1"),)}),
        ]
    ):
        storage.save_event(
            project.id,
            make_event(group_hash=hash_, title=hash_, timestamp=base.replace(second=n), **fields),
        )
    listed = storage.list_groups(project.id, GroupQuery(), EVERYTHING)
    storage.update_groups(
        project.id,
        GroupQuery(ids=(listed[0].id,)),
        GroupChanges(status="resolved", is_bookmarked=True, has_seen=True, is_public=True),
    )
    return storage.list_groups(project.id, GroupQuery(), EVERYTHING)


def test_stored_groups_dump_as_the_schema_does(stored_groups, project):
    assert len(stored_groups) == 3
    fast = dump_group_list(stored_groups, project, permalink)
    assert as_text(fast) == as_text(with_schema(stored_groups, project, permalink))
    assert {group["status"] for group in fast} == {"resolved", "unresolved"}


def test_every_optional_field_empty_dumps_as_the_schema_does(stored_groups):
    bare = dataclasses.replace(
        stored_groups[0], culprit=None, logger=None, metadata={}, user_count=0, num_comments=0
    )
    fast = dump_group_list([bare], PROJECT, permalink)
    assert as_text(fast) == as_text(with_schema([bare], PROJECT, permalink))
    assert fast[0]["shortId"] == f"BACK-END-{bare.id}"
    assert fast[0]["culprit"] is None and fast[0]["timeSpent"] is None


def test_groups_do_not_share_the_project_reference(stored_groups, project):
    first, second = dump_group_list(stored_groups[:2], project, permalink)
    first["project"]["slug"] = "changed"
    assert second["project"]["slug"] == project.slug


def test_no_groups_dump_to_an_empty_list():
    assert dump_group_list([], PROJECT, permalink) == with_schema([], PROJECT, permalink) == []


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2015, 1, 9, 21, 6, 30, 125999, tzinfo=UTC), "2015-01-09T21:06:30.125Z"),
        (datetime(2015, 1, 9, 21, 6, 30, tzinfo=UTC), "2015-01-09T21:06:30Z"),
        # Under a millisecond still says the time is not whole seconds.
        (datetime(2015, 1, 9, 21, 6, 30, 500, tzinfo=UTC), "2015-01-09T21:06:30.000Z"),
        (
            datetime(2015, 1, 9, 23, 6, 30, 1000, tzinfo=timezone(timedelta(hours=2))),
            "2015-01-09T21:06:30.001Z",
        ),
    ],
)
def test_datetimes_are_utc_with_milliseconds_at_most(moment, text):
    assert format_datetime(moment) == text
