"""The example host app: first start creates a demo project; ``flask run`` serves the API."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
import requests

from example_app import create_app
from example_app import instance_secret_key
from flask_sentry_api import get_state
from tests.helpers import close_after_test
from tests.helpers import example_app_under_gunicorn

ROOT = Path(__file__).resolve().parent.parent
CURL_LINE = re.compile(r"curl -u ([0-9a-f]{32}):([0-9a-f]{32}) (\S+)")


def test_first_start_creates_demo_project_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    app = create_app()
    printed = capsys.readouterr().err
    match = CURL_LINE.search(printed)
    assert match, printed
    public, secret, url = match.groups()
    assert url == "http://127.0.0.1:5000/api/0/projects/1/"
    assert f"http://{public}@127.0.0.1:5000/1" in printed
    with app.app_context():
        key = get_state(app).storage.get_key(public)
        assert key is not None and key.secret_key == secret
    create_app()  # a second start finds the project and prints no secret again
    assert secret not in capsys.readouterr().err


def test_sqlite_file_uses_wal_and_syncs_at_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from example_app import db

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'wal.db'}")
    app = close_after_test(create_app({"EXAMPLE_CREATE_DEMO_PROJECT": False}))
    with app.app_context():
        # Two connections at once: the pool had to open a second one, which must be set too.
        with db.engine.connect() as first, db.engine.connect() as second:
            for connection in (first, second):
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                # 1 is NORMAL; SQLite's default is 2 (FULL), an fsync per commit.
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def running_example(tmp_path: Path) -> t.Iterator[tuple[str, str, str]]:
    """``flask --app example_app run`` as the README says, on a free port."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}"}
    env["EXAMPLE_BASE_URL"] = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "example_app", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        output = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not CURL_LINE.search(output):
            output += process.stderr.readline()
        match = CURL_LINE.search(output)
        assert match, output
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                requests.get(base + "/api/0/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield base, match.group(1), match.group(2)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.live
def test_the_docs_curl_session_against_flask_run(
    running_example: tuple[str, str, str], tmp_path: Path
) -> None:
    base, public, secret = running_example
    index = requests.get(f"{base}/api/0/", timeout=5)
    assert index.status_code == 200
    assert index.json() == {"version": "0"}
    assert index.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert index.headers["Content-Language"] == "en"

    project = requests.get(f"{base}/api/0/projects/1/", auth=(public, secret), timeout=5)
    assert project.status_code == 200
    assert project.json()["slug"] == "demo"

    empty = requests.get(f"{base}/api/0/projects/1/groups/", auth=(public, secret), timeout=5)
    assert empty.status_code == 200 and empty.json() == []

    # The README sends the demo's events before it lists the groups, and shows them.
    demo = subprocess.run(
        [sys.executable, "-m", "example_app.demo_errors", "--url", base],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "SENTRY_DSN"},
            "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",  # the server's
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith(f"Stored 5 events at {base} (project 1).")
    groups = requests.get(
        f"{base}/api/0/projects/1/groups/?limit=2", auth=(public, secret), timeout=5
    )
    assert groups.status_code == 200
    assert [(group["shortId"], group["title"], group["count"]) for group in groups.json()] == [
        ("DEMO-4", "Demo: disk almost full", "1"),
        ("DEMO-3", "CheckoutError: payment provider refused cart 1", "2"),
    ]
    assert groups.links["next"]["results"] == "true"
    assert groups.links["previous"]["results"] == "false"

    resolved = requests.put(
        f"{base}/api/0/projects/1/groups/?status=unresolved",
        json={"status": "resolved"},
        auth=(public, secret),
        timeout=5,
    )
    assert resolved.status_code == 200 and resolved.json() == {"status": "resolved"}

    denied = requests.get(f"{base}/api/0/projects/1/", auth=(public, "0" * 32), timeout=5)
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"] == 'Basic realm="api"'


@pytest.mark.live
@pytest.mark.load
def test_the_readme_gunicorn_command_serves_a_full_bulk_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README serves with ``--limit-request-line 0``: a bulk update naming
    SENTRY_API_MAX_BULK_IDS ids of 19 digits (~23 KB of URL) reaches the API, where
    gunicorn's default request-line limit answers an HTML 414."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    app = close_after_test(create_app())  # the demo project and its key, before any worker
    with app.app_context():
        key = get_state(app).storage.list_keys(1)[0]
    ids = "&".join(f"id={9_000_000_000_000_000_000 + n}" for n in range(1000))
    for options, expected in ((["--limit-request-line", "0"], 204), ([], 414)):
        log = tmp_path / f"gunicorn{len(options)}.log"
        with example_app_under_gunicorn(log, env, options=options) as (url, _):
            response = requests.put(
                f"{url}/api/0/projects/1/groups/?{ids}",
                json={"status": "resolved"},
                auth=(key.public_key, key.secret_key),
                timeout=30,
            )
        assert response.status_code == expected, response.text[:200]
        if expected == 204:
            assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("params", "url"),
    [
        ({"host": "127.0.0.1", "port": 18200}, "http://127.0.0.1:18200"),
        ({"host": "0.0.0.0", "port": 8080}, "http://127.0.0.1:8080"),
        ({"host": "::1", "port": 5001}, "http://[::1]:5001"),
    ],
)
def test_flask_run_prints_the_address_it_serves(
    params: dict[str, t.Any],
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``flask --app example_app run --port 18200`` loads the app inside its ``run``
    command: the first-start lines name that port, not 5000."""
    import click

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.delenv("EXAMPLE_BASE_URL", raising=False)
    with click.Context(click.Command("run"), info_name="run") as context:
        context.params = params
        app = close_after_test(create_app())
    printed = capsys.readouterr().err
    assert app.config["EXAMPLE_BASE_URL"] == url
    assert f"{url}/api/0/projects/1/" in printed
    assert f"python -m example_app.demo_errors --url {url}" in printed


def test_dashboard_is_closed_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.delenv("EXAMPLE_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("EXAMPLE_BASE_URL", raising=False)
    app = close_after_test(create_app())
    printed = capsys.readouterr().err
    assert (
        "Dashboard: http://127.0.0.1:5000/sentry/ (closed: set EXAMPLE_DASHBOARD_PASSWORD"
        " to open it as user admin)"
    ) in printed
    client = app.test_client()
    for credentials in (None, ("admin", ""), ("admin", "anything")):
        refused = client.get("/sentry/projects/1/", auth=credentials)
        assert refused.status_code == 403
        assert "SENTRY_API_DASHBOARD_AUTH" in refused.text
        assert "Demo" not in refused.text


def test_dashboard_opens_with_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.setenv("EXAMPLE_DASHBOARD_PASSWORD", "correct horse")
    monkeypatch.setenv("EXAMPLE_BASE_URL", "http://127.0.0.1:18200")
    app = close_after_test(create_app())
    printed = capsys.readouterr().err
    assert (
        "Dashboard: http://127.0.0.1:18200/sentry/"
        " (user admin, the password in EXAMPLE_DASHBOARD_PASSWORD)"
    ) in printed
    assert "correct horse" not in printed
    client = app.test_client()
    for credentials in (None, ("admin", "correct hors"), ("root", "correct horse")):
        asked = client.get("/sentry/projects/1/", auth=credentials)
        assert asked.status_code == 401
        assert asked.headers["WWW-Authenticate"].startswith("Basic ")
    page = client.get("/sentry/projects/1/", auth=("admin", "correct horse"))
    assert page.status_code == 200
    assert "<h1>Demo</h1>" in page.text
    # The API is unchanged: its own credentials, not the dashboard's.
    assert client.get("/api/0/projects/1/", auth=("admin", "correct horse")).status_code == 401


def test_secret_key_is_made_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker and every restart signs the dashboard's sessions with the same key."""
    key = instance_secret_key(str(tmp_path))
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert instance_secret_key(str(tmp_path)) == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]  # no temporary left
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    first = close_after_test(create_app())
    again = close_after_test(create_app())
    assert first.config["SECRET_KEY"] == again.config["SECRET_KEY"]
    assert re.fullmatch(r"[0-9a-f]{64}", first.config["SECRET_KEY"])
