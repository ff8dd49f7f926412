"""The dashboard's settings (``SENTRY_API_DASHBOARD*``): read and validated once, at
``init_app``, into a :class:`DashboardSettings`.

Nothing here imports Flask: a setting that is wrong fails start-up with a
:class:`~flask_sentry_api.errors.ConfigurationError` naming the key.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ..config import resolve
from ..errors import ConfigurationError

#: The dashboard's settings and their defaults.
DASHBOARD_DEFAULTS: dict[str, t.Any] = {
    # True mounts the dashboard; False (the default) leaves nothing under its prefix.
    "SENTRY_API_DASHBOARD": False,
    "SENTRY_API_DASHBOARD_URL_PREFIX": "/sentry",
    # ``callable(request) -> bool | Response`` (or a "module:attr" string naming one) that
    # decides each request; None refuses every request.
    "SENTRY_API_DASHBOARD_AUTH": None,
}

#: One or more "/segment"s of URL path characters (no "<", which would start a converter).
_URL_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+")

#: What a dashboard auth callable is given and may answer (the request, and True, False,
#: None or a Response), spelt loosely: this module imports no Flask.
DashboardAuth = t.Callable[[t.Any], t.Any]


@dataclasses.dataclass(frozen=True)
class DashboardSettings:
    """The validated dashboard settings of one app."""

    #: Whether the dashboard is mounted at all.
    enabled: bool
    #: Where it is mounted (``/sentry``).
    url_prefix: str
    #: Decides each request (see :func:`flask_sentry_api.dashboard.access.check_access`);
    #: None refuses every request.
    auth: DashboardAuth | None


def load_dashboard_settings(config: t.MutableMapping[str, t.Any]) -> DashboardSettings:
    """Fill in the dashboard's defaults (written back to ``config``) and validate them."""
    for key, default in DASHBOARD_DEFAULTS.items():
        config.setdefault(key, default)
    enabled = config["SENTRY_API_DASHBOARD"]
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"SENTRY_API_DASHBOARD must be True or False, got {enabled!r}")
    key = "SENTRY_API_DASHBOARD_URL_PREFIX"
    prefix = config[key]
    if not isinstance(prefix, str) or not _URL_PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            f"{key} must be a path starting and not ending with '/', of URL path characters"
            f" (no '<', '>', spaces or '//'), got {prefix!r}"
        )
    key = "SENTRY_API_DASHBOARD_AUTH"
    auth = resolve(config[key], key)
    if auth is not None and (isinstance(auth, type) or not callable(auth)):
        raise ConfigurationError(
            f"{key} must be a callable(request) returning True (allowed), False (refused) or"
            f" a Response to send instead (e.g. a 401 asking for a password), got {auth!r}"
        )
    return DashboardSettings(enabled=enabled, url_prefix=prefix, auth=auth)
