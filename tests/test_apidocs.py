"""The API reference page (``<prefix>/docs/``): the OpenAPI document in Swagger UI, served
from the files of the ``flask-swagger-ui`` package with no CDN and no credentials.

The first tests use Flask's test client: the page, its files (content types, cache headers,
an allowlist that no path escapes), the redirect, HEAD/OPTIONS/405, a custom prefix and a
``SCRIPT_NAME`` mount, the JSON 501 without the package. The last one renders the page in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``; skipped where they are not
installed) and checks that the document's operations appear, with nothing in the console
and no request leaving the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import typing as t
from html.parser import HTMLParser
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from flask_sentry_api.views import apidocs
from tests.helpers import LiveServer
from tests.helpers import make_app

PAGE = "/api/0/docs/"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


class _Links(HTMLParser):
    """The URLs a page loads (``<script src>``, ``<link href>``) and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.openapi_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            if attributes.get("src"):
                self.urls.append(t.cast(str, attributes["src"]))
            else:
                self.inline_scripts += 1
        if tag == "link" and attributes.get("href"):
            self.urls.append(t.cast(str, attributes["href"]))
        if "data-openapi-url" in attributes:
            self.openapi_url = attributes["data-openapi-url"]
        if any(name.startswith("on") for name in attributes):
            self.inline_scripts += 1


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def test_the_page_is_html_without_credentials_or_inline_script(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert response.headers["Content-Language"] == "en"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    links = _links(response.text)
    assert links.inline_scripts == 0
    assert {urlsplit(url).path for url in links.urls} == set(apidocs.ASSETS)
    # Relative URLs only: nothing from another host, and the page works under any mount.
    assert all(not urlsplit(url).scheme and not url.startswith("/") for url in links.urls)
    assert links.openapi_url == "../openapi.json"


def test_credentials_are_not_needed_nor_checked(client, auth):
    # Sent or not, valid or not: the page is public, like the document it shows.
    assert client.get(PAGE, headers=auth).status_code == 200
    wrong = {"Authorization": "Basic d3Jvbmc6d3Jvbmc="}
    assert client.get(PAGE, headers=wrong).status_code == 200
    assert client.get(PAGE + "swagger-initializer.js", headers=wrong).status_code == 200


def test_every_file_the_page_loads_is_served_with_its_type_and_cache_headers(client):
    html = client.get(PAGE).text
    types = {}
    for url in _links(html).urls:
        response = client.get(urljoin(PAGE, url))
        assert response.status_code == 200, url
        types[urlsplit(url).path] = response.mimetype
        # The URL names the file's hash, so a new version of the file is a new URL.
        version = dict(p.split("=") for p in urlsplit(url).query.split("&"))["v"]
        assert hashlib.sha256(response.data).hexdigest().startswith(version), url
        assert response.headers["Cache-Control"] == "public, max-age=86400"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == apidocs.CONTENT_SECURITY_POLICY
        unchanged = client.get(
            urljoin(PAGE, url), headers={"If-None-Match": response.headers["ETag"]}
        )
        assert unchanged.status_code == 304 and unchanged.data == b""
    assert types == {
        "swagger-ui.css": "text/css",
        "index.css": "text/css",
        "favicon-32x32.png": "image/png",
        "favicon-16x16.png": "image/png",
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-initializer.js": "text/javascript",
    }
    bundle = client.get(PAGE + "swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.data and len(bundle.data) > 500_000
    assert bundle.data == (apidocs.assets_dir() / "swagger-ui-bundle.js").read_bytes()  # type: ignore[operator]
    initializer = client.get(PAGE + "swagger-initializer.js").text
    assert "data-openapi-url" in initializer and "validatorUrl: null" in initializer


@pytest.mark.parametrize(
    "path",
    [
        "nope.js",
        # Files of the package's dist/ folder that the page does not load.
        "LICENSE",
        "VERSION",
        "swagger-ui.js",
        "oauth2-redirect.html",
        "SWAGGER-UI.CSS",
        "swagger-ui.css%00",
        # Out of the folder, whatever the encoding.
        "..",
        "../openapi.json",
        "..%2fopenapi.json",
        "%2e%2e%2f%2e%2e%2fsetup.py",
        "..%5c..%5csetup.py",
        "%2fetc%2fpasswd",
        "dist/swagger-ui.css",
        "../../../../etc/passwd",
    ],
)
def test_nothing_but_the_page_files_is_served(client, path):
    response = client.get(PAGE + path)
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found"}


def test_without_the_slash_it_redirects_keeping_the_query(client):
    response = client.get("/api/0/docs")
    assert response.status_code == 308
    # Relative, so a proxy's path prefix is kept.
    assert response.headers["Location"] == "docs/"
    assert urljoin("http://x/api/0/docs", response.headers["Location"]) == "http://x" + PAGE
    query = client.get("/api/0/docs?a=1&b=%20")
    assert query.headers["Location"] == "docs/?a=1&b=%20"


def test_head_options_and_other_methods_like_every_endpoint(client):
    head = client.head(PAGE)
    assert head.status_code == 200 and head.data == b""
    assert head.mimetype == "text/html"
    head_file = client.head(PAGE + "swagger-ui.css")
    assert head_file.status_code == 200 and head_file.data == b""
    assert int(head_file.headers["Content-Length"]) > 0
    options = client.options(PAGE)
    assert options.status_code == 200
    assert options.get_json()["methods"] == ["GET", "HEAD", "OPTIONS"]
    assert options.get_json()["renders"] == ["text/html"]
    assert client.options(PAGE + "index.css").get_json()["renders"] == [
        "image/png",
        "text/css",
        "text/javascript",
    ]
    # OPTIONS follows the document's rules for the path too: an unknown file is a 404.
    assert client.options(PAGE + "nope.js").status_code == 404
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in (PAGE, PAGE + "index.css"):
            response = client.open(path, method=method)
            assert response.status_code == 405, (method, path)
            assert response.get_json() == {"detail": f'Method "{method}" not allowed.'}
            assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_the_document_describes_the_page_and_its_files(client):
    document = client.get("/api/0/openapi.json").get_json()
    page = document["paths"]["/docs/"]
    assert set(page) == {"get", "head", "options"}
    assert page["get"]["security"] == []
    assert set(page["get"]["responses"]["200"]["content"]) == {"text/html"}
    files = document["paths"]["/docs/{asset}"]
    (parameter,) = files["parameters"]
    assert parameter["schema"]["enum"] == sorted(apidocs.ASSETS)
    assert set(files["get"]["responses"]) == {"200", "404", "501"}


def _mounted(app: Flask, mount: str) -> None:
    """Serve ``app`` under ``mount`` (its ``SCRIPT_NAME``), as a WSGI server would."""
    app.wsgi_app = DispatcherMiddleware(WerkzeugNotFound(), {mount: app.wsgi_app})  # type: ignore[method-assign]


def test_under_a_custom_prefix_and_a_mount_point():
    app = make_app({"SENTRY_API_URL_PREFIX": "/sentry-api"})
    _mounted(app, "/mount")
    client = app.test_client()
    assert client.get("/mount/api/0/docs/").status_code == 404
    page = client.get("/mount/sentry-api/docs/")
    assert page.status_code == 200
    links = _links(page.text)
    document_url = urljoin("/mount/sentry-api/docs/", t.cast(str, links.openapi_url))
    assert document_url == "/mount/sentry-api/openapi.json"
    document = client.get(document_url).get_json()
    assert document["servers"] == [{"url": "/mount/sentry-api"}]
    assert "/docs/" in document["paths"]
    for url in links.urls:
        assert client.get(urljoin("/mount/sentry-api/docs/", url)).status_code == 200, url
    redirect = client.get("/mount/sentry-api/docs")
    assert urljoin("/mount/sentry-api/docs", redirect.headers["Location"]) == (
        "/mount/sentry-api/docs/"
    )


def test_without_the_assets_package_a_json_501_names_it(client, monkeypatch):
    monkeypatch.setattr(apidocs, "assets_dir", lambda: None)
    for path in (PAGE, PAGE + "swagger-ui.css", PAGE + "swagger-initializer.js"):
        response = client.get(path)
        assert response.status_code == 501, path
        assert response.get_json() == {
            "detail": "The API reference page needs the flask-swagger-ui package:"
            " pip install flask-swagger-ui"
        }
    # Still a 404 for what would never be served.
    assert client.get(PAGE + "LICENSE").status_code == 404
    # The rest of the API does not need it.
    assert client.get("/api/0/openapi.json").status_code == 200


# -- in a browser -------------------------------------------------------------------------------

#: Operations of the document, as the page must show them.
SHOWN = (
    (
        "GET",
        "/projects/{organization_slug}/{project_id_or_slug}/keys/",
        "The project's keys, oldest first.",
    ),
    (
        "PUT",
        "/projects/{project_id}/groups/",
        "Change the groups named by `id`, or the status of every group the filters select.",
    ),
    ("GET", "/", "The API version; with credentials, what they allow."),
)

#: The operation rows in view: (method, path, summary) each.
_READ_ROWS = """
return Array.from(document.querySelectorAll(".opblock-summary")).map(function (row) {
  var path = row.querySelector(".opblock-summary-path");
  var summary = row.querySelector(".opblock-summary-description");
  return [
    row.querySelector(".opblock-summary-method").textContent,
    path.getAttribute("data-path"),
    summary ? summary.textContent : "",
  ];
});
"""
#: One step down the page, back to the top from the bottom.
_SCROLL_STEP = """
var bottom = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
window.scrollTo(0, bottom ? 0 : window.scrollY + 300);
"""


@pytest.mark.live
@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium to drive: install Debian's chromium and chromium-driver"
    " (apt-get install chromium chromium-driver) to run the reference page's browser test",
)
def test_the_page_renders_the_documents_operations_in_chromium():
    # Selenium Manager (which would download a browser or driver) is never asked.
    os.environ.setdefault("SE_OFFLINE", "true")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app = make_app({"SENTRY_API_URL_PREFIX": "/sentry-api"})
    _mounted(app, "/mount")
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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        with LiveServer(app) as server:
            # Without the slash: the redirect is part of the way a person types the URL.
            driver.get(server.url + "/mount/sentry-api/docs")

            document = app.test_client().get("/mount/sentry-api/openapi.json").get_json()
            documented = {
                (method.upper(), path)
                for path, item in document["paths"].items()
                for method in item
                if method != "parameters"
            }
            # Swagger UI 5 renders a long list (150 rows or more: ours) as a virtual list,
            # only the rows in view: scroll through it, one step per poll, noting each row.
            seen: dict[tuple[str, str], str] = {}

            def scroll_and_read(d: t.Any) -> bool:
                rows = d.execute_script(_READ_ROWS)
                seen.update({(row[0], row[1]): row[2] for row in rows})
                d.execute_script(_SCROLL_STEP)
                return documented <= set(seen)

            WebDriverWait(driver, 120, poll_frequency=0.05).until(scroll_and_read)
            assert set(seen) == documented
            assert driver.current_url == server.url + "/mount/sentry-api/docs/"
            for method, path, summary in SHOWN:
                assert seen[method, path] == summary
            # Swagger UI 4 shows "Unable to render this definition" for OpenAPI 3.1, with
            # nothing in the console: the rows above and the version badge say it was read.
            assert "Unable to render" not in driver.page_source
            title = driver.find_element(By.CSS_SELECTOR, ".info .title").text
            assert "Sentry Web API" in title and "OAS 3.1" in title
            servers = driver.find_element(By.CSS_SELECTOR, ".servers select").text
            assert servers == "/mount/sentry-api"
            # Opening an operation resolves its part of the document (parameters, responses).
            driver.execute_script("window.scrollTo(0, 0)")
            driver.find_element(By.CSS_SELECTOR, "#operations-default-getIndex button").click()
            responses = WebDriverWait(driver, 30).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock.is-open .responses-table")
            )
            # The 200's media type, and its header's description (Markdown, rendered).
            assert "application/json" in responses[0].text
            assert "Always en." in responses[0].text
            # "Try it out" sends the request to the document's server (the mount and prefix
            # included), which the page's CSP allows (same origin).
            driver.find_element(By.CSS_SELECTOR, ".opblock.is-open .try-out__btn").click()
            driver.find_element(By.CSS_SELECTOR, ".opblock.is-open .execute").click()
            live = WebDriverWait(driver, 30).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock.is-open .live-responses-table")
            )
            assert "/mount/sentry-api/" in driver.find_element(By.CSS_SELECTOR, ".request-url").text
            assert '"version": "0"' in live[0].text
            console = driver.get_log("browser")
            assert console == []
            requested = set()
            for entry in driver.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message["method"] == "Network.requestWillBeSent":
                    requested.add(message["params"]["request"]["url"])
            assert server.url + "/mount/sentry-api/openapi.json" in requested
            # Nothing from a CDN: the server's own URLs, and icons inlined in the stylesheet.
            elsewhere = {
                url
                for url in requested
                if not url.startswith(server.url + "/") and not url.startswith("data:")
            }
            assert elsewhere == set()
    finally:
        driver.quit()
