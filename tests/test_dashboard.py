"""The optional dashboard (issue 15): off by default and then absent, refused until the host
decides who may see it, its pages rendered from the storage, its forms protected by a
session-bound CSRF token, its security headers, and hostile event data rendered inert.

Runs on SQLite and PostgreSQL alike (``SENTRY_API_TEST_DATABASE_URL``), with the Flask
test client; the browser tests are elsewhere.
"""

from __future__ import annotations

import json
import re
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask import Request
from flask import Response
from flask.testing import FlaskClient

from flask_sentry_api import get_state
from flask_sentry_api.dashboard import basic_auth
from flask_sentry_api.errors import ConfigurationError
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import GroupQuery
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import Storage
from tests.helpers import EVERYTHING
from tests.helpers import add_event
from tests.helpers import add_group
from tests.helpers import basic_auth as api_basic_auth
from tests.helpers import captured_statements
from tests.helpers import close_made_apps
from tests.helpers import forget_made_app
from tests.helpers import make_app
from tests.helpers import sentry_auth

UTC = timezone.utc

SECRET = "test-secret-key-" + "x" * 32
ALLOW_ALL: t.Callable[[Request], bool] = lambda request: True  # noqa: E731
EXPECTED_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def dashboard_app(auth: t.Any = ALLOW_ALL, **config: t.Any) -> Flask:
    settings = {
        "SENTRY_API_DASHBOARD": True,
        "SECRET_KEY": SECRET,
        "SENTRY_API_DASHBOARD_AUTH": auth,
        **config,
    }
    return make_app(settings)


@pytest.fixture
def app() -> t.Iterator[Flask]:
    """The host app with the dashboard on, open to every request (the tests of access
    make their own); closed as conftest's ``app`` is, whose ``storage`` and ``project``
    fixtures then use it."""
    app = dashboard_app()
    forget_made_app(app)
    yield app
    close_made_apps()
    with app.app_context():
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].drop_all()
        app.extensions["sqlalchemy"].engine.dispose()


def text_of(response: t.Any) -> str:
    return t.cast(str, response.get_data(as_text=True))


def csrf_of(client: FlaskClient, url: str) -> str:
    """The CSRF token the page at ``url`` puts in its forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', text_of(client.get(url)))
    assert match, f"no form with a CSRF token at {url}"
    return match.group(1)


class Links(HTMLParser):
    """Every href and src of a page, and every element's attributes (to look for inline
    script and style)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value))
            if name in ("href", "src", "action", "formaction") and value is not None:
                self.hrefs.append(value)
        if tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


# -- off, on, configuration ---------------------------------------------------------------


def test_off_by_default_nothing_under_the_prefix() -> None:
    app = make_app({"SECRET_KEY": SECRET})
    client = app.test_client()
    for path in (
        "/sentry/",
        "/sentry/projects/1/",
        "/sentry/issues/1/",
        "/sentry/static/dashboard.css",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post("/sentry/issues/1/status/", data={"status": "resolved"}).status_code == 404
    assert not any(rule.rule.startswith("/sentry") for rule in app.url_map.iter_rules())
    assert client.get("/api/0/").json == {"version": "0"}


def test_off_needs_no_secret_key() -> None:
    app = make_app({"SENTRY_API_DASHBOARD": False})
    assert app.test_client().get("/sentry/").status_code == 404


def test_on_without_secret_key_fails_at_start() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        make_app({"SENTRY_API_DASHBOARD": True, "SENTRY_API_DASHBOARD_AUTH": ALLOW_ALL})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SENTRY_API_DASHBOARD": "yes"}, "SENTRY_API_DASHBOARD must be True or False"),
        ({"SENTRY_API_DASHBOARD_URL_PREFIX": "sentry"}, "SENTRY_API_DASHBOARD_URL_PREFIX"),
        ({"SENTRY_API_DASHBOARD_URL_PREFIX": "/a/<b>"}, "SENTRY_API_DASHBOARD_URL_PREFIX"),
        ({"SENTRY_API_DASHBOARD_URL_PREFIX": "/api/0"}, "taken by the API"),
        ({"SENTRY_API_DASHBOARD_URL_PREFIX": "/api/0/dash"}, "taken by the API"),
        ({"SENTRY_API_DASHBOARD_URL_PREFIX": "/api"}, "taken by the API"),
        ({"SENTRY_API_DASHBOARD_AUTH": "not callable"}, "SENTRY_API_DASHBOARD_AUTH"),
        ({"SENTRY_API_DASHBOARD_AUTH": 42}, "SENTRY_API_DASHBOARD_AUTH"),
        ({"SENTRY_API_DASHBOARD_AUTH": dict}, "SENTRY_API_DASHBOARD_AUTH"),
    ],
)
def test_bad_settings_fail_at_start(config: dict[str, t.Any], message: str) -> None:
    settings = {"SENTRY_API_DASHBOARD": True, "SECRET_KEY": SECRET, **config}
    with pytest.raises(ConfigurationError, match=message):
        make_app(settings)


def test_auth_as_an_import_string_and_another_prefix(project: Project) -> None:
    app = dashboard_app(
        auth="tests.test_dashboard:ALLOW_ALL", SENTRY_API_DASHBOARD_URL_PREFIX="/ops/errors"
    )
    client = app.test_client()
    assert client.get("/ops/errors/").status_code == 200
    assert client.get("/sentry/").status_code == 404


# -- access ---------------------------------------------------------------------------------


def all_pages(project: Project, group_id: int, event_id: int) -> list[str]:
    return [
        "/sentry/",
        f"/sentry/projects/{project.id}/",
        f"/sentry/projects/{project.id}/?query=is:resolved",
        f"/sentry/projects/{project.id}/releases/",
        f"/sentry/issues/{group_id}/",
        f"/sentry/issues/{group_id}/events/{event_id}/",
        "/sentry/no/such/page",
        "/sentry/projects/999999/",
    ]


def all_actions(group_id: int) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"/sentry/issues/{group_id}/status/", {"status": "resolved"}),
        (f"/sentry/issues/{group_id}/bookmark/", {"bookmarked": "1"}),
        (f"/sentry/issues/{group_id}/notes/", {"text": "hello"}),
        (f"/sentry/issues/{group_id}/delete/", {}),
    ]


def test_without_auth_every_page_and_action_is_refused() -> None:
    app = dashboard_app(auth=None)
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        saved = add_event(storage, project, "a")
        client = app.test_client()
        for path in all_pages(project, saved.group.id, saved.event.id):
            response = client.get(path)
            assert response.status_code == 403, path
            body = text_of(response)
            assert "SENTRY_API_DASHBOARD_AUTH" in body and "is not set" in body
            assert "title a" not in body
            for name, value in EXPECTED_HEADERS.items():
                assert response.headers[name] == value
        for path, form in all_actions(saved.group.id):
            assert client.post(path, data=form).status_code == 403, path
        for method in ("put", "delete", "patch"):
            assert (
                getattr(client, method)(f"/sentry/issues/{saved.group.id}/status/").status_code
                == 403
            )
        group = storage.get_group(saved.group.id)
        assert group is not None and group.status == "unresolved" and not group.is_bookmarked
        assert storage.list_notes(group.id, EVERYTHING) == []
        # The API is unchanged.
        key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
        listed = client.get(f"/api/0/projects/{project.id}/groups/", headers=api_basic_auth(key))
        assert [row["id"] for row in listed.json] == [str(saved.group.id)]


def test_auth_saying_no_refuses_every_page() -> None:
    seen: list[str] = []

    def nobody(request: Request) -> bool:
        seen.append(request.path)
        return False

    app = dashboard_app(auth=nobody)
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        saved = add_event(storage, project, "a")
        client = app.test_client()
        for path in all_pages(project, saved.group.id, saved.event.id):
            response = client.get(path)
            assert response.status_code == 403, path
            assert "You are not allowed" in text_of(response)
        for path, form in all_actions(saved.group.id):
            assert client.post(path, data=form).status_code == 403
        assert storage.get_group(saved.group.id) == saved.group
        assert len(seen) == len(all_pages(project, 0, 0)) + len(all_actions(0))


def test_auth_decides_per_request_on_the_request() -> None:
    app = dashboard_app(auth=lambda request: request.headers.get("X-Staff") == "yes")
    client = app.test_client()
    assert client.get("/sentry/").status_code == 403
    assert client.get("/sentry/", headers={"X-Staff": "yes"}).status_code == 200


def test_basic_auth_helper_challenges_and_compares() -> None:
    app = dashboard_app(auth=basic_auth("admin", "s3cret pässword"))
    client = app.test_client()
    anonymous = client.get("/sentry/")
    assert anonymous.status_code == 401
    assert (
        anonymous.headers["WWW-Authenticate"] == 'Basic realm="Sentry dashboard", charset="UTF-8"'
    )
    assert (
        anonymous.headers["Content-Security-Policy"] == EXPECTED_HEADERS["Content-Security-Policy"]
    )
    for user, password in [("admin", "wrong"), ("root", "s3cret pässword"), ("admin", "")]:
        response = client.get("/sentry/", auth=(user, password))
        assert response.status_code == 401, (user, password)
    assert client.get("/sentry/", auth=("admin", "s3cret pässword")).status_code == 200
    with pytest.raises(ValueError):
        basic_auth("admin", "")


def test_auth_returning_something_else_is_a_bug() -> None:
    app = dashboard_app(auth=lambda request: "yes")
    with pytest.raises(TypeError, match="must return True, False, None or a Response"):
        app.test_client().get("/sentry/")


def test_auth_may_answer_with_its_own_response() -> None:
    app = dashboard_app(auth=lambda request: Response("go log in", 302, {"Location": "/login"}))
    response = app.test_client().get("/sentry/")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_stylesheet_and_script_need_no_auth() -> None:
    client = dashboard_app(auth=None).test_client()
    css = client.get("/sentry/static/dashboard.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    js = client.get("/sentry/static/dashboard.js")
    assert js.status_code == 200 and "javascript" in js.mimetype
    for response in (css, js):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response.close()


# -- pages -----------------------------------------------------------------------------------


def test_projects_page_lists_projects(client: FlaskClient, storage: Storage) -> None:
    storage.create_project("Web <b>")
    storage.create_project("Billing")
    response = client.get("/sentry/")
    assert response.status_code == 200
    body = text_of(response)
    assert "Web &lt;b&gt;" in body and "Billing" in body
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers[name] == value


def test_issues_page_shows_each_issue(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    now = datetime.now(UTC)
    sent = [now - timedelta(minutes=minutes) for minutes in (5, 4, 3)]
    for n, moment in enumerate(sent):
        add_event(
            storage,
            project,
            "checkout",
            moment,
            title="CheckoutError: refused",
            culprit="shop.views in checkout",
            tags=(("user", f"id:{n}"),),
        )
    add_group(storage, project, "resolved", title="Old problem", status="resolved")
    response = client.get(f"/sentry/projects/{project.id}/")
    assert response.status_code == 200
    body = text_of(response)
    assert "CheckoutError: refused" in body and "shop.views in checkout" in body
    assert "Old problem" not in body  # unresolved by default, as in the API
    row = body[body.index("CheckoutError") :]
    assert re.search(r"<span class=\"label\">Events</span> 3<", row)
    assert re.search(r"<span class=\"label\">Users</span> 3<", row)
    moment = re.search(r'<time datetime="([^"]+)" title="([^"]+)">3 minutes ago</time>', row)
    assert moment, row[:2000]
    assert moment.group(2).endswith(" UTC")
    # The sparkline: a baseline and a bar per hour with events, the highest full height.
    svg = re.search(r'<svg class="spark".*?</svg>', row, re.S)
    assert svg, row[:2000]
    assert 'aria-label="Last 24 hours: 3 events"' in svg.group(0)
    path = re.search(r'<path class="on" d="([^"]+)"/>', svg.group(0))
    hours = {int(moment.timestamp()) // 3600 for moment in sent}
    assert path and path.group(1).count("M") == len(hours)
    # The newest bar is the hour of the last event (this hour, unless it began 3 minutes ago).
    newest = 23 - (int(now.timestamp()) // 3600 - max(hours))
    assert re.search(rf"M{newest * 4}\.00 [0-9.]+h3\.00V24h-3\.00Z$", path.group(1))
    assert " 1.00h" in path.group(1)  # the highest bar: the full height but the baseline
    assert 'value="is:unresolved"' in body  # the search box says what is shown


def test_search_tabs_and_sort(client: FlaskClient, storage: Storage, project: Project) -> None:
    add_group(
        storage, project, "a", title="Alpha failure", level="warning", tags=(("level", "warning"),)
    )
    add_group(storage, project, "b", title="Beta failure", tags=(("level", "error"),))
    add_group(storage, project, "c", title="Gamma done", status="resolved")
    add_group(storage, project, "d", title="Delta quiet", status="muted")
    base = f"/sentry/projects/{project.id}/"

    def titles(query: str | None, **args: str) -> list[str]:
        params = {**({"query": query} if query is not None else {}), **args}
        response = client.get(base, query_string=params)
        assert response.status_code == 200, text_of(response)[:500]
        return re.findall(r'class="title" href="[^"]+">([^<]+)</a>', text_of(response))

    assert titles(None) == ["Beta failure", "Alpha failure"]
    assert titles("level:warning") == ["Alpha failure"]
    assert titles("beta") == ["Beta failure"]
    assert titles("is:resolved") == ["Gamma done"]
    assert titles("is:muted") == ["Delta quiet"]
    assert sorted(titles("")) == ["Alpha failure", "Beta failure", "Delta quiet", "Gamma done"]
    assert titles("", sort="new") == ["Delta quiet", "Gamma done", "Beta failure", "Alpha failure"]
    # Tabs keep the rest of the search and swap its is: for theirs.
    body = text_of(client.get(base, query_string={"query": 'is:unresolved "fail"'}))
    tabs = dict(re.findall(r'<a href="([^"]+)"(?: aria-current="page")?>(\w+)</a>', body))
    by_label = {label: url for url, label in tabs.items()}
    assert 'aria-current="page">Unresolved<' in body
    resolved = client.get(by_label["Resolved"].replace("&amp;", "&"))
    assert "Gamma done" not in text_of(resolved)  # "fail" still applies
    every = text_of(client.get(by_label["All"].replace("&amp;", "&")))
    assert "Alpha failure" in every and "Beta failure" in every and "Gamma done" not in every


def test_search_errors_are_shown(client: FlaskClient, project: Project) -> None:
    for query, message in [
        ("is:sleeping", "unknown status"),
        ('release:"open', "unterminated quote"),
        ("a" * 1001, "longer than 1000"),
    ]:
        response = client.get(f"/sentry/projects/{project.id}/", query_string={"query": query})
        assert response.status_code == 400
        assert message in text_of(response)
    bad_cursor = client.get(f"/sentry/projects/{project.id}/", query_string={"cursor": "x"})
    assert bad_cursor.status_code == 400 and "Invalid cursor" in text_of(bad_cursor)
    nul = client.get(f"/sentry/projects/{project.id}/", query_string={"query": "a\0b"})
    assert nul.status_code == 400


def test_cursor_pages_newer_and_older(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    titles = [f"Problem {n:02d}" for n in range(8)]
    for n, title in enumerate(titles):
        add_group(storage, project, title, start + timedelta(seconds=n * 60), title=title)
    newest_first = list(reversed(titles))

    def page(url: str) -> tuple[list[str], str | None, str | None]:
        body = text_of(client.get(url.replace("&amp;", "&")))
        shown = re.findall(r'class="title" href="[^"]+">([^<]+)</a>', body)
        older = re.search(r'<a href="([^"]+)" rel="next">Older', body)
        newer = re.search(r'<a href="([^"]+)" rel="prev">', body)
        return shown, newer and newer.group(1), older and older.group(1)

    seen: list[list[str]] = []
    url: str | None = f"/sentry/projects/{project.id}/?limit=3"
    newer_links = []
    while url:
        shown, newer, url = page(url)
        seen.append(shown)
        newer_links.append(newer)
    assert seen == [newest_first[0:3], newest_first[3:6], newest_first[6:8]]
    assert newer_links[0] is None and all(newer_links[1:])
    # Back from the last page.
    back, _, _ = page(t.cast(str, newer_links[2]))
    assert back == newest_first[3:6]


RAISE_LINE = "    raise CheckoutError('payment refused')"


def test_issue_page_shows_the_latest_event(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    data = {
        "entries": [
            {
                "type": "exception",
                "data": {
                    "values": [
                        {"type": "KeyError", "value": "'cause'", "stacktrace": None},
                        {
                            "type": "CheckoutError",
                            "value": "payment refused",
                            "module": "shop.errors",
                            "stacktrace": {
                                "frames": [
                                    {
                                        "filename": "flask/app.py",
                                        "function": "dispatch",
                                        "lineno": 900,
                                        "in_app": False,
                                    },
                                    {
                                        "filename": "shop/views.py",
                                        "function": "checkout",
                                        "lineno": 42,
                                        "in_app": True,
                                        "pre_context": [
                                            "def checkout(cart):",
                                            "    total = cart.total()",
                                        ],
                                        "context_line": RAISE_LINE,
                                        "post_context": ["", "def other():"],
                                        "vars": {"cart": {"id": 7, "items": ["pear", "apple"]}},
                                    },
                                ]
                            },
                        },
                    ]
                },
            },
            {
                "type": "request",
                "data": {
                    "method": "POST",
                    "url": "https://shop.example/checkout",
                    "headers": [["Accept", "text/html"]],
                    "data": {"card": "[Filtered]"},
                },
            },
            {
                "type": "breadcrumbs",
                "data": {
                    "values": [
                        {
                            "timestamp": "2026-01-01T00:00:00Z",
                            "category": "http",
                            "message": "GET /cart",
                            "level": "info",
                        }
                    ]
                },
            },
        ],
        "extra": {"order": 17},
    }
    first = add_event(
        storage,
        project,
        "shop",
        title="CheckoutError: payment refused",
        tags=(("browser", "Firefox"),),
        data=data,
    )
    second = add_event(
        storage,
        project,
        "shop",
        title="CheckoutError: payment refused",
        tags=(("browser", "Chrome"),),
        data=data,
    )
    add_event(
        storage,
        project,
        "shop",
        title="CheckoutError: payment refused",
        tags=(("browser", "Firefox"),),
        data=data,
    )
    storage.create_note(first.group.id, "Looking into it <b>now</b>")
    response = client.get(f"/sentry/issues/{first.group.id}/")
    assert response.status_code == 200
    body = text_of(response)
    assert "CheckoutError" in body and "payment refused" in body
    # Innermost frame first, in-app emphasised, context lines and locals collapsed.
    frames = re.findall(r'<li class="frame (in-app|system)">', body)
    assert frames == ["in-app", "system"]
    assert (
        '<li class="current"><code>    raise CheckoutError(&#39;payment refused&#39;)</code></li>'
        in body
    )
    assert '<ol class="code" start="40">' in body
    assert "<summary>Local variables (1)</summary>" in body and "&#34;pear&#34;" in body
    # The chain: the exception raised last first, its cause after.
    assert body.index("CheckoutError: <span") < body.index("KeyError")
    # Tag distributions as bars.
    assert re.search(r"Firefox</span> <span class=\"muted\">2 · 66.7%</span>", body)
    assert '<rect width="66.7" height="6" class="fill"/>' in body
    # The issue's last 24 hours, a bar per hour with its count.
    chart = re.search(r'<svg class="chart".*?</svg>', body, re.S)
    assert chart and chart.group(0).count("<rect") == 24
    hourly = re.findall(r'class="on"><title>(\d+)</title>', chart.group(0))
    assert sum(map(int, hourly)) == 3 and chart.group(0).count("<title>0</title>") == 24 - len(
        hourly
    )
    # Request, breadcrumbs, notes, counts.
    assert "https://shop.example/checkout" in body and 'href="https://shop' not in body
    assert "GET /cart" in body
    assert "Looking into it &lt;b&gt;now&lt;/b&gt;" in body
    assert "<dt>Events</dt><dd>3</dd>" in body
    # Older/newer navigation between the events.
    older = re.search(r'<a href="([^"]+)" rel="prev">← Older event', body)
    assert older and older.group(1) == f"/sentry/issues/{first.group.id}/events/{second.event.id}/"
    middle = text_of(client.get(older.group(1)))
    assert f"Event {second.event.event_id}" in middle
    assert re.search(r'rel="next">Newer event', middle) and re.search(
        r'rel="prev">← Older event', middle
    )


def test_issue_and_event_not_found(client: FlaskClient, storage: Storage, project: Project) -> None:
    one = add_event(storage, project, "a")
    other = add_event(storage, project, "b")
    for path in (
        "/sentry/issues/999999/",
        f"/sentry/issues/{one.group.id}/events/{other.event.id}/",
        f"/sentry/issues/{2**63}/",
        f"/sentry/projects/{2**64}/",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert (
            response.headers["Content-Security-Policy"]
            == EXPECTED_HEADERS["Content-Security-Policy"]
        )


def test_releases_page(client: FlaskClient, storage: Storage, project: Project) -> None:
    from flask_sentry_api.storage import ReleaseChanges

    for n in range(5):
        storage.create_release(
            project.id, f"1.{n}", ReleaseChanges(ref="abc123", url="javascript:alert(1)")
        )
    body = text_of(client.get(f"/sentry/projects/{project.id}/releases/?limit=2"))
    assert "1.4" in body and "1.3" in body and "1.2" not in body
    assert "javascript:alert(1)" in body
    assert not any(link.startswith("javascript") for link in parse(body).hrefs)
    older = re.search(r'<a href="([^"]+)" rel="next">Older', body)
    assert older
    assert "1.2" in text_of(client.get(older.group(1).replace("&amp;", "&")))


def test_a_custom_storage_works_unchanged() -> None:
    memory = MemoryStorage()
    app = make_app(
        {
            "SENTRY_API_DASHBOARD": True,
            "SECRET_KEY": SECRET,
            "SENTRY_API_DASHBOARD_AUTH": ALLOW_ALL,
        },
        storage=memory,
    )
    project = memory.create_project("In memory")
    group_id = add_group(memory, project, "a", title="Held in memory")
    client = app.test_client()
    assert "Held in memory" in text_of(client.get(f"/sentry/projects/{project.id}/"))
    assert client.get(f"/sentry/issues/{group_id}/").status_code == 200
    token = csrf_of(client, f"/sentry/issues/{group_id}/")
    client.post(
        f"/sentry/issues/{group_id}/status/", data={"status": "resolved", "csrf_token": token}
    )
    group = memory.get_group(group_id)
    assert group is not None and group.status == "resolved"


# -- actions ---------------------------------------------------------------------------------


def test_actions_change_state_and_redirect(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    group_id = add_group(storage, project, "a", title="Fix me")
    page = f"/sentry/issues/{group_id}/"
    token = csrf_of(client, page)

    def post(action: str, **form: str) -> str:
        response = client.post(
            f"/sentry/issues/{group_id}/{action}/", data={**form, "csrf_token": token}
        )
        assert response.status_code == 303, text_of(response)[:500]
        assert response.headers["Cache-Control"] == "no-store"
        return t.cast(str, response.headers["Location"])

    def group() -> t.Any:
        return storage.get_group(group_id)

    assert post("status", status="resolved") == page
    assert group().status == "resolved"
    shown = text_of(client.get(page))
    assert (
        "Issue resolved." in shown and "status-resolved" in shown and ">Unresolve</button>" in shown
    )
    assert "Issue resolved." not in text_of(client.get(page))  # said once
    # It moved tabs.
    resolved_tab = text_of(client.get(f"/sentry/projects/{project.id}/?query=is:resolved"))
    assert "Fix me" in resolved_tab
    assert "Fix me" not in text_of(client.get(f"/sentry/projects/{project.id}/"))
    post("status", status="unresolved")
    assert group().status == "unresolved"
    post("status", status="muted")
    assert group().status == "muted"
    post("bookmark", bookmarked="1")
    assert group().is_bookmarked
    assert "Issue bookmarked." in text_of(client.get(page))
    post("bookmark", bookmarked="0")
    assert not group().is_bookmarked
    post("notes", text="Deployed a fix <script>x</script>")
    notes = storage.list_notes(group_id, EVERYTHING)
    assert [note.text for note in notes] == ["Deployed a fix <script>x</script>"]
    shown = text_of(client.get(page))
    assert "Note added." in shown and "Deployed a fix &lt;script&gt;x&lt;/script&gt;" in shown
    assert post("delete") == f"/sentry/projects/{project.id}/"
    assert group() is None
    assert "deleted." in text_of(client.get(f"/sentry/projects/{project.id}/"))


def test_bad_action_values_change_nothing(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    group_id = add_group(storage, project, "a")
    before = storage.get_group(group_id)
    token = csrf_of(client, f"/sentry/issues/{group_id}/")
    for action, form in [
        ("status", {"status": "deleted"}),
        ("notes", {"text": "   "}),
        ("notes", {"text": "n" * 10_001}),
        ("notes", {"text": "a\0b"}),
    ]:
        response = client.post(
            f"/sentry/issues/{group_id}/{action}/", data={**form, "csrf_token": token}
        )
        assert response.status_code == 400, (action, form)
    assert storage.get_group(group_id) == before
    assert storage.list_notes(group_id, EVERYTHING) == []
    gone = client.post(
        "/sentry/issues/999999/status/", data={"status": "resolved", "csrf_token": token}
    )
    assert gone.status_code == 404


@pytest.mark.parametrize("token", [None, "", "wrong", "é" * 43])
def test_actions_need_the_sessions_csrf_token(
    client: FlaskClient, storage: Storage, project: Project, token: str | None
) -> None:
    group_id = add_group(storage, project, "a")
    before = storage.get_group(group_id)
    real = csrf_of(client, f"/sentry/issues/{group_id}/")
    assert token != real
    for path, form in all_actions(group_id):
        data = form if token is None else {**form, "csrf_token": token}
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "security token" in text_of(response)
        assert (
            response.headers["Content-Security-Policy"]
            == EXPECTED_HEADERS["Content-Security-Policy"]
        )
    assert storage.get_group(group_id) == before
    assert storage.list_notes(group_id, EVERYTHING) == []


def test_a_token_of_another_session_is_refused(
    app: Flask, storage: Storage, project: Project
) -> None:
    group_id = add_group(storage, project, "a")
    other = app.test_client()
    stolen = csrf_of(other, f"/sentry/issues/{group_id}/")
    victim = app.test_client()
    victim.get("/sentry/")  # has a session of its own
    response = victim.post(f"/sentry/issues/{group_id}/delete/", data={"csrf_token": stolen})
    assert response.status_code == 400
    assert storage.get_group(group_id) is not None
    fresh = app.test_client()  # no session at all
    assert (
        fresh.post(f"/sentry/issues/{group_id}/delete/", data={"csrf_token": stolen}).status_code
        == 400
    )
    assert storage.get_group(group_id) is not None


def test_resolving_sends_issue_resolved(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    from flask_sentry_api import signals

    group_id = add_group(storage, project, "a")
    heard: list[t.Any] = []

    def receiver(sender: t.Any, **kwargs: t.Any) -> None:
        heard.append(kwargs)

    signals.issue_resolved.connect(receiver)
    try:
        token = csrf_of(client, f"/sentry/issues/{group_id}/")
        client.post(
            f"/sentry/issues/{group_id}/status/", data={"status": "resolved", "csrf_token": token}
        )
    finally:
        signals.issue_resolved.disconnect(receiver)
    assert [kwargs["count"] for kwargs in heard] == [1]
    assert [group.id for group in heard[0]["groups"]] == [group_id]


def test_a_host_with_flask_wtf_csrf_still_accepts_the_dashboards_forms() -> None:
    from flask_wtf.csrf import CSRFProtect

    app = dashboard_app()
    with app.app_context():
        CSRFProtect(app)
        storage = get_state(app).storage
        project = storage.create_project("Web")
        group_id = add_group(storage, project, "a")
        client = app.test_client()
        token = csrf_of(client, f"/sentry/issues/{group_id}/")
        response = client.post(
            f"/sentry/issues/{group_id}/status/", data={"status": "muted", "csrf_token": token}
        )
        assert response.status_code == 303
        group = storage.get_group(group_id)
        assert group is not None and group.status == "muted"
        # And the dashboard's own check still holds.
        assert (
            client.post(
                f"/sentry/issues/{group_id}/status/", data={"status": "resolved"}
            ).status_code
            == 400
        )


# -- no per-row queries ----------------------------------------------------------------------


def test_issues_page_costs_the_same_statements_as_the_api_page(
    app: Flask, storage: Storage, project: Project
) -> None:
    key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    client = app.test_client()

    def statements(path: str, **headers: str) -> int:
        def fetch() -> None:
            assert client.get(path, headers=headers).status_code == 200

        return len(
            [
                sql
                for sql, _ in captured_statements(app, fetch)
                if sql.lstrip().upper().startswith("SELECT")
            ]
        )

    def counts() -> tuple[int, int]:
        api = statements(f"/api/0/projects/{project.id}/groups/", **api_basic_auth(key))
        dashboard = statements(f"/sentry/projects/{project.id}/")
        return api, dashboard

    add_group(storage, project, "first")
    counts()  # the key cache and the session settle
    api_one, dashboard_one = counts()
    for n in range(30):
        add_group(storage, project, f"more-{n}", tags=(("browser", f"b{n}"),))
    api_many, dashboard_many = counts()
    assert dashboard_many == dashboard_one  # no statement per row
    assert api_many == api_one
    # The API authenticates a key (cached); the dashboard reads the same project, groups and stats.
    assert dashboard_many <= api_many


# -- hostile data ----------------------------------------------------------------------------

PAYLOAD = "<script>alert(1)</script>"
JS_URL = "javascript:alert(document.domain)"


def hostile(depth: int = 0) -> t.Any:
    """A value with every kind of trouble: markup, a script URL, length and depth."""
    nested: t.Any = PAYLOAD
    for _ in range(40):
        nested = {PAYLOAD: [nested, JS_URL]}
    return {
        PAYLOAD: PAYLOAD,
        "url": JS_URL,
        "long": PAYLOAD * 400,
        "deep": nested,
        "attr": '" onmouseover="alert(1)" x="',
    }


def hostile_event() -> dict[str, t.Any]:
    frame = {
        "filename": PAYLOAD,
        "abs_path": JS_URL,
        "module": PAYLOAD,
        "function": '"><img src=x onerror=alert(1)>',
        "lineno": 3,
        "in_app": True,
        "context_line": PAYLOAD,
        "pre_context": [PAYLOAD, JS_URL],
        "post_context": [PAYLOAD * 500],
        "vars": hostile(),
    }
    return {
        "event_id": uuid.uuid4().hex,
        "platform": PAYLOAD,
        "level": "error",
        "logger": PAYLOAD,
        "server_name": PAYLOAD,
        "release": "<script>1",
        "environment": PAYLOAD,
        "transaction": PAYLOAD,
        "culprit": PAYLOAD + JS_URL,
        "message": PAYLOAD + " " + JS_URL,
        "fingerprint": [PAYLOAD],
        "tags": {PAYLOAD[:30]: PAYLOAD, "url": JS_URL, "x": PAYLOAD * 10},
        "user": {"id": PAYLOAD, "email": JS_URL, "username": PAYLOAD, "data": hostile()},
        "exception": {
            "values": [
                {
                    "type": PAYLOAD,
                    "value": PAYLOAD + JS_URL,
                    "module": PAYLOAD,
                    "mechanism": {"type": PAYLOAD},
                },
                {
                    "type": "Error" + PAYLOAD,
                    "value": PAYLOAD * 1000,
                    "stacktrace": {"frames": [frame] * 8},
                },
            ]
        },
        "request": {
            "url": JS_URL,
            "method": "<svg/onload=alert(1)>",
            "query_string": PAYLOAD,
            "headers": {PAYLOAD: JS_URL, "Referer": JS_URL},
            "cookies": hostile(),
            "data": hostile(),
            "env": {"REMOTE_ADDR": PAYLOAD},
        },
        "breadcrumbs": {
            "values": [
                {
                    "category": PAYLOAD,
                    "message": PAYLOAD + JS_URL,
                    "level": PAYLOAD,
                    "data": hostile(),
                    "type": PAYLOAD,
                }
            ]
            * 20
        },
        "extra": hostile(),
        "contexts": {"os": hostile(), PAYLOAD: {"name": PAYLOAD}},
        "sdk": {"name": PAYLOAD, "version": JS_URL},
    }


def assert_inert(body: str) -> None:
    """No markup from the event: every ``<script`` is the page's own script element, no
    link or source is a script URL, and no attribute came from the event."""
    page = parse(body)
    scripts = [value for tag, name, value in page.attributes if tag == "script" and name == "src"]
    assert body.count("<script") == len(scripts) == 1, scripts
    assert page.inline_scripts == 0
    assert (
        "<img" not in body
        and "<svg/onload" not in body
        and "onerror" not in [n for _, n, _ in page.attributes]
    )
    assert not any(name.startswith("on") for _, name, _ in page.attributes)
    assert not any(name == "style" for _, name, _ in page.attributes)
    for link in page.hrefs:
        assert link.startswith(("/", "#")), link


def test_hostile_event_renders_inert(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    event = hostile_event()
    stored = client.post(
        f"/api/{project.id}/store/", data=json.dumps(event), headers=sentry_auth(key)
    )
    assert stored.status_code == 200, stored.json
    ingested = storage.get_event_by_event_id(project.id, event["event_id"])
    assert ingested is not None
    storage.create_note(add_group(storage, project, "n", title=PAYLOAD), PAYLOAD + JS_URL)
    storage.create_release(project.id, "v<b>1")
    # And data no ingestion would store, straight into the storage: deeper, longer, odder.
    weird = add_event(
        storage,
        project,
        "weird",
        title=PAYLOAD * 100,
        culprit=JS_URL,
        message=PAYLOAD,
        tags=((PAYLOAD[:30], JS_URL),),
        user={"id": PAYLOAD},
        data={
            "entries": [
                {
                    "type": "exception",
                    "data": {
                        "values": [
                            {
                                "type": PAYLOAD,
                                "stacktrace": {
                                    "frames": [
                                        PAYLOAD,
                                        None,
                                        5,
                                        {"vars": [PAYLOAD]},
                                        {"lineno": "x", "pre_context": PAYLOAD},
                                    ]
                                },
                            }
                        ]
                    },
                },
                {
                    "type": "request",
                    "data": {"url": JS_URL, "headers": [[PAYLOAD], [PAYLOAD, JS_URL, 3], PAYLOAD]},
                },
                {"type": "breadcrumbs", "data": {"values": PAYLOAD}},
                {"type": PAYLOAD, "data": PAYLOAD},
                PAYLOAD,
            ],
            "extra": hostile(),
            "contexts": [PAYLOAD],
        },
    )
    groups = [group.id for group in storage.list_groups(project.id, GroupQuery(), EVERYTHING)]
    assert weird.group.id in groups and len(groups) == 3
    pages = [
        "/sentry/",
        f"/sentry/projects/{project.id}/",
        f"/sentry/projects/{project.id}/?query=" + PAYLOAD,
        f"/sentry/projects/{project.id}/releases/",
    ] + [f"/sentry/issues/{group_id}/" for group_id in groups]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_inert(text_of(response))
    # The stored values are all there, as text.
    issue = text_of(client.get(f"/sentry/issues/{ingested.group_id}/"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in issue
    assert "javascript:alert(document.domain)" in issue


# -- what the templates are given ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "tags", "text"),
    [
        (None, (), None),
        ("resolved", (), None),
        ("muted", (("level", "error"), ("release", '1.0 "beta"')), None),
        (None, (("browser", "C:\\path\\x"),), "a:b http://x"),
        ("unresolved", (), 'say "hi" \\ there'),
    ],
)
def test_tab_queries_parse_back(
    status: str | None, tags: tuple[tuple[str, str], ...], text: str | None
) -> None:
    from flask_sentry_api.dashboard.render import format_query
    from flask_sentry_api.search import parse_query

    parsed = parse_query(format_query(status, tags, text))
    assert (parsed.status, parsed.tags, parsed.text) == (status, tags, text)


def test_nested_values_are_cut_at_a_depth_and_a_width() -> None:
    from flask_sentry_api.dashboard.render import MAX_DEPTH
    from flask_sentry_api.dashboard.render import pretty

    deep: t.Any = "bottom"
    for _ in range(10_000):  # far past the recursion limit: only MAX_DEPTH levels are read
        deep = [deep]
    shown = pretty(deep)
    assert shown.count("[") == MAX_DEPTH and "…" in shown and "bottom" not in shown
    wide = pretty({f"k{n}": n for n in range(500)})
    assert '"k49": 49' in wide and '"k50"' not in wide and "… 450 more" in wide
    assert pretty("x" * 5000).endswith('… (3000 more characters)"')
    assert pretty({"a": None, "b": True, "c": 1.5, "d": object}).count("\n") == 5


def test_pages_carry_no_inline_script_or_style(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    group_id = add_group(storage, project, "a", tags=(("browser", "Firefox"),))
    storage.create_note(group_id, "a note")
    storage.create_release(project.id, "1.0")
    for path in (
        "/sentry/",
        f"/sentry/projects/{project.id}/",
        f"/sentry/projects/{project.id}/?query=is:sleeping",
        f"/sentry/projects/{project.id}/releases/",
        f"/sentry/issues/{group_id}/",
        "/sentry/missing",
    ):
        body = text_of(client.get(path))
        assert_inert(body)
        page = parse(body)
        # Every action is a real button in a form, every link a real link.
        assert not any(
            name == "tabindex" and value not in ("-1", "0") for _, name, value in page.attributes
        )
        assert body.count("<form") == body.count('<button type="submit"')


def test_a_messages_thread_stack_is_shown(
    client: FlaskClient, storage: Storage, project: Project
) -> None:
    frame = {"filename": "jobs.py", "function": "nightly", "lineno": 12, "in_app": True}
    thread = {"id": 1, "name": "MainThread", "stacktrace": {"frames": [frame]}}
    entries = [
        {"type": "message", "data": {"formatted": "Disk almost full"}},
        {"type": "threads", "data": {"values": [thread, {"id": 2}]}},
    ]
    group_id = add_group(storage, project, "m", title="Disk almost full", data={"entries": entries})
    body = text_of(client.get(f"/sentry/issues/{group_id}/"))
    assert '<pre class="message">Disk almost full</pre>' in body
    assert "Thread MainThread" in body and '<span class="function">nightly</span>' in body
    assert body.count('<li class="frame in-app">') == 1
