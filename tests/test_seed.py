"""``flask sentry-api seed-demo`` and :func:`flask_sentry_api.seed.seed_demo`."""

from __future__ import annotations

import collections
import time
import typing as t
from datetime import datetime
from datetime import timezone

import pytest
import sqlalchemy as sa
from alembic import command
from flask import Flask
from flask.testing import FlaskClient

from flask_sentry_api import get_state
from flask_sentry_api import seed
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.migrate import alembic_config
from flask_sentry_api.migrate import lock_schema
from flask_sentry_api.migrate import upgrade
from flask_sentry_api.pagination import Window
from flask_sentry_api.seed import seed_demo
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import STAT_RESOLUTIONS
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import epoch_seconds
from flask_sentry_api.storage import priority_score

from .conftest import basic_auth
from .conftest import make_app

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def invoke(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["sentry-api", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def all_pages(client: FlaskClient, url: str, headers: dict[str, str]) -> list[dict[str, t.Any]]:
    """Every row of a list endpoint, following the ``next`` cursors."""
    rows: list[dict[str, t.Any]] = []
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        rows.extend(response.json)
        links = response.headers["Link"].split(", ")
        nxt = next(link for link in links if 'rel="next"' in link)
        if 'results="true"' not in nxt:
            return rows
        url = nxt[1 : nxt.index(">")]


def table_rows(storage: t.Any, model: t.Any, *conditions: t.Any) -> list[t.Any]:
    return list(storage.session.scalars(sa.select(model).where(*conditions)))


def test_seed_demo_through_the_cli_and_the_api(
    app: Flask, client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    code, output = invoke(
        app,
        "seed-demo",
        "--project",
        str(project.id),
        "--groups",
        "300",
        "--events-per-group",
        "3",
        "--seed",
        "7",
    )
    assert code == 0, output
    assert f"Seeded project {project.id}: 300 groups, 900 events in" in output
    assert "groups/s" in output

    url = f"/api/0/projects/{project.id}/groups/?query=&limit=25&statsPeriod="
    groups = all_pages(client, url, auth)
    # Cursor pages over tied lastSeen seconds lose and repeat nothing.
    assert sorted(int(g["id"]) for g in groups) == list(range(1, 301))
    last_seen = [g["lastSeen"] for g in groups]
    assert last_seen == sorted(last_seen, reverse=True)
    ties = collections.Counter(g["lastSeen"][:19] for g in groups)
    assert sum(1 for n in ties.values() if n >= 3) >= 3
    statuses = collections.Counter(g["status"] for g in groups)
    assert statuses["unresolved"] > statuses["resolved"] > 0 and statuses["muted"] > 0
    assert {g["level"] for g in groups} == {"debug", "info", "warning", "error", "fatal"}
    assert len({g["title"] for g in groups}) > 100
    assert all(g["count"] == "3" for g in groups)
    unresolved = all_pages(client, f"/api/0/projects/{project.id}/groups/?limit=100", auth)
    assert len(unresolved) == statuses["unresolved"]

    tag_keys: set[str] = set()
    month_ago = int(time.time()) - 31 * 86400
    for group in groups[::15]:
        tags = client.get(f"/api/0/groups/{group['id']}/tags/", headers=auth).json
        by_key = {tag["key"]: tag for tag in tags}
        tag_keys |= set(by_key)
        assert by_key["level"]["totalValues"] == 3
        assert by_key["level"]["topValues"][0]["value"] == group["level"]
        assert by_key["environment"]["totalValues"] == 3
        users = by_key.get("user", {"uniqueValues": 0})["uniqueValues"]
        assert users == group["userCount"]
        for tag in tags:
            for value in tag["topValues"]:
                assert group["firstSeen"] <= value["firstSeen"] <= value["lastSeen"]
                assert value["lastSeen"] <= group["lastSeen"]
        stats = client.get(
            f"/api/0/groups/{group['id']}/stats/?resolution=1d&since={month_ago}", headers=auth
        ).json
        assert sum(count for _, count in stats) == 3
    assert tag_keys >= {"level", "environment", "release", "server_name", "user", "browser", "os"}

    releases = all_pages(client, f"/api/0/projects/{project.id}/releases/", auth)
    assert len(releases) > 5
    assert 0 < sum(r["newGroups"] for r in releases) <= 300
    assert all(r["firstEvent"] <= r["lastEvent"] for r in releases)


def check_invariants(storage: t.Any, project_id: int) -> None:
    """Every counter and rollup of the project equals what its stored events imply."""
    m = storage.models
    groups = {g.id: g for g in table_rows(storage, m.Group, m.Group.project_id == project_id)}
    events = table_rows(storage, m.Event, m.Event.project_id == project_id)
    by_group: dict[int, list[t.Any]] = collections.defaultdict(list)
    for event in sorted(events, key=lambda e: e.id):
        by_group[event.group_id].append(event)

    group_tags: dict[tuple[int, str, str], list[datetime]] = collections.defaultdict(list)
    project_tags: dict[tuple[str, str], list[datetime]] = collections.defaultdict(list)
    group_stats: collections.Counter[tuple[int, int, int]] = collections.Counter()
    project_stats: collections.Counter[tuple[int, int]] = collections.Counter()
    releases: dict[str, list[datetime]] = collections.defaultdict(list)
    new_groups: collections.Counter[str] = collections.Counter()
    for group_id, group in groups.items():
        mine = by_group[group_id]
        assert group.times_seen == len(mine) >= 1
        assert group.first_seen == min(e.datetime for e in mine)
        assert group.last_seen == max(e.datetime for e in mine)
        assert group.score == priority_score(group.times_seen, group.last_seen)
        newest = max(mine, key=lambda e: (e.datetime, e.id))
        assert (group.level, group.culprit) == (newest.level, newest.culprit)
        assert group.num_comments == 0
        assert (group.resolved_at is not None) == (group.status == "resolved")
        users = {dict(e.tags).get("user") for e in mine} - {None}
        assert group.user_count == len(users)
        if mine[0].release:
            new_groups[mine[0].release] += 1
        for event in mine:
            tags = dict(event.tags)
            assert tags["level"] == event.level
            assert tags.get("release") == event.release
            assert tags.get("environment") == event.environment
            assert tags.get("user") == (f"id:{event.user['id']}" if event.user else None)
            for key, value in tags.items():
                group_tags[(group_id, key, value)].append(event.datetime)
                project_tags[(key, value)].append(event.datetime)
            epoch = epoch_seconds(event.datetime)
            for resolution in STAT_RESOLUTIONS:
                group_stats[(group_id, resolution, epoch - epoch % resolution)] += 1
                project_stats[(resolution, epoch - epoch % resolution)] += 1
            if event.release:
                releases[event.release].append(event.datetime)

    def seen(rows: list[datetime]) -> tuple[int, datetime, datetime]:
        return len(rows), min(rows), max(rows)

    GTV, TV = m.GroupTagValue, m.TagValue
    stored_group_tags = {
        (r.group_id, r.key, r.value): (r.times_seen, r.first_seen, r.last_seen)
        for r in table_rows(storage, GTV, GTV.project_id == project_id)
    }
    assert stored_group_tags == {k: seen(v) for k, v in group_tags.items()}
    stored_tags = {
        (r.key, r.value): (r.times_seen, r.first_seen, r.last_seen)
        for r in table_rows(storage, TV, TV.project_id == project_id)
    }
    assert stored_tags == {k: seen(v) for k, v in project_tags.items()}
    GS, PS = m.GroupStat, m.ProjectStat
    stored_stats = {
        (r.group_id, r.resolution, r.bucket): r.count
        for r in table_rows(storage, GS, GS.group_id.in_(list(groups)))
    }
    assert stored_stats == dict(group_stats)
    stored_project_stats = {
        (r.resolution, r.bucket): r.count
        for r in table_rows(storage, PS, PS.project_id == project_id)
    }
    assert stored_project_stats == dict(project_stats)
    Release = m.Release
    stored_releases = {
        r.version: (r.first_event, r.last_event, r.new_groups)
        for r in table_rows(storage, Release, Release.project_id == project_id)
    }
    assert stored_releases == {
        version: (min(times), max(times), new_groups[version])
        for version, times in releases.items()
    }


def test_rollups_equal_what_the_events_imply(app: Flask, storage: t.Any) -> None:
    project = storage.create_project("Web")
    result = seed_demo(storage, project.id, 200, 4, seed=3, now=NOW)
    assert (result.groups, result.events) == (200, 800)
    assert result.seconds > 0 and result.rate > 0
    check_invariants(storage, project.id)


def test_one_event_per_group_and_chunking(
    app: Flask, storage: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seed, "CHUNK_ROWS", 70)  # several chunks, the last one partial
    project = storage.create_project("Web")
    finished: list[int] = []
    seed_demo(storage, project.id, 250, 1, now=NOW, progress=finished.append)
    assert finished == [70, 70, 70, 40]
    check_invariants(storage, project.id)


def test_rows_equal_what_ingestion_stores(app: Flask, storage: t.Any) -> None:
    """The SQL fast path and one save_event per event store the same rows."""
    fast, slow = storage.create_project("Fast"), storage.create_project("Slow")
    seed_demo(storage, fast.id, 40, 4, seed=11, now=NOW)
    seed._seed_each(storage, slow.id, 40, 4, 11, NOW, lambda done: None)
    m = storage.models

    def snapshot(project_id: int) -> dict[str, t.Any]:
        groups = table_rows(storage, m.Group, m.Group.project_id == project_id)
        hashes = {g.id: g.hash for g in groups}
        skip = {"id", "project_id", "resolved_at", "date_received", "date_created", "group_id"}

        def values(row: t.Any, model: t.Any) -> dict[str, t.Any]:
            return {
                c.key: getattr(row, c.key)
                for c in model.__mapper__.column_attrs
                if c.key not in skip
            }

        def rows(
            model: t.Any, key: t.Callable[[t.Any], t.Any], *where: t.Any
        ) -> dict[t.Any, t.Any]:
            return {key(r): values(r, model) for r in table_rows(storage, model, *where)}

        GTV, GS = m.GroupTagValue, m.GroupStat
        return {
            "groups": {g.hash: (values(g, m.Group), g.resolved_at is None) for g in groups},
            "events": rows(
                m.Event,
                lambda e: (hashes[e.group_id], e.event_id),
                m.Event.project_id == project_id,
            ),
            "group tags": rows(
                GTV, lambda r: (hashes[r.group_id], r.key, r.value), GTV.project_id == project_id
            ),
            "tags": rows(
                m.TagValue, lambda r: (r.key, r.value), m.TagValue.project_id == project_id
            ),
            "group stats": rows(
                GS, lambda r: (hashes[r.group_id], r.resolution, r.bucket), GS.group_id.in_(hashes)
            ),
            "stats": rows(
                m.ProjectStat,
                lambda r: (r.resolution, r.bucket),
                m.ProjectStat.project_id == project_id,
            ),
            "releases": rows(m.Release, lambda r: r.version, m.Release.project_id == project_id),
        }

    fast_rows, slow_rows = snapshot(fast.id), snapshot(slow.id)
    for name, expected in slow_rows.items():
        assert expected, name
        assert fast_rows[name] == expected, name


def test_same_seed_same_data_other_seed_other_data(app: Flask, storage: t.Any) -> None:
    m = storage.models

    def seeded(seed_value: int) -> list[tuple[t.Any, ...]]:
        project = storage.create_project(f"Seed {seed_value}")
        seed_demo(storage, project.id, 40, 2, seed=seed_value, now=NOW)
        groups = table_rows(storage, m.Group, m.Group.project_id == project.id)
        events = table_rows(storage, m.Event, m.Event.project_id == project.id)
        return [
            (g.hash, g.title, g.status, g.level, g.first_seen, g.last_seen, g.user_count)
            for g in sorted(groups, key=lambda g: g.id)
        ] + [(e.event_id, e.datetime, e.tags, e.data) for e in sorted(events, key=lambda e: e.id)]

    first = seeded(5)
    assert seeded(5) == first
    assert seeded(6) != first


def test_running_again_adds_groups(app: Flask, storage: t.Any) -> None:
    project = storage.create_project("Web")
    seed_demo(storage, project.id, 30, 2, now=NOW)
    seed_demo(storage, project.id, 30, 2, now=NOW)
    groups = table_rows(storage, storage.models.Group, storage.models.Group.project_id == 1)
    assert len(groups) == len({g.hash for g in groups}) == 60
    check_invariants(storage, project.id)


def test_zero_events_makes_group_rows_only(app: Flask, client: FlaskClient, storage: t.Any) -> None:
    project = storage.create_project("Web")
    key = storage.create_key(project.id, ROLE_API)
    code, output = invoke(
        app, "seed-demo", "--project", str(project.id), "--groups", "120", "--events-per-group", "0"
    )
    assert code == 0, output
    assert "120 groups, 0 events" in output
    m = storage.models
    groups = table_rows(storage, m.Group, m.Group.project_id == project.id)
    assert len(groups) == 120
    assert len({g.times_seen for g in groups}) > 5
    for group in groups:
        assert group.times_seen >= 1 and 0 <= group.user_count <= group.times_seen
        assert group.first_seen <= group.last_seen
        assert group.score == priority_score(group.times_seen, group.last_seen)
    for model in (m.Event, m.GroupTagValue, m.TagValue, m.ProjectStat, m.Release):
        assert storage.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
    url = f"/api/0/projects/{project.id}/groups/?query=&sort=freq&limit=50"
    listed = all_pages(client, url, basic_auth(key))
    assert len(listed) == 120


def test_other_storages_get_one_save_event_per_event() -> None:
    memory = MemoryStorage()
    app = make_app(storage=memory)
    project = memory.create_project("Web")
    key = memory.create_key(project.id, ROLE_STORE | ROLE_API)
    code, output = invoke(
        app, "seed-demo", "--project", "1", "--groups", "40", "--events-per-group", "3"
    )
    assert code == 0, output
    assert "40 groups, 120 events" in output
    client = app.test_client()
    groups = all_pages(client, "/api/0/projects/1/groups/?query=&limit=15", basic_auth(key))
    assert len(groups) == 40 and all(g["count"] == "3" for g in groups)
    assert len({g["status"] for g in groups}) > 1
    with app.app_context():
        stored = memory.list_groups(1, GroupQuery(), Window(None, 0, True, 0, 100))
        assert sum(g.user_count > 0 for g in stored) > 30
        # No stored events could back made-up counters.
        with pytest.raises(ValueError, match="needs the SQLAlchemy storage"):
            seed_demo(memory, 1, 5, 0)
    code, output = invoke(
        app, "seed-demo", "--project", "1", "--groups", "5", "--events-per-group", "0"
    )
    assert code == 2
    assert "needs the SQLAlchemy storage" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "42", "--groups", "5", "--events-per-group", "1"], "no project with id 42"),
        (["--project", "1", "--groups", "0", "--events-per-group", "1"], "--groups"),
        (["--project", "1", "--groups", "5", "--events-per-group", "-1"], "--events-per-group"),
        (["--project", "1", "--events-per-group", "1"], "--groups"),
        (["--groups", "5", "--events-per-group", "1"], "--project"),
    ],
)
def test_cli_errors(app: Flask, project: Project, args: list[str], message: str) -> None:
    code, output = invoke(app, "seed-demo", *args)
    assert code == 2
    assert message in output
    with app.app_context():
        assert get_state(app).storage.get_group(1) is None


def follow(
    client: FlaskClient, url: str, headers: dict[str, str], rel: str
) -> list[list[dict[str, t.Any]]]:
    """The pages from ``url`` on, following the ``rel`` ("next" or "previous") cursors."""
    pages: list[list[dict[str, t.Any]]] = []
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        pages.append(response.json)
        links = response.headers["Link"].split(", ")
        link = next(link for link in links if f'rel="{rel}"' in link)
        if 'results="true"' not in link:
            return pages
        url = link[1 : link.index(">")]
        assert len(pages) < 1000


@pytest.mark.parametrize("sort", ["date", "new"])
def test_seeded_ties_page_backward_and_forward_once_each(
    app: Flask, client: FlaskClient, storage: t.Any, sort: str
) -> None:
    # Issue 12: on SQLite the seed wrote whole seconds as '2026-11-10 07:41:32' and the ORM
    # as '…:32.000000'; the cursor's `==` bound missed one form, so walking rel="previous"
    # over seeded ties skipped rows.
    project = storage.create_project("Ties")
    auth = basic_auth(storage.create_key(project.id, ROLE_STORE | ROLE_API))
    seed_demo(storage, project.id, 300, 1, seed=5, now=NOW)
    column = storage.models.Group.last_seen
    if storage.session.get_bind().dialect.name == "sqlite":
        # One text form for every writer: the ORM's, microseconds included.
        forms = storage.session.execute(
            sa.text(f"SELECT last_seen, first_seen FROM {column.table.name}")
        ).all()
        assert forms and all(len(value) == 26 for row in forms for value in row), forms[:3]
    url = f"/api/0/projects/{project.id}/groups/?query=&limit=7&statsPeriod=&sort={sort}"
    rows, back_rows = walk_both_ways(client, url, auth)
    assert sorted(map(int, rows)) == sorted(
        int(g) for g in storage.session.scalars(sa.select(storage.models.Group.id))
    )
    assert len(rows) == len(set(rows)) == 300
    assert back_rows == rows


def walk_both_ways(
    client: FlaskClient, url: str, auth: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The group ids of every page from ``url`` following ``rel="next"``, and those of the
    walk back from the last page following ``rel="previous"`` (in forward order); the rows
    have ties (several groups per second)."""
    forward = follow(client, url, auth, "next")
    rows = [g["id"] for page in forward for g in page]
    ties = collections.Counter(g["lastSeen"][:19] for page in forward for g in page)
    assert sum(1 for n in ties.values() if n >= 3) >= 3
    response = client.get(url, headers=auth)
    last_url = url
    for _ in forward[1:]:
        links = response.headers["Link"].split(", ")
        nxt = next(link for link in links if 'rel="next"' in link)
        last_url = nxt[1 : nxt.index(">")]
        response = client.get(last_url, headers=auth)
    backward = follow(client, last_url, auth, "previous")
    return rows, [g["id"] for page in reversed(backward) for g in page]


def test_old_seed_timestamps_page_once_each_after_migration_0003(
    app: Flask, client: FlaskClient, storage: t.Any
) -> None:
    """Issue 12: a database the old ``seed-demo`` filled (whole seconds as
    '2026-11-10 07:41:32' on SQLite) next to rows the ORM wrote ('….000000') pages
    backward over ties with every row exactly once once migration 0003 has run."""
    project = storage.create_project("Ties")
    auth = basic_auth(storage.create_key(project.id, ROLE_STORE | ROLE_API))
    seed_demo(storage, project.id, 300, 1, seed=5, now=NOW)
    group_ids = sorted(storage.session.scalars(sa.select(storage.models.Group.id)))
    storage.session.commit()
    engine, prefix = storage.engine, storage.table_prefix
    on_sqlite = engine.dialect.name == "sqlite"
    url = f"/api/0/projects/{project.id}/groups/?query=&limit=7&statsPeriod=&sort=date"
    if on_sqlite:
        # The old seed's form on every other group (the rest as the ORM wrote them later).
        group = storage.models.Group.__table__
        with storage.session.begin():
            storage.session.execute(
                sa.update(group)
                .where(group.c.id % 2 == 0)
                .values(last_seen=sa.func.substr(group.c.last_seen, 1, 19))
            )
        forms = {
            len(v)
            for v in storage.session.scalars(sa.text(f'SELECT last_seen FROM "{group.name}"'))
        }
        assert forms == {19, 26}
        rows, back_rows = walk_both_ways(client, url, auth)
        assert back_rows != rows  # the defect: two forms of one instant page wrongly
    storage.session.remove()
    # The database as 0002 left it, then upgraded.
    with engine.begin() as connection:
        lock_schema(connection, prefix)
        command.stamp(alembic_config(connection, prefix), "0002")
    upgrade(engine, prefix)
    if on_sqlite:
        group = storage.models.Group.__table__
        forms = {
            len(v)
            for v in storage.session.scalars(sa.text(f'SELECT last_seen FROM "{group.name}"'))
        }
        assert forms == {26}
    rows, back_rows = walk_both_ways(client, url, auth)
    assert sorted(map(int, rows)) == group_ids
    assert len(rows) == len(set(rows)) == 300
    assert back_rows == rows
