"""The SQL storage itself: projects and keys, group queries, bulk update, merge and delete,
the event, note, release, tag and stats reads (the write path is :mod:`.events`), and auth
tokens."""

from __future__ import annotations

import dataclasses
import secrets
import typing as t

import sqlalchemy as sa

from .. import storage as s
from ..migrate import lock_schema
from ..migrate import upgrade_locked
from ..models import UTCDateTime
from . import records
from . import statements as sql
from .bulk_seed import BulkSeeder
from .bulk_seed import SeedChunks
from .events import EventWriter

if t.TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from ..pagination import Window


#: Group lists with at most this many tag filters (and no free text) run a statement built
#: once per shape; more filters are rare enough to be built per request, which bounds the
#: statements kept.
_CACHED_TAG_FILTERS = 4


class SQLAlchemyStorage(EventWriter):
    """Storage on a Flask-SQLAlchemy ``db``; its tables are named ``<table_prefix>*``.

    A :class:`~flask_sentry_api.storage.TokenStorage` too.

    :param db: the host's :class:`flask_sqlalchemy.SQLAlchemy` instance.
    :param table_prefix: prefix of every table, so the storage never collides with the
        host's own tables.
    """

    @sql.translating_errors
    def init_schema(self) -> None:
        """Migrate the tables to the current revision, creating them on a new database."""
        with self.engine.begin() as connection:
            lock_schema(connection, self.table_prefix)
            upgrade_locked(connection, self.table_prefix, head_tables=self.models.tables)
            # Tables dropped outside the migrations (db.drop_all() in a host's tests) return.
            self.db.metadata.create_all(bind=connection, tables=self.models.tables)

    def _rowcount(self, stmt: sa.Executable) -> int:
        """How many rows ``stmt`` (an UPDATE or DELETE) changed."""
        return int(t.cast(sa.CursorResult[t.Any], self.session.execute(stmt)).rowcount)

    # -- projects and keys -----------------------------------------------------------------
    @sql.translating_errors
    def create_project(self, name: str, slug: str | None = None) -> s.Project:
        Project = self.models.Project
        if slug is not None:
            if self.session.scalar(sa.select(Project.id).where(Project.slug == slug)):
                raise s.Conflict("slug", "This slug is already in use.")
        else:
            base = s.slugify(name)
            taken = set(
                self.session.scalars(
                    sa.select(Project.slug).where(
                        sa.or_(Project.slug == base, Project.slug.startswith(base + "-"))
                    )
                )
            )
            slug, n = base, 1
            while slug in taken:
                n += 1
                slug = f"{base}-{n}"
        row = Project(name=name, slug=slug, is_public=False, date_created=s.utcnow())
        self.session.add(row)
        try:
            return self._commit_returning(lambda: records.project(row))
        except sa.exc.IntegrityError as exc:
            self.session.rollback()
            raise s.Conflict("slug", "This slug is already in use.") from exc

    @sql.translating_errors
    def get_project(self, project_id: int) -> s.Project | None:
        Project = self.models.Project.__table__
        connection = self.session.connection()
        by_id = self._statement(
            connection,
            "project_by_id",
            lambda: sa.select(Project).where(Project.c.id == sa.bindparam("b_id")),
        )
        row = connection.execute(by_id, {"b_id": project_id}).first()
        return records.project(row) if row is not None else None

    @sql.translating_errors
    def get_project_by_slug(self, slug: str) -> s.Project | None:
        Project = self.models.Project.__table__
        connection = self.session.connection()
        by_slug = self._statement(
            connection,
            "project_by_slug",
            lambda: sa.select(Project).where(Project.c.slug == sa.bindparam("b_slug")),
        )
        row = connection.execute(by_slug, {"b_slug": slug}).first()
        return records.project(row) if row is not None else None

    @sql.translating_errors
    def list_projects(self) -> list[s.Project]:
        Project = self.models.Project.__table__
        rows = self.session.execute(sa.select(Project).order_by(Project.c.id))
        return [records.project(row) for row in rows]

    @sql.translating_errors
    def update_project(self, project_id: int, changes: t.Mapping[str, t.Any]) -> s.Project:
        Project = self.models.Project
        values = {k: v for k, v in changes.items() if k in s.PROJECT_FIELDS}
        if "allowed_origins" in values:
            values["allowed_origins"] = "\n".join(values["allowed_origins"])
        if "slug" in values:
            clash = self.session.scalar(
                sa.select(Project.id).where(
                    Project.slug == values["slug"], Project.id != project_id
                )
            )
            if clash:
                raise s.Conflict("slug", "This slug is already in use.")
        try:
            if values:
                self.session.execute(
                    sa.update(Project).where(Project.id == project_id).values(values)
                )
            row = self.session.get(Project, project_id, populate_existing=True)
            if row is None:
                raise LookupError(project_id)
            return self._commit_returning(lambda: records.project(row))
        except sa.exc.IntegrityError as exc:  # a concurrent request took the slug
            self.session.rollback()
            raise s.Conflict("slug", "This slug is already in use.") from exc

    @sql.translating_errors
    def create_key(
        self,
        project_id: int,
        roles: int,
        label: str | None = None,
        rate_limit: s.RateLimit | None = None,
    ) -> s.ProjectKey:
        row = self.models.ProjectKey(
            project_id=project_id,
            public_key=secrets.token_hex(16),
            secret_key=secrets.token_hex(16),
            roles=roles,
            is_active=True,
            label=label,
            date_added=s.utcnow(),
            **_rate_limit_columns(rate_limit),
        )
        self.session.add(row)
        return self._commit_returning(lambda: records.key(row))

    @sql.translating_errors
    def get_key(self, public_key: str) -> s.ProjectKey | None:
        ProjectKey = self.models.ProjectKey.__table__
        connection = self.session.connection()
        by_public_key = self._statement(
            connection,
            "key_by_public_key",
            lambda: sa.select(ProjectKey).where(
                ProjectKey.c.public_key == sa.bindparam("b_public_key")
            ),
        )
        params = {"b_public_key": public_key}
        row = connection.execute(by_public_key, params).first()
        return records.key(row) if row is not None else None

    @sql.translating_errors
    def list_keys(self, project_id: int) -> list[s.ProjectKey]:
        ProjectKey = self.models.ProjectKey
        rows = self.session.scalars(
            sa.select(ProjectKey).where(ProjectKey.project_id == project_id).order_by(ProjectKey.id)
        )
        return [records.key(row) for row in rows]

    @sql.translating_errors
    def set_key_active(self, public_key: str, active: bool) -> bool:
        return self._update_key(public_key, {"is_active": active})

    @sql.translating_errors
    def set_key_rate_limit(self, public_key: str, rate_limit: s.RateLimit | None) -> bool:
        return self._update_key(public_key, _rate_limit_columns(rate_limit))

    @sql.translating_errors
    def delete_key(self, public_key: str) -> bool:
        ProjectKey = self.models.ProjectKey
        self._begin_write()
        deleted = self._rowcount(sa.delete(ProjectKey).where(ProjectKey.public_key == public_key))
        self.session.commit()
        return bool(deleted)

    def _update_key(self, public_key: str, values: dict[str, t.Any]) -> bool:
        ProjectKey = self.models.ProjectKey
        changed = self._rowcount(
            sa.update(ProjectKey).where(ProjectKey.public_key == public_key).values(values)
        )
        self.session.commit()
        return bool(changed)

    # -- groups ----------------------------------------------------------------------------
    @sql.translating_errors
    def get_group(self, group_id: int) -> s.Group | None:
        row = self.session.get(self.models.Group, group_id, populate_existing=True)
        return records.group(row) if row is not None else None

    def _group_conditions(self, project_id: int, query: s.GroupQuery) -> list[ColumnElement[bool]]:
        Group, GroupTagValue = self.models.Group, self.models.GroupTagValue
        conditions: list[ColumnElement[bool]] = [Group.project_id == project_id]
        if query.status is not None:
            conditions.append(Group.status == query.status)
        if query.ids is not None:
            conditions.append(self._in_ids(Group.id, query.ids))
        if query.since is not None:
            conditions.append(Group.last_seen >= query.since)
        if query.until is not None:
            conditions.append(Group.last_seen <= query.until)
        for key, value in query.tags:
            conditions.append(
                sa.exists().where(
                    GroupTagValue.group_id == Group.id,
                    GroupTagValue.key == key,
                    GroupTagValue.value == value,
                )
            )
        if query.text:
            needle = query.text.lower()
            conditions.append(
                sa.or_(
                    *(
                        self._lower(column).contains(needle, autoescape=True)
                        for column in (Group.title, Group.message, Group.culprit)
                    )
                )
            )
        return conditions

    def _sort_column(self, sort: str) -> tuple[t.Any, bool]:
        """The column behind a group sort, and whether its key is whole seconds of it."""
        column = getattr(self.models.Group, s.SORT_ATTRIBUTES.get(sort, "last_seen"))
        return column, isinstance(column.type, UTCDateTime)

    @sql.translating_errors
    def list_groups(self, project_id: int, query: s.GroupQuery, window: Window) -> list[s.Group]:
        connection = self.session.connection()
        params: dict[str, t.Any] = {}
        if query.text or len(query.tags) > _CACHED_TAG_FILTERS:
            stmt = self._group_search_statement(project_id, query, window)
        else:
            stmt, params = self._group_page_statement(connection, project_id, query, window)
        # Plain rows on the session's connection, not ORM entities nor the ORM's result
        # machinery: a page is read-only, and building and registering a hundred instances
        # in the identity map cost as much as the query itself.
        return records.groups(connection.execute(stmt, params).all())

    def _group_search_statement(
        self, project_id: int, query: s.GroupQuery, window: Window
    ) -> sa.Select[t.Any]:
        """A page of groups, built for this request (free-text searches, many tags)."""
        Group = self.models.Group
        column, seconds = self._sort_column(query.sort)
        return sql.keyset(
            sa.select(*records.group_list_columns(Group.__table__)).where(
                *self._group_conditions(project_id, query)
            ),
            window,
            column,
            Group.id,
            seconds=seconds,
        )

    def _group_page_statement(
        self, connection: sa.Connection, project_id: int, query: s.GroupQuery, window: Window
    ) -> tuple[sa.Select[t.Any], dict[str, t.Any]]:
        """A page of groups without free text: the statement of the query's shape (which
        filters, which sort, which bound), built once, and this request's values for it.

        Building the statement (its conditions, the keyset bound, SQLAlchemy's coercions
        and cache key) cost more than running it: a list page reuses one per shape.
        """
        name = s.SORT_ATTRIBUTES.get(query.sort, "last_seen")
        shape = (
            "group_page",
            name,
            window.op,
            window.descending,
            query.status is not None,
            query.ids is not None,
            query.since is not None,
            query.until is not None,
            len(query.tags),
        )
        params: dict[str, t.Any] = {
            "b_project": project_id,
            "b_offset": window.offset,
            "b_limit": window.limit,
        }
        if query.status is not None:
            params["b_status"] = query.status
        if query.ids is not None:
            params["b_ids"] = list(query.ids)
        if query.since is not None:
            params["b_since"] = query.since
        if query.until is not None:
            params["b_until"] = query.until
        for index, (key, value) in enumerate(query.tags):
            params[f"b_tag_key_{index}"], params[f"b_tag_value_{index}"] = key, value
        Group = self.models.Group.__table__
        seconds = isinstance(Group.c[name].type, UTCDateTime)
        if window.op is not None:
            if seconds and window.op == "==":
                params["b_key"], params["b_key_end"] = (
                    sql.from_epoch(window.value),
                    sql.from_epoch(window.value + 1),
                )
            elif seconds:
                params["b_key"] = sql.from_epoch(window.value + 1)
            else:
                params["b_key"] = window.value

        def build() -> sa.Select[t.Any]:
            GTV = self.models.GroupTagValue.__table__
            column = Group.c[name]
            conditions: list[ColumnElement[bool]] = [
                Group.c.project_id == sa.bindparam("b_project")
            ]
            if query.status is not None:
                conditions.append(Group.c.status == sa.bindparam("b_status"))
            if query.ids is not None:
                dialect = connection.dialect.name
                conditions.append(sql.in_ids_parameter(dialect, Group.c.id, "b_ids"))
            if query.since is not None:
                conditions.append(Group.c.last_seen >= sa.bindparam("b_since"))
            if query.until is not None:
                conditions.append(Group.c.last_seen <= sa.bindparam("b_until"))
            for index in range(len(query.tags)):
                conditions.append(
                    sa.exists().where(
                        GTV.c.group_id == Group.c.id,
                        GTV.c.key == sa.bindparam(f"b_tag_key_{index}"),
                        GTV.c.value == sa.bindparam(f"b_tag_value_{index}"),
                    )
                )
            # The keyset bound of :func:`statements.key_bound`, its value a parameter.
            if window.op is not None:
                key: sa.BindParameter[t.Any] = sa.bindparam("b_key")
                if seconds and window.op == "==":
                    conditions += [column >= key, column < sa.bindparam("b_key_end")]
                elif seconds:
                    conditions.append(column < key if window.op == "<=" else column >= key)
                else:
                    conditions.append(
                        {"<=": column <= key, "==": column == key, ">": column > key}[window.op]
                    )
            order = [c.desc() if window.descending else c.asc() for c in (column, Group.c.id)]
            return (
                sa.select(*records.group_list_columns(Group))
                .where(*conditions)
                .order_by(*order)
                .offset(sa.bindparam("b_offset", type_=sa.Integer()))
                .limit(sa.bindparam("b_limit", type_=sa.Integer()))
            )

        return self._statements.get(connection, shape, build), params

    @sql.translating_errors
    def count_groups_with_key(self, project_id: int, query: s.GroupQuery, key: int) -> int:
        Group = self.models.Group
        column, seconds = self._sort_column(query.sort)
        stmt = (
            sa.select(sa.func.count())
            .select_from(Group)
            .where(
                *self._group_conditions(project_id, query),
                sql.key_bound(column, "==", key, seconds=seconds),
            )
        )
        return int(self.session.scalar(stmt) or 0)

    @sql.translating_errors
    def group_stats(
        self, group_ids: t.Sequence[int], resolution: int, start: int, end: int
    ) -> dict[int, dict[int, int]]:
        GroupStat = self.models.GroupStat.__table__
        stats: dict[int, dict[int, int]] = {group_id: {} for group_id in group_ids}
        if not group_ids:
            return stats
        connection = self.session.connection()
        # Built once: a page's hundred ids go as one parameter (an expanding IN, or an
        # array on PostgreSQL) instead of a hundred literals coerced for every request.
        by_groups = self._statement(
            connection,
            "group_stats",
            lambda: sa.select(GroupStat.c.group_id, GroupStat.c.bucket, GroupStat.c.count).where(
                sql.in_ids_parameter(connection.dialect.name, GroupStat.c.group_id, "b_ids"),
                GroupStat.c.resolution == sa.bindparam("b_resolution"),
                GroupStat.c.bucket >= sa.bindparam("b_start"),
                GroupStat.c.bucket <= sa.bindparam("b_end"),
            ),
        )
        params = {
            "b_ids": list(group_ids),
            "b_resolution": resolution,
            "b_start": start,
            "b_end": end,
        }
        for group_id, bucket, count in connection.execute(by_groups, params).all():
            stats[group_id][int(bucket)] = int(count)
        return stats

    @sql.translating_errors
    def update_groups(self, project_id: int, query: s.GroupQuery, changes: s.GroupChanges) -> int:
        Group = self.models.Group
        values: dict[str, t.Any] = {}
        if changes.status is not None:
            values["status"] = changes.status
            if changes.status == "resolved":
                values["resolved_at"] = sa.case(
                    (Group.status != "resolved", s.utcnow()), else_=Group.resolved_at
                )
            else:
                values["resolved_at"] = None
        for name in ("is_public", "is_bookmarked", "has_seen"):
            if getattr(changes, name) is not None:
                values[name] = getattr(changes, name)
        conditions = self._group_conditions(project_id, query)
        if not values:
            return int(
                self.session.scalar(
                    sa.select(sa.func.count()).select_from(Group).where(*conditions)
                )
                or 0
            )
        self._begin_write()
        matched = self._rowcount(
            sa.update(Group)
            .where(*conditions)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return matched

    @sql.translating_errors
    def merge_groups(self, project_id: int, group_ids: t.Sequence[int]) -> tuple[int, list[int]]:
        m = self.models
        Group = m.Group
        self._begin_write()
        # Locked in id order, as delete_groups does, so two writers never wait on each other.
        locked = self.session.execute(
            sa.select(Group.id, Group.times_seen)
            .where(Group.project_id == project_id, self._in_ids(Group.id, list(group_ids)))
            .order_by(Group.id)
            .with_for_update()
        ).all()
        ranked = [row.id for row in sorted(locked, key=lambda row: -row.times_seen)]
        if not ranked:
            raise LookupError("no such groups")
        parent, children = ranked[0], list(ranked[1:])
        if not children:
            return parent, []

        in_children = list(children)
        totals = self.session.execute(
            sa.select(
                sa.func.sum(Group.times_seen),
                sa.func.min(Group.first_seen),
                sa.func.max(Group.last_seen),
                sa.func.sum(Group.num_comments),
            ).where(Group.id.in_(ranked))
        ).one()
        # Events and notes move; tag and stat rows are summed into the parent's.
        self.session.execute(
            sa.update(m.Event).where(m.Event.group_id.in_(in_children)).values(group_id=parent)
        )
        self.session.execute(
            sa.update(m.Note).where(m.Note.group_id.in_(in_children)).values(group_id=parent)
        )
        GTV = m.GroupTagValue
        merged_tags = sql.tag_rollup(
            GTV,
            (GTV.project_id, sa.literal(parent).label("group_id")),
            (GTV.group_id.in_(in_children),),
            group_by=(GTV.project_id,),
        )
        self.session.execute(
            sql.merge_seen(
                self._insert(GTV).from_select(
                    ["project_id", "group_id", *sql.SEEN_COLUMNS], merged_tags
                ),
                GTV,
                ["group_id", "key", "value"],
            )
        )
        GS = m.GroupStat
        merged_stats = (
            sa.select(sa.literal(parent), GS.resolution, GS.bucket, sa.func.sum(GS.count))
            .where(GS.group_id.in_(in_children))
            .group_by(GS.resolution, GS.bucket)
        )
        self.session.execute(
            sql.merge_count(
                self._insert(GS).from_select(
                    ["group_id", "resolution", "bucket", "count"], merged_stats
                ),
                GS,
                ["group_id", "resolution", "bucket"],
            )
        )
        self._delete_group_rows(in_children)
        times_seen, first_seen, last_seen, num_comments = totals
        user_count = self.session.scalar(
            sa.select(sa.func.count()).where(GTV.group_id == parent, GTV.key == "user")
        )
        self.session.execute(
            sa.update(Group)
            .where(Group.id == parent)
            .values(
                times_seen=times_seen,
                first_seen=first_seen,
                last_seen=last_seen,
                num_comments=num_comments,
                user_count=user_count,
                score=s.priority_score(int(times_seen), records.aware(last_seen)),
            )
        )
        self.session.commit()
        return parent, children

    def _delete_group_rows(self, group_ids: t.Any) -> None:
        """Delete groups and everything under them (``group_ids``: a list or a subquery)."""
        m = self.models
        for model in (m.Event, m.Note, m.GroupTagValue, m.GroupStat):
            self.session.execute(
                sa.delete(model)
                .where(self._in_ids(model.group_id, group_ids))
                .execution_options(synchronize_session=False)
            )
        self.session.execute(
            sa.delete(m.Group)
            .where(self._in_ids(m.Group.id, group_ids))
            .execution_options(synchronize_session=False)
        )

    @sql.translating_errors
    def delete_groups(self, project_id: int, group_ids: t.Sequence[int]) -> int:
        Group = self.models.Group
        self._begin_write()
        # The group rows are locked first, in id order: an event being stored holds its
        # group's row before it touches the rows under it, so taking them in the same order
        # means each waits for the other instead of deadlocking.
        selected = list(
            self.session.scalars(
                sa.select(Group.id)
                .where(Group.project_id == project_id, self._in_ids(Group.id, list(group_ids)))
                .order_by(Group.id)
                .with_for_update()
            )
        )
        if selected:
            self._delete_group_rows(selected)
        self.session.commit()
        return len(selected)

    # -- events and notes --------------------------------------------------------------------
    @sql.translating_errors
    def list_events(self, group_id: int, window: Window) -> list[s.Event]:
        Event = self.models.Event
        stmt = sql.keyset(sa.select(Event).where(Event.group_id == group_id), window, Event.id)
        return [records.event(row) for row in self.session.scalars(stmt)]

    @sql.translating_errors
    def get_event(self, event_id: int) -> s.Event | None:
        row = self.session.get(self.models.Event, event_id)
        return records.event(row) if row is not None else None

    @sql.translating_errors
    def get_event_by_event_id(self, project_id: int, event_id: str) -> s.Event | None:
        Event = self.models.Event.__table__
        connection = self.session.connection()
        # Served by the unique (project_id, event_id) key that deduplicates SDK retries.
        by_event_id = self._statement(
            connection,
            "event_by_event_id",
            lambda: sa.select(Event).where(
                Event.c.project_id == sa.bindparam("b_project"),
                Event.c.event_id == sa.bindparam("b_event_id"),
            ),
        )
        params = {"b_project": project_id, "b_event_id": event_id}
        row = connection.execute(by_event_id, params).first()
        return records.event(row) if row is not None else None

    @sql.translating_errors
    def list_project_events(self, project_id: int, window: Window) -> list[s.Event]:
        Event = self.models.Event
        stmt = sql.keyset(sa.select(Event).where(Event.project_id == project_id), window, Event.id)
        return [records.event(row) for row in self.session.scalars(stmt)]

    @sql.translating_errors
    def latest_event(self, group_id: int) -> s.Event | None:
        Event = self.models.Event
        row = self.session.scalar(
            sa.select(Event)
            .where(Event.group_id == group_id)
            .order_by(Event.datetime.desc(), Event.id.desc())
            .limit(1)
        )
        return records.event(row) if row is not None else None

    @sql.translating_errors
    def oldest_event(self, group_id: int) -> s.Event | None:
        Event = self.models.Event
        row = self.session.scalar(
            sa.select(Event)
            .where(Event.group_id == group_id)
            .order_by(Event.datetime.asc(), Event.id.asc())
            .limit(1)
        )
        return records.event(row) if row is not None else None

    @sql.translating_errors
    def adjacent_events(self, event: s.Event) -> tuple[int | None, int | None]:
        Event = self.models.Event
        same_group = Event.group_id == event.group_id
        before = sa.or_(
            Event.datetime < event.datetime,
            sa.and_(Event.datetime == event.datetime, Event.id < event.id),
        )
        after = sa.or_(
            Event.datetime > event.datetime,
            sa.and_(Event.datetime == event.datetime, Event.id > event.id),
        )
        previous = self.session.scalar(
            sa.select(Event.id)
            .where(same_group, before)
            .order_by(Event.datetime.desc(), Event.id.desc())
            .limit(1)
        )
        following = self.session.scalar(
            sa.select(Event.id)
            .where(same_group, after)
            .order_by(Event.datetime.asc(), Event.id.asc())
            .limit(1)
        )
        return previous, following

    @sql.translating_errors
    def list_notes(self, group_id: int, window: Window) -> list[s.Note]:
        Note = self.models.Note
        stmt = sql.keyset(sa.select(Note).where(Note.group_id == group_id), window, Note.id)
        return [records.note(row) for row in self.session.scalars(stmt)]

    @sql.translating_errors
    def create_note(self, group_id: int, text: str) -> s.Note:
        Note, Group = self.models.Note, self.models.Group
        self._begin_write()
        # The counter update comes first: it locks the group row (PostgreSQL waits for a
        # concurrent delete to commit) and tells whether the group still exists, so a note
        # on a vanishing group is a LookupError (404), never a foreign-key violation (500).
        counted = self.session.execute(
            sa.update(Group)
            .where(Group.id == group_id)
            .values(num_comments=Group.num_comments + 1)
            .returning(Group.id)
        ).scalar()
        if counted is None:
            self.session.rollback()
            raise LookupError(group_id)
        row = Note(group_id=group_id, text=text, date_created=s.utcnow())
        self.session.add(row)
        return self._commit_returning(lambda: records.note(row))

    # -- releases ------------------------------------------------------------------------
    @sql.translating_errors
    def list_releases(self, project_id: int, window: Window) -> list[s.Release]:
        Release = self.models.Release
        stmt = sql.keyset(
            sa.select(Release).where(Release.project_id == project_id), window, Release.id
        )
        return [records.release(row) for row in self.session.scalars(stmt)]

    @sql.translating_errors
    def create_release(
        self, project_id: int, version: str, details: s.ReleaseChanges | None = None
    ) -> s.Release:
        Release = self.models.Release
        self._begin_write()
        created = self.session.execute(
            self._insert(Release)
            .values(
                project_id=project_id,
                version=version,
                date_created=s.utcnow(),
                new_groups=0,
                **_changed_fields(details or s.ReleaseChanges()),
            )
            .on_conflict_do_nothing(index_elements=["project_id", "version"])
            .returning(Release.id)
        ).scalar()
        if created is None:
            self.session.rollback()
            raise s.Conflict("version", "A release with this version already exists.")
        release = self.get_release(project_id, version)
        assert release is not None
        self.session.commit()
        return release

    @sql.translating_errors
    def update_release(
        self, project_id: int, version: str, changes: s.ReleaseChanges
    ) -> s.Release | None:
        values = _changed_fields(changes)
        if not values:
            return self.get_release(project_id, version)
        Release = self.models.Release.__table__
        self._begin_write()
        row = self.session.execute(
            sa.update(Release)
            .where(Release.c.project_id == project_id, Release.c.version == version)
            .values(values)
            .returning(*Release.c)
        ).first()
        release = records.release(row) if row is not None else None
        self.session.commit()
        return release

    @sql.translating_errors
    def get_release(self, project_id: int, version: str) -> s.Release | None:
        Release = self.models.Release
        row = self.session.scalar(
            sa.select(Release).where(Release.project_id == project_id, Release.version == version)
        )
        return records.release(row) if row is not None else None

    @sql.translating_errors
    def delete_release(self, project_id: int, version: str) -> bool:
        Release = self.models.Release
        self._begin_write()
        deleted = self._rowcount(
            sa.delete(Release).where(Release.project_id == project_id, Release.version == version)
        )
        self.session.commit()
        return bool(deleted)

    # -- tags ----------------------------------------------------------------------------
    @sql.translating_errors
    def group_tag_keys(self, group_id: int, top: int) -> list[s.TagKeySummary]:
        GTV = self.models.GroupTagValue
        totals = self.session.execute(
            sa.select(GTV.key, sa.func.count(), sa.func.sum(GTV.times_seen))
            .where(GTV.group_id == group_id)
            .group_by(GTV.key)
            .order_by(GTV.key)
        ).all()
        rank = (
            sa.func.row_number()
            .over(partition_by=GTV.key, order_by=(GTV.times_seen.desc(), GTV.id.desc()))
            .label("rank")
        )
        ranked = sa.select(GTV, rank).where(GTV.group_id == group_id).subquery()
        top_rows = self.session.execute(
            sa.select(ranked).where(ranked.c.rank <= top).order_by(ranked.c.key, ranked.c.rank)
        ).all()
        tops: dict[str, list[s.TagValue]] = {}
        for row in top_rows:
            tops.setdefault(row.key, []).append(records.tag_value(row))
        return [
            s.TagKeySummary(
                key=key,
                unique_values=int(unique),
                total_values=int(total or 0),
                top_values=tuple(tops.get(key, ())),
            )
            for key, unique, total in totals
        ]

    def _tag_values_source(
        self, project_id: int, key: str, group_id: int | None
    ) -> tuple[t.Any, list[ColumnElement[bool]]]:
        if group_id is None:
            TV = self.models.TagValue
            return TV, [TV.project_id == project_id, TV.key == key]
        GTV = self.models.GroupTagValue
        return GTV, [GTV.group_id == group_id, GTV.project_id == project_id, GTV.key == key]

    @sql.translating_errors
    def list_tag_values(
        self, project_id: int, key: str, window: Window, group_id: int | None = None
    ) -> list[s.TagValue]:
        model, conditions = self._tag_values_source(project_id, key, group_id)
        stmt = sql.keyset(sa.select(model).where(*conditions), window, model.times_seen, model.id)
        return [records.tag_value(row) for row in self.session.scalars(stmt)]

    @sql.translating_errors
    def count_tag_values_with_key(
        self, project_id: int, key: str, times_seen: int, group_id: int | None = None
    ) -> int:
        model, conditions = self._tag_values_source(project_id, key, group_id)
        stmt = (
            sa.select(sa.func.count())
            .select_from(model)
            .where(*conditions, model.times_seen == times_seen)
        )
        return int(self.session.scalar(stmt) or 0)

    @sql.translating_errors
    def delete_tag_key(self, project_id: int, key: str) -> bool:
        TV, GTV = self.models.TagValue, self.models.GroupTagValue
        # Three statements (tag values, group tag values, user counts) as one turn.
        self._begin_write()
        deleted = self._rowcount(sa.delete(TV).where(TV.project_id == project_id, TV.key == key))
        deleted += self._rowcount(
            sa.delete(GTV).where(GTV.project_id == project_id, GTV.key == key)
        )
        if key == "user":
            Group = self.models.Group
            self.session.execute(
                sa.update(Group).where(Group.project_id == project_id).values(user_count=0)
            )
        self.session.commit()
        return bool(deleted)

    # -- stats ---------------------------------------------------------------------------
    @sql.translating_errors
    def project_stats(
        self, project_id: int, resolution: int, start: int, end: int
    ) -> dict[int, int]:
        ProjectStat = self.models.ProjectStat
        rows = self.session.execute(
            sa.select(ProjectStat.bucket, ProjectStat.count).where(
                ProjectStat.project_id == project_id,
                ProjectStat.resolution == resolution,
                ProjectStat.bucket >= start,
                ProjectStat.bucket <= end,
            )
        )
        return {int(bucket): int(count) for bucket, count in rows}

    # -- auth tokens -----------------------------------------------------------------------
    @sql.translating_errors
    def create_token(
        self,
        project_id: int,
        token_hash: str,
        scopes: t.Sequence[str],
        *,
        label: str | None = None,
        last_characters: str = "",
    ) -> s.AuthToken:
        AuthToken = self.models.AuthToken.__table__
        self._begin_write()
        row = self.session.execute(
            self._insert(AuthToken)
            .values(
                project_id=project_id,
                token_hash=token_hash,
                scopes=" ".join(s.checked_scopes(scopes)),
                label=label,
                last_characters=last_characters,
                date_created=s.utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["token_hash"])
            .returning(*AuthToken.c)
        ).first()
        if row is None:
            self.session.rollback()
            raise s.Conflict("token_hash", "A token with this hash already exists.")
        token = records.token(row)
        self.session.commit()
        return token

    @sql.translating_errors
    def get_token(self, token_hash: str) -> s.AuthToken | None:
        AuthToken = self.models.AuthToken.__table__
        connection = self.session.connection()
        by_hash = self._statement(
            connection,
            "token_by_hash",
            lambda: sa.select(AuthToken).where(AuthToken.c.token_hash == sa.bindparam("b_hash")),
        )
        row = connection.execute(by_hash, {"b_hash": token_hash}).first()
        return records.token(row) if row is not None else None

    @sql.translating_errors
    def list_tokens(self, project_id: int | None = None) -> list[s.AuthToken]:
        AuthToken = self.models.AuthToken.__table__
        stmt = sa.select(AuthToken).order_by(AuthToken.c.id)
        if project_id is not None:
            stmt = stmt.where(AuthToken.c.project_id == project_id)
        return [records.token(row) for row in self.session.execute(stmt)]

    @sql.translating_errors
    def delete_token(self, token_id: int) -> bool:
        AuthToken = self.models.AuthToken
        self._begin_write()
        deleted = self._rowcount(sa.delete(AuthToken).where(AuthToken.id == token_id))
        self.session.commit()
        return bool(deleted)

    # -- bulk loading ----------------------------------------------------------------------
    def bulk_seed(
        self,
        project_id: int,
        chunks: SeedChunks,
        *,
        progress: t.Callable[[int], None] | None = None,
    ) -> None:
        """Store generated groups and their events in set-based SQL, one transaction a chunk.

        Not part of the :class:`~flask_sentry_api.storage.Storage` protocol: the fast path
        of :func:`flask_sentry_api.seed.seed_demo`, which any storage that has it gets.

        :param project_id: an existing project.
        :param chunks: called once, with the project's largest group id before the run (0
            for none), and returns the groups to store as an iterable of chunks (lists of
            :class:`~flask_sentry_api.seed.DemoGroup`). It is iterated in a worker thread,
            one chunk ahead of the database, so a lazy iterable overlaps generating a
            chunk with storing the previous one.
        :param progress: called with the number of groups of each chunk once committed.

        The rollups (group and project tag values, stats buckets, releases) are derived
        from the stored events as ingestion would have produced them. A group without
        events keeps the counters it was generated with.
        """
        BulkSeeder(self.models, self.engine, project_id).run(
            chunks, progress or (lambda done: None)
        )


def _changed_fields(changes: s.ReleaseChanges) -> dict[str, t.Any]:
    """The fields of ``changes`` that are set (not None), by column name."""
    return {
        field.name: getattr(changes, field.name)
        for field in dataclasses.fields(changes)
        if getattr(changes, field.name) is not None
    }


def _rate_limit_columns(rate_limit: s.RateLimit | None) -> dict[str, int | None]:
    return {
        "rate_limit_count": rate_limit.count if rate_limit is not None else None,
        "rate_limit_window": rate_limit.window if rate_limit is not None else None,
    }
