"""The ``flask sentry-api`` commands: create tables, projects, keys and auth tokens; list
projects, keys and tokens; enable, disable and delete keys, revoke tokens; seed demo data."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing as t
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup

from .schemas import format_dsn
from .seed import MAX_EVENTS_PER_GROUP
from .seed import seed_demo
from .state import get_state
from .storage import MAX_TOKEN_LABEL
from .storage import ROLE_API
from .storage import ROLE_NAMES
from .storage import ROLE_STORE
from .storage import SCOPES
from .storage import AuthToken
from .storage import Conflict
from .storage import ProjectKey
from .storage import RateLimit
from .storage import Storage
from .storage import TokenStorage
from .tokens import check_scopes
from .tokens import hash_token
from .tokens import new_token

cli = AppGroup("sentry-api", help="Manage the Sentry-compatible API's projects and keys.")


def _storage() -> Storage:
    storage = get_state().storage
    storage.init_schema()  # commands work on a fresh database
    return storage


class RateLimitType(click.ParamType):
    """``N/SECONDS`` as a :class:`~flask_sentry_api.storage.RateLimit`; ``default`` (when
    accepted) as None."""

    name = "N/SECONDS"

    def __init__(self, default: str | None = None) -> None:
        self.default_word = default

    def convert(
        self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> t.Any:
        if isinstance(value, RateLimit):
            return value
        text = str(value).strip()
        if self.default_word is not None and text == self.default_word:
            return None
        try:
            limit = RateLimit.parse(text)
        except ValueError:
            limit = None
        if limit is None:  # "0" too: a key's own limit cannot be "none at all"
            self.fail(f"{text!r} is not N/SECONDS with N and SECONDS at least 1", param, ctx)
        return limit


def _check_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{base_url!r} is not an http(s) URL", param_hint="--url")


def make_dsn(base_url: str, key: ProjectKey) -> str:
    """The DSN SDKs are configured with: ``scheme://public@host[:port][/path]/project_id``."""
    _check_url(base_url)
    return format_dsn(base_url, key.public_key, key.project_id)


def _print_key(key: ProjectKey, slug: str | None, base_url: str, as_json: bool) -> None:
    record = {
        "id": str(key.project_id),
        "slug": slug,
        "publicKey": key.public_key,
        "secretKey": key.secret_key,
        "roles": key.role_names,
        "dsn": make_dsn(base_url, key),
        "rateLimit": dataclasses.asdict(key.rate_limit) if key.rate_limit else None,
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    record["rateLimit"] = str(key.rate_limit) if key.rate_limit else "default"
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
@click.option(
    "--rate-limit",
    "rate_limit",
    type=RateLimitType(),
    help="The key's own ingestion limit, N/SECONDS (e.g. 100/60). Default: "
    "SENTRY_API_INGEST_RATE_LIMIT.",
)
@url_option
@json_option
def create_key(
    project_id: int,
    roles: t.Sequence[str],
    rate_limit: RateLimit | None,
    base_url: str,
    as_json: bool,
) -> None:
    """Create another key for a project."""
    storage = _storage()
    project = storage.get_project(project_id)
    if project is None:
        raise click.BadParameter(f"no project with id {project_id}", param_hint="PROJECT_ID")
    bits = 0
    for role in roles or ROLE_NAMES:
        bits |= ROLE_NAMES[role]
    key = storage.create_key(project_id, bits, rate_limit=rate_limit)
    _print_key(key, project.slug, base_url, as_json)


@cli.command("set-rate-limit")
@click.argument("public_key")
@click.argument("rate_limit", metavar="N/SECONDS|default", type=RateLimitType(default="default"))
def set_rate_limit(public_key: str, rate_limit: RateLimit | None) -> None:
    """Set how many events a key may send per window of seconds (``default``: the app's
    SENTRY_API_INGEST_RATE_LIMIT)."""
    if not _storage().set_key_rate_limit(public_key, rate_limit):
        raise click.BadParameter("no such key", param_hint="PUBLIC_KEY")
    shown = f"{rate_limit.count} events per {rate_limit.window} s" if rate_limit else "the default"
    click.echo(f"Key {public_key} is limited to {shown}.")


@cli.command("disable-key")
@click.argument("public_key")
def disable_key(public_key: str) -> None:
    """Disable a key: it can no longer send events or call the API."""
    if not _storage().set_key_active(public_key, False):
        raise click.BadParameter("no such key", param_hint="PUBLIC_KEY")
    click.echo(f"Key {public_key} is disabled.")


@cli.command("enable-key")
@click.argument("public_key")
def enable_key(public_key: str) -> None:
    """Enable a disabled key: it may send events and call the API again (as its roles
    allow)."""
    if not _storage().set_key_active(public_key, True):
        raise click.BadParameter("no such key", param_hint="PUBLIC_KEY")
    click.echo(f"Key {public_key} is enabled.")


@cli.command("delete-key")
@click.argument("public_key")
def delete_key(public_key: str) -> None:
    """Delete a key for good: SDKs and clients using it are refused from now on.

    disable-key does the same reversibly.
    """
    if not _storage().delete_key(public_key):
        raise click.BadParameter("no such key", param_hint="PUBLIC_KEY")
    click.echo(f"Key {public_key} is deleted.")


@cli.command("list-projects")
@json_option
def list_projects(as_json: bool) -> None:
    """List every project: id, slug, name and how many keys it has."""
    storage = _storage()
    records = [
        {
            "id": str(project.id),
            "slug": project.slug,
            "name": project.name,
            "keys": len(storage.list_keys(project.id)),
        }
        for project in storage.list_projects()
    ]
    if as_json:
        click.echo(json.dumps(records))
        return
    for record in records:
        count = record["keys"]
        keys = f"{count} key" if count == 1 else f"{count} keys"
        click.echo(f"{record['id']}\t{record['slug']}\t{record['name']}\t{keys}")


@cli.command("list-keys")
@click.option("--project", "project_id", type=int, help="Only this project's keys.")
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print the secret keys too (never shown otherwise: SDKs need only the DSN).",
)
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def list_keys(project_id: int | None, show_secrets: bool, base_url: str, as_json: bool) -> None:
    """List keys (of every project, or of one) with their DSNs, oldest first per project."""
    _check_url(base_url)  # even when there is no key to print
    storage = _storage()
    if project_id is None:
        projects = storage.list_projects()
    else:
        project = storage.get_project(project_id)
        if project is None:
            raise click.BadParameter(f"no project with id {project_id}", param_hint="--project")
        projects = [project]
    records = [
        _key_record(key, each.slug, base_url, show_secrets)
        for each in projects
        for key in storage.list_keys(each.id)
    ]
    if as_json:
        click.echo(json.dumps(records))
        return
    for number, record in enumerate(records):
        if number:
            click.echo("")
        _print_key_record(record, show_secrets)


def _key_record(key: ProjectKey, slug: str, base_url: str, show_secret: bool) -> dict[str, t.Any]:
    return {
        "publicKey": key.public_key,
        # Absent secrets are null, not masked: a masked value invites copying it as a key.
        "secretKey": key.secret_key if show_secret else None,
        "project": str(key.project_id),
        "slug": slug,
        "roles": key.role_names,
        "isActive": key.is_active,
        "label": key.label,
        "rateLimit": dataclasses.asdict(key.rate_limit) if key.rate_limit else None,
        "dsn": make_dsn(base_url, key),
        "dateCreated": key.date_added.isoformat(),
    }


def _print_key_record(record: dict[str, t.Any], show_secret: bool) -> None:
    limit = record["rateLimit"]
    lines = {
        "publicKey": record["publicKey"],
        **({"secretKey": record["secretKey"]} if show_secret else {}),
        "project": f"{record['project']} ({record['slug']})",
        "roles": ", ".join(record["roles"]),
        "active": "yes" if record["isActive"] else "no",
        "label": record["label"] or "",
        "rateLimit": f"{limit['count']}/{limit['window']}" if limit else "default",
        "dsn": record["dsn"],
    }
    for label, value in lines.items():
        click.echo(f"{label + ':':<11}{value}".rstrip())


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


def _token_storage(storage: Storage | None = None) -> TokenStorage:
    storage = storage if storage is not None else _storage()
    if not isinstance(storage, TokenStorage):
        raise click.UsageError(
            f"The storage ({type(storage).__name__}) keeps no auth tokens: give it the"
            " flask_sentry_api.storage.TokenStorage methods, or inject SENTRY_API_TOKEN_LOOKUP."
        )
    return storage


def _token_record(token: AuthToken) -> dict[str, t.Any]:
    return {
        "id": str(token.id),
        "project": str(token.project_id),
        "scopes": list(token.scopes),
        "label": token.label,
        "tokenLastCharacters": token.last_characters,
        "dateCreated": token.date_created.isoformat(),
    }


@cli.command("create-token")
@click.argument("project_id", type=int)
@click.option(
    "--scopes",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    help="A scope the token grants; repeatable. Default: all of them.",
)
@click.option("--label", help="What the token is for (shown by list-tokens).")
@json_option
def create_token(
    project_id: int, scopes: t.Sequence[str], label: str | None, as_json: bool
) -> None:
    """Create an auth token for a project (for sentry-cli and other tools: ``Bearer``).

    The token is printed once; only its hash is stored.
    """
    storage = _storage()
    tokens = _token_storage(storage)
    if storage.get_project(project_id) is None:
        raise click.BadParameter(f"no project with id {project_id}", param_hint="PROJECT_ID")
    if label is not None and len(label) > MAX_TOKEN_LABEL:
        raise click.BadParameter(f"at most {MAX_TOKEN_LABEL} characters", param_hint="--label")
    token = new_token()
    chosen = check_scopes(scopes or SCOPES)
    stored = tokens.create_token(
        project_id, hash_token(token), chosen, label=label, last_characters=token[-4:]
    )
    if as_json:
        record = {"token": token, "id": str(stored.id), "project": str(project_id)}
        click.echo(json.dumps({**record, "scopes": chosen}))
        return
    click.echo(f"token:     {token}")
    click.echo(f"id:        {stored.id}")
    click.echo(f"project:   {project_id}")
    click.echo(f"scopes:    {' '.join(chosen)}")
    click.echo("Keep the token now: it is not stored and cannot be shown again.", err=True)


@cli.command("list-tokens")
@click.option("--project", "project_id", type=int, help="Only this project's tokens.")
@json_option
def list_tokens(project_id: int | None, as_json: bool) -> None:
    """List auth tokens (never the tokens themselves: their last characters)."""
    tokens = _token_storage().list_tokens(project_id)
    if as_json:
        click.echo(json.dumps([_token_record(token) for token in tokens]))
        return
    for token in tokens:
        click.echo(
            f"{token.id}\tproject {token.project_id}\t…{token.last_characters}"
            f"\t{' '.join(token.scopes)}\t{token.label or ''}".rstrip()
        )


@cli.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke an auth token (its id is in list-tokens): it stops working at once."""
    if not _token_storage().delete_token(token_id):
        raise click.BadParameter(f"no token with id {token_id}", param_hint="TOKEN_ID")
    click.echo(f"Token {token_id} is revoked.")
