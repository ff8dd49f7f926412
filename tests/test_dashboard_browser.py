"""The dashboard in a real browser (issue 15): headless Chromium, driven by Selenium through
Debian's ``chromium-driver``, against the example app served over HTTP on a free port.

The browser logs in with the example app's own access rule (HTTP Basic, user ``admin`` and
``EXAMPLE_DASHBOARD_PASSWORD``), searches, pages through 300 issues, resolves an issue and
sees it change tabs, adds a note, is sent hostile events through the real store endpoint
and runs none of their script, reaches every action from the keyboard, and reads the pages
375 px wide. Skipped only where no ``chromium`` or ``chromedriver`` is installed (``.ci/run``
installs both); nothing is downloaded: the driver is Debian's, named by its path.

Runs on SQLite (a file of its own) or on the PostgreSQL database of
``SENTRY_API_TEST_DATABASE_URL`` (a schema of its own, dropped after).
"""

from __future__ import annotations

import json
import os
import shutil
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from flask_sentry_api import get_state
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import save_events
from flask_sentry_api.testing import make_event
from tests.helpers import DATABASE_URL
from tests.helpers import ON_POSTGRES
from tests.helpers import LiveServer
from tests.helpers import sentry_auth

# Selenium Manager (which would download a browser or driver) is never asked: the driver
# is named by its path below, and this keeps Selenium from going online regardless.
os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

UTC = timezone.utc
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="no Chromium to drive: install Debian's chromium and chromium-driver"
        " (apt-get install chromium chromium-driver) to run the dashboard's browser tests",
    ),
]

PASSWORD = "browser-test-" + uuid.uuid4().hex
#: Issues of the paging project (three pages of 100).
PAGED = 300
#: How long an explicit wait may take before the test fails (a page load on a busy machine).
WAIT = 20


class Site(t.NamedTuple):
    """The running example app: its URL, and the projects the tests use."""

    url: str
    app: t.Any
    paging_project: int
    actions_project: int
    hostile_project: int
    hostile_key: str


# -- the server -------------------------------------------------------------------------------


def _database(directory: Path) -> tuple[str, t.Callable[[], None]]:
    """A database of this module's own: a SQLite file, or a fresh PostgreSQL schema (other
    test modules recreate the tables of the worker's schema as they go)."""
    if not ON_POSTGRES:
        return f"sqlite:///{directory / 'dashboard.db'}", lambda: None
    schema = f"sentry_api_browser_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    engine = sa.create_engine(DATABASE_URL)

    def drop() -> None:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    drop()
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})

    def cleanup() -> None:
        drop()
        engine.dispose()

    return url.render_as_string(hide_password=False), cleanup


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Site]:
    """The example app as ``flask run`` builds it (its dashboard password from the
    environment), served by a threaded HTTP server, with three projects of data."""
    from example_app import create_app

    url, cleanup = _database(tmp_path_factory.mktemp("dashboard_browser"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv("EXAMPLE_DASHBOARD_PASSWORD", PASSWORD)
        # Kept out of the repository's instance folder.
        patch.setenv("FLASK_SECRET_KEY", uuid.uuid4().hex)
        app = create_app({"EXAMPLE_CREATE_DEMO_PROJECT": False})
    try:
        with app.app_context():
            storage = get_state(app).storage
            paging = storage.create_project("Paging")
            actions = storage.create_project("Actions")
            hostile = storage.create_project("Hostile")
            key = storage.create_key(hostile.id, ROLE_STORE)
            now = datetime.now(UTC)
            # Issue 0 seen last: the default sort (last seen) lists 0, 1, ... 299.
            save_events(
                storage,
                [
                    (
                        paging.id,
                        make_event(
                            title=f"Paging issue {number:03d}",
                            message=f"paging {number}",
                            timestamp=now - timedelta(minutes=number),
                        ),
                    )
                    for number in range(PAGED)
                ],
            )
        with LiveServer(app) as server:
            yield Site(server.url, app, paging.id, actions.id, hostile.id, key.public_key)
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
        cleanup()


# -- the browser ------------------------------------------------------------------------------


def _chromium() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = t.cast(str, CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root (CI containers)
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _logged_in(driver: WebDriver, site: Site) -> WebDriver:
    """Chromium, logged in: credentials in the first URL are kept for the whole origin."""
    driver.get(site.url.replace("http://", f"http://admin:{PASSWORD}@") + "/sentry/")
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, "h1")))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Projects"
    return driver


@pytest.fixture(scope="module")
def browser(site: Site) -> t.Iterator[WebDriver]:
    """One logged-in Chromium for the module's tests."""
    driver = _chromium()
    try:
        yield _logged_in(driver, site)
    finally:
        driver.quit()


@pytest.fixture
def driver(browser: WebDriver) -> t.Iterator[WebDriver]:
    """The module's Chromium at the usual size; after the test, no page had a script error
    (an exception in the dashboard's script, or script the policy refused)."""
    browser.set_window_size(1280, 900)
    browser.get_log("browser")  # read, so only this test's entries are left
    yield browser
    browser.set_window_size(1280, 900)
    errors = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and entry.get("source") != "network"
    ]
    assert errors == []


def open_page(driver: WebDriver, url: str) -> None:
    """Load ``url`` and wait for its ``main`` element."""
    driver.get(url)
    wait_for_main(driver)


def wait_for_main(driver: WebDriver) -> None:
    WebDriverWait(driver, WAIT).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.find_elements(By.ID, "main")
        )
    )


def click_and_wait(driver: WebDriver, element: WebElement) -> None:
    """Click a link or submit button and wait until the next page has loaded."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, WAIT).until(ec.staleness_of(old))
    wait_for_main(driver)


def issue_titles(driver: WebDriver) -> list[str]:
    """The titles of the page's issues, in order (one call, not one per row)."""
    return list(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('.issues a.title'),"
            " (link) => link.textContent.trim())"
        )
    )


def notice(driver: WebDriver) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, ".notice").text)


def add_issue(site: Site, project_id: int, title: str) -> int:
    with site.app.app_context():
        storage = get_state(site.app).storage
        saved = storage.save_event(project_id, make_event(title=title, message=title))
        return int(saved.group.id)


# -- logging in, searching, paging --------------------------------------------------------------


def test_log_in_with_the_example_apps_password(driver: WebDriver, site: Site) -> None:
    """A first visit is asked for the password; the example's user ``admin`` with
    ``EXAMPLE_DASHBOARD_PASSWORD`` opens every page.

    At ``localhost``, another origin than the module's logged-in ``127.0.0.1``: the browser
    has no credentials for it yet (and starting a second Chromium costs seconds).
    """
    origin = site.url.replace("127.0.0.1", "localhost")
    # Asked for a password (a 401 with a Basic challenge), headless Chromium has no one to
    # ask and shows nothing of the dashboard; neither with a wrong password.
    for url in (origin, origin.replace("http://", "http://admin:wrong@")):
        driver.get(url + "/sentry/")
        WebDriverWait(driver, WAIT).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        assert "localhost:" in driver.current_url
        assert not driver.find_elements(By.CSS_SELECTOR, "main, h1, a"), driver.page_source
    driver.get(origin.replace("http://", f"http://admin:{PASSWORD}@") + "/sentry/")
    wait_for_main(driver)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Projects"
    # The credentials stay with the origin: links and plain URLs work from here on.
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Paging"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Paging"
    assert len(issue_titles(driver)) == 100
    open_page(driver, f"{origin}/sentry/projects/{site.paging_project}/?query=is:resolved")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Paging"


def test_search(driver: WebDriver, site: Site) -> None:
    open_page(driver, f"{site.url}/sentry/projects/{site.paging_project}/")
    box = driver.find_element(By.ID, "query")
    assert box.get_attribute("value") == "is:unresolved"
    # "/" focuses the search box (the script's shortcut).
    driver.find_element(By.TAG_NAME, "body").send_keys("/")
    assert driver.switch_to.active_element == box
    box.send_keys(Keys.END, " Paging issue 123")
    old = driver.find_element(By.TAG_NAME, "html")
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, WAIT).until(ec.staleness_of(old))
    wait_for_main(driver)
    assert issue_titles(driver) == ["Paging issue 123"]
    assert driver.find_element(By.ID, "query").get_attribute("value") == (
        "is:unresolved Paging issue 123"
    )
    # The status tabs keep the text: nothing of it is resolved.
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Resolved"))
    assert driver.find_element(By.ID, "query").get_attribute("value") == (
        'is:resolved "Paging issue 123"'
    )
    assert issue_titles(driver) == []
    assert driver.find_element(By.CSS_SELECTOR, ".empty").text == "No issues match."


def test_page_through_300_issues(driver: WebDriver, site: Site) -> None:
    open_page(driver, f"{site.url}/sentry/projects/{site.paging_project}/")
    pages = [issue_titles(driver)]
    assert driver.find_element(By.CSS_SELECTOR, ".pager .disabled").text == "← Newer"
    while True:
        older = driver.find_elements(By.LINK_TEXT, "Older →")
        if not older:
            break
        click_and_wait(driver, older[0])
        pages.append(issue_titles(driver))
        assert len(pages) <= PAGED // 100, "more pages than issues"
    assert [len(page) for page in pages] == [100, 100, 100]
    assert [title for page in pages for title in page] == [
        f"Paging issue {number:03d}" for number in range(PAGED)
    ]
    assert driver.find_element(By.CSS_SELECTOR, ".pager .disabled").text == "Older →"
    # And back: each newer page is the one seen before it.
    for expected in reversed(pages[:-1]):
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "← Newer"))
        assert issue_titles(driver) == expected
    assert not driver.find_elements(By.LINK_TEXT, "← Newer")


# -- actions --------------------------------------------------------------------------------------


def test_open_an_issue_resolve_it_and_see_it_move_tabs(driver: WebDriver, site: Site) -> None:
    title = f"Resolve me {uuid.uuid4().hex[:8]}"
    add_issue(site, site.actions_project, title)
    open_page(driver, f"{site.url}/sentry/projects/{site.actions_project}/")
    assert title in issue_titles(driver)
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, title))
    assert driver.find_element(By.TAG_NAME, "h1").text == title
    assert driver.find_element(By.CSS_SELECTOR, ".meta .status-unresolved").text == "unresolved"

    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Resolve']"))
    assert notice(driver) == "Issue resolved."
    assert driver.find_element(By.CSS_SELECTOR, ".meta .status-resolved").text == "resolved"
    assert driver.find_elements(By.XPATH, "//button[text()='Unresolve']")

    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Actions"))
    assert title not in issue_titles(driver)  # the Unresolved tab
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Resolved"))
    assert driver.find_element(By.CSS_SELECTOR, ".tabs [aria-current=page]").text == "Resolved"
    assert title in issue_titles(driver)

    # And back again.
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, title))
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Unresolve']"))
    assert notice(driver) == "Issue marked unresolved."
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Actions"))
    assert title in issue_titles(driver)


def test_add_a_note(driver: WebDriver, site: Site) -> None:
    group_id = add_issue(site, site.actions_project, f"Note me {uuid.uuid4().hex[:8]}")
    open_page(driver, f"{site.url}/sentry/issues/{group_id}/")
    assert not driver.find_elements(By.CSS_SELECTOR, ".notes li")
    text = "Seen after the deploy <b>not bold</b> & fixed by #12"
    driver.find_element(By.ID, "note-text").send_keys(text)
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Add note']"))
    assert notice(driver) == "Note added."
    notes = driver.find_elements(By.CSS_SELECTOR, ".notes li p.wrap")
    assert [note.text for note in notes] == [text]
    assert not driver.find_elements(By.CSS_SELECTOR, ".notes b")


# -- hostile events -------------------------------------------------------------------------------


def payload(where: str) -> str:
    """Markup that, rendered as markup anywhere, runs script naming ``where``: in text, in
    a double- or single-quoted attribute, in a textarea, title or script."""
    mark = f"window.__xss=(window.__xss||[]).concat('{where}')"
    return (
        f"'\"></textarea></title><script>{mark}</script>"
        f'<img src=x onerror="{mark}"><svg onload="{mark}"></svg>'
        f'<a href="javascript:{mark}" id="xss-{where}">link</a>'
        f'<iframe srcdoc="<script>parent.{mark}</script>"></iframe>'
        f'<style>body{{display:none}}</style><base href="javascript:{mark}//">'
    )


def js_url(where: str) -> str:
    return f"javascript:window.__xss=(window.__xss||[]).concat('{where}')"


def nested(depth: int, leaf: t.Any) -> t.Any:
    value = leaf
    for level in range(depth):
        value = {f"level{level}": value} if level % 2 else [value, level]
    return value


LONG = "x" * 5_000  # one unbreakable word, longer than anything is shown


def hostile_event(n: int) -> dict[str, t.Any]:
    """An event with markup, ``javascript:`` URLs, long and deeply nested values in every
    field an event has."""
    p = payload
    frame = {
        "filename": p(f"filename{n}"),
        "abs_path": js_url(f"abs_path{n}"),
        "module": p(f"frame_module{n}"),
        "function": p(f"function{n}"),
        "lineno": 7,
        "colno": 3,
        "in_app": True,
        "context_line": p(f"context_line{n}") + LONG,
        "pre_context": [p(f"pre_context{n}"), LONG],
        "post_context": [p(f"post_context{n}"), js_url(f"post{n}")],
        "vars": {p(f"var_name{n}")[:200]: p(f"var{n}"), "deep": nested(60, p(f"deepvar{n}"))},
    }
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "platform": p(f"platform{n}"),
        "level": "error",
        "logger": p(f"logger{n}"),
        "transaction": p(f"transaction{n}"),
        "server_name": p(f"server_name{n}"),
        "release": f"rel-{n}<script>{js_url('release')}</script>",
        "dist": p(f"dist{n}"),
        "environment": p(f"environment{n}"),
        "culprit": p(f"culprit{n}") + LONG,
        "message": p(f"message{n}") + " " + js_url(f"message_url{n}") + " " + LONG,
        "logentry": {"formatted": p(f"logentry{n}") + LONG},
        "fingerprint": [p(f"fingerprint{n}"), str(n)],
        "modules": {p(f"module_name{n}")[:100]: p(f"module_version{n}")},
        "tags": {
            "evil": p(f"tag{n}")[:200],
            "url": js_url(f"tag_url{n}"),
            "long": LONG[:200],
        },
        "user": {
            "id": p(f"user_id{n}"),
            "email": js_url(f"email{n}"),
            "username": p(f"username{n}") + LONG,
            "ip_address": "127.0.0.1",
            "data": nested(60, p(f"user_data{n}")),
        },
        "exception": {
            "values": [
                {
                    "type": p(f"cause_type{n}"),
                    "value": p(f"cause_value{n}") + LONG,
                    "module": p(f"exc_module{n}"),
                    "mechanism": {"type": p(f"mechanism{n}"), "handled": False},
                    "stacktrace": {"frames": [frame] * 3},
                },
                {
                    "type": f"Error{n}" + p(f"type{n}"),
                    "value": p(f"value{n}") + js_url(f"value_url{n}"),
                    "stacktrace": {"frames": [frame, {**frame, "in_app": False}]},
                },
            ]
        },
        "threads": {"values": [{"id": 1, "name": p(f"thread{n}"), "crashed": True}]},
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": datetime.now(UTC).isoformat(),
                    "type": p(f"crumb_type{n}"),
                    "category": p(f"crumb_category{n}"),
                    "level": "info",
                    "message": p(f"crumb_message{n}") + LONG,
                    "data": {"url": js_url(f"crumb_url{n}"), "deep": nested(60, p(f"crumb{n}"))},
                }
            ]
            * 5
        },
        "request": {
            "url": js_url(f"request_url{n}"),
            "method": "POST",
            "query_string": p(f"query_string{n}"),
            "fragment": p(f"fragment{n}"),
            "headers": {"Referer": js_url(f"referer{n}"), "X-Evil": p(f"header{n}") + LONG},
            "cookies": {"session": p(f"cookie{n}")},
            "data": nested(60, p(f"request_data{n}")),
            "env": {"REMOTE_ADDR": p(f"env{n}")},
        },
        "extra": {"evil": p(f"extra{n}"), "long": LONG, "deep": nested(80, p(f"extra_deep{n}"))},
        "contexts": {
            "os": {"name": p(f"os{n}"), "version": js_url(f"os_version{n}")},
            "evil": nested(60, p(f"context{n}")),
        },
        "sdk": {"name": p(f"sdk{n}"), "version": js_url(f"sdk_version{n}")},
    }


#: Run on every hostile page: what would show that the event's markup became markup.
INSPECT = """
for (const details of document.querySelectorAll("details")) details.open = true;
const own = location.origin;
const attributes = [];
for (const element of document.querySelectorAll("*")) {
  for (const attribute of element.attributes) {
    const name = attribute.name;
    if (name.startsWith("on") || name === "style" || name === "srcdoc") {
      attributes.push(element.tagName + " " + attribute.name);
    }
  }
}
return {
  xss: window.__xss || null,
  title: document.title,
  scripts: Array.from(document.scripts, (script) => script.src),
  foreign: Array.from(
    document.querySelectorAll("img, iframe, object, embed, base, style, form[action^=javascript]"),
    (element) => element.outerHTML.slice(0, 80)),
  links: Array.from(document.querySelectorAll("a[href]"), (a) => a.href)
    .filter((href) => !href.startsWith(own + "/")),
  attributes: attributes,
  hidden: getComputedStyle(document.body).display === "none",
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  text: document.body.textContent,
};
"""


def assert_inert(driver: WebDriver, site: Site, url: str) -> str:
    """Nothing of the page's event data ran, became an element or an attribute, or moved
    the layout; returns the page's text."""
    found = driver.execute_script(INSPECT)
    assert found["xss"] is None, (url, found["xss"])
    assert found["title"].endswith("· Sentry dashboard"), (url, found["title"])
    assert found["scripts"] == [f"{site.url}/sentry/static/dashboard.js"], url
    assert found["foreign"] == [], (url, found["foreign"])
    assert found["links"] == [], (url, found["links"])
    assert found["attributes"] == [], (url, found["attributes"])
    assert not found["hidden"], url
    assert found["overflow"] <= 1, (url, found["overflow"])
    return str(found["text"])


def assert_clickable(driver: WebDriver, element: WebElement) -> None:
    """``element`` is shown, enabled, and what a click at its centre reaches."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    assert element.is_displayed() and element.is_enabled()
    hit = driver.execute_script(
        "const box = arguments[0].getBoundingClientRect();"
        "const at = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);"
        "return at === arguments[0] || arguments[0].contains(at);",
        element,
    )
    assert hit, element.text


def test_hostile_events_run_no_script_and_pages_stay_usable(driver: WebDriver, site: Site) -> None:
    events = [hostile_event(n) for n in range(2)]
    for event in events:
        stored = requests.post(
            f"{site.url}/api/{site.hostile_project}/store/",
            data=json.dumps(event),
            headers={**sentry_auth(site.hostile_key), "Content-Type": "application/json"},
            timeout=30,
        )
        assert stored.status_code == 200, stored.text[:500]
    with site.app.app_context():
        storage = get_state(site.app).storage
        found = [storage.get_event_by_event_id(site.hostile_project, e["event_id"]) for e in events]
        saved = [event for event in found if event is not None]
        assert len(saved) == len(events)
        storage.create_note(saved[0].group_id, payload("note") + js_url("note_url") + LONG)
    group_ids = sorted({event.group_id for event in saved})
    base = f"{site.url}/sentry"
    project = f"{base}/projects/{site.hostile_project}"
    pages = [
        f"{base}/",
        f"{project}/",
        f"{project}/?query=",
        f"{project}/?query=" + requests.utils.quote(payload("query")),
        f"{project}/?query=is:bogus+" + requests.utils.quote(payload("bad_query")),
        f"{project}/?sort=" + requests.utils.quote(payload("sort")),
        f"{project}/releases/",
        *[f"{base}/issues/{group_id}/" for group_id in group_ids],
        *[f"{base}/issues/{e.group_id}/events/{e.id}/" for e in saved],
        f"{base}/issues/{saved[0].group_id}/" + requests.utils.quote(payload("path")),
    ]
    # Escaping alone (the browser told to ignore the page's Content-Security-Policy), then
    # escaping and the policy together, as served: the policy must never have to refuse.
    for bypass in (True, False):
        driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": bypass})
        try:
            for url in pages:
                open_page(driver, url)
                text = assert_inert(driver, site, url)
                if "/issues/" in url and "events" not in url and url.endswith("/"):
                    # The values are there, as text, and the actions still work.
                    assert "<script>window.__xss" in text and "javascript:window.__xss" in text
                    for button in driver.find_elements(By.CSS_SELECTOR, ".actions button"):
                        assert_clickable(driver, button)
                    assert_clickable(driver, driver.find_element(By.ID, "note-text"))
            violations = [
                entry["message"]
                for entry in driver.get_log("browser")
                if "Content Security Policy" in entry["message"]
            ]
            assert violations == []
        finally:
            driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": False})
    # Usable, not just clickable: resolve the hostile issue from its page.
    open_page(driver, f"{base}/issues/{saved[1].group_id}/")
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Resolve']"))
    assert notice(driver) == "Issue resolved."
    assert_inert(driver, site, driver.current_url)


# -- keyboard and small screens --------------------------------------------------------------------

#: Marks every element that should take the keyboard's focus, in document order.
MARK_FOCUSABLE = """
const wanted = document.querySelectorAll(
  "a[href], button, input:not([type=hidden]), select, textarea, summary");
wanted.forEach((element, index) => element.setAttribute("data-focus-index", index));
return Array.from(
  wanted, (element) => element.tagName + " " + element.textContent.trim().slice(0, 40));
"""


def test_keyboard_reaches_every_action_with_a_visible_focus(driver: WebDriver, site: Site) -> None:
    group_id = add_issue(site, site.actions_project, f"Keyboard {uuid.uuid4().hex[:8]}")
    with site.app.app_context():
        storage = get_state(site.app).storage
        storage.create_note(group_id, "a note")
        # A second event, so the issue page links to an older one.
        group = storage.get_group(group_id)
        assert group is not None
        storage.save_event(site.actions_project, make_event(title=group.title, message="again"))
    open_page(driver, f"{site.url}/sentry/issues/{group_id}/")
    wanted = driver.execute_script(MARK_FOCUSABLE)
    labels = " | ".join(wanted)
    for action in ("Resolve", "Mute", "Bookmark", "Delete", "Add note", "Older event", "Latest"):
        assert action in labels, labels
    reached: dict[int, str] = {}
    # From the top of the page: nothing focused, so the first Tab reaches the first element.
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    for _ in range(len(wanted) + 10):
        webdriver.ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        index = focused.get_attribute("data-focus-index")
        if index is None:
            continue
        outline = driver.execute_script(
            "const style = getComputedStyle(arguments[0]);"
            "return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;",
            focused,
        )
        reached[int(index)] = "visible" if outline else "invisible"
    missed = [label for index, label in enumerate(wanted) if index not in reached]
    assert missed == []
    unseen = [wanted[index] for index, state in reached.items() if state != "visible"]
    assert unseen == []
    # Enter on the focused Resolve button sends its form.
    resolve = driver.find_element(By.XPATH, "//button[text()='Resolve']")
    driver.execute_script("arguments[0].focus()", resolve)
    old = driver.find_element(By.TAG_NAME, "html")
    webdriver.ActionChains(driver).send_keys(Keys.ENTER).perform()
    WebDriverWait(driver, WAIT).until(ec.staleness_of(old))
    wait_for_main(driver)
    assert notice(driver) == "Issue resolved."


#: The page's width, and the elements reaching past the window (what to fix when it is wide).
WIDEST = """
const visible = document.documentElement.clientWidth;  // the window less its scrollbar
const past = [];
for (const element of document.querySelectorAll("body *")) {
  const right = element.getBoundingClientRect().right;
  if (right > visible + 1 && past.length < 8) {
    past.push(element.tagName + "." + element.className + " " + Math.round(right));
  }
}
return {width: document.documentElement.scrollWidth, visible: visible, past: past};
"""


def test_readable_375_px_wide(driver: WebDriver, site: Site) -> None:
    hostile = hostile_event(9)
    stored = requests.post(
        f"{site.url}/api/{site.hostile_project}/store/",
        data=json.dumps(hostile),
        headers={**sentry_auth(site.hostile_key), "Content-Type": "application/json"},
        timeout=30,
    )
    assert stored.status_code == 200, stored.text[:500]
    with site.app.app_context():
        event = get_state(site.app).storage.get_event_by_event_id(
            site.hostile_project, hostile["event_id"]
        )
    assert event is not None
    plain = add_issue(site, site.actions_project, "Narrow")
    driver.set_window_size(375, 800)
    width = driver.execute_script("return window.innerWidth")
    if width != 375:  # the window's frame, where there is one, takes its share
        driver.set_window_size(375 + (375 - width), 800)
    assert driver.execute_script("return window.innerWidth") == 375
    base = f"{site.url}/sentry"
    for url in (
        f"{base}/",
        f"{base}/projects/{site.paging_project}/",
        f"{base}/projects/{site.hostile_project}/",
        f"{base}/projects/{site.actions_project}/releases/",
        f"{base}/issues/{plain}/",
        f"{base}/issues/{event.group_id}/",
    ):
        open_page(driver, url)
        driver.execute_script(
            "for (const details of document.querySelectorAll('details')) details.open = true;"
        )
        overflow = driver.execute_script(WIDEST)
        # No sideways scrolling: the page is no wider than the window (less its scrollbar).
        assert overflow["visible"] <= 375
        assert overflow["width"] <= overflow["visible"] + 1, (url, overflow)
        # The actions and the title are on screen, not pushed off it.
        for element in driver.find_elements(
            By.CSS_SELECTOR, "h1, .actions button, .issues a.title"
        ):
            box = element.rect
            assert box["x"] >= 0 and box["x"] + box["width"] <= overflow["visible"] + 1, (
                url,
                element.text[:40],
            )
