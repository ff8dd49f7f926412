"""Send a few real errors to the example app with the real ``sentry-sdk``.

Start the server first (``flask --app example_app run``), then in another shell::

    python -m example_app.demo_errors                 # DSN of project 1 from the app's database
    python -m example_app.demo_errors --url http://127.0.0.1:18200   # the server's address
    python -m example_app.demo_errors --dsn http://PUBLIC@127.0.0.1:5000/1

It reports a ZeroDivisionError, a KeyError, a custom exception raised twice from the
same place (one group, count 2) and a warning message, then prints where to look.
The DSN comes from ``--dsn``, else ``SENTRY_DSN``, else the example app's own database
(``DATABASE_URL``, as for ``flask run``): the first active key of project 1 that may
send events, at ``--url`` (default ``$EXAMPLE_BASE_URL``, else ``http://127.0.0.1:5000``).

It checks the server answers before sending, and that every event was stored after (when
it knows the key's secret): a failure is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import typing as t
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from flask_sentry_api.storage import ROLE_STORE

try:
    import sentry_sdk
except ImportError:  # pragma: no cover - the test extra installs it
    sentry_sdk = None  # type: ignore[assignment]


class CheckoutError(Exception):
    """The demo's own exception type."""


def divide(total: int, parts: int) -> float:
    return total / parts


def price_of(catalog: dict[str, float], item: str) -> float:
    return catalog[item]


def checkout(cart_id: int) -> None:
    raise CheckoutError(f"payment provider refused cart {cart_id}")


def send_demo_events() -> list[str]:
    """Capture the demo errors and message; returns their event ids."""
    sent: list[str | None] = []
    sentry_sdk.set_tag("demo", "yes")
    sentry_sdk.set_user({"id": "demo-user", "email": "demo@example.com"})
    failures: list[t.Callable[[], object]] = [
        lambda: divide(10, 0),
        lambda: price_of({"apple": 1.0}, "pear"),
        lambda: checkout(1),
        lambda: checkout(2),  # same place as cart 1: grouped with it
    ]
    for fail in failures:
        try:
            fail()
        except Exception:  # noqa: BLE001 - every demo failure is reported
            sent.append(sentry_sdk.capture_exception())
    sent.append(sentry_sdk.capture_message("Demo: disk almost full", level="warning"))
    return [event_id for event_id in sent if event_id]


def dsn_from_example_app(base_url: str | None) -> tuple[str, str] | None:
    """(DSN, secret) of project 1's first usable key in the example app's database, for the
    server at ``base_url`` (default: the app's ``EXAMPLE_BASE_URL``)."""
    from example_app import create_app
    from flask_sentry_api import get_state
    from flask_sentry_api.cli import make_dsn

    app = create_app()
    with app.app_context():
        keys = get_state(app).storage.list_keys(1)
    for key in keys:
        if key.is_active and key.has_role(ROLE_STORE):
            return make_dsn(base_url or app.config["EXAMPLE_BASE_URL"], key), key.secret_key
    return None


def reachable(url: str) -> str | None:
    """None when ``url`` answers at all; else why not, in a few words."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def stored(base_url: str, public_key: str, secret: str, event_id: str) -> bool:
    """Whether the server has the event (``GET /api/0/events/<id>/`` with the key)."""
    request = urllib.request.Request(f"{base_url}/api/0/events/{event_id}/")
    token = base64.b64encode(f"{public_key}:{secret}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_app.demo_errors", description="Send demo errors with sentry-sdk."
    )
    parser.add_argument("--dsn", help="where to send (default: $SENTRY_DSN, else project 1)")
    parser.add_argument(
        "--url", help="the server, for project 1's DSN (default: $EXAMPLE_BASE_URL or :5000)"
    )
    parser.add_argument("--debug", action="store_true", help="let sentry-sdk log what it does")
    args = parser.parse_args(argv)

    if sentry_sdk is None:
        print("The demo needs sentry-sdk: pip install sentry-sdk", file=sys.stderr)
        return 2
    dsn, secret = args.dsn or os.environ.get("SENTRY_DSN"), None
    if not dsn:
        found = dsn_from_example_app(args.url.rstrip("/") if args.url else None)
        if found is None:
            print(
                "No DSN: pass --dsn or set SENTRY_DSN. Get one (it is printed with the key) with\n"
                "  flask --app example_app sentry-api create-key 1",
                file=sys.stderr,
            )
            return 2
        dsn, secret = found

    parts = urlsplit(dsn)
    project_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if parts.scheme not in ("http", "https") or not parts.username or not project_id.isdigit():
        print(f"Not a DSN: {dsn!r} (expected http://PUBLIC@HOST:PORT/PROJECT_ID)", file=sys.stderr)
        return 2
    base_url = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    base_url += parts.path.rstrip("/").rsplit("/", 1)[0]

    problem = reachable(f"{base_url}/api/0/")
    if problem is not None:
        print(
            f"Cannot reach the server at {base_url} ({problem}): is it running"
            " (flask --app example_app run), and is --url its address?",
            file=sys.stderr,
        )
        return 1

    sentry_sdk.init(dsn=dsn, default_integrations=False, release="demo@1.0", debug=args.debug)
    try:
        sent = send_demo_events()
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close()

    if secret is not None:
        missing = [
            event_id for event_id in sent if not stored(base_url, parts.username, secret, event_id)
        ]
        if missing:
            print(
                f"{len(missing)} of {len(sent)} events were not stored at {base_url}"
                " (retry with --debug to see the server's answers).",
                file=sys.stderr,
            )
            return 1
    verb = "Stored" if secret is not None else "Sent"
    print(f"{verb} {len(sent)} events at {base_url} (project {project_id}). See the groups with:")
    groups_url = f"{base_url}/api/0/projects/{project_id}/groups/"
    print(f"  curl -u {parts.username}:{secret or 'SECRET'} {groups_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
