"""The optional, server-rendered dashboard: an issue browser mounted next to the API when
``SENTRY_API_DASHBOARD = True``.

:func:`init_dashboard` is called by :meth:`~flask_sentry_api.SentryAPI.init_app`; with the
dashboard off it registers nothing, so nothing exists under its prefix. Access is always
the host's decision (``SENTRY_API_DASHBOARD_AUTH``; :func:`basic_auth` makes one for a
single password); without it every page is refused.
"""

from __future__ import annotations

from flask import Flask

from .. import csrf
from ..errors import ConfigurationError
from .access import EXTENSION_KEY
from .access import basic_auth as basic_auth
from .pages import blueprint as blueprint
from .settings import DashboardSettings as DashboardSettings
from .settings import load_dashboard_settings

__all__ = ["DashboardSettings", "basic_auth", "blueprint", "init_dashboard"]


def init_dashboard(
    app: Flask, *, api_prefix: str | None = None, ingest_prefix: str | None = None
) -> DashboardSettings:
    """Read the dashboard's settings and, when it is on, mount it at its prefix.

    :param api_prefix: where the web API is mounted: the dashboard's prefix may be neither
        it nor under it (its catch-all 404 answers everything there).
    :param ingest_prefix: where ingestion is mounted: the dashboard's prefix may not be it.
    :raises ConfigurationError: a bad setting, a prefix taken by the API, or no
        ``SECRET_KEY`` (the CSRF token lives in Flask's signed session).
    """
    settings = load_dashboard_settings(app.config)
    app.extensions[EXTENSION_KEY] = settings
    if not settings.enabled:
        return settings
    prefix = settings.url_prefix
    if prefix in (api_prefix, ingest_prefix) or (
        api_prefix is not None and prefix.startswith(api_prefix + "/")
    ):
        raise ConfigurationError(
            f"SENTRY_API_DASHBOARD_URL_PREFIX {prefix!r} is taken by the API (mounted at"
            f" {api_prefix!r}, ingestion at {ingest_prefix!r}): choose another prefix"
        )
    if not app.secret_key:
        raise ConfigurationError(
            "SENTRY_API_DASHBOARD needs the app's SECRET_KEY: its forms are protected by a"
            " token kept in Flask's signed session. Set app.config['SECRET_KEY'] to a long"
            " random value (e.g. secrets.token_hex(32)) kept secret, before init_app."
        )
    app.register_blueprint(blueprint, url_prefix=settings.url_prefix)
    # The dashboard checks its own CSRF token; a host's Flask-WTF CSRFProtect would refuse
    # its forms for lacking Flask-WTF's.
    csrf.install(app, (blueprint,))
    return settings
