"""The group list (and the group detail its permalinks point to) as DRF generic views."""

from __future__ import annotations

import time
import typing as t
from functools import cached_property

from django.db.models import Prefetch
from django.db.models import QuerySet
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from .authentication import KeyHasAPIRole
from .authentication import KeyOwnsProject
from .models import Group
from .models import GroupStat
from .serializers import GroupSerializer
from .serializers import StatsWindow

#: ``statsPeriod`` values: (bucket size in seconds, number of buckets), as ours.
STATS_PERIODS = {"24h": (3600, 24), "14d": (86400, 14)}


class GroupCursorPagination(CursorPagination):
    """DRF's cursor pagination, with the page as a bare list and the links in a ``Link``
    header (RFC 8288), as Sentry's API (and ours) sends them, so the bodies are alike."""

    ordering = ("-last_seen", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 100

    def get_paginated_response(self, data: t.Any) -> Response:
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("previous", self.get_previous_link()), ("next", self.get_next_link()))
            if url is not None
        ]
        return Response(data, headers={"Link": ", ".join(links)} if links else None)


class GroupViewMixin:
    """Groups with their project and the stats buckets of the requested ``statsPeriod``."""

    request: t.Any
    serializer_class = GroupSerializer
    permission_classes = [IsAuthenticated, KeyHasAPIRole, KeyOwnsProject]

    @cached_property
    def stats_window(self) -> StatsWindow | None:
        period = self.request.query_params.get("statsPeriod", "24h")
        if not period:
            return None
        if period not in STATS_PERIODS:
            raise ValidationError({"statsPeriod": ["Must be one of 24h, 14d or empty."]})
        resolution, buckets = STATS_PERIODS[period]
        now = int(time.time())
        last = now - now % resolution
        return StatsWindow(period, resolution, last - (buckets - 1) * resolution, last)

    def get_queryset(self) -> QuerySet[Group]:
        queryset = Group.objects.select_related("project")
        window = self.stats_window
        if window is not None:
            stats = GroupStat.objects.filter(
                resolution=window.resolution, bucket__gte=window.first, bucket__lte=window.last
            )
            queryset = queryset.prefetch_related(
                Prefetch("stats", queryset=stats, to_attr="recent_stats")
            )
        return queryset

    def get_serializer_context(self) -> dict[str, t.Any]:
        context: dict[str, t.Any] = super().get_serializer_context()  # type: ignore[misc]
        context["stats_window"] = self.stats_window
        return context


class ProjectGroupList(GroupViewMixin, generics.ListAPIView):
    """``GET /api/0/projects/<project_id>/groups/``: the project's unresolved groups,
    most recently seen first."""

    pagination_class = GroupCursorPagination

    def get_queryset(self) -> QuerySet[Group]:
        return (
            super().get_queryset().filter(project_id=self.kwargs["project_id"], status="unresolved")
        )


class GroupDetail(GroupViewMixin, generics.RetrieveAPIView):
    """``GET /api/0/groups/<group_id>/``: one group of the key's project."""

    lookup_url_kwarg = "group_id"
