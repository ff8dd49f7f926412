"""The Storage contract suite: the pytest tests every Storage implementation must pass.

A host that brings its own storage subclasses :class:`StorageContract` in its test suite and
provides a ``storage`` fixture that yields a fresh, empty storage (schema created)::

    import pytest

    from flask_sentry_api.testing import StorageContract


    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, app):  # app context active
            store = MyStorage(...)
            store.init_schema()
            yield store
            ...  # drop whatever the storage created

Every ``test_*`` method then runs against that storage. The tests use the Storage
protocol only, never SQL, and check the behaviour the views rely on: slug and key rules,
the group upsert of :meth:`~flask_sentry_api.storage.Storage.save_event` (and of
:meth:`~flask_sentry_api.storage.BatchStorage.save_events`, or its fallback), list orderings
and keyset windows (checked end to end with :func:`~flask_sentry_api.pagination.paginate`),
filters, stats rollups and the bulk operations (:meth:`~.Storage.update_groups` also for
one group, by id).

A storage that also keeps auth tokens (:class:`~flask_sentry_api.storage.TokenStorage`)
subclasses :class:`TokenStorageContract` too, with the same fixture::

    class TestMyStorage(StorageContract, TokenStorageContract): ...

:func:`make_event` builds a :class:`~flask_sentry_api.storage.NewEvent` with sensible
defaults for tests of your own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import time
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from .pagination import Cursor
from .pagination import Window
from .pagination import paginate
from .storage import GROUP_SORTS
from .storage import ROLE_API
from .storage import ROLE_STORE
from .storage import SCOPES
from .storage import SORT_ATTRIBUTES
from .storage import STAT_RESOLUTIONS
from .storage import UTC
from .storage import AuthToken
from .storage import Conflict
from .storage import Event
from .storage import Group
from .storage import GroupChanges
from .storage import GroupQuery
from .storage import NewEvent
from .storage import Project
from .storage import RateLimit
from .storage import ReleaseChanges
from .storage import Storage
from .storage import TokenStorage
from .storage import epoch_seconds
from .storage import group_sort_key
from .storage import priority_score
from .storage import save_events

__all__ = ["StorageContract", "TokenStorageContract", "make_event"]

#: A fixed instant (noon UTC) the contract's timestamps are offsets from.
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
#: A window that reads everything, newest first.
EVERYTHING = Window(op=None, value=0, descending=True, offset=0, limit=10_000)
_HEX32 = re.compile(r"[0-9a-f]{32}")


def make_event(**overrides: t.Any) -> NewEvent:
    """A :class:`NewEvent` with test defaults; keyword arguments override any field.

    Each call gets a fresh random ``event_id`` and the current UTC time. Unless given,
    ``group_hash`` is derived from ``title``, so events with the same title share a group.
    """
    values: dict[str, t.Any] = {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC),
        "message": "boom",
        "title": "ValueError: boom",
        "level": "error",
        "culprit": "app.views in index",
        "platform": "python",
    }
    values.update(overrides)
    if "group_hash" not in values:
        title = str(values["title"]).encode()
        values["group_hash"] = hashlib.md5(title, usedforsecurity=False).hexdigest()
    return NewEvent(**values)


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def _window(
    op: t.Any, value: int, descending: bool = True, offset: int = 0, limit: int = 100
) -> Window:
    return Window(op=op, value=value, descending=descending, offset=offset, limit=limit)


def _ids(rows: t.Iterable[Group | Event | t.Any]) -> list[int]:
    return [row.id for row in rows]


def _group(storage: Storage, project: Project, name: str, *when: float, **fields: t.Any) -> Group:
    """Save one event per offset in ``when`` (default: one at T0) into group ``name``."""
    result = None
    for offset in when or (0.0,):
        values = {"group_hash": name, "title": name, "timestamp": at(offset), **fields}
        result = storage.save_event(project.id, make_event(**values))
    assert result is not None
    return result.group


def _event_fields(event: Event) -> tuple[t.Any, ...]:
    """What an event holds but its ids and its time of arrival."""
    skip = {"id", "project_id", "group_id", "date_received"}
    return tuple(getattr(event, f.name) for f in dataclasses.fields(Event) if f.name not in skip)


def _project_state(storage: Storage, project: Project) -> dict[str, t.Any]:
    """Everything the storage keeps about a project's events, without ids: its groups (by
    hash), events (by event_id, in the order of their ids), tag values, stats and releases."""
    groups = storage.list_groups(project.id, GroupQuery(), EVERYTHING)
    group_fields = [f.name for f in dataclasses.fields(Group) if f.name not in {"id", "project_id"}]
    hashes = {g.id: g.hash for g in groups}
    events = storage.list_project_events(project.id, EVERYTHING)
    keys = sorted({key for e in events for key, _ in e.tags})

    def tag_values(group_id: int | None = None) -> dict[str, list[tuple[t.Any, ...]]]:
        return {
            key: sorted(
                (v.value, v.times_seen, v.first_seen, v.last_seen)
                for v in storage.list_tag_values(project.id, key, EVERYTHING, group_id=group_id)
            )
            for key in keys
        }

    ids = [g.id for g in groups]
    return {
        "groups": sorted(tuple(getattr(g, name) for name in group_fields) for g in groups),
        "events": [(hashes[e.group_id], *_event_fields(e)) for e in events],
        "tags": tag_values(),
        "group_tags": {hashes[i]: tag_values(i) for i in ids},
        "group_stats": {
            r: {hashes[i]: c for i, c in storage.group_stats(ids, r, 0, 2**40).items()}
            for r in STAT_RESOLUTIONS
        },
        "project_stats": {
            r: storage.project_stats(project.id, r, 0, 2**40) for r in STAT_RESOLUTIONS
        },
        "releases": sorted(
            (r.version, r.first_event, r.last_event, r.new_groups)
            for r in storage.list_releases(project.id, EVERYTHING)
        ),
    }


def _list(storage: Storage, project: Project, **query: t.Any) -> list[int]:
    return _ids(storage.list_groups(project.id, GroupQuery(**query), EVERYTHING))


def _reload(storage: Storage, group: Group) -> Group:
    fresh = storage.get_group(group.id)
    assert fresh is not None
    return fresh


class StorageContract:
    """Contract tests for a Storage; subclass it and provide a ``storage`` fixture."""

    # -- the protocol itself ---------------------------------------------------------------
    def test_satisfies_the_storage_protocol(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)

    def test_init_schema_is_idempotent(self, storage: Storage) -> None:
        project = storage.create_project("Kept")
        storage.init_schema()
        assert storage.get_project(project.id) == project

    # -- projects --------------------------------------------------------------------------
    def test_create_project(self, storage: Storage) -> None:
        project = storage.create_project("My Web App")
        assert isinstance(project.id, int)
        assert project.slug == "my-web-app"
        assert project.name == "My Web App"
        assert project.is_public is False
        assert project.status == "active"
        assert project.date_created.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - project.date_created) < timedelta(minutes=5)
        assert storage.get_project(project.id) == project

    def test_create_project_slugify_rules(self, storage: Storage) -> None:
        assert storage.create_project("Café Ünïcode!").slug == "cafe-unicode"
        assert storage.create_project("  __Hello, World__  ").slug == "hello-world"
        assert storage.create_project("!!!").slug == "project"
        assert storage.create_project("a" * 80).slug == "a" * 50

    def test_create_project_deduplicates_slugs(self, storage: Storage) -> None:
        slugs = [storage.create_project("Web").slug for _ in range(3)]
        assert slugs == ["web", "web-2", "web-3"]
        assert storage.create_project("Other", slug="web-4").slug == "web-4"
        assert storage.create_project("WEB").slug == "web-5"

    def test_create_project_explicit_slug_conflict(self, storage: Storage) -> None:
        first = storage.create_project("A", slug="custom")
        assert first.slug == "custom"
        with pytest.raises(Conflict) as info:
            storage.create_project("B", slug="custom")
        assert info.value.field == "slug"
        assert storage.get_project(first.id) == first
        assert storage.create_project("Custom").slug == "custom-2"

    def test_get_missing_project_is_none(self, storage: Storage) -> None:
        assert storage.get_project(12345) is None

    def test_get_project_by_slug(self, storage: Storage) -> None:
        web = storage.create_project("Web")
        other = storage.create_project("Web")
        assert storage.get_project_by_slug("web") == web
        assert storage.get_project_by_slug(other.slug) == other
        assert storage.get_project_by_slug("unknown") is None
        assert storage.get_project_by_slug("") is None
        renamed = storage.update_project(web.id, {"slug": "renamed"})
        assert storage.get_project_by_slug("renamed") == renamed
        assert storage.get_project_by_slug("web") is None

    def test_list_projects(self, storage: Storage) -> None:
        assert storage.list_projects() == []
        first, second = storage.create_project("Web"), storage.create_project("API")
        renamed = storage.update_project(first.id, {"slug": "zzz", "name": "Renamed"})
        assert storage.list_projects() == [renamed, second]
        assert storage.get_project(second.id) == second

    def test_update_project(self, storage: Storage) -> None:
        project = storage.create_project("Old")
        other = storage.create_project("Other")
        updated = storage.update_project(
            project.id, {"name": "New", "slug": "new-slug", "is_public": True, "status": "x"}
        )
        assert (updated.id, updated.name, updated.slug, updated.is_public) == (
            project.id,
            "New",
            "new-slug",
            True,
        )
        assert updated.status == "active"
        assert updated.date_created == project.date_created
        assert storage.get_project(project.id) == updated
        assert storage.get_project(other.id) == other
        # Keeping its own slug is no conflict.
        assert storage.update_project(project.id, {"slug": "new-slug"}).slug == "new-slug"
        assert storage.update_project(project.id, {"is_public": False}).is_public is False

    def test_update_project_allowed_origins(self, storage: Storage) -> None:
        project = storage.create_project("Web")
        assert project.allowed_origins == ("*",)
        origins = ("https://shop.example", "https://admin.example")
        assert (
            storage.update_project(project.id, {"allowed_origins": origins}).allowed_origins
            == origins
        )
        assert storage.get_project(project.id).allowed_origins == origins  # type: ignore[union-attr]

    def test_update_project_slug_conflict_changes_nothing(self, storage: Storage) -> None:
        taken = storage.create_project("Taken")
        project = storage.create_project("Mine")
        with pytest.raises(Conflict) as info:
            storage.update_project(project.id, {"name": "Renamed", "slug": taken.slug})
        assert info.value.field == "slug"
        assert storage.get_project(project.id) == project
        assert storage.get_project(taken.id) == taken

    # -- keys ------------------------------------------------------------------------------
    def test_create_key(self, storage: Storage) -> None:
        project = storage.create_project("P")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API, label="Default")
        assert _HEX32.fullmatch(key.public_key)
        assert _HEX32.fullmatch(key.secret_key)
        assert key.public_key != key.secret_key
        assert key.project_id == project.id
        assert key.roles == ROLE_STORE | ROLE_API
        assert key.role_names == ["store", "api"]
        assert key.is_active is True
        assert key.label == "Default"
        assert key.date_added.utcoffset() == timedelta(0)
        assert storage.get_key(key.public_key) == key

    def test_keys_are_distinct_and_keep_their_roles(self, storage: Storage) -> None:
        project = storage.create_project("P")
        store_only = storage.create_key(project.id, ROLE_STORE)
        api_only = storage.create_key(project.id, ROLE_API)
        secrets = {store_only.public_key, store_only.secret_key}
        assert len(secrets | {api_only.public_key, api_only.secret_key}) == 4
        assert store_only.id != api_only.id
        fetched_store = storage.get_key(store_only.public_key)
        fetched_api = storage.get_key(api_only.public_key)
        assert fetched_store is not None and fetched_api is not None
        assert fetched_store.has_role(ROLE_STORE) and not fetched_store.has_role(ROLE_API)
        assert fetched_api.has_role(ROLE_API) and not fetched_api.has_role(ROLE_STORE)
        assert fetched_store.label is None

    def test_list_keys(self, storage: Storage) -> None:
        project, other = storage.create_project("P"), storage.create_project("Q")
        first = storage.create_key(project.id, ROLE_STORE)
        storage.create_key(other.id, ROLE_API)
        second = storage.create_key(project.id, ROLE_API)
        storage.set_key_active(first.public_key, False)
        keys = storage.list_keys(project.id)
        assert [key.public_key for key in keys] == [first.public_key, second.public_key]
        assert [key.is_active for key in keys] == [False, True]
        assert storage.list_keys(12345) == []

    def test_unknown_key(self, storage: Storage) -> None:
        assert storage.get_key("0" * 32) is None
        assert storage.set_key_active("0" * 32, False) is False

    def test_key_rate_limits(self, storage: Storage) -> None:
        project = storage.create_project("P")
        limited = storage.create_key(project.id, ROLE_STORE, rate_limit=RateLimit(5, 60))
        plain = storage.create_key(project.id, ROLE_STORE)
        assert limited.rate_limit == RateLimit(5, 60)
        assert storage.get_key(limited.public_key) == limited
        assert plain.rate_limit is None

        assert storage.set_key_rate_limit(plain.public_key, RateLimit(100, 1)) is True
        assert storage.set_key_rate_limit(limited.public_key, None) is True
        assert [key.rate_limit for key in storage.list_keys(project.id)] == [
            None,
            RateLimit(100, 1),
        ]
        assert storage.set_key_rate_limit("0" * 32, RateLimit(1, 1)) is False

    def test_set_key_active(self, storage: Storage) -> None:
        project = storage.create_project("P")
        key = storage.create_key(project.id, ROLE_STORE)
        other = storage.create_key(project.id, ROLE_STORE)
        assert storage.set_key_active(key.public_key, False) is True
        disabled = storage.get_key(key.public_key)
        assert disabled is not None and disabled.is_active is False
        assert storage.get_key(other.public_key) == other
        assert storage.set_key_active(key.public_key, True) is True
        assert storage.get_key(key.public_key) == key

    def test_delete_key(self, storage: Storage) -> None:
        project = storage.create_project("P")
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
        kept = storage.create_key(project.id, ROLE_STORE)
        assert storage.delete_key(key.public_key) is True
        assert storage.get_key(key.public_key) is None
        assert storage.list_keys(project.id) == [kept]
        assert storage.get_key(kept.public_key) == kept
        assert storage.delete_key(key.public_key) is False
        assert storage.delete_key("0" * 32) is False
        assert storage.set_key_active(key.public_key, True) is False
        assert storage.get_project(project.id) == project

    # -- save_event --------------------------------------------------------------------------
    def test_save_event_creates_group_and_event(self, storage: Storage) -> None:
        project = storage.create_project("P")
        new = make_event(
            timestamp=at(0),
            group_hash="a" * 32,
            title="ValueError: bad",
            message="bad thing",
            culprit="app in run",
            level="warning",
            logger="root",
            platform="python",
            type="error",
            metadata={"type": "ValueError", "value": "bad"},
            release="1.0",
            environment="prod",
            user={"id": "7"},
            tags=(("level", "warning"), ("user", "id:7")),
            data={"extra": {"n": 1}},
        )
        saved = storage.save_event(project.id, new)
        assert (saved.created, saved.is_new_group, saved.is_regression) == (True, True, False)
        group, event = saved.group, saved.event
        assert group.project_id == project.id
        assert (group.hash, group.title, group.message, group.culprit) == (
            "a" * 32,
            "ValueError: bad",
            "bad thing",
            "app in run",
        )
        assert (group.level, group.logger, group.platform, group.type) == (
            "warning",
            "root",
            "python",
            "error",
        )
        assert dict(group.metadata) == {"type": "ValueError", "value": "bad"}
        assert (group.status, group.resolved_at) == ("unresolved", None)
        assert (group.is_public, group.is_bookmarked, group.has_seen) == (False, False, False)
        assert (group.times_seen, group.user_count, group.num_comments) == (1, 1, 0)
        assert group.first_seen == group.last_seen == at(0)
        assert group.score == priority_score(1, at(0))
        assert event.group_id == group.id and event.project_id == project.id
        assert (event.event_id, event.title, event.message) == (
            new.event_id,
            new.title,
            "bad thing",
        )
        assert (event.culprit, event.level, event.logger, event.platform) == (
            "app in run",
            "warning",
            "root",
            "python",
        )
        assert (event.release, event.environment) == ("1.0", "prod")
        assert event.datetime == at(0)
        assert event.date_received.utcoffset() == timedelta(0)
        assert dict(event.user or {}) == {"id": "7"}
        assert event.tags == (("level", "warning"), ("user", "id:7"))
        assert dict(event.data) == {"extra": {"n": 1}}
        assert storage.get_group(group.id) == group
        assert storage.get_event(event.id) == event

    def test_save_event_counts_into_existing_group(self, storage: Storage) -> None:
        project = storage.create_project("P")
        first = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(0)))
        second = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(5)))
        other = storage.save_event(project.id, make_event(group_hash="k", timestamp=at(5)))
        assert second.created and not second.is_new_group and not second.is_regression
        assert second.group.id == first.group.id != other.group.id
        assert second.event.id != first.event.id
        assert second.group.times_seen == 2
        assert second.group.first_seen == at(0) and second.group.last_seen == at(5)
        assert second.group.score == priority_score(2, at(5))
        assert _reload(storage, first.group) == second.group
        assert other.is_new_group and other.group.times_seen == 1

    def test_save_event_same_event_id_is_stored_once(self, storage: Storage) -> None:
        project = storage.create_project("P")
        event_id = uuid.uuid4().hex
        first = storage.save_event(
            project.id,
            make_event(event_id=event_id, group_hash="h", timestamp=at(0), tags=(("user", "a"),)),
        )
        retry = storage.save_event(
            project.id,
            make_event(
                event_id=event_id,
                group_hash="other",
                title="Other",
                timestamp=at(100),
                level="fatal",
                tags=(("user", "b"),),
            ),
        )
        assert (retry.created, retry.is_new_group, retry.is_regression) == (False, False, False)
        assert retry.event == first.event
        assert retry.group == first.group == _reload(storage, first.group)
        assert retry.group.times_seen == 1 and retry.group.user_count == 1
        assert _list(storage, project) == [first.group.id]
        assert _ids(storage.list_events(first.group.id, EVERYTHING)) == [first.event.id]
        stats = storage.group_stats([first.group.id], 86400, 0, 2**40)
        assert sum(stats[first.group.id].values()) == 1

    def test_event_ids_and_hashes_are_per_project(self, storage: Storage) -> None:
        one = storage.create_project("One")
        two = storage.create_project("Two")
        event_id = uuid.uuid4().hex
        a = storage.save_event(one.id, make_event(event_id=event_id, group_hash="h"))
        b = storage.save_event(two.id, make_event(event_id=event_id, group_hash="h"))
        assert a.created and b.created and b.is_new_group
        assert a.group.id != b.group.id and a.event.id != b.event.id
        assert b.group.project_id == two.id and b.event.project_id == two.id
        assert _reload(storage, a.group).times_seen == 1
        assert _list(storage, one) == [a.group.id]
        assert _list(storage, two) == [b.group.id]

    def test_level_and_culprit_follow_the_newest_event(self, storage: Storage) -> None:
        project = storage.create_project("P")

        def save(seconds: float, level: str, culprit: str) -> Group:
            event = make_event(group_hash="h", timestamp=at(seconds), level=level, culprit=culprit)
            return storage.save_event(project.id, event).group

        save(10, "error", "first")
        group = save(20, "warning", "second")
        assert (group.level, group.culprit, group.last_seen) == ("warning", "second", at(20))
        # An older event arriving late is counted but does not rewind anything.
        group = save(5, "fatal", "late")
        assert (group.level, group.culprit, group.last_seen) == ("warning", "second", at(20))
        assert group.times_seen == 3
        assert group.score == priority_score(3, at(20))
        assert _reload(storage, group) == group

    def test_save_event_regression_reopens_resolved_group(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "h", 0)
        assert storage.update_groups(project.id, GroupQuery(), GroupChanges(status="resolved")) == 1
        assert _reload(storage, group).resolved_at is not None
        saved = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(10)))
        assert saved.is_regression and saved.created and not saved.is_new_group
        assert (saved.group.status, saved.group.resolved_at) == ("unresolved", None)
        assert saved.group.times_seen == 2
        assert _list(storage, project, status="unresolved") == [group.id]
        again = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(20)))
        assert not again.is_regression

    def test_save_event_retry_of_a_resolved_group_is_no_regression(self, storage: Storage) -> None:
        # The flags are what the issue_created/issue_regressed signals report: an SDK's
        # retry of a stored event must neither reopen its group nor announce a regression.
        project = storage.create_project("P")
        event_id = uuid.uuid4().hex
        first = storage.save_event(
            project.id, make_event(event_id=event_id, group_hash="h", timestamp=at(0))
        )
        storage.update_groups(project.id, GroupQuery(), GroupChanges(status="resolved"))
        retry = storage.save_event(
            project.id, make_event(event_id=event_id, group_hash="h", timestamp=at(10))
        )
        assert (retry.created, retry.is_new_group, retry.is_regression) == (False, False, False)
        assert retry.group.status == _reload(storage, first.group).status == "resolved"
        reopened = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(20)))
        assert (reopened.created, reopened.is_new_group, reopened.is_regression) == (
            True,
            False,
            True,
        )

    def test_save_event_into_muted_group_is_no_regression(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "h", 0)
        storage.update_groups(project.id, GroupQuery(), GroupChanges(status="muted"))
        saved = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(10)))
        assert not saved.is_regression
        assert saved.group.status == "muted" and saved.group.id == group.id

    def test_user_count_counts_distinct_user_tags(self, storage: Storage) -> None:
        project = storage.create_project("P")
        for user in ("id:1", "id:2", "id:1", None, "id:3", "id:2"):
            tags = (("level", "error"),) + ((("user", user),) if user else ())
            group = storage.save_event(project.id, make_event(group_hash="h", tags=tags)).group
        assert group.user_count == 3 and group.times_seen == 6
        other = storage.save_event(
            project.id, make_event(group_hash="k", tags=(("user", "id:1"), ("other", "id:9")))
        ).group
        assert other.user_count == 1
        assert _reload(storage, group).user_count == 3

    def test_long_titles_are_cut_to_255_characters(self, storage: Storage) -> None:
        project = storage.create_project("P")
        saved = storage.save_event(project.id, make_event(title="x" * 300, group_hash="h"))
        assert saved.group.title == saved.event.title == "x" * 255

    def test_timestamps_in_other_zones_are_stored_as_utc(self, storage: Storage) -> None:
        project = storage.create_project("P")
        storage.save_event(project.id, make_event(group_hash="h", timestamp=at(0)))
        plus_two = timezone(timedelta(hours=2))
        saved = storage.save_event(
            project.id, make_event(group_hash="h", timestamp=at(3600).astimezone(plus_two))
        )
        for moment in (saved.event.datetime, saved.group.last_seen, saved.group.first_seen):
            assert moment.utcoffset() == timedelta(0)
        assert saved.event.datetime == at(3600)
        assert saved.group.last_seen == at(3600)
        assert saved.group.first_seen == at(0)

    # -- save_events -------------------------------------------------------------------------
    # Through storage.save_events(): the storage's own batch method, or one save_event per
    # event for a storage without it.
    def test_save_events_gives_what_save_event_one_by_one_gives(self, storage: Storage) -> None:
        one_by_one = storage.create_project("One by one")
        batched = storage.create_project("Batched")
        stored_id, first_id = uuid.uuid4().hex, uuid.uuid4().hex
        before = [
            make_event(group_hash="resolved", timestamp=at(0), tags=(("user", "id:z"),)),
            make_event(
                event_id=stored_id,
                group_hash="old",
                timestamp=at(100),
                release="1.0",
                tags=(("user", "id:a"), ("browser", "x")),
            ),
        ]
        batch = [
            make_event(
                event_id=first_id,
                group_hash="new",
                timestamp=at(10),
                level="warning",
                release="1.0",
                user={"id": "1"},
                tags=(("user", "id:1"), ("browser", "x")),
                data={"extra": {"n": 1}},
            ),
            make_event(group_hash="new", timestamp=at(5), level="fatal", tags=(("user", "id:2"),)),
            make_event(group_hash="resolved", timestamp=at(20), culprit="first"),
            make_event(group_hash="resolved", timestamp=at(20), culprit="tie", level="info"),
            make_event(group_hash="old", timestamp=at(50), tags=(("user", "id:a"),)),
            # An SDK's retry of an event stored before the batch, another of one in it.
            make_event(event_id=stored_id, group_hash="other", timestamp=at(300)),
            make_event(event_id=first_id, group_hash="new", timestamp=at(400), release="9"),
            make_event(group_hash="new2", title="Other", timestamp=at(30), release="2.0"),
            make_event(
                group_hash="old",
                timestamp=at(200),
                release="1.0",
                environment="prod",
                tags=(("user", "id:c"), ("browser", "y")),
            ),
            make_event(group_hash="new", timestamp=at(10), culprit="same second, later"),
        ]
        for project in (one_by_one, batched):
            for event in before:
                storage.save_event(project.id, event)
            resolved = [g.id for g in storage.list_groups(project.id, GroupQuery(), EVERYTHING)]
            query = GroupQuery(ids=tuple(resolved[-1:]))  # the oldest group: "resolved"
            assert storage.update_groups(project.id, query, GroupChanges(status="resolved")) == 1

        singles = [storage.save_event(one_by_one.id, event) for event in batch]
        results = save_events(storage, [(batched.id, event) for event in batch])

        assert len(results) == len(batch)
        assert all(saved is not None for saved in results)
        flags = [(r.created, r.is_new_group, r.is_regression) for r in singles]
        assert [(r.created, r.is_new_group, r.is_regression) for r in results if r] == flags
        assert flags[2] == (True, False, True) and flags[0] == (True, True, False)
        assert flags[5] == flags[6] == (False, False, False)
        assert [_event_fields(r.event) for r in results if r] == [
            _event_fields(r.event) for r in singles
        ]
        # Each result's group is its group as the batch left it.
        for saved in results:
            assert saved is not None
            assert saved.event.project_id == saved.group.project_id == batched.id
            assert saved.group == _reload(storage, saved.group)
        assert results[6] is not None and results[0] is not None
        assert results[6].event == results[0].event  # the second copy answers the first
        assert _project_state(storage, batched) == _project_state(storage, one_by_one)

    def test_save_events_stores_each_event_id_once(self, storage: Storage) -> None:
        project = storage.create_project("P")
        stored = storage.save_event(project.id, make_event(group_hash="h", timestamp=at(0)))
        again = make_event(event_id=stored.event.event_id, group_hash="h", timestamp=at(9))
        new = make_event(group_hash="h", timestamp=at(5))
        copy = dataclasses.replace(new, timestamp=at(6), level="fatal")

        results = save_events(storage, [(project.id, again), (project.id, new), (project.id, copy)])

        assert [(r.created, r.is_new_group) for r in results if r] == [
            (False, False),
            (True, False),
            (False, False),
        ]
        assert results[0] is not None and results[0].event == stored.event
        assert results[2] is not None and results[1] is not None
        assert results[2].event == results[1].event
        group = _reload(storage, stored.group)
        assert (group.times_seen, group.last_seen, group.level) == (2, at(5), "error")
        events = storage.list_project_events(project.id, EVERYTHING)
        assert sorted(e.event_id for e in events) == sorted([stored.event.event_id, new.event_id])
        assert sum(storage.group_stats([group.id], 86400, 0, 2**40)[group.id].values()) == 2
        # A redelivered batch changes nothing.
        repeat = save_events(storage, [(project.id, new), (project.id, again)])
        assert [r.created for r in repeat if r] == [False, False]
        assert _reload(storage, group) == group

    def test_save_events_skips_a_missing_project_and_stores_the_others(
        self, storage: Storage
    ) -> None:
        project = storage.create_project("P")
        gone = max(p.id for p in storage.list_projects()) + 1000
        first, lost, last = make_event(group_hash="h"), make_event(), make_event(group_hash="h")

        results = save_events(storage, [(project.id, first), (gone, lost), (project.id, last)])

        assert results[1] is None
        assert results[0] is not None and results[2] is not None
        assert results[0].created and results[2].created and results[0].is_new_group
        assert _reload(storage, results[0].group).times_seen == 2
        assert storage.get_project(gone) is None
        assert storage.get_event_by_event_id(gone, lost.event_id) is None
        assert save_events(storage, []) == []

    # -- list_groups -------------------------------------------------------------------------
    def test_list_groups_sort_date(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 10)
        b = _group(storage, project, "b", 30)
        c = _group(storage, project, "c", 20)
        assert _list(storage, project) == [b.id, c.id, a.id]
        assert _list(storage, project, sort="date") == [b.id, c.id, a.id]
        ascending = storage.list_groups(project.id, GroupQuery(), _window(None, 0, False))
        assert _ids(ascending) == [a.id, c.id, b.id]

    def test_list_groups_sort_new(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 5, 100)
        b = _group(storage, project, "b", 10)
        c = _group(storage, project, "c", 20)
        assert _list(storage, project, sort="new") == [c.id, b.id, a.id]
        assert _list(storage, project, sort="date") == [a.id, c.id, b.id]

    def test_list_groups_sort_freq(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 1, 2, 3)
        b = _group(storage, project, "b", 50)
        c = _group(storage, project, "c", 4, 5)
        assert _list(storage, project, sort="freq") == [a.id, c.id, b.id]
        window = _window(None, 0, descending=False)
        assert _ids(storage.list_groups(project.id, GroupQuery(sort="freq"), window)) == [
            b.id,
            c.id,
            a.id,
        ]

    def test_list_groups_sort_priority(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0, 0, 0)  # log(3) * 600 = 659
        b = _group(storage, project, "b", 500)
        c = _group(storage, project, "c", 700)
        assert _list(storage, project, sort="priority") == [c.id, a.id, b.id]
        for group in storage.list_groups(project.id, GroupQuery(sort="priority"), EVERYTHING):
            assert group.score == priority_score(group.times_seen, group.last_seen)
        assert _reload(storage, a).score == int(math.log(3) * 600 + at(0).timestamp())

    @pytest.mark.parametrize("sort", GROUP_SORTS)
    def test_list_groups_ties_are_ordered_by_id(self, storage: Storage, sort: str) -> None:
        project = storage.create_project("P")
        ids = [_group(storage, project, f"g{i}", 42.5).id for i in range(4)]
        assert ids == sorted(ids)
        assert _list(storage, project, sort=sort) == ids[::-1]
        window = _window(None, 0, descending=False)
        assert _ids(storage.list_groups(project.id, GroupQuery(sort=sort), window)) == ids

    def test_equal_second_orders_by_exact_time_then_id(self, storage: Storage) -> None:
        project = storage.create_project("P")
        late = _group(storage, project, "late", 0.9)
        early = _group(storage, project, "early", 0.1)
        tied = _group(storage, project, "tied", 0.9)
        key = epoch_seconds(at(0))
        assert {group_sort_key(g, "date") for g in (late, early, tied)} == {key}
        assert _list(storage, project) == [tied.id, late.id, early.id]
        window = _window("==", key, descending=False)
        assert _ids(storage.list_groups(project.id, GroupQuery(), window)) == [
            early.id,
            late.id,
            tied.id,
        ]

    def test_list_groups_windows_on_datetime_keys(self, storage: Storage) -> None:
        project = storage.create_project("P")
        g1 = _group(storage, project, "g1", 0)
        g2 = _group(storage, project, "g2", 0.5)
        g3 = _group(storage, project, "g3", 1)
        g4 = _group(storage, project, "g4", 2)
        g5 = _group(storage, project, "g5", 3)
        k = epoch_seconds(at(0))

        def read(window: Window) -> list[int]:
            return _ids(storage.list_groups(project.id, GroupQuery(), window))

        assert read(_window("<=", k + 1)) == [g3.id, g2.id, g1.id]
        assert read(_window("==", k)) == [g2.id, g1.id]
        assert read(_window("==", k, offset=1)) == [g1.id]
        assert read(_window("==", k, descending=False)) == [g1.id, g2.id]
        assert read(_window(">", k + 1, descending=False)) == [g4.id, g5.id]
        assert read(_window(">", k + 1, descending=False, limit=1)) == [g4.id]
        assert read(_window(None, 0, offset=1, limit=2)) == [g4.id, g3.id]
        assert read(_window("<=", k - 1)) == []
        assert read(_window(">", k + 3)) == []

    def test_list_groups_windows_on_integer_keys(self, storage: Storage) -> None:
        project = storage.create_project("P")
        one = _group(storage, project, "one", 0)
        two_a = _group(storage, project, "two_a", 0, 1)
        two_b = _group(storage, project, "two_b", 0, 1)
        three = _group(storage, project, "three", 0, 1, 2)

        def read(window: Window) -> list[int]:
            return _ids(storage.list_groups(project.id, GroupQuery(sort="freq"), window))

        assert read(_window("<=", 2)) == [two_b.id, two_a.id, one.id]
        assert read(_window("==", 2)) == [two_b.id, two_a.id]
        assert read(_window("==", 2, offset=1, limit=5)) == [two_a.id]
        assert read(_window(">", 1, descending=False)) == [two_a.id, two_b.id, three.id]
        assert read(_window(">", 2, descending=False)) == [three.id]

    def test_list_groups_filters_by_status(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        c = _group(storage, project, "c", 2)
        storage.update_groups(project.id, GroupQuery(ids=(b.id,)), GroupChanges(status="resolved"))
        storage.update_groups(project.id, GroupQuery(ids=(c.id,)), GroupChanges(status="muted"))
        assert _list(storage, project, status="unresolved") == [a.id]
        assert _list(storage, project, status="resolved") == [b.id]
        assert _list(storage, project, status="muted") == [c.id]
        assert _list(storage, project) == [c.id, b.id, a.id]

    def test_list_groups_filters_by_tags_anded(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0, tags=(("env", "prod"), ("server", "s1")))
        b = _group(storage, project, "b", 1, tags=(("env", "prod"), ("server", "s2")))
        c = _group(storage, project, "c", 2, tags=(("env", "dev"), ("server", "s1")))
        assert _list(storage, project, tags=(("env", "prod"),)) == [b.id, a.id]
        assert _list(storage, project, tags=(("env", "prod"), ("server", "s1"))) == [a.id]
        assert _list(storage, project, tags=(("env", "prod"), ("env", "dev"))) == []
        assert _list(storage, project, tags=(("env", "staging"),)) == []
        assert _list(storage, project, tags=(("server", "s1"),)) == [c.id, a.id]
        # A value seen by any event of the group matches, not just the latest one.
        _group(storage, project, "c", 3, tags=(("env", "prod"),))
        assert _list(storage, project, tags=(("env", "prod"), ("server", "s1"))) == [c.id, a.id]
        assert _list(storage, project, tags=(("env", "dev"),)) == [c.id]

    def test_list_groups_filters_by_text(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0, title="KeyError: Foo", message="m", culprit=None)
        b = _group(storage, project, "b", 1, title="t", message="database TIMEOUT", culprit="x")
        c = _group(storage, project, "c", 2, title="t", message="m", culprit="app.Handler in run")
        d = _group(storage, project, "d", 3, title="t", message="m", culprit="x")
        assert _list(storage, project, text="foo") == [a.id]
        assert _list(storage, project, text="keyerror: FOO") == [a.id]
        assert _list(storage, project, text="timeout") == [b.id]
        assert _list(storage, project, text="HANDLER IN") == [c.id]
        assert _list(storage, project, text="zzz") == []
        assert _list(storage, project, text="") == [d.id, c.id, b.id, a.id]

    def test_list_groups_text_is_case_insensitive_beyond_ascii(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "u", 0, title="Ошибка: ÉCOLE fermée")
        _group(storage, project, "v", 1, title="plain")
        assert _list(storage, project, text="ошибка") == [group.id]
        assert _list(storage, project, text="école FERMÉE") == [group.id]

    def test_list_groups_text_wildcards_are_literal(self, storage: Storage) -> None:
        project = storage.create_project("P")
        percent = _group(storage, project, "percent", 0, title="100% done")
        plain = _group(storage, project, "plain", 1, title="1000 done")
        snake = _group(storage, project, "snake", 2, title="snake_case")
        camel = _group(storage, project, "camel", 3, title="snakeXcase")
        slash = _group(storage, project, "slash", 4, title="path a/b\\c")
        assert _list(storage, project, text="0%") == [percent.id]
        assert _list(storage, project, text="%") == [percent.id]
        assert _list(storage, project, text="e_c") == [snake.id]
        assert _list(storage, project, text="_") == [snake.id]
        assert _list(storage, project, text="a/b") == [slash.id]
        assert _list(storage, project, text="b\\c") == [slash.id]
        assert _list(storage, project, text="done") == [plain.id, percent.id]
        assert camel.id not in _list(storage, project, text="e_c")

    def test_list_groups_filters_by_since_and_until(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 10)
        c = _group(storage, project, "c", 20)
        assert _list(storage, project, since=at(10)) == [c.id, b.id]
        assert _list(storage, project, until=at(10)) == [b.id, a.id]
        assert _list(storage, project, since=at(10), until=at(10)) == [b.id]
        assert _list(storage, project, since=at(10.5), until=at(19.5)) == []

    def test_list_groups_filters_by_ids_and_project(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        c = _group(storage, project, "c", 2)
        foreign = _group(storage, other, "a", 3)
        assert _list(storage, project, ids=(a.id, c.id, foreign.id)) == [c.id, a.id]
        assert _list(storage, project, ids=()) == []
        assert _list(storage, project) == [c.id, b.id, a.id]
        assert _list(storage, other) == [foreign.id]

    def test_count_groups_with_key(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        a = _group(storage, project, "a", 0)
        _group(storage, project, "b", 0.5, 0.5)
        _group(storage, project, "c", 1)
        _group(storage, other, "a", 0)
        k = epoch_seconds(at(0))
        assert storage.count_groups_with_key(project.id, GroupQuery(), k) == 2
        assert storage.count_groups_with_key(project.id, GroupQuery(), k + 1) == 1
        assert storage.count_groups_with_key(project.id, GroupQuery(), k + 5) == 0
        assert storage.count_groups_with_key(project.id, GroupQuery(sort="new"), k) == 2
        assert storage.count_groups_with_key(project.id, GroupQuery(sort="freq"), 1) == 2
        assert storage.count_groups_with_key(project.id, GroupQuery(sort="freq"), 2) == 1
        storage.update_groups(project.id, GroupQuery(ids=(a.id,)), GroupChanges(status="resolved"))
        assert storage.count_groups_with_key(project.id, GroupQuery(status="unresolved"), k) == 1

    @pytest.mark.parametrize("sort", GROUP_SORTS)
    def test_paginate_walks_every_group_once_each_way(self, storage: Storage, sort: str) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        for i in range(25):
            # Few distinct keys, exact-time ties too: runs of equal keys span pages.
            _group(storage, project, f"g{i}", *[i // 7 + (i % 3) * 0.25] * (1 + i % 3))
        _group(storage, other, "g0", 1)
        query = GroupQuery(sort=sort)
        groups = storage.list_groups(project.id, query, EVERYTHING)
        column = SORT_ATTRIBUTES[sort]
        expected = sorted(
            groups, key=lambda g: (group_sort_key(g, sort), getattr(g, column), g.id), reverse=True
        )
        assert len(groups) == 25 and _ids(groups) == _ids(expected)

        def fetch(window: Window) -> list[Group]:
            return storage.list_groups(project.id, query, window)

        def key(group: Group) -> int:
            return group_sort_key(group, sort)

        def count_key(k: int) -> int:
            return storage.count_groups_with_key(project.id, query, k)

        def page(cursor: Cursor | None) -> t.Any:
            return paginate(fetch, key, cursor, 4, count_key)

        forward: list[int] = []
        current = page(None)
        for _ in range(30):
            assert current.rows
            forward += _ids(current.rows)
            if not current.next.has_results:
                break
            current = page(current.next)
        assert forward == _ids(expected)

        backward = _ids(current.rows)
        for _ in range(30):
            if not current.prev.has_results:
                break
            current = page(current.prev)
            assert current.rows
            backward = _ids(current.rows) + backward
        assert backward == _ids(expected)

    # -- stats -----------------------------------------------------------------------------
    def test_group_stats_rollups(self, storage: Storage) -> None:
        project = storage.create_project("P")
        offsets = (0, 5, 15, 3600, 86401)
        a = _group(storage, project, "a", *offsets)
        b = _group(storage, project, "b", 7)
        quiet = _group(storage, storage.create_project("Q"), "q", 0)
        k = epoch_seconds(at(0))
        for resolution in (10, 3600, 86400):
            expected: dict[int, int] = {}
            for offset in offsets:
                bucket = (k + offset) - (k + offset) % resolution
                expected[bucket] = expected.get(bucket, 0) + 1
            stats = storage.group_stats([a.id, b.id], resolution, 0, 2**40)
            assert stats[a.id] == expected
            assert stats[b.id] == {(k + 7) - (k + 7) % resolution: 1}
            assert set(stats) == {a.id, b.id}
        stats = storage.group_stats([a.id], 10, 0, 2**40)
        assert stats[a.id] == {k: 2, k + 10: 1, k + 3600: 1, k + 86400: 1}
        assert storage.group_stats([999_999], 3600, 0, 2**40) == {999_999: {}}
        assert storage.group_stats([], 3600, 0, 2**40) == {}
        assert storage.group_stats([quiet.id], 3600, 0, 2**40)[quiet.id] == {k: 1}

    def test_group_stats_bounds_are_inclusive_bucket_starts(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "a", 0, 1, 2, 3600)
        k = epoch_seconds(at(0))
        assert k % 3600 == 0

        def read(start: int, end: int) -> dict[int, int]:
            return storage.group_stats([group.id], 3600, start, end)[group.id]

        assert read(k, k + 3600) == {k: 3, k + 3600: 1}
        assert read(k + 1, k + 3600) == {k + 3600: 1}
        assert read(k, k + 3599) == {k: 3}
        assert read(k + 1, k + 3599) == {}
        assert read(k + 3600, k + 3600) == {k + 3600: 1}

    # -- update_groups ---------------------------------------------------------------------
    def test_update_groups_resolve_stamps_only_unresolved(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        c = _group(storage, project, "c", 2)
        before = datetime.now(UTC)
        resolved = GroupChanges(status="resolved")
        assert storage.update_groups(project.id, GroupQuery(ids=(a.id,)), resolved) == 1
        stamp = _reload(storage, a).resolved_at
        assert stamp is not None and stamp.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC) + timedelta(seconds=1)
        time.sleep(0.01)
        assert storage.update_groups(project.id, GroupQuery(), resolved) == 3
        assert _reload(storage, a).resolved_at == stamp
        for group in (b, c):
            fresh = _reload(storage, group)
            assert fresh.status == "resolved"
            assert fresh.resolved_at is not None and fresh.resolved_at > stamp
        assert _list(storage, project, status="resolved") == [c.id, b.id, a.id]

    def test_update_groups_other_statuses_clear_resolved_at(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        storage.update_groups(project.id, GroupQuery(), GroupChanges(status="resolved"))
        only_a = GroupQuery(ids=(a.id,))
        assert storage.update_groups(project.id, only_a, GroupChanges(status="unresolved")) == 1
        assert (_reload(storage, a).status, _reload(storage, a).resolved_at) == ("unresolved", None)
        only_b = GroupQuery(ids=(b.id,))
        assert storage.update_groups(project.id, only_b, GroupChanges(status="muted")) == 1
        assert (_reload(storage, b).status, _reload(storage, b).resolved_at) == ("muted", None)

    def test_update_groups_flags(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        changes = GroupChanges(is_public=True, is_bookmarked=True)
        assert storage.update_groups(project.id, GroupQuery(ids=(a.id,)), changes) == 1
        fresh = _reload(storage, a)
        assert (fresh.is_public, fresh.is_bookmarked, fresh.has_seen) == (True, True, False)
        assert fresh.status == "unresolved" and fresh.times_seen == 1
        assert _reload(storage, b) == b
        changes = GroupChanges(is_bookmarked=False, has_seen=True)
        assert storage.update_groups(project.id, GroupQuery(), changes) == 2
        fresh = _reload(storage, a)
        assert (fresh.is_public, fresh.is_bookmarked, fresh.has_seen) == (True, False, True)
        fresh_b = _reload(storage, b)
        assert (fresh_b.is_public, fresh_b.is_bookmarked, fresh_b.has_seen) == (False, False, True)

    def test_update_groups_returns_matched_count(self, storage: Storage) -> None:
        project = storage.create_project("P")
        _group(storage, project, "a", 0, tags=(("env", "prod"),))
        _group(storage, project, "b", 1, tags=(("env", "prod"),))
        _group(storage, project, "c", 2, tags=(("env", "dev"),))
        resolve = GroupChanges(status="resolved")
        prod = GroupQuery(tags=(("env", "prod"),))
        assert storage.update_groups(project.id, prod, resolve) == 2
        assert storage.update_groups(project.id, prod, resolve) == 2  # unchanged, still matched
        assert storage.update_groups(project.id, GroupQuery(status="unresolved"), resolve) == 1
        assert storage.update_groups(project.id, GroupQuery(text="nothing"), resolve) == 0
        assert storage.update_groups(project.id, GroupQuery(), GroupChanges()) == 3
        assert _list(storage, project, status="resolved") != []
        assert _list(storage, project, status="unresolved") == []

    def test_update_groups_conditional_on_status_matches_each_change_once(
        self, storage: Storage
    ) -> None:
        # The issue_resolved signal counts a group as resolved by a request only when an
        # update conditional on its old status matched it: a second one must match nothing.
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        storage.update_groups(project.id, GroupQuery(ids=(b.id,)), GroupChanges(status="muted"))
        resolve = GroupChanges(status="resolved", is_bookmarked=True)
        from_unresolved = GroupQuery(ids=(a.id, b.id), status="unresolved")
        assert storage.update_groups(project.id, from_unresolved, resolve) == 1
        assert storage.update_groups(project.id, from_unresolved, resolve) == 0
        fresh = _reload(storage, a)
        assert (fresh.status, fresh.is_bookmarked) == ("resolved", True)
        assert _reload(storage, b).status == "muted"
        from_muted = GroupQuery(status="muted")
        assert storage.update_groups(project.id, from_muted, resolve) == 1
        assert storage.update_groups(project.id, from_muted, resolve) == 0
        assert _list(storage, project, status="resolved") == [b.id, a.id]

    def test_update_groups_ignores_other_projects(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        mine = _group(storage, project, "a", 0)
        foreign = _group(storage, other, "a", 0)
        query = GroupQuery(ids=(foreign.id,))
        changes = GroupChanges(status="resolved", is_bookmarked=True)
        assert storage.update_groups(project.id, query, changes) == 0
        assert _reload(storage, foreign) == foreign
        assert storage.update_groups(other.id, GroupQuery(), GroupChanges(has_seen=True)) == 1
        assert _reload(storage, mine) == mine

    def test_update_groups_by_id_changes_that_group_only(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1)
        changes = GroupChanges(status="resolved", is_public=True)
        assert storage.update_groups(project.id, GroupQuery(ids=(a.id,)), changes) == 1
        updated = _reload(storage, a)
        assert (updated.status, updated.is_public) == ("resolved", True)
        assert updated.resolved_at is not None
        assert _reload(storage, b) == b
        missing = GroupQuery(ids=(999_999,))
        assert storage.update_groups(project.id, missing, GroupChanges(status="resolved")) == 0
        assert storage.get_group(999_999) is None

    # -- merge_groups ------------------------------------------------------------------------
    def test_merge_groups_parent_has_most_events(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1, 2, 3)
        c = _group(storage, project, "c", 4, 5)
        parent, children = storage.merge_groups(project.id, [a.id, b.id, c.id])
        assert parent == b.id and sorted(children) == [a.id, c.id]
        assert _list(storage, project) == [b.id]

    def test_merge_groups_tie_goes_to_lowest_id(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0)
        b = _group(storage, project, "b", 1, 2)
        c = _group(storage, project, "c", 3, 4)
        parent, children = storage.merge_groups(project.id, [c.id, b.id, a.id])
        assert parent == b.id and sorted(children) == [a.id, c.id]

    def test_merge_groups_moves_events_and_sums_counts(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 10, 20)
        b = _group(storage, project, "b", 5, 30, 40)
        c = _group(storage, project, "c", 50)
        child_events = storage.list_events(a.id, EVERYTHING) + storage.list_events(c.id, EVERYTHING)
        all_events = {e.id for e in child_events} | set(_ids(storage.list_events(b.id, EVERYTHING)))
        parent, children = storage.merge_groups(project.id, [a.id, b.id, c.id])
        assert parent == b.id
        for child in (a, c):
            assert storage.get_group(child.id) is None
            assert storage.list_events(child.id, EVERYTHING) == []
        merged = _reload(storage, b)
        assert merged.times_seen == 6
        assert (merged.first_seen, merged.last_seen) == (at(5), at(50))
        assert merged.score == priority_score(6, at(50))
        assert set(_ids(storage.list_events(b.id, EVERYTHING))) == all_events
        for event in child_events:
            moved = storage.get_event(event.id)
            assert moved is not None and moved.group_id == b.id
        latest = storage.latest_event(b.id)
        assert latest is not None and latest.datetime == at(50)
        assert (merged.title, merged.hash) == (b.title, b.hash)

    def test_merge_groups_merges_users_tags_stats_and_notes(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0, tags=(("user", "id:1"), ("browser", "x")))
        _group(storage, project, "a", 1, tags=(("user", "id:2"),))
        b = _group(storage, project, "b", 2, tags=(("user", "id:2"),))
        b = _group(storage, project, "b", 3, tags=(("user", "id:3"),))
        b = _group(storage, project, "b", 4, tags=(("user", "id:3"),))
        storage.create_note(a.id, "on a")
        storage.create_note(b.id, "on b")
        k = epoch_seconds(at(0))
        parent, _children = storage.merge_groups(project.id, [a.id, b.id])
        assert parent == b.id
        merged = _reload(storage, b)
        assert merged.user_count == 3
        assert merged.num_comments == 2
        notes = storage.list_notes(b.id, EVERYTHING)
        assert sorted(n.text for n in notes) == ["on a", "on b"]
        assert all(n.group_id == b.id for n in notes)
        assert _list(storage, project, tags=(("browser", "x"),)) == [b.id]
        assert _list(storage, project, tags=(("user", "id:1"), ("user", "id:3"))) == [b.id]
        assert storage.group_stats([b.id], 3600, 0, 2**40)[b.id] == {k: 5}
        assert sum(storage.group_stats([b.id], 10, 0, 2**40)[b.id].values()) == 5
        # Users already counted stay counted once; a new one adds one.
        again = storage.save_event(
            project.id, make_event(group_hash="b", timestamp=at(5), tags=(("user", "id:1"),))
        )
        assert again.group.user_count == 3
        again = storage.save_event(
            project.id, make_event(group_hash="b", timestamp=at(6), tags=(("user", "id:4"),))
        )
        assert again.group.user_count == 4

    def test_merge_groups_only_within_the_project(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        mine = _group(storage, project, "a", 0)
        foreign = _group(storage, other, "b", 0, 1, 2)
        assert storage.merge_groups(project.id, [mine.id, foreign.id]) == (mine.id, [])
        assert _reload(storage, mine) == mine
        assert _reload(storage, foreign) == foreign

    # -- delete_groups -----------------------------------------------------------------------
    def test_delete_groups_removes_events_and_notes(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0, 1)
        b = _group(storage, project, "b", 2)
        keep = _group(storage, project, "keep", 3)
        doomed_events = storage.list_events(a.id, EVERYTHING) + storage.list_events(
            b.id, EVERYTHING
        )
        storage.create_note(a.id, "bye")
        kept_note = storage.create_note(keep.id, "stay")
        keep = _reload(storage, keep)
        assert storage.delete_groups(project.id, [a.id, b.id, 999_999]) == 2
        assert storage.get_group(a.id) is None and storage.get_group(b.id) is None
        for event in doomed_events:
            assert storage.get_event(event.id) is None
        assert storage.list_events(a.id, EVERYTHING) == []
        assert storage.list_notes(a.id, EVERYTHING) == []
        assert storage.latest_event(a.id) is None
        assert storage.group_stats([a.id], 3600, 0, 2**40) == {a.id: {}}
        assert _list(storage, project) == [keep.id]
        assert _reload(storage, keep) == keep
        assert storage.list_notes(keep.id, EVERYTHING) == [kept_note]
        assert len(storage.list_events(keep.id, EVERYTHING)) == 1

    def test_delete_groups_ignores_other_projects(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        foreign = _group(storage, other, "a", 0)
        assert storage.delete_groups(project.id, [foreign.id]) == 0
        assert _reload(storage, foreign) == foreign
        assert len(storage.list_events(foreign.id, EVERYTHING)) == 1
        assert storage.delete_groups(project.id, []) == 0

    def test_delete_groups_forgets_tags_stats_and_event_ids(self, storage: Storage) -> None:
        project = storage.create_project("P")
        event_id = uuid.uuid4().hex
        first = storage.save_event(
            project.id,
            make_event(event_id=event_id, group_hash="h", timestamp=at(0), tags=(("user", "u"),)),
        )
        assert storage.delete_groups(project.id, [first.group.id]) == 1
        again = storage.save_event(
            project.id,
            make_event(event_id=event_id, group_hash="h", timestamp=at(1), tags=(("user", "u"),)),
        )
        assert again.created and again.is_new_group
        assert (again.group.times_seen, again.group.user_count) == (1, 1)
        assert storage.group_stats([again.group.id], 86400, 0, 2**40)[again.group.id] == {
            epoch_seconds(at(0)) - epoch_seconds(at(0)) % 86400: 1
        }

    # -- events ----------------------------------------------------------------------------
    def test_list_events_by_id_window(self, storage: Storage) -> None:
        project = storage.create_project("P")
        events = []
        for offset in (50, 10, 40, 20, 30):
            events.append(storage.save_event(project.id, make_event(timestamp=at(offset))).event)
            storage.save_event(project.id, make_event(group_hash="noise", timestamp=at(offset)))
        group_id = events[0].group_id
        ids = [e.id for e in events]
        assert ids == sorted(ids)

        def read(window: Window) -> list[int]:
            return _ids(storage.list_events(group_id, window))

        assert read(EVERYTHING) == ids[::-1]
        assert read(_window(None, 0, descending=False)) == ids
        assert read(_window("<=", ids[2])) == [ids[2], ids[1], ids[0]]
        assert read(_window("==", ids[2])) == [ids[2]]
        assert read(_window(">", ids[2], descending=False)) == [ids[3], ids[4]]
        assert read(_window(None, 0, offset=1, limit=2)) == [ids[3], ids[2]]
        assert storage.list_events(999_999, EVERYTHING) == []

    def test_get_event(self, storage: Storage) -> None:
        project = storage.create_project("P")
        saved = storage.save_event(project.id, make_event(tags=(("a", "b"),)))
        assert storage.get_event(saved.event.id) == saved.event
        assert storage.get_event(999_999) is None

    def test_latest_event_by_time_then_id(self, storage: Storage) -> None:
        project = storage.create_project("P")
        save = storage.save_event
        save(project.id, make_event(timestamp=at(10)))
        first_at_30 = save(project.id, make_event(timestamp=at(30))).event
        save(project.id, make_event(timestamp=at(20)))
        group_id = first_at_30.group_id
        latest = storage.latest_event(group_id)
        assert latest == first_at_30
        second_at_30 = save(project.id, make_event(timestamp=at(30))).event
        assert storage.latest_event(group_id) == second_at_30
        save(project.id, make_event(timestamp=at(25)))
        assert storage.latest_event(group_id) == second_at_30
        assert storage.latest_event(999_999) is None

    def test_get_event_by_event_id(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        saved = storage.save_event(project.id, make_event(tags=(("a", "b"),))).event
        noise = storage.save_event(project.id, make_event(group_hash="noise")).event
        assert storage.get_event_by_event_id(project.id, saved.event_id) == saved
        assert storage.get_event_by_event_id(project.id, noise.event_id) == noise
        # Event ids are per project: another project's id names nothing here.
        assert storage.get_event_by_event_id(other.id, saved.event_id) is None
        assert storage.get_event_by_event_id(project.id, uuid.uuid4().hex) is None
        assert storage.get_event_by_event_id(999_999, saved.event_id) is None
        # The same SDK id in another project is another event.
        twin = storage.save_event(other.id, make_event(event_id=saved.event_id)).event
        assert twin.id != saved.id
        assert storage.get_event_by_event_id(other.id, saved.event_id) == twin
        assert storage.get_event_by_event_id(project.id, saved.event_id) == saved
        # Deleted with its group.
        storage.delete_groups(project.id, [saved.group_id])
        assert storage.get_event_by_event_id(project.id, saved.event_id) is None
        assert storage.get_event_by_event_id(project.id, noise.event_id) == noise

    def test_list_project_events_by_id_window(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        events = []
        # Across groups, timestamps out of order: the list is keyed by row id alone.
        for offset, group_hash in ((50, "a"), (10, "b"), (40, "a"), (20, "c"), (30, "b")):
            event = make_event(group_hash=group_hash, timestamp=at(offset))
            events.append(storage.save_event(project.id, event).event)
            storage.save_event(other.id, make_event(group_hash=group_hash, timestamp=at(offset)))
        ids = [e.id for e in events]
        assert ids == sorted(ids)
        assert len({e.group_id for e in events}) == 3

        def read(window: Window) -> list[int]:
            return _ids(storage.list_project_events(project.id, window))

        assert storage.list_project_events(project.id, EVERYTHING) == events[::-1]
        assert read(_window(None, 0, descending=False)) == ids
        assert read(_window("<=", ids[2])) == [ids[2], ids[1], ids[0]]
        assert read(_window("==", ids[2])) == [ids[2]]
        assert read(_window(">", ids[2], descending=False)) == [ids[3], ids[4]]
        assert read(_window(None, 0, offset=1, limit=2)) == [ids[3], ids[2]]
        assert read(_window("<=", ids[4], offset=4, limit=2)) == [ids[0]]
        assert all(
            e.project_id == other.id for e in storage.list_project_events(other.id, EVERYTHING)
        )
        assert storage.list_project_events(999_999, EVERYTHING) == []
        # Merging moves events between groups, not out of the project's list.
        groups = sorted({e.group_id for e in events})
        storage.merge_groups(project.id, groups)
        assert read(EVERYTHING) == ids[::-1]
        storage.delete_groups(project.id, groups)
        assert storage.list_project_events(project.id, EVERYTHING) == []
        assert len(storage.list_project_events(other.id, EVERYTHING)) == 5

    def test_list_project_events_paginate_walks_every_event_once(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        for n in range(10):
            storage.save_event(project.id, make_event(group_hash=f"h{n % 3}", timestamp=at(-n)))
            storage.save_event(other.id, make_event(group_hash=f"h{n % 3}", timestamp=at(n)))
        expected = _ids(storage.list_project_events(project.id, EVERYTHING))
        assert len(expected) == 10

        def page(cursor: Cursor | None) -> t.Any:
            return paginate(
                lambda window: storage.list_project_events(project.id, window),
                lambda event: event.id,
                cursor,
                3,
            )

        current = page(None)
        forward = _ids(current.rows)
        for _ in range(10):
            if not current.next.has_results:
                break
            current = page(current.next)
            forward += _ids(current.rows)
        assert forward == expected
        backward = _ids(current.rows)
        for _ in range(10):
            if not current.prev.has_results:
                break
            current = page(current.prev)
            backward = _ids(current.rows) + backward
        assert backward == expected

    def test_oldest_event_by_time_then_id(self, storage: Storage) -> None:
        project = storage.create_project("P")
        save = storage.save_event
        save(project.id, make_event(timestamp=at(30)))
        first_at_10 = save(project.id, make_event(timestamp=at(10))).event
        save(project.id, make_event(timestamp=at(20)))
        save(project.id, make_event(group_hash="other", timestamp=at(0)))
        group_id = first_at_10.group_id
        assert storage.oldest_event(group_id) == first_at_10
        # A later row at the same time is not older; an earlier time is.
        save(project.id, make_event(timestamp=at(10)))
        assert storage.oldest_event(group_id) == first_at_10
        earliest = save(project.id, make_event(timestamp=at(5))).event
        assert storage.oldest_event(group_id) == earliest
        assert storage.latest_event(group_id) != earliest
        assert storage.oldest_event(999_999) is None

    def test_adjacent_events_by_time_then_id(self, storage: Storage) -> None:
        project = storage.create_project("P")

        def save(offset: float, group_hash: str = "h") -> Event:
            event = make_event(group_hash=group_hash, timestamp=at(offset))
            return storage.save_event(project.id, event).event

        e10 = save(10)
        e30 = save(30)
        e20a = save(20)
        e20b = save(20)
        save(15, "other")
        save(25, "other")
        assert storage.adjacent_events(e10) == (None, e20a.id)
        assert storage.adjacent_events(e20a) == (e10.id, e20b.id)
        assert storage.adjacent_events(e20b) == (e20a.id, e30.id)
        assert storage.adjacent_events(e30) == (e20b.id, None)
        lone = save(0, "lone")
        assert storage.adjacent_events(lone) == (None, None)

    # -- notes -----------------------------------------------------------------------------
    def test_create_note_counts_comments(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "a", 0)
        other = _group(storage, project, "b", 1)
        note = storage.create_note(group.id, "first note")
        assert (note.group_id, note.text) == (group.id, "first note")
        assert note.date_created.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - note.date_created) < timedelta(minutes=5)
        storage.create_note(group.id, "second")
        assert _reload(storage, group).num_comments == 2
        assert _reload(storage, other).num_comments == 0

    def test_create_note_on_a_deleted_group_is_a_lookup_error(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "a", 0)
        other = _group(storage, project, "b", 1)
        assert storage.delete_groups(project.id, [group.id]) == 1
        with pytest.raises(LookupError):
            storage.create_note(group.id, "too late")
        with pytest.raises(LookupError):
            storage.create_note(999_999, "never there")
        assert storage.list_notes(group.id, EVERYTHING) == []
        # the storage is still usable after the refusal
        storage.create_note(other.id, "fine")
        assert _reload(storage, other).num_comments == 1

    def test_list_notes_newest_first_by_id_window(self, storage: Storage) -> None:
        project = storage.create_project("P")
        group = _group(storage, project, "a", 0)
        other = _group(storage, project, "b", 1)
        notes = []
        for i in range(4):
            notes.append(storage.create_note(group.id, f"note {i}"))
            storage.create_note(other.id, f"noise {i}")
        ids = [n.id for n in notes]
        assert ids == sorted(ids)
        assert storage.list_notes(group.id, EVERYTHING) == notes[::-1]
        assert _ids(storage.list_notes(group.id, _window("<=", ids[1]))) == [ids[1], ids[0]]
        assert _ids(storage.list_notes(group.id, _window(">", ids[1], False))) == ids[2:]
        assert _ids(storage.list_notes(group.id, _window(None, 0, offset=1, limit=2))) == [
            ids[2],
            ids[1],
        ]
        assert storage.list_notes(999_999, EVERYTHING) == []

    # -- releases --------------------------------------------------------------------------
    def test_save_event_records_releases(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")

        def save(group_hash: str, offset: float, release: str | None) -> t.Any:
            event = make_event(group_hash=group_hash, timestamp=at(offset), release=release)
            return storage.save_event(project.id, event)

        first = save("a", 10, "1.0")
        save("a", 5, "1.0")
        save("b", 20, "1.0")
        save("a", 30, "2.0")
        save("c", 40, None)
        retry = make_event(event_id=first.event.event_id, group_hash="a", timestamp=at(0))
        assert not storage.save_event(project.id, dataclasses.replace(retry, release="1.0")).created
        one = storage.get_release(project.id, "1.0")
        assert one is not None
        assert (one.project_id, one.version, one.new_groups) == (project.id, "1.0", 2)
        assert (one.first_event, one.last_event) == (at(5), at(20))
        assert one.date_created.utcoffset() == timedelta(0)
        two = storage.get_release(project.id, "2.0")
        assert two is not None
        assert (two.first_event, two.last_event, two.new_groups) == (at(30), at(30), 0)
        assert storage.get_release(other.id, "1.0") is None
        assert storage.get_release(project.id, "3.0") is None
        assert [r.version for r in storage.list_releases(project.id, EVERYTHING)] == ["2.0", "1.0"]
        assert storage.list_releases(other.id, EVERYTHING) == []

    def test_create_release(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        release = storage.create_release(project.id, "3.0")
        assert (release.project_id, release.version, release.new_groups) == (project.id, "3.0", 0)
        assert release.first_event is None and release.last_event is None
        assert release.date_created.utcoffset() == timedelta(0)
        assert storage.get_release(project.id, "3.0") == release
        with pytest.raises(Conflict) as info:
            storage.create_release(project.id, "3.0")
        assert info.value.field == "version"
        assert storage.get_release(project.id, "3.0") == release
        assert storage.create_release(other.id, "3.0").id != release.id
        storage.save_event(project.id, make_event(release="3.0", timestamp=at(7)))
        seen = storage.get_release(project.id, "3.0")
        assert seen is not None and seen.id == release.id
        assert (seen.first_event, seen.last_event, seen.new_groups) == (at(7), at(7), 1)
        assert seen.date_created == release.date_created

    def test_release_details_default_to_none(self, storage: Storage) -> None:
        project = storage.create_project("P")
        created = storage.create_release(project.id, "1.0")
        storage.save_event(project.id, make_event(release="2.0"))
        for release in (created, storage.get_release(project.id, "2.0")):
            assert release is not None
            assert (release.ref, release.url) == (None, None)
            assert (release.date_released, release.date_started) == (None, None)

    def test_create_release_with_details(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other_zone = timezone(timedelta(hours=2))
        details = ReleaseChanges(
            ref="6ba09a7c53235ee8a8fa5ee4c1ca8ca886e7fdbb",
            url="https://ci.example/builds/1",
            date_released=at(60).astimezone(other_zone),
            date_started=at(30),
        )
        release = storage.create_release(project.id, "1.0", details)
        assert (release.version, release.ref, release.url) == ("1.0", details.ref, details.url)
        assert (release.date_released, release.date_started) == (at(60), at(30))
        assert release.date_released is not None
        assert release.date_released.utcoffset() == timedelta(0)
        assert (release.first_event, release.last_event, release.new_groups) == (None, None, 0)
        assert storage.get_release(project.id, "1.0") == release
        assert storage.list_releases(project.id, EVERYTHING) == [release]
        partial = storage.create_release(project.id, "2.0", ReleaseChanges(ref="abc"))
        assert (partial.ref, partial.url, partial.date_released) == ("abc", None, None)
        with pytest.raises(Conflict):
            storage.create_release(project.id, "1.0", ReleaseChanges(ref="other"))
        assert storage.get_release(project.id, "1.0") == release
        # Events naming the release count into it and keep its details.
        storage.save_event(project.id, make_event(release="1.0", timestamp=at(90)))
        seen = storage.get_release(project.id, "1.0")
        assert seen is not None
        assert (seen.first_event, seen.new_groups) == (at(90), 1)
        assert (seen.ref, seen.url, seen.date_released, seen.date_started) == (
            release.ref,
            release.url,
            release.date_released,
            release.date_started,
        )

    def test_update_release_changes_only_given_fields(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        storage.save_event(project.id, make_event(release="1.0", timestamp=at(5)))
        original = storage.get_release(project.id, "1.0")
        assert original is not None
        untouched = storage.create_release(other.id, "1.0")
        sibling = storage.create_release(project.id, "2.0")

        first = storage.update_release(project.id, "1.0", ReleaseChanges(ref="abc", url="u"))
        assert first == dataclasses.replace(original, ref="abc", url="u")
        second = storage.update_release(
            project.id, "1.0", ReleaseChanges(date_released=at(100), url="v")
        )
        assert second == dataclasses.replace(original, ref="abc", url="v", date_released=at(100))
        third = storage.update_release(project.id, "1.0", ReleaseChanges(date_started=at(50)))
        assert third == dataclasses.replace(second, date_started=at(50))
        # Nothing set changes nothing.
        assert storage.update_release(project.id, "1.0", ReleaseChanges()) == third
        assert storage.get_release(project.id, "1.0") == third
        assert (third.first_event, third.new_groups) == (at(5), 1)
        assert storage.get_release(other.id, "1.0") == untouched
        assert storage.get_release(project.id, "2.0") == sibling

    def test_update_unknown_release_is_none(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        storage.create_release(other.id, "1.0")
        assert storage.update_release(project.id, "1.0", ReleaseChanges(ref="x")) is None
        assert storage.update_release(project.id, "1.0", ReleaseChanges()) is None
        assert storage.update_release(999_999, "1.0", ReleaseChanges(ref="x")) is None
        assert storage.get_release(project.id, "1.0") is None
        assert storage.get_release(other.id, "1.0").ref is None  # type: ignore[union-attr]

    def test_list_releases_by_id_window(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        releases = []
        for version in ("a", "c", "b", "d"):
            releases.append(storage.create_release(project.id, version))
            storage.create_release(other.id, version)
        ids = [r.id for r in releases]
        assert ids == sorted(ids)

        def read(window: Window) -> list[int]:
            return _ids(storage.list_releases(project.id, window))

        assert storage.list_releases(project.id, EVERYTHING) == releases[::-1]
        assert read(_window("<=", ids[2])) == [ids[2], ids[1], ids[0]]
        assert read(_window("==", ids[1])) == [ids[1]]
        assert read(_window(">", ids[1], descending=False)) == [ids[2], ids[3]]
        assert read(_window(None, 0, offset=1, limit=2)) == [ids[2], ids[1]]

    def test_delete_release(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        storage.save_event(project.id, make_event(release="1.0", timestamp=at(0)))
        kept = storage.create_release(other.id, "1.0")
        assert storage.delete_release(project.id, "1.0") is True
        assert storage.get_release(project.id, "1.0") is None
        assert storage.list_releases(project.id, EVERYTHING) == []
        assert storage.delete_release(project.id, "1.0") is False
        assert storage.delete_release(project.id, "never") is False
        assert storage.get_release(other.id, "1.0") == kept
        # A later event names it again, so it is recorded afresh.
        storage.save_event(project.id, make_event(release="1.0", timestamp=at(9)))
        again = storage.get_release(project.id, "1.0")
        assert again is not None
        assert (again.first_event, again.last_event, again.new_groups) == (at(9), at(9), 0)

    # -- tags ------------------------------------------------------------------------------
    def test_group_tag_keys(self, storage: Storage) -> None:
        project = storage.create_project("P")
        tagged = (
            (0, (("browser", "chrome"), ("os", "linux"))),
            (5, (("browser", "firefox"), ("os", "mac"))),
            (1, (("browser", "chrome"),)),
            (9, (("browser", "chrome"),)),
        )
        for offset, tags in tagged:
            group = storage.save_event(
                project.id, make_event(group_hash="h", timestamp=at(offset), tags=tags)
            ).group
        storage.save_event(project.id, make_event(group_hash="k", tags=(("zone", "z"),)))
        summaries = storage.group_tag_keys(group.id, 5)
        assert [k.key for k in summaries] == ["browser", "os"]
        browser, os_ = summaries
        assert (browser.unique_values, browser.total_values) == (2, 4)
        assert [(v.value, v.times_seen) for v in browser.top_values] == [
            ("chrome", 3),
            ("firefox", 1),
        ]
        chrome = browser.top_values[0]
        assert (chrome.key, chrome.first_seen, chrome.last_seen) == ("browser", at(0), at(9))
        # Equal counts: the value recorded later comes first (ties by id, descending).
        assert [v.value for v in os_.top_values] == ["mac", "linux"]
        assert (os_.unique_values, os_.total_values) == (2, 2)
        top_one = storage.group_tag_keys(group.id, 1)
        assert [[v.value for v in k.top_values] for k in top_one] == [["chrome"], ["mac"]]
        assert [(k.unique_values, k.total_values) for k in top_one] == [(2, 4), (2, 2)]
        assert storage.group_tag_keys(999_999, 5) == []

    def test_list_tag_values_in_project_and_group(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        groups: dict[str, Group] = {}
        for group_hash, value, offset in (
            ("a", "x", 0),
            ("a", "y", 1),
            ("b", "y", 2),
            ("b", "z", 3),
            ("b", "y", 4),
            ("a", "w", 5),
        ):
            event = make_event(group_hash=group_hash, timestamp=at(offset), tags=(("k", value),))
            groups[group_hash] = storage.save_event(project.id, event).group
        storage.save_event(other.id, make_event(group_hash="a", tags=(("k", "y"),)))
        a = groups["a"]

        def values(rows: t.Sequence[t.Any]) -> list[tuple[str, int]]:
            return [(row.value, row.times_seen) for row in rows]

        everywhere = storage.list_tag_values(project.id, "k", EVERYTHING)
        assert values(everywhere) == [("y", 3), ("w", 1), ("z", 1), ("x", 1)]
        assert all(row.key == "k" for row in everywhere)
        y = everywhere[0]
        assert (y.first_seen, y.last_seen) == (at(1), at(4))
        in_a = storage.list_tag_values(project.id, "k", EVERYTHING, group_id=a.id)
        assert values(in_a) == [("w", 1), ("y", 1), ("x", 1)]
        ascending = storage.list_tag_values(project.id, "k", _window(">", 0, descending=False))
        assert values(ascending) == [("x", 1), ("z", 1), ("w", 1), ("y", 3)]
        assert values(storage.list_tag_values(project.id, "k", _window("==", 1, limit=2))) == [
            ("w", 1),
            ("z", 1),
        ]
        assert values(storage.list_tag_values(project.id, "k", _window("<=", 1, offset=2))) == [
            ("x", 1)
        ]
        assert storage.list_tag_values(project.id, "nope", EVERYTHING) == []
        assert storage.list_tag_values(other.id, "k", EVERYTHING, group_id=a.id) == []
        assert values(storage.list_tag_values(other.id, "k", EVERYTHING)) == [("y", 1)]

    def test_count_tag_values_with_key(self, storage: Storage) -> None:
        project = storage.create_project("P")
        for group_hash, value in (("a", "x"), ("a", "y"), ("b", "y"), ("b", "z"), ("b", "y")):
            storage.save_event(project.id, make_event(group_hash=group_hash, tags=(("k", value),)))
        b = storage.list_groups(project.id, GroupQuery(sort="freq"), EVERYTHING)[0]
        assert b.hash == "b"
        assert storage.count_tag_values_with_key(project.id, "k", 1) == 2
        assert storage.count_tag_values_with_key(project.id, "k", 3) == 1
        assert storage.count_tag_values_with_key(project.id, "k", 2) == 0
        assert storage.count_tag_values_with_key(project.id, "k", 2, group_id=b.id) == 1
        assert storage.count_tag_values_with_key(project.id, "k", 1, group_id=b.id) == 1
        assert storage.count_tag_values_with_key(project.id, "other", 1) == 0

    def test_delete_tag_key(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        tags = (("browser", "chrome"), ("user", "id:1"))
        group = _group(storage, project, "a", 0, tags=tags)
        _group(storage, project, "a", 1, tags=(("user", "id:2"),))
        foreign = _group(storage, other, "a", 0, tags=tags)
        assert storage.delete_tag_key(project.id, "browser") is True
        assert [k.key for k in storage.group_tag_keys(group.id, 5)] == ["user"]
        assert storage.list_tag_values(project.id, "browser", EVERYTHING) == []
        assert _list(storage, project, tags=(("browser", "chrome"),)) == []
        assert storage.delete_tag_key(project.id, "browser") is False
        assert storage.delete_tag_key(project.id, "never") is False
        assert _reload(storage, group).user_count == 2
        assert storage.delete_tag_key(project.id, "user") is True
        assert _reload(storage, group).user_count == 0
        assert storage.group_tag_keys(group.id, 5) == []
        assert _reload(storage, foreign) == foreign
        assert [k.key for k in storage.group_tag_keys(foreign.id, 5)] == ["browser", "user"]
        assert len(storage.list_tag_values(other.id, "browser", EVERYTHING)) == 1
        again = storage.save_event(
            project.id, make_event(group_hash="a", timestamp=at(2), tags=(("user", "id:1"),))
        )
        assert again.group.user_count == 1

    def test_merge_groups_sums_tag_values(self, storage: Storage) -> None:
        project = storage.create_project("P")
        a = _group(storage, project, "a", 0, 1, tags=(("browser", "chrome"),))
        b = _group(storage, project, "b", 2, 3, 4, tags=(("browser", "chrome"),))
        _group(storage, project, "b", 5, tags=(("browser", "safari"),))
        before = storage.list_tag_values(project.id, "browser", EVERYTHING)
        parent, _children = storage.merge_groups(project.id, [a.id, b.id])
        assert parent == b.id
        [browser] = storage.group_tag_keys(b.id, 5)
        assert (browser.unique_values, browser.total_values) == (2, 6)
        chrome = browser.top_values[0]
        assert (chrome.value, chrome.times_seen) == ("chrome", 5)
        assert (chrome.first_seen, chrome.last_seen) == (at(0), at(4))
        # Project-wide counts are about events, which merging does not change.
        assert storage.list_tag_values(project.id, "browser", EVERYTHING) == before

    # -- project stats ---------------------------------------------------------------------
    def test_project_stats(self, storage: Storage) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        _group(storage, project, "a", 0, 5, 3600)
        dup = storage.save_event(project.id, make_event(group_hash="b", timestamp=at(15)))
        storage.save_event(project.id, make_event(event_id=dup.event.event_id, timestamp=at(15)))
        _group(storage, other, "a", 0)
        k = epoch_seconds(at(0))
        day = k - k % 86400
        assert storage.project_stats(project.id, 3600, 0, 2**40) == {k: 3, k + 3600: 1}
        assert storage.project_stats(project.id, 10, 0, 2**40) == {k: 2, k + 10: 1, k + 3600: 1}
        assert storage.project_stats(project.id, 86400, 0, 2**40) == {day: 4}
        assert storage.project_stats(project.id, 3600, k, k) == {k: 3}
        assert storage.project_stats(project.id, 3600, k + 1, k + 3600) == {k + 3600: 1}
        assert storage.project_stats(project.id, 3600, k + 1, k + 3599) == {}
        assert storage.project_stats(other.id, 3600, 0, 2**40) == {k: 1}
        assert storage.project_stats(999_999, 3600, 0, 2**40) == {}


class StorageWithTokens(Storage, TokenStorage, t.Protocol):
    """A storage that keeps auth tokens: what :class:`TokenStorageContract` tests."""


def _token_hash() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


class TokenStorageContract:
    """Contract tests for a :class:`~flask_sentry_api.storage.TokenStorage`; subclass it
    (next to :class:`StorageContract`) and provide the same ``storage`` fixture."""

    def test_satisfies_the_token_storage_protocol(self, storage: StorageWithTokens) -> None:
        assert isinstance(storage, TokenStorage)

    def test_create_token(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        token_hash = _token_hash()
        token = storage.create_token(
            project.id,
            token_hash,
            ["project:read", "event:write"],
            label="CI",
            last_characters="a1b2",
        )
        assert isinstance(token, AuthToken) and isinstance(token.id, int)
        assert (token.project_id, token.token_hash) == (project.id, token_hash)
        assert token.scopes == ("project:read", "event:write")
        assert (token.label, token.last_characters) == ("CI", "a1b2")
        assert token.date_created.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - token.date_created) < timedelta(minutes=5)
        assert storage.get_token(token_hash) == token

    def test_token_defaults(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        token = storage.create_token(project.id, _token_hash(), ())
        assert (token.scopes, token.label, token.last_characters) == ((), None, "")
        assert storage.get_token(token.token_hash) == token

    def test_scopes_round_trip_in_the_given_order(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        for scopes in (
            ("org:read", "event:admin", "project:read"),
            tuple(reversed(SCOPES)),
            ("project:releases",),
        ):
            token = storage.create_token(project.id, _token_hash(), list(scopes))
            assert token.scopes == scopes
            stored = storage.get_token(token.token_hash)
            assert stored is not None and stored.scopes == scopes

    def test_scopes_the_storage_cannot_keep_are_refused(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        for scopes in (["project:read", "event:read event:write"], [""], ["tab\there"]):
            with pytest.raises(ValueError):
                storage.create_token(project.id, _token_hash(), scopes)
        with pytest.raises(TypeError):
            storage.create_token(project.id, _token_hash(), "project:read")
        assert storage.list_tokens() == []

    def test_token_hash_is_unique(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        token_hash = _token_hash()
        token = storage.create_token(project.id, token_hash, ["project:read"])
        with pytest.raises(Conflict) as info:
            storage.create_token(other.id, token_hash, ["project:admin"])
        assert info.value.field == "token_hash"
        assert storage.get_token(token_hash) == token
        assert storage.list_tokens() == [token]

    def test_get_unknown_token_is_none(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        storage.create_token(project.id, _token_hash(), ["project:read"])
        assert storage.get_token(_token_hash()) is None
        assert storage.get_token("") is None

    def test_list_tokens_oldest_first(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        other = storage.create_project("Other")
        first = storage.create_token(project.id, _token_hash(), ["project:read"])
        foreign = storage.create_token(other.id, _token_hash(), ["event:read"])
        second = storage.create_token(project.id, _token_hash(), ["org:read"], label="b")
        assert storage.list_tokens(project.id) == [first, second]
        assert storage.list_tokens(other.id) == [foreign]
        assert storage.list_tokens() == [first, foreign, second]
        assert storage.list_tokens(999_999) == []

    def test_delete_token(self, storage: StorageWithTokens) -> None:
        project = storage.create_project("P")
        doomed = storage.create_token(project.id, _token_hash(), ["project:read"])
        kept = storage.create_token(project.id, _token_hash(), ["project:read"])
        assert storage.delete_token(doomed.id) is True
        assert storage.get_token(doomed.token_hash) is None
        assert storage.list_tokens(project.id) == [kept]
        assert storage.list_tokens() == [kept]
        assert storage.delete_token(doomed.id) is False
        assert storage.delete_token(999_999) is False
        assert storage.get_token(kept.token_hash) == kept
        # The hash is free again, and a new token never takes the old id.
        again = storage.create_token(project.id, doomed.token_hash, ["event:read"])
        assert again.id not in (doomed.id, kept.id)
        assert storage.get_token(doomed.token_hash) == again
