"""The ``/openapi.json`` endpoint: the web API's OpenAPI 3.1 document (no credentials)."""

from __future__ import annotations

import typing as t

from flask import Response
from flask import current_app
from flask import request

from ..http import json_response
from ..openapi import openapi_document
from .base import APIView


class OpenAPIView(APIView):
    """The OpenAPI 3.1 document describing every endpoint of this API."""

    requires_auth = False
    #: Tells :mod:`flask_sentry_api.openapi` how to describe this endpoint.
    serves_openapi_document: t.ClassVar[bool] = True

    def get(self) -> Response:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return json_response(openapi_document(app, request.script_root))
