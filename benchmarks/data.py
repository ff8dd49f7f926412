"""Benchmark databases: seeded once, cached by their parameters, copied for destructive runs.

A dataset is a SQLite file under the cache directory (``BENCH_CACHE_DIR``, default
``$TMPDIR/flask-sentry-api-bench``) or, with ``--database-url postgresql+psycopg://...``, a
PostgreSQL database named after the one given (created from a template for copies). Data
comes from :func:`flask_sentry_api.seed.seed_demo` when that module exists, else from a
set-based filler below that writes the same tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import random
import shutil
import tempfile
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PROJECT_ID = 1
#: Bumped whenever the filler or the seeding parameters change meaning.
DATA_VERSION = "1"
UTC = timezone.utc


def cache_dir() -> Path:
    path = Path(os.environ.get("BENCH_CACHE_DIR") or Path(tempfile.gettempdir()) / "fsa-bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_source() -> str:
    """Which seeder fills datasets (part of the cache key).

    Not a digest of the seeder's source: an edit that changes nothing in the data would
    cost a million-group reseed. After a change that does, delete the cache directory.
    """
    if importlib.util.find_spec("flask_sentry_api.seed") is None:
        return "filler"
    return "seed_demo"


@dataclass(frozen=True)
class Dataset:
    """One seeded database: its SQLAlchemy URL and the project key to authenticate with."""

    url: str
    public_key: str
    secret_key: str
    groups: int
    events_per_group: int

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class Backend:
    """Where datasets live: SQLite files (default) or databases on one PostgreSQL server."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self.kind = "postgresql" if database_url else "sqlite"
        self._scratch = Path(tempfile.mkdtemp(prefix="fsa-bench-run-"))

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # -- naming --------------------------------------------------------------------------
    def _pg_url(self, name: str) -> str:
        assert self.database_url is not None
        return (
            sa.make_url(self.database_url).set(database=name).render_as_string(hide_password=False)
        )

    def _pg_base(self) -> str:
        assert self.database_url is not None
        return str(sa.make_url(self.database_url).database)

    def _admin(self) -> sa.Engine:
        return sa.create_engine(self._pg_url("postgres"), isolation_level="AUTOCOMMIT")

    def _pg_exists(self, name: str) -> bool:
        engine = self._admin()
        try:
            with engine.connect() as connection:
                return bool(
                    connection.scalar(
                        sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    )
                )
        finally:
            engine.dispose()

    def _pg_create(self, name: str, template: str | None = None) -> None:
        engine = self._admin()
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
                suffix = f' TEMPLATE "{template}"' if template else ""
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"{suffix}')
        finally:
            engine.dispose()

    def drop(self, dataset: Dataset) -> None:
        if dataset.is_sqlite:
            path = Path(sa.make_url(dataset.url).database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        engine = self._admin()
        try:
            with engine.connect() as connection:
                name = sa.make_url(dataset.url).database
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            engine.dispose()

    # -- datasets ------------------------------------------------------------------------
    def dataset(
        self,
        groups: int,
        events_per_group: int,
        log: t.Callable[[str], None] = print,
    ) -> Dataset:
        """The cached dataset with these parameters, seeding it first if needed."""
        name = f"g{groups}-e{events_per_group}-{seed_source()}-v{DATA_VERSION}"
        if self.kind == "sqlite":
            path = cache_dir() / f"{name}.db"
            url = f"sqlite:///{path}"
            if not path.exists():
                partial = path.with_suffix(".partial.db")
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{partial}{suffix}").unlink(missing_ok=True)
                _seed(f"sqlite:///{partial}", groups, events_per_group, log)
                _checkpoint(f"sqlite:///{partial}")
                partial.rename(path)
        else:
            db_name = f"{self._pg_base()}_{name.replace('-', '_')}"[:63]
            url = self._pg_url(db_name)
            if not self._pg_exists(db_name):
                partial_db = f"{db_name[:55]}_partial"
                self._pg_create(partial_db)
                _seed(self._pg_url(partial_db), groups, events_per_group, log)
                _analyze(self._pg_url(partial_db))
                engine = self._admin()
                with engine.connect() as connection:
                    connection.exec_driver_sql(
                        f'ALTER DATABASE "{partial_db}" RENAME TO "{db_name}"'
                    )
                engine.dispose()
        public, secret = _project_key(url)
        return Dataset(url, public, secret, groups, events_per_group)

    def copy(self, dataset: Dataset, label: str) -> Dataset:
        """A throw-away copy of ``dataset`` for a benchmark that changes it."""
        if dataset.is_sqlite:
            source = Path(sa.make_url(dataset.url).database or "")
            target = self._scratch / f"{label}.db"
            shutil.copyfile(source, target)
            url = f"sqlite:///{target}"
        else:
            name = f"{self._pg_base()}_copy_{label}"[:63]
            self._pg_create(name, template=str(sa.make_url(dataset.url).database))
            url = self._pg_url(name)
        return Dataset(url, dataset.public_key, dataset.secret_key, dataset.groups, 0)

    def empty(self, label: str) -> Dataset:
        """A new database holding only the demo project and its key."""
        if self.kind == "sqlite":
            url = f"sqlite:///{self._scratch / f'{label}.db'}"
        else:
            name = f"{self._pg_base()}_empty_{label}"[:63]
            self._pg_create(name)
            url = self._pg_url(name)
        with app_context(url):
            pass
        public, secret = _project_key(url)
        return Dataset(url, public, secret, 0, 0)


@contextlib.contextmanager
def app_context(url: str, **config: t.Any) -> Iterator[t.Any]:
    """The example app (the server the benchmarks run) on ``url``, inside its app context."""
    from example_app import create_app
    from example_app import db

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        # The demo project is project 1 with a store+API key, as a first start creates it.
        app = create_app({"EXAMPLE_CREATE_DEMO_PROJECT": True, **config})
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def _project_key(url: str) -> tuple[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT public_key, secret_key FROM sentry_project_key"
                    " WHERE project_id = :p ORDER BY id LIMIT 1"
                ),
                {"p": PROJECT_ID},
            ).one()
    finally:
        engine.dispose()
    return str(row[0]), str(row[1])


def _checkpoint(url: str) -> None:
    # Fold the WAL into the main file so a plain file copy is the whole database.
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def _analyze(url: str) -> None:
    # Planner statistics of freshly bulk-loaded tables are empty until autovacuum comes
    # round; without them the first benchmarks would time bad plans.
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def _seed(url: str, groups: int, events_per_group: int, log: t.Callable[[str], None]) -> None:
    began = time.monotonic()
    log(f"seeding {groups:,} groups x {events_per_group} events ({seed_source()}) ...")
    with app_context(url) as app:
        from flask_sentry_api import get_state

        storage = get_state(app).storage
        if importlib.util.find_spec("flask_sentry_api.seed") is not None:
            from flask_sentry_api.seed import seed_demo

            seed_demo(storage, PROJECT_ID, groups, events_per_group, seed=0)
        else:
            _fill(storage, groups, events_per_group)
    log(f"seeded in {time.monotonic() - began:.0f} s")


def _fill(storage: t.Any, groups: int, events_per_group: int, batch: int = 20000) -> None:
    """Set-based stand-in for ``seed_demo``: groups spread one per second back from now,
    with their events, tag rows and stats rows."""
    m = storage.models
    rng = random.Random(0)
    now = datetime.now(UTC).replace(microsecond=0)
    levels = ("error", "warning", "fatal", "info")
    engine = storage.db.engine
    next_group = 1
    with engine.begin() as connection:
        for start in range(0, groups, batch):
            count = min(batch, groups - start)
            group_rows, event_rows, tag_rows, stat_rows = [], [], [], []
            for i in range(start, start + count):
                gid = next_group
                next_group += 1
                last = now - timedelta(seconds=i, microseconds=rng.randrange(1_000_000))
                first = last - timedelta(seconds=rng.randrange(86400))
                title = f"ValueError: benchmark failure {i}"
                group_rows.append(
                    {
                        "id": gid,
                        "project_id": PROJECT_ID,
                        "hash": hashlib.md5(str(i).encode()).hexdigest(),
                        "title": title,
                        "message": title,
                        "culprit": f"app.views in handler_{i % 97}",
                        "logger": "app",
                        "level": levels[i % 4],
                        "type": "error",
                        "metadata_": {"type": "ValueError", "value": f"failure {i}"},
                        "platform": "python",
                        "status": "unresolved",
                        "is_public": False,
                        "is_bookmarked": False,
                        "has_seen": False,
                        "times_seen": max(events_per_group, 1),
                        "user_count": 0,
                        "num_comments": 0,
                        "first_seen": first,
                        "last_seen": last,
                        "score": int(last.timestamp()),
                    }
                )
                for e in range(events_per_group):
                    event_rows.append(
                        {
                            "project_id": PROJECT_ID,
                            "group_id": gid,
                            "event_id": hashlib.md5(f"{i}/{e}".encode()).hexdigest(),
                            "message": title,
                            "title": title,
                            "culprit": None,
                            "level": "error",
                            "logger": "app",
                            "platform": "python",
                            "datetime": last,
                            "date_received": last,
                            "release": None,
                            "environment": "production",
                            "user": None,
                            "tags": [["environment", "production"]],
                            "data": {"message": title},
                        }
                    )
                if events_per_group:
                    tag_rows.append(
                        {
                            "project_id": PROJECT_ID,
                            "group_id": gid,
                            "key": "environment",
                            "value": "production",
                            "times_seen": events_per_group,
                            "first_seen": first,
                            "last_seen": last,
                        }
                    )
                    epoch = int(last.timestamp())
                    for resolution in (10, 3600, 86400):
                        stat_rows.append(
                            {
                                "group_id": gid,
                                "resolution": resolution,
                                "bucket": epoch - epoch % resolution,
                                "count": events_per_group,
                            }
                        )
            connection.execute(sa.insert(m.Group), group_rows)
            if event_rows:
                connection.execute(sa.insert(m.Event), event_rows)
                connection.execute(sa.insert(m.GroupTagValue), tag_rows)
                connection.execute(sa.insert(m.GroupStat), stat_rows)
