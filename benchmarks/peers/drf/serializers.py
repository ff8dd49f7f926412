"""The group object of SPEC §7 as DRF serializers (camelCase names, string ids)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone

from rest_framework import serializers

from .models import Group
from .models import Project


@dataclass(frozen=True)
class StatsWindow:
    """The buckets of a ``statsPeriod``: ``first`` to ``last`` step ``resolution`` seconds."""

    period: str
    resolution: int
    first: int
    last: int


class APIDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with a ``Z`` and milliseconds at most, as Sentry writes datetimes."""

    def to_representation(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond // 1000:03d}"
        return text + "Z"


class ProjectRefSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "slug"]


class GroupSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    shortId = serializers.SerializerMethodField(method_name="get_short_id")
    permalink = serializers.HyperlinkedIdentityField(
        view_name="group-detail", lookup_url_kwarg="group_id"
    )
    isResolved = serializers.SerializerMethodField(method_name="get_is_resolved")
    isPublic = serializers.BooleanField(source="is_public")
    isBookmarked = serializers.BooleanField(source="is_bookmarked")
    hasSeen = serializers.BooleanField(source="has_seen")
    count = serializers.CharField(source="times_seen")
    userCount = serializers.IntegerField(source="user_count")
    firstSeen = APIDateTimeField(source="first_seen")
    lastSeen = APIDateTimeField(source="last_seen")
    project = ProjectRefSerializer()
    numComments = serializers.IntegerField(source="num_comments")
    timeSpent = serializers.SerializerMethodField(method_name="get_time_spent")
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = [
            "id",
            "shortId",
            "title",
            "culprit",
            "permalink",
            "level",
            "logger",
            "status",
            "isResolved",
            "isPublic",
            "isBookmarked",
            "hasSeen",
            "count",
            "userCount",
            "firstSeen",
            "lastSeen",
            "project",
            "metadata",
            "type",
            "numComments",
            "timeSpent",
            "stats",
        ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # `statsPeriod=` (empty) asks for no stats at all, not an empty series.
        if self.context.get("stats_window") is None:
            self.fields.pop("stats")

    def get_short_id(self, group: Group) -> str:
        return f"{group.project.slug.upper()}-{group.id}"

    def get_is_resolved(self, group: Group) -> bool:
        return group.status == "resolved"

    def get_time_spent(self, group: Group) -> None:
        return None

    def get_stats(self, group: Group) -> dict[str, list[list[int]]]:
        window: StatsWindow = self.context["stats_window"]
        # Filled by the view's Prefetch with the window's buckets only.
        counts = {stat.bucket: stat.count for stat in group.recent_stats}
        series = [
            [bucket, counts.get(bucket, 0)]
            for bucket in range(window.first, window.last + 1, window.resolution)
        ]
        return {window.period: series}
