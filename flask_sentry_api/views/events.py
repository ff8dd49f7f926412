"""Event endpoints: a group's events, its latest event, and one event with its neighbours."""

from __future__ import annotations

import typing as t

from flask import Response

from .. import errors
from ..apidoc import Op
from ..apidoc import link
from ..http import json_response
from ..schemas import EventSchema
from ..schemas import PageArgsSchema
from ..storage import Event
from .base import FIRST_ID
from .base import APIView

#: Where an event in the response body leads: itself, its group, the group's events.
_EVENT_GROUP = link("getGroupDetails", group_id="$response.body#/groupID")
_EVENT_LINKS = {
    "Event": link("getEventDetails", event_id="$response.body#/id"),
    "Group": _EVENT_GROUP,
}
_NEIGHBOUR_LINKS = {
    "Group": _EVENT_GROUP,
    "GroupEvents": link("getGroupEvents", group_id="$response.body#/groupID"),
}


class GroupEventsView(APIView):
    """The events of a group, newest first."""

    operations = {
        "get": Op(
            "The group's events, newest first.",
            body="Event",
            many=True,
            query=PageArgsSchema,
            links={"FirstEvent": link("getEventDetails", event_id=FIRST_ID)},
        ),
    }

    def get(self, group_id: int) -> Response:
        return self.group_list_response(
            group_id, self.storage.list_events, EventSchema(many=True).dump
        )


class EventDetailsMixin(APIView):
    def event_details(self, event: Event) -> dict[str, t.Any]:
        previous_id, next_id = self.storage.adjacent_events(event)
        body: dict[str, t.Any] = EventSchema().dump(event)
        body["nextEventID"] = str(next_id) if next_id is not None else None
        body["previousEventID"] = str(previous_id) if previous_id is not None else None
        return body


class GroupLatestEventView(EventDetailsMixin):
    """The newest event of a group (404 when it has none)."""

    operations = {"get": Op("The group's newest event.", body="EventDetails", links=_EVENT_LINKS)}

    def get(self, group_id: int) -> Response:
        group, _ = self.group_for_key(group_id)
        event = self.storage.latest_event(group.id)
        if event is None:
            raise errors.NotFound("This group has no events.")
        return json_response(self.event_details(event))


class EventDetailsView(EventDetailsMixin):
    """One event (by its numeric id) with the ids of its group's previous and next events."""

    operations = {
        "get": Op(
            "One event with its neighbours in its group.",
            body="EventDetails",
            links=_NEIGHBOUR_LINKS,
        ),
    }

    def get(self, event_id: int) -> Response:
        event = self.storage.get_event(event_id)
        if event is None:
            raise errors.NotFound()
        self.project_for_key(event.project_id)
        return json_response(self.event_details(event))
