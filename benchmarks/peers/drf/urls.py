"""URL routes of the DRF peer, the same paths as ours under ``/api/0/``."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path(
        "api/0/projects/<int:project_id>/groups/",
        views.ProjectGroupList.as_view(),
        name="project-groups",
    ),
    # Only there so group permalinks resolve, as ours do.
    path("api/0/groups/<int:group_id>/", views.GroupDetail.as_view(), name="group-detail"),
]
