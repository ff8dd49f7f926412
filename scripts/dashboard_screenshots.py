"""Take the README's dashboard screenshots: the issues list and an issue, from demo data.

Run from the repository root (Debian's ``chromium`` and ``chromium-driver`` installed, and
the test extra, for Selenium and sentry-sdk)::

    python scripts/dashboard_screenshots.py            # writes docs/screenshots/*.png

It builds the example app on a fresh SQLite file in a temporary directory, seeds its demo
project (``flask sentry-api seed-demo``'s :func:`~flask_sentry_api.seed.seed_demo`), serves
it on a free port, sends the example's demo errors with the real sentry-sdk
(``python -m example_app.demo_errors``), and has headless Chromium log in with the
example's dashboard password and save ``issues.png`` (the demo project's issues) and
``issue.png`` (the demo's CheckoutError, seen twice). Nothing is downloaded: Selenium is
given the chromedriver's path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Selenium Manager (which would download a browser or driver) is never asked.
os.environ.setdefault("SE_OFFLINE", "true")


def _chromium(width: int, height: int) -> t.Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        sys.exit("Needs Chromium: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    # The page itself at exactly this size (--window-size counts the window's frame too).
    chrome.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    return chrome


@contextlib.contextmanager
def _serving(app: t.Any) -> t.Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _wait_for_page(driver: t.Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.find_elements(By.ID, "main")
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--groups", type=int, default=120, help="seeded demo issues")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    args.out.mkdir(parents=True, exist_ok=True)

    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as directory:
        os.environ.update(
            DATABASE_URL=f"sqlite:///{Path(directory) / 'screenshots.db'}",
            EXAMPLE_DASHBOARD_PASSWORD=password,
            FLASK_SECRET_KEY=secrets.token_hex(32),
        )
        os.environ.pop("SENTRY_DSN", None)
        from example_app import create_app
        from example_app import demo_errors
        from flask_sentry_api import get_state
        from flask_sentry_api.pagination import Window
        from flask_sentry_api.seed import seed_demo
        from flask_sentry_api.storage import GroupQuery

        app = create_app()
        with app.app_context():
            seed_demo(get_state(app).storage, 1, args.groups, 5, seed=15)
        with _serving(app) as url:
            if demo_errors.main(["--url", url]) != 0:
                return 1
            with app.app_context():
                groups = get_state(app).storage.list_groups(
                    1,
                    GroupQuery(text="CheckoutError"),
                    Window(op=None, value=0, descending=True, offset=0, limit=1),
                )
            driver = _chromium(args.width, args.height)
            try:
                login = url.replace("http://", f"http://admin:{password}@")
                driver.get(f"{login}/sentry/projects/1/")
                _wait_for_page(driver)
                driver.save_screenshot(str(args.out / "issues.png"))
                driver.get(f"{url}/sentry/issues/{groups[0].id}/")
                _wait_for_page(driver)
                driver.save_screenshot(str(args.out / "issue.png"))
            finally:
                driver.quit()
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
    for name in ("issues.png", "issue.png"):
        print(f"Wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
