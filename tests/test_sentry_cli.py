"""The real, unmodified sentry-cli binaries against a live server over HTTP (SPEC section 10):
2.58.6 (the test extra) with an API key (Basic ``<token>:``) and with an auth token (Bearer),
and a 3.x binary named by ``SENTRY_API_TEST_SENTRY_CLI3`` (Bearer). Each command's effect is
read back through the web API with the project's key.

Tokens are made as a user makes them, with ``flask sentry-api create-token``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest
import requests
from flask import Flask

from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ROLE_STORE
from flask_sentry_api.storage import SCOPES
from flask_sentry_api.storage import Project
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.storage import Storage
from tests.helpers import add_event
from tests.helpers import add_group

pytestmark = pytest.mark.live

CLI2_VERSION = "2.58.6"
CLI3_ENV = "SENTRY_API_TEST_SENTRY_CLI3"
TIMEOUT = 60
#: A table row of ``issues list``: ``| <id> | <short id> | <title> | ...``.
ISSUE_ROW = re.compile(r"^\|\s*(\d+)\s*\|", re.MULTILINE)
#: A table row of ``events list``: ``| <event id as a UUID> | <date> | <title> | ...``.
EVENT_ROW = re.compile(r"^\|\s*([0-9a-f]{8}-[0-9a-f-]{27})\s*\|", re.MULTILINE)
#: A scope line of ``info``: ``    - project:read``.
SCOPE_LINE = re.compile(r"^\s+- (\S+)$", re.MULTILINE)
#: Variables that would make sentry-cli talk to another server, in another way, or read
#: another configuration than the one each test gives it.
_FOREIGN_ENV = re.compile(r"^(SENTRY_.*|CUSTOM_HEADER|(http|https|all|no)_proxy)$", re.I)


# -- the binaries ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SentryCli:
    """One sentry-cli binary and the environment variable it reads the token from."""

    binary: str
    token_variable: str


@functools.cache
def version_of(binary: str) -> str:
    """What ``sentry-cli --version`` says, e.g. ``sentry-cli 2.58.6``."""
    done = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    return done.stdout.strip()


def cli2_binary() -> str | None:
    """sentry-cli 2.58.6 from the test extra: next to this Python, else on PATH."""
    beside = Path(sys.executable).with_name("sentry-cli")
    return str(beside) if beside.is_file() else shutil.which("sentry-cli")


def cli3_binary() -> str | None:
    """The 3.x binary ``SENTRY_API_TEST_SENTRY_CLI3`` names: the binary itself, or the
    directory of ``pip install --target DIR sentry-cli==3.*`` (binary in ``DIR/bin``)."""
    named = os.environ.get(CLI3_ENV, "").strip()
    if not named:
        return None
    path = Path(named)
    for candidate in (path, path / "bin" / "sentry-cli", path / "sentry-cli"):
        if candidate.is_file():
            return str(candidate)
    pytest.fail(f"{CLI3_ENV}={named!r} names no sentry-cli 3.x binary")


CLIENTS = ["2.58.6 api key", "2.58.6 auth token", "3.x auth token"]


@pytest.fixture(params=CLIENTS)
def cli(request: pytest.FixtureRequest) -> SentryCli:
    if request.param.startswith("3"):
        binary = cli3_binary()
        if binary is None:
            pytest.skip(f"{CLI3_ENV} names no sentry-cli 3.x binary")
        version = version_of(binary)
        assert version.startswith("sentry-cli 3."), (binary, version)
        return SentryCli(binary, "SENTRY_AUTH_TOKEN")
    binary = cli2_binary()
    if binary is None:
        pytest.skip(f"sentry-cli {CLI2_VERSION} is not installed (pip install -e '.[test]')")
    assert version_of(binary) == f"sentry-cli {CLI2_VERSION}", binary
    variable = "SENTRY_API_KEY" if request.param.endswith("api key") else "SENTRY_AUTH_TOKEN"
    return SentryCli(binary, variable)


# -- the server, its tokens and the API as an oracle ------------------------------------------


def flask_cli(app: Flask, *args: str) -> str:
    """Output of ``flask sentry-api ARGS``, which must succeed."""
    result = app.test_cli_runner().invoke(args=["sentry-api", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def create_token(
    app: Flask, project: Project, *scopes: str, label: str | None = None
) -> dict[str, t.Any]:
    """``flask sentry-api create-token PROJECT --json`` (with ``--scopes`` and ``--label``
    when given)."""
    args = ["create-token", str(project.id), "--json"]
    for scope in scopes:
        args += ["--scopes", scope]
    if label is not None:
        args += ["--label", label]
    record: dict[str, t.Any] = json.loads(flask_cli(app, *args))
    assert record["project"] == str(project.id), record
    assert isinstance(record["token"], str) and record["token"], record
    return record


def token_id(app: Flask, project: Project, label: str) -> str:
    """The id ``flask sentry-api list-tokens`` shows for the project's token ``label``."""
    listed = json.loads(flask_cli(app, "list-tokens", "--project", str(project.id), "--json"))
    (found,) = [record["id"] for record in listed if record["label"] == label]
    return t.cast(str, found)


class Live:
    """The live server, the project, its key (for reading effects back) and the CLI."""

    def __init__(
        self, app: Flask, storage: Storage, url: str, project: Project, home: Path
    ) -> None:
        self.app, self.storage, self.url, self.project, self.home = app, storage, url, project, home
        self.key: ProjectKey = storage.create_key(project.id, ROLE_STORE | ROLE_API)
        #: A token with the default scopes (all of them), as ``create-token --json`` gave it.
        self.record = create_token(app, project)
        self.token: str = self.record["token"]

    # The CLI.

    def run(
        self, cli: SentryCli, *args: str, token: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run sentry-cli with a fresh HOME and working directory (no ``.sentryclirc``), the
        live server as ``SENTRY_URL``, organization ``sentry``, the project's slug and
        ``token`` (default: a token with every scope); ``env`` adds or overrides."""
        environ = {k: v for k, v in os.environ.items() if not _FOREIGN_ENV.match(k)}
        environ.update(
            HOME=str(self.home),
            NO_PROXY="127.0.0.1,localhost",
            SENTRY_URL=self.url + "/",
            SENTRY_ORG="sentry",
            SENTRY_PROJECT=self.project.slug,
            SENTRY_DISABLE_UPDATE_CHECK="1",
        )
        environ[cli.token_variable] = self.token if token is None else token
        environ.update(env)
        return subprocess.run(
            [cli.binary, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=environ,
            cwd=self.home,
            check=False,
        )

    def ok(self, cli: SentryCli, *args: str, **kwargs: t.Any) -> str:
        """Run sentry-cli; it must exit 0. Its standard output."""
        done = self.run(cli, *args, **kwargs)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    # The API (2015 paths, the project's key): what the commands did.

    def api(self, path: str, **params: str) -> requests.Response:
        response = requests.get(
            f"{self.url}/api/0{path}",
            params=params,
            auth=(self.key.public_key, self.key.secret_key),
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response

    def group_status(self, group_id: int) -> str:
        return t.cast(str, self.api(f"/groups/{group_id}/").json()["status"])

    def all_group_ids(self, project: Project | None = None) -> list[int]:
        """Every group of the project (any status), walking the ``Link`` header."""
        url = f"/projects/{(project or self.project).id}/groups/"
        response = self.api(url, query="")
        ids = [int(group["id"]) for group in response.json()]
        while response.links["next"]["results"] == "true":
            response = self.api(url, query="", cursor=response.links["next"]["cursor"])
            ids += [int(group["id"]) for group in response.json()]
        return ids

    def releases(self) -> dict[str, dict[str, t.Any]]:
        found = self.api(f"/projects/{self.project.id}/releases/").json()
        return {release["version"]: release for release in found}


@pytest.fixture
def live(
    app: Flask, storage: Storage, project: Project, live_server_url: str, tmp_path: Path
) -> Live:
    home = tmp_path / "home"
    home.mkdir()
    return Live(app, storage, live_server_url, project, home)


# -- the commands ----------------------------------------------------------------------------


def test_info_verifies_the_token_and_lists_its_scopes(live: Live, cli: SentryCli) -> None:
    assert sorted(live.record["scopes"]) == sorted(SCOPES)  # the default: every scope
    out = live.ok(cli, "info")
    assert f"Sentry Server: {live.url}" in out
    assert f"Default Project: {live.project.slug}" in out
    assert sorted(SCOPE_LINE.findall(out)) == sorted(SCOPES)


def test_info_lists_exactly_the_scopes_granted(live: Live, cli: SentryCli) -> None:
    token = create_token(live.app, live.project, "event:read", "project:read")["token"]
    out = live.ok(cli, "info", token=token)
    assert sorted(SCOPE_LINE.findall(out)) == ["event:read", "project:read"]


def test_issues_list_reads_every_page(live: Live, cli: SentryCli) -> None:
    """150 issues: two pages of 100; sentry-cli stops silently (exit 0) when a later page
    fails, so only the number of rows shows that the second page was read."""
    for number in range(150):
        add_group(live.storage, live.project, f"g{number:03}")
    add_group(live.storage, live.project, "resolved", status="resolved")
    other = live.storage.create_project("Other")
    add_group(live.storage, other, "elsewhere")

    out = live.ok(cli, "issues", "list")
    printed = [int(found) for found in ISSUE_ROW.findall(out)]
    expected = live.all_group_ids()
    assert len(expected) == 151  # the empty query lists every status
    assert len(printed) == len(set(printed)) == 151
    assert sorted(printed) == sorted(expected)


def test_issues_list_with_a_query(live: Live, cli: SentryCli) -> None:
    unresolved = add_group(live.storage, live.project, "a")
    add_group(live.storage, live.project, "b", status="resolved")
    out = live.ok(cli, "issues", "list", "--query", "is:unresolved")
    assert [int(found) for found in ISSUE_ROW.findall(out)] == [unresolved]


def test_issues_resolve_by_id(live: Live, cli: SentryCli) -> None:
    target = add_group(live.storage, live.project, "a")
    bystander = add_group(live.storage, live.project, "b")
    out = live.ok(cli, "issues", "resolve", "-i", str(target))
    assert "new status: resolved" in out
    assert live.group_status(target) == "resolved"
    assert live.group_status(bystander) == "unresolved"


def test_issues_mute_by_id(live: Live, cli: SentryCli) -> None:
    first = add_group(live.storage, live.project, "a")
    second = add_group(live.storage, live.project, "b")
    bystander = add_group(live.storage, live.project, "c")
    live.ok(cli, "issues", "mute", "-i", str(first), "-i", str(second))
    assert [live.group_status(g) for g in (first, second, bystander)] == [
        "muted",
        "muted",
        "unresolved",
    ]


def test_issues_resolve_all_stays_in_the_project(live: Live, cli: SentryCli) -> None:
    """``--all`` sends no filter at all (2.x ``issues/``, 3.x ``issues/?``)."""
    ids = [add_group(live.storage, live.project, name) for name in "abc"]
    muted = add_group(live.storage, live.project, "d", status="muted")
    other = live.storage.create_project("Other")
    elsewhere = add_group(live.storage, other, "e")

    live.ok(cli, "issues", "resolve", "--all")
    assert {live.group_status(g) for g in [*ids, muted]} == {"resolved"}
    other_key = live.storage.create_key(other.id, ROLE_API)
    response = requests.get(
        f"{live.url}/api/0/groups/{elsewhere}/",
        auth=(other_key.public_key, other_key.secret_key),
        timeout=TIMEOUT,
    )
    assert response.json()["status"] == "unresolved"


def test_issues_unresolve_by_status(live: Live, cli: SentryCli) -> None:
    resolved = add_group(live.storage, live.project, "a", status="resolved")
    muted = add_group(live.storage, live.project, "b", status="muted")
    live.ok(cli, "issues", "unresolve", "--status", "resolved")
    assert (live.group_status(resolved), live.group_status(muted)) == ("unresolved", "muted")


def test_releases_new_list_finalize(live: Live, cli: SentryCli) -> None:
    assert "Created release v1" in live.ok(cli, "releases", "new", "v1")
    created = live.releases()["v1"]
    assert created["dateReleased"] is None
    assert created["dateStarted"] is not None  # sentry-cli sends it with nanoseconds

    listed = live.ok(cli, "releases", "list")
    row = next(line for line in listed.splitlines() if "| v1 " in line)
    assert "(unreleased)" in row

    assert "Finalized release v1" in live.ok(cli, "releases", "finalize", "v1")
    assert live.releases()["v1"]["dateReleased"] is not None
    row = next(line for line in live.ok(cli, "releases", "list").splitlines() if "| v1 " in line)
    assert "(unreleased)" not in row and " ago " in row

    assert live.ok(cli, "releases", "list", "--raw").split() == ["v1"]


def test_releases_new_is_idempotent(live: Live, cli: SentryCli) -> None:
    """CI reruns ``releases new``; Sentry answers an existing version with 208 and the
    release, which sentry-cli takes. A release first seen on an event is existing too."""
    live.ok(cli, "releases", "new", "v1")
    live.ok(cli, "releases", "new", "v1")
    add_group(live.storage, live.project, "a", release="v2")
    live.ok(cli, "releases", "new", "v2")
    assert sorted(live.releases()) == ["v1", "v2"]


def test_releases_with_the_project_given_by_its_id(live: Live, cli: SentryCli) -> None:
    """``SENTRY_PROJECT=<numeric id>``: 3.x sends ``"projects": [<int>]`` on create and
    ``["<id>"]`` on finalize."""
    project_id = str(live.project.id)
    live.ok(cli, "releases", "new", "v3", SENTRY_PROJECT=project_id)
    live.ok(cli, "releases", "finalize", "v3", SENTRY_PROJECT=project_id)
    assert live.releases()["v3"]["dateReleased"] is not None
    assert "v3" in live.ok(cli, "releases", "list", "--raw", SENTRY_PROJECT=project_id)


def test_projects_list_shows_the_reachable_project(live: Live, cli: SentryCli) -> None:
    live.storage.create_project("Other")  # the token is for "web" only
    out = live.ok(cli, "projects", "list")
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    assert [cell.strip() for cell in rows[0]] == ["ID", "Slug", "Team", "Name"]
    assert [[cell.strip() for cell in row] for row in rows[1:]] == [
        [str(live.project.id), "web", "-", "Web"]
    ]


def test_send_event_is_stored(live: Live, cli: SentryCli) -> None:
    host_port = live.url.removeprefix("http://")
    dsn = f"http://{live.key.public_key}@{host_port}/{live.project.id}"
    message = f"hello {uuid.uuid4().hex[:8]}"
    out = live.ok(cli, "send-event", "-m", message, SENTRY_DSN=dsn)
    found = re.search(r"Event id: ([0-9a-f-]{36})", out)
    assert found, out
    event_id = uuid.UUID(found.group(1)).hex

    groups = live.api(f"/projects/{live.project.id}/groups/", query="").json()
    assert [group["title"] for group in groups] == [message]
    latest = live.api(f"/groups/{groups[0]['id']}/events/latest/").json()
    assert latest["eventID"] == event_id
    assert latest["message"] == message


# -- credentials that must not work ---------------------------------------------------------


def test_a_token_without_the_scope_cannot_write(live: Live, cli: SentryCli) -> None:
    group = add_group(live.storage, live.project, "a")
    read_only = create_token(live.app, live.project, "project:read", "event:read")["token"]

    live.ok(cli, "issues", "list", token=read_only)
    for args in (("issues", "resolve", "-i", str(group)), ("releases", "new", "v1")):
        done = live.run(cli, *args, token=read_only)
        assert done.returncode != 0, (args, done.stdout)
        assert "http status: 403" in done.stderr, done.stderr
    assert live.group_status(group) == "unresolved"
    assert live.releases() == {}

    releases_only = create_token(live.app, live.project, "project:releases")["token"]
    live.ok(cli, "releases", "new", "v1", token=releases_only)
    done = live.run(cli, "issues", "resolve", "-i", str(group), token=releases_only)
    assert done.returncode != 0 and "http status: 403" in done.stderr, done.stderr
    assert live.group_status(group) == "unresolved"


def test_a_revoked_token_fails(live: Live, cli: SentryCli) -> None:
    group = add_group(live.storage, live.project, "a")
    token = create_token(live.app, live.project, label="deploys")["token"]
    live.ok(cli, "info", token=token)

    flask_cli(live.app, "revoke-token", token_id(live.app, live.project, "deploys"))

    for args in (("info",), ("issues", "resolve", "-i", str(group))):
        done = live.run(cli, *args, token=token)
        assert done.returncode != 0, (args, done.stdout)
        assert "http status: 401" in done.stderr, done.stderr
    assert live.group_status(group) == "unresolved"
    live.ok(cli, "info")  # the other token still works


def test_an_unknown_token_fails(live: Live, cli: SentryCli) -> None:
    group = add_group(live.storage, live.project, "a")
    forged = "sntryu_" + "0" * 64
    done = live.run(cli, "issues", "resolve", "-i", str(group), token=forged)
    assert done.returncode != 0 and "http status: 401" in done.stderr, done.stderr
    assert live.group_status(group) == "unresolved"


def test_a_dsn_public_key_is_no_credential(live: Live, cli: SentryCli) -> None:
    """The DSN's public key is public: sent as the API key or token, it reaches nothing."""
    group = add_group(live.storage, live.project, "a")
    for args in (("issues", "list"), ("issues", "resolve", "-i", str(group))):
        done = live.run(cli, *args, token=live.key.public_key)
        assert done.returncode != 0 and "http status: 401" in done.stderr, done.stderr
    assert live.group_status(group) == "unresolved"


def test_releases_info_and_delete(live: Live, cli: SentryCli) -> None:
    live.ok(cli, "releases", "new", "v1")
    info = live.ok(cli, "releases", "info", "v1")
    assert "| v1 " in info
    assert live.run(cli, "releases", "info", "v9").returncode != 0  # 404: no such release

    assert "Deleted release v1!" in live.ok(cli, "releases", "delete", "v1")
    assert live.releases() == {}
    assert "Did nothing" in live.ok(cli, "releases", "delete", "v1")  # 404 on the second


def test_events_list(live: Live, cli: SentryCli) -> None:
    """``events list`` reads ``eventID`` as a UUID, ``project`` as a number, ``user`` and
    ``tags`` as objects; every event of the project, newest first."""
    for number in range(3):
        add_event(
            live.storage,
            live.project,
            f"g{number}",
            user={"id": f"u{number}"},
            tags=(("level", "error"), ("shop", f"s{number}")),
        )
    host_port = live.url.removeprefix("http://")
    dsn = f"http://{live.key.public_key}@{host_port}/{live.project.id}"
    live.ok(cli, "send-event", "-m", "hello", "-t", "shop:cli", SENTRY_DSN=dsn)

    out = live.ok(cli, "events", "list", "--show-user", "--show-tags")
    printed = [uuid.UUID(found).hex for found in EVENT_ROW.findall(out)]
    groups = live.api(f"/projects/{live.project.id}/groups/", query="").json()
    expected = [
        event["eventID"]
        for group in groups
        for event in live.api(f"/groups/{group['id']}/events/").json()
    ]
    assert len(expected) == 4
    assert sorted(printed) == sorted(expected)
    assert "shop: cli" in out and "shop: s1" in out
