"""The read path's fast paths against the slow ones they replace: orjson responses against
the host's JSON provider, one bucket layout for a page's stats against ``fill_series``'s
definition, the group list's records and dump against the per-row ones."""

from __future__ import annotations

import dataclasses
import json
import random
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from flask import Flask

from flask_sentry_api.http import encode_json
from flask_sentry_api.schemas import ContextT
from flask_sentry_api.schemas import GroupSchema
from flask_sentry_api.schemas import dump_group_list
from flask_sentry_api.stats import series_filler
from flask_sentry_api.storage import GroupChanges
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from flask_sentry_api.testing import EVERYTHING

from .helpers import add_event

UTC = timezone.utc

BODIES: list[t.Any] = [
    {"detail": "Not found"},
    [{"b": 1, "a": [1, 2.5, None, True, False], "c": {"z": '\n\t"\\', "y": -3}}],
    {"text": "caf\u00e9 \u20ac \U0001f600 \x7f \x00 \u2028"},
    [],
    {},
    "plain",
    {"nested": {"deeper": [{"k": "v"}, [[1, 0], [2, 5]]]}},
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize(
    "provider", [{}, {"ensure_ascii": False}, {"sort_keys": False}, {"compact": False}]
)
@pytest.mark.parametrize("debug", [False, True])
def test_json_responses_are_the_bytes_of_the_host_provider(
    body: t.Any, provider: dict[str, t.Any], debug: bool
) -> None:
    host = Flask("host")
    host.debug = debug
    for name, value in provider.items():
        setattr(host.json, name, value)
    with host.app_context():
        assert encode_json(body) == host.json.response(body).get_data()


@pytest.mark.parametrize("body", [{"lone": "\ud800"}, {"big": 2**70}, {1: "int key"}])
def test_what_orjson_refuses_is_written_by_the_host_provider(body: t.Any) -> None:
    host = Flask("host")
    with host.app_context():
        assert encode_json(body) == host.json.response(body).get_data()


def test_json_errors_of_the_api_keep_their_shape(client: t.Any) -> None:
    response = client.get("/api/0/projects/1/groups/")
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.data == b'{"detail":"Authentication credentials were not provided."}\n'


def _reference_series(
    counts: t.Mapping[int, int], first: int, last: int, resolution: int
) -> list[list[int]]:
    return [[bucket, counts.get(bucket, 0)] for bucket in range(first, last + 1, resolution)]


def test_series_filler_is_fill_series_for_every_group() -> None:
    rng = random.Random(14)
    for resolution, size in ((10, 30), (3600, 24), (86400, 14)):
        last = 1_700_000_000 - 1_700_000_000 % resolution
        first = last - (size - 1) * resolution
        fill = series_filler(first, last, resolution)
        for _ in range(50):
            counts = {
                first + rng.randrange(-3, size + 3) * resolution + rng.choice((0, 0, 0, 1)): (
                    rng.randrange(0, 1000)
                )
                for _ in range(rng.randrange(0, 8))
            }
            assert fill(counts) == _reference_series(counts, first, last, resolution)
    # Series of one page share their zero pairs, never the pairs with counts.
    fill = series_filler(0, 20, 10)
    one, other = fill({10: 4}), fill({})
    assert one == [[0, 0], [10, 4], [20, 0]] and other == [[0, 0], [10, 0], [20, 0]]


def _varied_groups(storage: Storage, project: Project) -> None:
    rng = random.Random(7)
    base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    titles = ["plain", "caf\u00e9 cr\u00e8me", "\u20ac \U0001f600", 'quote " and \\', "x" * 200]
    for n in range(30):
        when = base + timedelta(seconds=rng.randrange(0, 10**6), microseconds=rng.choice((0, 7)))
        fields: dict[str, t.Any] = {
            "title": titles[n % len(titles)],
            "culprit": rng.choice((None, "app.views in index", "\u00fcber")),
            "logger": rng.choice((None, "django")),
            "level": rng.choice(("error", "fatal", "info")),
        }
        if n % 3 == 0:
            fields["tags"] = (("user", f"id:{n}"),)
        add_event(storage, project, f"group-{n % 20}", when, **fields)
    listed = storage.list_groups(project.id, GroupQuery(), EVERYTHING)
    for group in listed[::4]:
        storage.update_groups(
            project.id,
            GroupQuery(ids=(group.id,)),
            GroupChanges(status="resolved", is_bookmarked=True, has_seen=True, is_public=True),
        )


def test_listed_records_are_the_records_of_the_group(storage: Storage, project: Project) -> None:
    _varied_groups(storage, project)
    for sort in ("date", "new", "freq", "priority"):
        for query in (GroupQuery(sort=sort), GroupQuery(sort=sort, status="resolved")):
            listed = storage.list_groups(project.id, query, EVERYTHING)
            assert listed, query
            assert listed == [storage.get_group(group.id) for group in listed]
            for group in listed:
                assert group.first_seen.tzinfo is not None and group.metadata is not None


def test_group_list_dump_is_the_schema_dump(storage: Storage, project: Project) -> None:
    _varied_groups(storage, project)
    groups = storage.list_groups(project.id, GroupQuery(), EVERYTHING)
    # Datetimes in another zone, and values of other types than a record holds, too.
    eastern = timezone(timedelta(hours=-5))
    groups += [
        dataclasses.replace(
            groups[0],
            first_seen=groups[0].first_seen.astimezone(eastern),
            last_seen=groups[0].last_seen.replace(microsecond=0),
            metadata={"type": "E", "value": "\u00e9"},
        ),
        dataclasses.replace(groups[1], user_count=True, num_comments=3.0),  # type: ignore[arg-type]
    ]

    def permalink(group: t.Any) -> str:
        return f"https://errors.example/issues/{group.id}/"

    fast = dump_group_list(groups, project, permalink)
    with ContextT({"project": project, "permalink": permalink}):
        slow = GroupSchema(many=True).dump(groups)
    assert json.dumps(fast) == json.dumps(slow)
