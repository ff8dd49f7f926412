"""Event endpoints: a group's events, its latest event, and one event with its neighbours."""

from __future__ import annotations

import typing as t

from flask import Response

from . import errors
from .blueprint import json_response
from .pagination import paginate
from .schemas import EventSchema
from .storage import Event
from .views import APIView


class GroupEventsView(APIView):
    """The events of a group, newest first."""

    parameters = {"per_page": "page size (default 100)", "cursor": "from the Link header"}

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        page = paginate(
            lambda window: self.storage.list_events(group.id, window),
            lambda event: event.id,
            self.cursor(),
            self.page_size(),
        )
        return self.paginated(page, EventSchema(many=True).dump(page.rows))


class EventDetailsMixin(APIView):
    def event_details(self, event: Event) -> dict[str, t.Any]:
        previous_id, next_id = self.storage.adjacent_events(event)
        body: dict[str, t.Any] = EventSchema().dump(event)
        body["nextEventID"] = str(next_id) if next_id is not None else None
        body["previousEventID"] = str(previous_id) if previous_id is not None else None
        return body


class GroupLatestEventView(EventDetailsMixin):
    """The newest event of a group (404 when it has none)."""

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        event = self.storage.latest_event(group.id)
        if event is None:
            raise errors.NotFound("This group has no events.")
        return json_response(self.event_details(event))


class EventDetailsView(EventDetailsMixin):
    """One event (by its numeric id) with the ids of its group's previous and next events."""

    def get(self, event_id: int) -> Response:
        event = self.storage.get_event(event_id)
        if event is None:
            raise errors.NotFound()
        self.project_for_key(event.project_id)
        return json_response(self.event_details(event))
