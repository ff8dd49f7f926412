"""Writers racing each other lose nothing and orphan nothing (SPEC section 11, issue 12).

On SQLite every write transaction takes the database's write lock at its start
(``BEGIN IMMEDIATE``): pysqlite otherwise opens it only at the first write, and SQLite has
no ``SELECT ... FOR UPDATE``, so a merge racing a delete moved events into a group the
delete had just removed. On PostgreSQL the group rows are locked (``FOR UPDATE``).

The database is a file SQLite with a busy timeout (the shared in-memory test database
cannot take concurrent sessions), or ``SENTRY_API_TEST_DATABASE_URL`` when it is set.
"""

from __future__ import annotations

import threading
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_sentry_api import get_state
from flask_sentry_api.storage import Storage
from tests.helpers import DATABASE_URL
from tests.helpers import EVERYTHING
from tests.helpers import add_event
from tests.helpers import make_app

ROUNDS = 40


@pytest.fixture
def race_app(tmp_path: Path) -> t.Iterator[Flask]:
    if DATABASE_URL.startswith("sqlite"):
        app = make_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/races.db",
                "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 30}},
            }
        )
    else:
        app = make_app()
    try:
        yield app
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].session.remove()
            app.extensions["sqlalchemy"].drop_all()
            app.extensions["sqlalchemy"].engine.dispose()


def run_together(app: Flask, *jobs: t.Callable[[Storage], t.Any]) -> list[t.Any]:
    """Run each job in its own thread (its own app context, so its own session), all
    released at once; a job's result or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[t.Any] = [None] * len(jobs)

    def run(index: int, job: t.Callable[[Storage], t.Any]) -> None:
        with app.app_context():
            storage = get_state(app).storage
            barrier.wait()
            try:
                results[index] = job(storage)
            except Exception as exc:  # reported to the test, which decides
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def orphans(app: Flask) -> dict[str, int]:
    """Rows under a group that no longer exists, per table."""
    counts = {}
    with app.app_context():
        models = get_state(app).storage.models  # type: ignore[attr-defined]
        session = app.extensions["sqlalchemy"].session
        groups = sa.select(models.Group.id)
        for model in (models.Event, models.Note, models.GroupTagValue, models.GroupStat):
            counts[model.__tablename__] = session.scalar(
                sa.select(sa.func.count()).select_from(model).where(model.group_id.not_in(groups))
            )
    return counts


def test_merge_racing_delete_orphans_nothing(race_app: Flask) -> None:
    with race_app.app_context():
        storage = get_state(race_app).storage
        project = storage.create_project("Racing")
        rounds = []
        for n in range(ROUNDS):
            tags = (("user", f"u{n}"), ("browser", "Firefox"))
            a = add_event(storage, project, f"a{n}", tags=tags).group.id
            add_event(storage, project, f"a{n}", tags=tags)
            b = add_event(storage, project, f"b{n}", tags=(("user", f"v{n}"),)).group.id
            storage.create_note(b, "on b")
            rounds.append((a, b))
    outcomes = []
    for n, (a, b) in enumerate(rounds):
        doomed = a if n % 2 == 0 else b  # the merge's parent, or its child

        def merge(storage: Storage, a: int = a, b: int = b) -> t.Any:
            return storage.merge_groups(project.id, [a, b])

        def delete(storage: Storage, doomed: int = doomed) -> t.Any:
            return storage.delete_groups(project.id, [doomed])

        merged, deleted = run_together(race_app, merge, delete)
        # a child merged away first is no longer there to delete
        assert deleted == (0 if doomed == b and merged == (a, [b]) else 1), (merged, deleted)
        # merged first, or after the delete: only the survivor left to "merge"
        assert merged in [(a, [b]), (a if doomed == b else b, [])], merged
        outcomes.append(type(merged).__name__)
        with race_app.app_context():
            storage = get_state(race_app).storage
            left = [g for g in (a, b) if storage.get_group(g) is not None]
            for group_id in left:
                group = storage.get_group(group_id)
                assert group is not None
                events = storage.list_events(group_id, EVERYTHING)
                assert group.times_seen == len(events)
    assert orphans(race_app) == dict.fromkeys(orphans(race_app), 0)


def test_note_racing_delete_is_stored_or_refused(race_app: Flask) -> None:
    with race_app.app_context():
        storage = get_state(race_app).storage
        project = storage.create_project("Racing")
        groups = [add_event(storage, project, f"g{n}").group.id for n in range(ROUNDS)]
    for group_id in groups:

        def note(storage: Storage, group_id: int = group_id) -> t.Any:
            return storage.create_note(group_id, "racing")

        def delete(storage: Storage, group_id: int = group_id) -> t.Any:
            return storage.delete_groups(project.id, [group_id])

        noted, deleted = run_together(race_app, note, delete)
        assert deleted == 1, deleted
        assert isinstance(noted, LookupError) or noted.group_id == group_id, noted
    assert orphans(race_app) == dict.fromkeys(orphans(race_app), 0)
