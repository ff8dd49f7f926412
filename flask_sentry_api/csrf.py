"""Exempts the package's blueprints from a host app's Flask-WTF CSRF protection.

The web API and ingestion authenticate every request with a key or token the client sends
itself, never with a cookie the browser adds, so a cross-site request forgery has nothing to
borrow; yet Flask-WTF's ``CSRFProtect`` refuses every POST, PUT and DELETE that carries no
form token (SDK events and API writes alike). Flask-WTF keeps itself in
``app.extensions["csrf"]`` and skips the blueprints passed to its public ``exempt``.

It may be initialised before the package or after it. Before: the blueprints are exempted
when they are registered. After: its check is an app ``before_request`` function appended
after the one :func:`install` adds at registration, so that one, which runs first, exempts
the blueprints as soon as the extension appears (``exempt`` only adds to a set).
"""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import Flask

#: Where Flask-WTF (every release since 0.14) stores its ``CSRFProtect``.
CSRF_EXTENSION_KEY = "csrf"


def exempt(app: Flask, blueprints: t.Iterable[Blueprint]) -> None:
    """Exempt ``blueprints`` from ``app``'s Flask-WTF CSRF protection, if it has one.

    Another extension stored under the same key is left alone: its ``exempt``, if any,
    need not accept a blueprint.
    """
    csrf = app.extensions.get(CSRF_EXTENSION_KEY)
    if csrf is None or not _is_flask_wtf(csrf):
        return
    for blueprint in blueprints:
        csrf.exempt(blueprint)


def _is_flask_wtf(extension: object) -> bool:
    """Whether ``extension`` is Flask-WTF's ``CSRFProtect`` or a host's subclass of it."""
    return any(cls.__module__.partition(".")[0] == "flask_wtf" for cls in type(extension).__mro__)


def install(app: Flask, blueprints: t.Sequence[Blueprint]) -> None:
    """Exempt ``blueprints`` now, and again before each request for a ``CSRFProtect``
    initialised later."""
    exempt(app, blueprints)

    def exempt_before_csrf_check() -> None:
        exempt(app, blueprints)

    app.before_request(exempt_before_csrf_check)
