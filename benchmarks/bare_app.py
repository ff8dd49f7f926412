"""The ceiling: a bare Flask app replaying captured responses, with no auth and no database.

``gunicorn 'benchmarks.bare_app:create_app()'`` with ``BENCH_BARE_RESPONSES`` naming a JSON
file ``{url: {"headers": {...}, "body": base64}}`` written by :func:`save_responses`. A URL
may carry a query string (``/groups/?statsPeriod=``): Flask routes on the path only, so each
path's view picks the stored response by the request's query string.
"""

from __future__ import annotations

import base64
import json
import os
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import abort
from flask import request


def save_responses(path: Path, responses: t.Mapping[str, tuple[dict[str, str], bytes]]) -> None:
    path.write_text(
        json.dumps(
            {
                url: {"headers": headers, "body": base64.b64encode(body).decode()}
                for url, (headers, body) in responses.items()
            }
        )
    )


def create_app() -> Flask:
    app = Flask(__name__)
    stored = json.loads(Path(os.environ["BENCH_BARE_RESPONSES"]).read_text())
    by_path: dict[str, dict[bytes, tuple[bytes, dict[str, str]]]] = {}
    for url, response in stored.items():
        parts = urlsplit(url)
        by_path.setdefault(parts.path, {})[parts.query.encode()] = (
            base64.b64decode(response["body"]),
            response["headers"],
        )
    for number, (path, answers) in enumerate(by_path.items()):

        def view(answers: dict[bytes, tuple[bytes, dict[str, str]]] = answers) -> Response:
            found = answers.get(request.query_string)
            if found is None:
                abort(404)
            return Response(found[0], headers=found[1])

        app.add_url_rule(path, endpoint=f"replay{number}", view_func=view)
    return app
