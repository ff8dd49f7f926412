"""Unmanaged Django models over flask_sentry_api's tables (``<prefix>project``, ...).

The SQLAlchemy storage owns the schema (see ``flask_sentry_api/models.py``); these map only
the columns the peer reads. Its ``UTCDateTime`` stores naive UTC on SQLite and
``timestamptz`` on PostgreSQL, which is what Django reads with ``USE_TZ = True``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

PREFIX = settings.TABLE_PREFIX


class Project(models.Model):
    id = models.BigAutoField(primary_key=True)
    slug = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    is_public = models.BooleanField(default=False)
    status = models.CharField(max_length=32, default="active")
    date_created = models.DateTimeField()

    class Meta:
        managed = False
        db_table = f"{PREFIX}project"

    def __str__(self) -> str:
        return self.slug


class ProjectKey(models.Model):
    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keys")
    public_key = models.CharField(max_length=32, unique=True)
    secret_key = models.CharField(max_length=32)
    roles = models.IntegerField(default=1)
    is_active = models.BooleanField(default=True)
    label = models.CharField(max_length=64, null=True)
    date_added = models.DateTimeField()

    class Meta:
        managed = False
        db_table = f"{PREFIX}project_key"

    def __str__(self) -> str:
        return self.public_key


class Group(models.Model):
    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="groups")
    hash = models.CharField(max_length=32)
    title = models.CharField(max_length=255)
    message = models.TextField(default="")
    culprit = models.CharField(max_length=200, null=True)
    logger = models.CharField(max_length=64, null=True)
    level = models.CharField(max_length=16, default="error")
    type = models.CharField(max_length=16, default="default")
    metadata = models.JSONField(default=dict)
    platform = models.CharField(max_length=64, null=True)
    status = models.CharField(max_length=16, default="unresolved")
    is_public = models.BooleanField(default=False)
    is_bookmarked = models.BooleanField(default=False)
    has_seen = models.BooleanField(default=False)
    times_seen = models.BigIntegerField(default=1)
    user_count = models.IntegerField(default=0)
    num_comments = models.IntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True)
    score = models.BigIntegerField(default=0)

    class Meta:
        managed = False
        db_table = f"{PREFIX}group"

    def __str__(self) -> str:
        return self.title


class GroupStat(models.Model):
    """Events per group and time bucket, rolled up at ingestion (the ``stats`` series)."""

    pk = models.CompositePrimaryKey("group_id", "resolution", "bucket")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="stats")
    resolution = models.IntegerField()
    bucket = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        managed = False
        db_table = f"{PREFIX}group_stat"

    def __str__(self) -> str:
        return f"{self.group_id}@{self.bucket}"
