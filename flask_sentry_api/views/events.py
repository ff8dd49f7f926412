"""Event endpoints: a group's or project's events, a group's latest (or oldest) event, and
one event, by row id or by the SDK's event id, with its neighbours."""

from __future__ import annotations

import typing as t

from flask import Response

from .. import errors
from ..apidoc import Op
from ..apidoc import link
from ..auth import current_credential
from ..http import json_response
from ..schemas import EventSchema
from ..schemas import PageArgsSchema
from ..storage import Event
from .base import FIRST_ID
from .base import APIView

_HEX = frozenset("0123456789abcdef")


def sdk_event_id(text: str) -> str | None:
    """The 32-hex event id an SDK reports (any case, UUID dashes allowed), normalised;
    None when ``text`` is not one."""
    normal = text.replace("-", "").lower() if len(text) <= 36 else ""
    return normal if len(normal) == 32 and _HEX.issuperset(normal) else None


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

    scope_kind = "event"

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


class ProjectEventsView(APIView):
    """The events of a project, newest first."""

    scope_kind = "event"
    operations = {
        "get": Op(
            "The project's events, newest first.",
            body="Event",
            many=True,
            query=PageArgsSchema,
        ),
    }

    def get(self, project_id: int) -> Response:
        self.project_for_key(project_id)
        return self.list_response(
            lambda window: self.storage.list_project_events(project_id, window),
            EventSchema(many=True).dump,
        )


class EventDetailsMixin(APIView):
    scope_kind = "event"

    def event_by_sdk_id(self, project_id: int, text: str) -> Event | None:
        normal = sdk_event_id(text)
        return self.storage.get_event_by_event_id(project_id, normal) if normal else None

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


class GroupEventDetailsView(EventDetailsMixin):
    """One event of a group: by the SDK's event id, or ``latest`` or ``oldest``."""

    operations = {
        "get": Op("One event of the group, with its neighbours.", body="EventDetails"),
    }

    def get(self, group_id: int, event_id: str) -> Response:
        group, project = self.group_for_key(group_id)
        if event_id in ("latest", "oldest"):
            read = self.storage.latest_event if event_id == "latest" else self.storage.oldest_event
            event = read(group.id)
        else:
            event = self.event_by_sdk_id(project.id, event_id)
        if event is None or event.group_id != group.id:
            raise errors.NotFound()
        return json_response(self.event_details(event))


class ProjectEventDetailsView(EventDetailsMixin):
    """One event of the project, by the SDK's event id (the one SDKs print and log)."""

    operations = {
        "get": Op("One event by its SDK event id, with its neighbours.", body="EventDetails"),
    }

    def get(self, project_id: int, event_id: str) -> Response:
        self.project_for_key(project_id)
        event = self.event_by_sdk_id(project_id, event_id)
        if event is None:
            raise errors.NotFound()
        return json_response(self.event_details(event))


class SDKEventDetailsView(ProjectEventDetailsView):
    """One event of the credential's project, by the SDK's 32-hex event id."""

    def get(self, event_id: str) -> Response:  # type: ignore[override]
        return super().get(current_credential().project_id, event_id)


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
