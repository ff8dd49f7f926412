"""Sentry's Web API v0 and SDK ingestion endpoints as an installable Flask extension."""

from __future__ import annotations

from .blueprint import blueprint as blueprint
from .errors import APIError as APIError
from .errors import ConfigurationError as ConfigurationError
from .extension import SentryAPI as SentryAPI
from .extension import State as State
from .extension import get_state as get_state
from .pagination import Cursor as Cursor
from .sqlalchemy_storage import SQLAlchemyStorage as SQLAlchemyStorage
from .storage import ROLE_API as ROLE_API
from .storage import ROLE_STORE as ROLE_STORE
from .storage import GroupQuery as GroupQuery
from .storage import NewEvent as NewEvent
from .storage import ProjectKey as ProjectKey
from .storage import Storage as Storage

__all__ = [
    "ROLE_API",
    "ROLE_STORE",
    "APIError",
    "ConfigurationError",
    "Cursor",
    "GroupQuery",
    "NewEvent",
    "ProjectKey",
    "SQLAlchemyStorage",
    "SentryAPI",
    "State",
    "Storage",
    "blueprint",
    "get_state",
]
