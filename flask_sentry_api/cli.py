"""The ``flask sentry-api`` commands: create tables, projects and keys; disable keys; seed
demo data."""

from __future__ import annotations

import json
import sys
import typing as t
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup

from .seed import MAX_EVENTS_PER_GROUP
from .seed import seed_demo
from .state import get_state
from .storage import ROLE_API
from .storage import ROLE_NAMES
from .storage import ROLE_STORE
from .storage import Conflict
from .storage import ProjectKey
from .storage import Storage

cli = AppGroup("sentry-api", help="Manage the Sentry-compatible API's projects and keys.")


def _storage() -> Storage:
    storage = get_state().storage
    storage.init_schema()  # commands work on a fresh database
    return storage


def make_dsn(base_url: str, key: ProjectKey) -> str:
    """The DSN SDKs are configured with: ``scheme://public@host[:port][/path]/project_id``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{base_url!r} is not an http(s) URL", param_hint="--url")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{key.public_key}@{parts.netloc}{path}/{key.project_id}"


def _print_key(key: ProjectKey, slug: str | None, base_url: str, as_json: bool) -> None:
    record = {
        "id": str(key.project_id),
        "slug": slug,
        "publicKey": key.public_key,
        "secretKey": key.secret_key,
        "roles": key.role_names,
        "dsn": make_dsn(base_url, key),
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    for label, value in record.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{label + ':':<11}{shown}")


url_option = click.option(
    "--url",
    "base_url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="The server's base URL, for the DSN.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@cli.command("init-db")
def init_db() -> None:
    """Create the storage's tables, or migrate them to this version of the package."""
    _storage()
    click.echo("Tables are ready.")


@cli.command("create-project")
@click.argument("name")
@click.option("--slug", help="URL-safe short name (default: derived from NAME).")
@url_option
@json_option
def create_project(name: str, slug: str | None, base_url: str, as_json: bool) -> None:
    """Create a project and a key with the store and api roles."""
    storage = _storage()
    try:
        project = storage.create_project(name, slug)
    except Conflict as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    key = storage.create_key(project.id, ROLE_STORE | ROLE_API)
    _print_key(key, project.slug, base_url, as_json)


@cli.command("create-key")
@click.argument("project_id", type=int)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(sorted(ROLE_NAMES)),
    help="store (SDKs may send events) or api (Web API access); repeatable. Default: both.",
)
@url_option
@json_option
def create_key(project_id: int, roles: t.Sequence[str], base_url: str, as_json: bool) -> None:
    """Create another key for a project."""
    storage = _storage()
    project = storage.get_project(project_id)
    if project is None:
        raise click.BadParameter(f"no project with id {project_id}", param_hint="PROJECT_ID")
    bits = 0
    for role in roles or ROLE_NAMES:
        bits |= ROLE_NAMES[role]
    key = storage.create_key(project_id, bits)
    _print_key(key, project.slug, base_url, as_json)


@cli.command("disable-key")
@click.argument("public_key")
def disable_key(public_key: str) -> None:
    """Disable a key: it can no longer send events or call the API."""
    if not _storage().set_key_active(public_key, False):
        raise click.BadParameter("no such key", param_hint="PUBLIC_KEY")
    click.echo(f"Key {public_key} is disabled.")


@cli.command("seed-demo")
@click.option("--project", "project_id", type=int, required=True, help="Id of an existing project.")
@click.option("--groups", type=click.IntRange(min=1), required=True, help="Groups to add.")
@click.option(
    "--events-per-group",
    type=click.IntRange(0, MAX_EVENTS_PER_GROUP),
    required=True,
    help="Events stored per group. 0: group rows only, with made-up counters "
    "(times seen, users, first/last seen) and no events, tag values, stats or releases "
    "behind them.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def seed_demo_command(project_id: int, groups: int, events_per_group: int, seed: int) -> None:
    """Add realistic demo groups and events to a project, fast.

    Statuses, levels, titles, tags and releases vary; timestamps cover the last four
    weeks, and some groups share their last-seen second. The same seed gives the same
    data within the hour; running again adds more groups.
    """
    storage = _storage()
    if storage.get_project(project_id) is None:
        raise click.BadParameter(f"no project with id {project_id}", param_hint="--project")
    with click.progressbar(length=groups, label="Seeding", file=sys.stderr) as bar:
        try:
            result = seed_demo(
                storage, project_id, groups, events_per_group, seed=seed, progress=bar.update
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(
        f"Seeded project {project_id}: {result.groups} groups, {result.events} events in "
        f"{result.seconds:.1f} s ({result.rate:,.0f} groups/s)."
    )
