"""Sentry's Web API v0 and SDK ingestion endpoints as an installable Flask extension."""

from __future__ import annotations

#: The release, also the distribution's version: setup.py reads this line (it does not
#: import the package), so it is written once.
__version__ = "0.1.0"

import importlib
import sys
import types
import typing as t

from .config import SentryAPIConfigWarning as SentryAPIConfigWarning
from .errors import APIError as APIError
from .errors import ConfigurationError as ConfigurationError
from .pagination import Cursor as Cursor
from .storage import ROLE_API as ROLE_API
from .storage import ROLE_STORE as ROLE_STORE
from .storage import SCOPES as SCOPES
from .storage import AuthToken as AuthToken
from .storage import GroupQuery as GroupQuery
from .storage import NewEvent as NewEvent
from .storage import ProjectKey as ProjectKey
from .storage import RateLimit as RateLimit
from .storage import Storage as Storage
from .storage import TokenStorage as TokenStorage

if t.TYPE_CHECKING:
    from .blueprint import blueprint as blueprint
    from .blueprint import ingest_blueprint as ingest_blueprint
    from .extension import SentryAPI as SentryAPI
    from .signals import event_stored as event_stored
    from .signals import issue_created as issue_created
    from .signals import issue_regressed as issue_regressed
    from .signals import issue_resolved as issue_resolved
    from .sqlalchemy_storage import SQLAlchemyStorage as SQLAlchemyStorage
    from .state import State as State
    from .state import get_state as get_state

__all__ = [
    "ROLE_API",
    "ROLE_STORE",
    "SCOPES",
    "APIError",
    "AuthToken",
    "ConfigurationError",
    "Cursor",
    "GroupQuery",
    "NewEvent",
    "ProjectKey",
    "RateLimit",
    "SQLAlchemyStorage",
    "SentryAPI",
    "SentryAPIConfigWarning",
    "State",
    "Storage",
    "TokenStorage",
    "blueprint",
    "event_stored",
    "get_state",
    "ingest_blueprint",
    "issue_created",
    "issue_regressed",
    "issue_resolved",
]

#: Names that need Flask or SQLAlchemy, imported on first use, so the Flask-free modules
#: (pagination, search, ingestion parsing) can be imported without either.
_LAZY = {
    "blueprint": "blueprint",
    "ingest_blueprint": "blueprint",
    "SentryAPI": "extension",
    "SQLAlchemyStorage": "sqlalchemy_storage",
    "State": "state",
    "get_state": "state",
    # blinker, not Flask, but a Flask dependency: lazy like the rest of the Flask side.
    "event_stored": "signals",
    "issue_created": "signals",
    "issue_regressed": "signals",
    "issue_resolved": "signals",
}


class _Package(types.ModuleType):
    """This package, whose ``blueprint`` stays the Blueprint object.

    The module ``blueprint.py`` and the Blueprint it defines share a name. Importing the
    module would rebind ``flask_sentry_api.blueprint`` to it (the import system sets a
    package attribute for every submodule it loads), breaking
    ``app.register_blueprint(flask_sentry_api.blueprint)``; the Blueprint is kept instead.
    """

    def __setattr__(self, name: str, value: t.Any) -> None:
        if name == "blueprint" and isinstance(value, types.ModuleType):
            value = value.blueprint
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> t.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
