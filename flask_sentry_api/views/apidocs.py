"""The ``/docs/`` endpoints: the OpenAPI document as a browsable Swagger UI page.

Swagger UI's files come from the ``flask-swagger-ui`` distribution (its ``dist/``
folder; only the files, not its blueprint), so the page needs no CDN and no Node build.
Swagger UI 5 is the first to read OpenAPI 3.1, the version of our document. The page holds
no inline script: a small initializer, served here as a file, starts Swagger UI, so the
Content-Security-Policy allows scripts from ``'self'`` only.

Every URL in the page is relative (``swagger-ui.css``, ``../openapi.json``), so it works
under any API prefix, under a ``SCRIPT_NAME`` mount and behind a proxy that strips a prefix
without telling the app. Like the document, the page and its files need no credentials.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import typing as t
from pathlib import Path

from flask import Response
from flask import current_app
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from .. import errors
from ..http import json_response
from .base import APIView

#: The distribution whose ``dist/`` folder holds Swagger UI's files.
ASSETS_DISTRIBUTION = "flask-swagger-ui"
_ASSETS_PACKAGE = "flask_swagger_ui"

#: What the page loads, by the name it is served under: Swagger UI's files (from the
#: distribution) and the initializer (:data:`INITIALIZER`). Nothing else is served, so no
#: path can reach another file.
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "swagger-initializer.js": "text/javascript; charset=utf-8",
}

#: Starts Swagger UI on the document named by the page (a relative URL, resolved against
#: the page's own). No validator badge (an image from validator.swagger.io, another host),
#: and "Try it out" only when asked for: most operations need credentials (Authorize).
INITIALIZER = """\
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.getAttribute("data-openapi-url"), document.baseURI).href,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    displayOperationId: false,
    docExpansion: "list",
  });
})();
"""

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sentry Web API reference</title>
<link rel="stylesheet" href="swagger-ui.css?v={swagger_ui_css}">
<link rel="stylesheet" href="index.css?v={index_css}">
<link rel="icon" type="image/png" href="favicon-32x32.png?v={favicon_32x32_png}" sizes="32x32">
<link rel="icon" type="image/png" href="favicon-16x16.png?v={favicon_16x16_png}" sizes="16x16">
</head>
<body>
<div id="swagger-ui" data-openapi-url="../openapi.json"></div>
<script src="swagger-ui-bundle.js?v={swagger_ui_bundle_js}"></script>
<script src="swagger-initializer.js?v={swagger_initializer_js}"></script>
</body>
</html>
"""

#: Only the page's own files: scripts and styles from here, Swagger UI's icons (data:
#: URIs in its stylesheet), and requests to this origin (the document, "Try it out").
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)

#: The files are revalidated after a day (ETag); the page names each with its hash, so
#: an upgrade is loaded at once.
ASSET_CACHE_CONTROL = "public, max-age=86400"
PAGE_CACHE_CONTROL = "no-cache"


class AssetsMissing(errors.APIError):
    status_code = 501
    default_detail = (
        f"The API reference page needs the {ASSETS_DISTRIBUTION} package:"
        f" pip install {ASSETS_DISTRIBUTION}"
    )


def assets_dir() -> Path | None:
    """Swagger UI's ``dist/`` folder, or None when the distribution is not installed.

    Found without importing the package (its ``__init__`` builds a blueprint we do not use).
    """
    spec = importlib.util.find_spec(_ASSETS_PACKAGE)
    for location in (spec.submodule_search_locations or ()) if spec is not None else ():
        dist = Path(location) / "dist"
        if (dist / "swagger-ui-bundle.js").is_file():
            return dist
    return None


@functools.cache
def _asset(directory: Path, name: str) -> tuple[bytes, str]:
    """A file's bytes and ETag, read once per process (they change only on upgrade)."""
    data = (
        INITIALIZER.encode()
        if name == "swagger-initializer.js"
        else (directory / name).read_bytes()
    )
    return data, hashlib.sha256(data).hexdigest()[:32]


def _key(asset: str) -> str:
    """An asset's placeholder in :data:`_PAGE`: ``swagger-ui.css`` is ``{swagger_ui_css}``."""
    return asset.replace("-", "_").replace(".", "_")


def _required_assets_dir() -> Path:
    directory = assets_dir()
    if directory is None:
        raise AssetsMissing()
    return directory


_R = t.TypeVar("_R", bound=BaseResponse)


def _security_headers(response: _R) -> _R:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


class ReferencePageView(APIView):
    """The page or one of its files: public, not JSON (:mod:`flask_sentry_api.openapi`
    describes these endpoints from the attributes below)."""

    requires_auth = False
    #: The OpenAPI summary, and the media types GET answers in.
    summary: t.ClassVar[str]
    renders: t.ClassVar[list[str]]

    @classmethod
    def describe(cls) -> Response:
        body = t.cast(dict[str, t.Any], super().describe().get_json())
        body["renders"] = list(cls.renders)
        return json_response(body)


class APIDocsView(ReferencePageView):
    """The API reference: this OpenAPI document in Swagger UI (no credentials needed)."""

    summary = "The API reference: this document in Swagger UI, in a browser."
    renders = ["text/html"]

    def get(self) -> BaseResponse:
        if not request.path.endswith("/"):
            # Relative URLs in the page need the slash: ``<prefix>/docs`` moves there. A
            # relative Location, so a proxy's prefix is kept.
            query = request.query_string.decode("latin-1")
            location = "docs/" + (f"?{query}" if query else "")
            return _security_headers(current_app.redirect(location, 308))
        directory = _required_assets_dir()
        # Each file is named with its hash: a changed file (an upgrade) is loaded at once.
        page = _PAGE.format_map({_key(name): _asset(directory, name)[1][:12] for name in ASSETS})
        response = current_app.response_class(page, mimetype="text/html")
        response.headers["Cache-Control"] = PAGE_CACHE_CONTROL
        return _security_headers(response)


class APIDocsAssetView(ReferencePageView):
    """A file of the API reference page: Swagger UI's script, stylesheets and icons."""

    summary = "A file of the API reference page (script, stylesheet, icon)."
    renders = sorted({mimetype.partition(";")[0] for mimetype in ASSETS.values()})

    def get(self, asset: str) -> BaseResponse:
        content_type = ASSETS.get(asset)
        if content_type is None:
            raise errors.NotFound()
        data, etag = _asset(_required_assets_dir(), asset)
        response = current_app.response_class(data, content_type=content_type)
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
        response.set_etag(etag)
        return _security_headers(response.make_conditional(request))
