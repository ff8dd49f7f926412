"""The ``SENTRY_API_*`` settings: documented defaults, validation, and import-string resolution.

Settings are read once, when the extension is initialised on an app, and any bad value
fails start-up with a :class:`~flask_sentry_api.errors.ConfigurationError` naming the key.
A ``SENTRY_API_*`` key this package does not know (a misspelling, most likely) is warned
about with :class:`SentryAPIConfigWarning`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import re
import string
import typing as t
import warnings

from .errors import ConfigurationError
from .storage import MAX_SLUG_LENGTH
from .storage import RateLimit
from .storage import slugify

#: Every setting, its default, and what it means (the README lists the same table).
DEFAULTS: dict[str, t.Any] = {
    # A Storage instance, a Storage class (created with no arguments), a factory
    # ``callable(app) -> Storage`` or a "module:attr" string naming one of those; None uses
    # SQLAlchemyStorage on the app's Flask-SQLAlchemy instance.
    "SENTRY_API_STORAGE": None,
    # ``callable(public_key) -> ProjectKey | None`` or a "module:attr" string; None asks
    # the storage.
    "SENTRY_API_KEY_LOOKUP": None,
    # ``callable(token) -> AuthToken | None`` or a "module:attr" string; None asks the
    # storage (by the token's hash) when it keeps tokens.
    "SENTRY_API_TOKEN_LOOKUP": None,
    # Seconds a key or token the lookup found is trusted without asking again (per app and
    # process; changes made through this process's storage apply at once, other processes'
    # within this time); 0: ask on every request.
    "SENTRY_API_CREDENTIAL_CACHE_TTL": 5,
    # The slug of the one organization in /organizations/<org>/ and /projects/<org>/... paths.
    "SENTRY_API_ORGANIZATION": "sentry",
    "SENTRY_API_URL_PREFIX": "/api/0",
    # Where SDKs post events: <prefix>/<project_id>/store/ and .../envelope/.
    "SENTRY_API_INGEST_URL_PREFIX": "/api",
    "SENTRY_API_DEFAULT_PAGE_SIZE": 100,
    "SENTRY_API_MAX_PAGE_SIZE": 100,
    # Largest JSON request body of the web API, in bytes.
    "SENTRY_API_MAX_BODY_SIZE": 1024 * 1024,
    # Largest event or envelope body as sent (compressed), and once decompressed.
    "SENTRY_API_MAX_EVENT_SIZE": 1024 * 1024,
    "SENTRY_API_MAX_INFLATED_SIZE": 20 * 1024 * 1024,
    # A str.format template with {base_url}, {project_id}, {project_slug} and {group_id};
    # None links to the group's own API URL.
    "SENTRY_API_PERMALINK_TEMPLATE": None,
    "SENTRY_API_AUTH_REALM": "api",
    # Most ``id`` parameters one bulk PUT/DELETE may name.
    "SENTRY_API_MAX_BULK_IDS": 1000,
    # Most buckets one stats request may ask for.
    "SENTRY_API_STATS_MAX_BUCKETS": 1000,
    # Table name prefix of the default storage.
    "SENTRY_API_TABLE_PREFIX": "sentry_",
    # Events per key, "N/SECONDS", for keys without their own rateLimit; "0": no limit.
    "SENTRY_API_INGEST_RATE_LIMIT": "6000/60",
    # Web API requests per credential, "N/SECONDS"; "0" (the default): no limit.
    "SENTRY_API_RATE_LIMIT": "0",
    # Where rate-limit windows are counted: "memory://" (per process) or a shared
    # "redis://host:port/db" for several workers or hosts.
    "SENTRY_API_RATE_LIMIT_STORAGE_URI": "memory://",
    # The ``limits`` strategy: fixed-window, sliding-window-counter or moving-window.
    "SENTRY_API_RATE_LIMIT_STRATEGY": "fixed-window",
    # "sync": the ingestion request stores the event. "celery": it authenticates,
    # rate-limits, trims and enqueues the event, and Celery workers store it (the [celery]
    # extra; README "Queue mode").
    "SENTRY_API_INGEST_MODE": "sync",
    # The host's Celery app to publish with (an instance or a "module:attr" string); None
    # builds one on SENTRY_API_CELERY_BROKER_URL.
    "SENTRY_API_CELERY_APP": None,
    # The broker of the package's own Celery app, e.g. "redis://127.0.0.1:6379/0" or
    # "amqp://guest:guest@127.0.0.1:5672//"; needed in "celery" mode without a Celery app.
    "SENTRY_API_CELERY_BROKER_URL": None,
    # The queue events are published to (what `celery worker -Q` consumes).
    "SENTRY_API_CELERY_QUEUE": "sentry_api",
    # Seconds to connect to the broker and have a message confirmed before answering 503.
    "SENTRY_API_CELERY_PUBLISH_TIMEOUT": 2,
    # The Retry-After (seconds) of the 503 an SDK gets while the broker is down.
    "SENTRY_API_CELERY_RETRY_AFTER": 30,
    # More Celery settings for the package's own Celery app (a dict, e.g.
    # {"broker_transport_options": {"visibility_timeout": 60}}), over its defaults.
    "SENTRY_API_CELERY_OPTIONS": None,
    # Most events a worker stores in one transaction: a task takes the messages waiting
    # behind its own, up to this many in all (1: one event per transaction).
    "SENTRY_API_CELERY_BATCH_SIZE": 100,
}

INGEST_MODES = ("sync", "celery")
#: Settings read elsewhere in the package, known here so they are not warned about: the
#: dashboard's (flask_sentry_api.dashboard.settings reads and validates them).
OTHER_KEYS = (
    "SENTRY_API_DASHBOARD",
    "SENTRY_API_DASHBOARD_URL_PREFIX",
    "SENTRY_API_DASHBOARD_AUTH",
)

_PERMALINK_FIELDS = {"base_url", "project_id", "project_slug", "group_id"}
_PREFIX = "SENTRY_API_"
#: One or more "/segment"s of RFC 3986 path characters: a "<" would start a Werkzeug
#: converter in every rule.
_URL_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+")


class SentryAPIConfigWarning(UserWarning):
    """A ``SENTRY_API_*`` key in ``app.config`` that this package does not read."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated settings of one app."""

    url_prefix: str
    ingest_url_prefix: str
    default_page_size: int
    max_page_size: int
    max_body_size: int
    max_event_size: int
    max_inflated_size: int
    permalink_template: str | None
    auth_realm: str
    organization: str
    max_bulk_ids: int
    stats_max_buckets: int
    table_prefix: str
    ingest_rate_limit: RateLimit | None
    api_rate_limit: RateLimit | None
    rate_limit_storage_uri: str
    rate_limit_strategy: str
    credential_cache_ttl: float = 5.0
    ingest_mode: str = "sync"
    celery_app: t.Any = None
    celery_broker_url: str | None = None
    celery_queue: str = "sentry_api"
    celery_publish_timeout: float = 2
    celery_retry_after: int = 30
    celery_options: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)
    celery_batch_size: int = 100


def load_settings(config: t.MutableMapping[str, t.Any]) -> Settings:
    """Fill in defaults (written back to ``config``), validate every setting and warn about
    unknown ``SENTRY_API_*`` keys."""
    _warn_unknown_keys(config)
    default_page_size_given = "SENTRY_API_DEFAULT_PAGE_SIZE" in config
    for key, default in DEFAULTS.items():
        config.setdefault(key, default)

    def positive_int(key: str) -> int:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{key} must be a positive integer, got {value!r}")
        return value

    def prefix(key: str) -> str:
        value = config[key]
        if not isinstance(value, str) or not _URL_PREFIX.fullmatch(value):
            raise ConfigurationError(
                f"{key} must be a path starting and not ending with '/', of URL path"
                f" characters (no '<', '>', spaces or '//'), got {value!r}"
            )
        return value

    default_page_size = positive_int("SENTRY_API_DEFAULT_PAGE_SIZE")
    max_page_size = positive_int("SENTRY_API_MAX_PAGE_SIZE")
    if default_page_size > max_page_size and not default_page_size_given:
        # Lowering only the maximum lowers the default with it.
        default_page_size = config["SENTRY_API_DEFAULT_PAGE_SIZE"] = max_page_size
    if default_page_size > max_page_size:
        raise ConfigurationError(
            "SENTRY_API_DEFAULT_PAGE_SIZE must not exceed SENTRY_API_MAX_PAGE_SIZE "
            f"({default_page_size} > {max_page_size})"
        )

    template = config["SENTRY_API_PERMALINK_TEMPLATE"]
    if template is not None:
        _check_permalink_template(template)

    realm = config["SENTRY_API_AUTH_REALM"]
    if not isinstance(realm, str) or not realm or '"' in realm or not realm.isprintable():
        raise ConfigurationError(
            f"SENTRY_API_AUTH_REALM must be a non-empty printable string without quotes, "
            f"got {realm!r}"
        )

    organization = config["SENTRY_API_ORGANIZATION"]
    if (
        not isinstance(organization, str)
        or not organization
        or len(organization) > MAX_SLUG_LENGTH
        or slugify(organization) != organization
    ):
        raise ConfigurationError(
            "SENTRY_API_ORGANIZATION must be a slug (lowercase letters, digits, '-' and '_'),"
            f" got {organization!r}"
        )

    table_prefix = config["SENTRY_API_TABLE_PREFIX"]
    if not isinstance(table_prefix, str) or not table_prefix.replace("_", "a").isalnum():
        raise ConfigurationError(
            f"SENTRY_API_TABLE_PREFIX must be letters, digits and '_', got {table_prefix!r}"
        )

    def rate_limit(key: str) -> RateLimit | None:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigurationError(f"{key} must be 'N/SECONDS' or 0, got {value!r}")
        try:
            return RateLimit.parse(str(value))
        except ValueError as exc:
            raise ConfigurationError(f"{key}: {exc}") from None

    def text(key: str) -> str:
        value = config[key]
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{key} must be a non-empty string, got {value!r}")
        return value

    ingest_mode = config["SENTRY_API_INGEST_MODE"]
    if ingest_mode not in INGEST_MODES:
        raise ConfigurationError(
            f"SENTRY_API_INGEST_MODE must be one of {', '.join(map(repr, INGEST_MODES))},"
            f" got {ingest_mode!r}"
        )
    celery_app = config["SENTRY_API_CELERY_APP"]
    broker_url = config["SENTRY_API_CELERY_BROKER_URL"]
    if broker_url is not None:
        text("SENTRY_API_CELERY_BROKER_URL")
    if celery_app is not None:
        celery_app = resolve(celery_app, "SENTRY_API_CELERY_APP")
        if not callable(getattr(celery_app, "send_task", None)):
            raise ConfigurationError(
                f"SENTRY_API_CELERY_APP must be a Celery app (or name one), got {celery_app!r}"
            )
    if ingest_mode == "celery":
        _check_celery_installed()
        if celery_app is None and broker_url is None:
            raise ConfigurationError(
                'SENTRY_API_INGEST_MODE = "celery" needs SENTRY_API_CELERY_APP (the host\'s'
                " Celery app) or SENTRY_API_CELERY_BROKER_URL (a broker for the package's own)"
            )
    publish_timeout = config["SENTRY_API_CELERY_PUBLISH_TIMEOUT"]
    if (
        isinstance(publish_timeout, bool)
        or not isinstance(publish_timeout, (int, float))
        or not publish_timeout > 0
    ):
        raise ConfigurationError(
            "SENTRY_API_CELERY_PUBLISH_TIMEOUT must be a positive number of seconds,"
            f" got {publish_timeout!r}"
        )
    celery_options = config["SENTRY_API_CELERY_OPTIONS"]
    if celery_options is None:
        celery_options = {}
    if not isinstance(celery_options, dict) or not all(isinstance(k, str) for k in celery_options):
        raise ConfigurationError(
            f"SENTRY_API_CELERY_OPTIONS must be a dict of Celery settings, got {celery_options!r}"
        )

    cache_ttl = config["SENTRY_API_CREDENTIAL_CACHE_TTL"]
    if (
        isinstance(cache_ttl, bool)
        or not isinstance(cache_ttl, (int, float))
        or not 0 <= cache_ttl <= 3600
    ):
        raise ConfigurationError(
            "SENTRY_API_CREDENTIAL_CACHE_TTL must be a number of seconds from 0 (no cache)"
            f" to 3600, got {cache_ttl!r}"
        )
    return Settings(
        credential_cache_ttl=float(cache_ttl),
        url_prefix=prefix("SENTRY_API_URL_PREFIX"),
        ingest_url_prefix=prefix("SENTRY_API_INGEST_URL_PREFIX"),
        default_page_size=default_page_size,
        max_page_size=max_page_size,
        max_body_size=positive_int("SENTRY_API_MAX_BODY_SIZE"),
        max_event_size=positive_int("SENTRY_API_MAX_EVENT_SIZE"),
        max_inflated_size=positive_int("SENTRY_API_MAX_INFLATED_SIZE"),
        permalink_template=template,
        auth_realm=realm,
        organization=organization,
        max_bulk_ids=positive_int("SENTRY_API_MAX_BULK_IDS"),
        stats_max_buckets=positive_int("SENTRY_API_STATS_MAX_BUCKETS"),
        table_prefix=table_prefix,
        ingest_rate_limit=rate_limit("SENTRY_API_INGEST_RATE_LIMIT"),
        api_rate_limit=rate_limit("SENTRY_API_RATE_LIMIT"),
        rate_limit_storage_uri=text("SENTRY_API_RATE_LIMIT_STORAGE_URI"),
        rate_limit_strategy=text("SENTRY_API_RATE_LIMIT_STRATEGY"),
        ingest_mode=ingest_mode,
        celery_app=celery_app,
        celery_broker_url=broker_url,
        celery_queue=text("SENTRY_API_CELERY_QUEUE"),
        celery_publish_timeout=float(publish_timeout),
        celery_retry_after=positive_int("SENTRY_API_CELERY_RETRY_AFTER"),
        celery_options=celery_options,
        celery_batch_size=positive_int("SENTRY_API_CELERY_BATCH_SIZE"),
    )


def _check_celery_installed() -> None:
    # Found, not imported: the core loads no Celery, and the glue imports it when it publishes.
    if importlib.util.find_spec("celery") is None:
        raise ConfigurationError(
            'SENTRY_API_INGEST_MODE = "celery" needs Celery: pip install'
            " 'flask-sentry-api[celery]'"
        )


def _warn_unknown_keys(config: t.Mapping[str, t.Any]) -> None:
    # A misspelt key would otherwise be silently ignored, its default used instead.
    known = [key[len(_PREFIX) :] for key in (*DEFAULTS, *OTHER_KEYS)]
    for key in config:
        if (
            not isinstance(key, str)
            or not key.startswith(_PREFIX)
            or key in DEFAULTS
            or key in OTHER_KEYS
        ):
            continue
        # Compared without the shared prefix, which would make every key look close.
        close = difflib.get_close_matches(key[len(_PREFIX) :], known, n=1, cutoff=0.7)
        hint = f"; did you mean {_PREFIX}{close[0]}?" if close else ""
        warnings.warn(
            f"{key} is not a flask-sentry-api setting and is ignored{hint}",
            SentryAPIConfigWarning,
            stacklevel=2,
        )


def _check_permalink_template(template: t.Any) -> None:
    key = "SENTRY_API_PERMALINK_TEMPLATE"
    if not isinstance(template, str):
        raise ConfigurationError(f"{key} must be a string, got {template!r}")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigurationError(f"{key} is not a valid format string: {exc}") from exc
    unknown = names - _PERMALINK_FIELDS
    if unknown:
        raise ConfigurationError(
            f"{key} uses unknown fields {sorted(unknown)}; allowed: {sorted(_PERMALINK_FIELDS)}"
        )
    if not template.startswith(("http://", "https://", "{base_url}")):
        raise ConfigurationError(f"{key} must produce an absolute URL, got {template!r}")


def resolve(value: t.Any, key: str) -> t.Any:
    """Import ``"package.module:attribute"`` strings; return anything else unchanged."""
    if not isinstance(value, str):
        return value
    module_name, sep, attribute = value.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(
            f"{key} must be an object or a 'module:attribute' string, got {value!r}"
        )
    try:
        target: t.Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{key}: cannot import {value!r}: {exc}") from exc
    return target
