"""The web API's views, one module per resource; :mod:`.base` holds what they share.

A view module imports only :mod:`.base` among its siblings, and never the blueprint: the
URL rules in :mod:`flask_sentry_api.blueprint` import the views, not the other way round.
"""

from __future__ import annotations

from ..storage import MAX_ID as MAX_ID
from .base import APIView as APIView
from .base import IndexView as IndexView
from .base import NotFoundView as NotFoundView

__all__ = ["MAX_ID", "APIView", "IndexView", "NotFoundView"]
