"""Stats (issue 5): bucket boundaries checked against hand-computed expectations."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timezone

import pytest
from flask.testing import FlaskClient

from flask_sentry_api.stats import align
from flask_sentry_api.stats import bucket_range
from flask_sentry_api.stats import fill_series
from flask_sentry_api.stats import period_buckets
from flask_sentry_api.storage import NewEvent
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from tests.helpers import at

# 2026-01-01T00:00:00Z, a day boundary.
DAY = 1767225600


def save(storage: Storage, project: Project, when: int, group_hash: str = "g") -> None:
    storage.save_event(
        project.id,
        NewEvent(
            event_id=uuid.uuid4().hex,
            group_hash=group_hash,
            timestamp=at(when),
            message="m",
            title="m",
        ),
    )


def test_bucket_arithmetic() -> None:
    assert align(DAY + 3599, 3600) == DAY
    assert align(DAY + 3600, 3600) == DAY + 3600
    assert bucket_range(DAY + 5, DAY + 25, 10, 100) == (DAY, DAY + 20)
    assert fill_series({DAY + 10: 4}, DAY, DAY + 20, 10) == [[DAY, 0], [DAY + 10, 4], [DAY + 20, 0]]
    assert period_buckets("24h", DAY + 7200 + 5) == (3600, DAY + 7200 - 23 * 3600, DAY + 7200)
    assert period_buckets("14d", DAY + 5) == (86400, DAY - 13 * 86400, DAY)


def test_project_stats_hourly(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    for when in (DAY, DAY + 3599, DAY + 3600, DAY + 3 * 3600 + 1):
        save(storage, project, when)
    save(storage, project, DAY + 1800, group_hash="other")
    response = client.get(
        f"/api/0/projects/{project.id}/stats/?since={DAY}&until={DAY + 4 * 3600 - 1}&resolution=1h",
        headers=auth,
    )
    assert response.status_code == 200
    assert response.get_json() == [[DAY, 3], [DAY + 3600, 1], [DAY + 7200, 0], [DAY + 10800, 1]]


def test_group_stats_10s_and_daily(
    client: FlaskClient, project: Project, auth: dict[str, str], storage: Storage
) -> None:
    for when in (DAY + 9, DAY + 10, DAY + 19, DAY + 86400):
        save(storage, project, when)
    save(storage, project, DAY + 11, group_hash="other")
    url = "/api/0/groups/1/stats/"
    tens = client.get(f"{url}?since={DAY}&until={DAY + 29}&resolution=10s", headers=auth).get_json()
    assert tens == [[DAY, 1], [DAY + 10, 2], [DAY + 20, 0]]
    days = client.get(
        f"{url}?since={DAY}&until={DAY + 86400}&resolution=1d", headers=auth
    ).get_json()
    assert days == [[DAY, 3], [DAY + 86400, 1]]
    iso = client.get(
        f"{url}?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z&resolution=1d", headers=auth
    )
    assert iso.get_json() == days


def test_default_is_the_last_day_hourly(
    client: FlaskClient, project: Project, auth: dict[str, str]
) -> None:
    series = client.get(f"/api/0/projects/{project.id}/stats/", headers=auth).get_json()
    assert len(series) == 24
    assert all(b - a == 3600 for (a, _), (b, _) in zip(series, series[1:], strict=False))
    assert series[-1][0] <= datetime.now(timezone.utc).timestamp() < series[-1][0] + 3600


@pytest.mark.parametrize(
    "query",
    [
        "resolution=2h",
        "resolution=",  # empty means the default
        f"since={DAY + 10}&until={DAY}",
        f"since={DAY}&until={DAY + 86400 * 30}&resolution=10s",
        "since=yesterday",
        "until=1e400",
    ],
)
def test_bad_parameters_are_400(
    client: FlaskClient, project: Project, auth: dict[str, str], query: str
) -> None:
    response = client.get(f"/api/0/projects/{project.id}/stats/?{query}", headers=auth)
    if query == "resolution=":
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert "detail" in response.get_json()


def test_bucket_limit_is_configurable(project: Project) -> None:
    from flask_sentry_api import get_state
    from tests.helpers import basic_auth
    from tests.helpers import make_app

    app = make_app({"SENTRY_API_STATS_MAX_BUCKETS": 5})
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        key = storage.create_key(project.id, 3)
    client = app.test_client()
    url = f"/api/0/projects/{project.id}/stats/?since={DAY}&until={DAY + 5 * 3600}"
    assert client.get(url, headers=basic_auth(key)).status_code == 400
    default = client.get(f"/api/0/projects/{project.id}/stats/", headers=basic_auth(key)).get_json()
    assert len(default) == 5


def test_scoping(
    client: FlaskClient, project: Project, other_auth: dict[str, str], storage: Storage
) -> None:
    save(storage, project, DAY)
    assert client.get(f"/api/0/projects/{project.id}/stats/", headers=other_auth).status_code == 403
    assert client.get("/api/0/groups/1/stats/", headers=other_auth).status_code == 403
    assert client.get("/api/0/groups/999/stats/", headers=other_auth).status_code == 404
