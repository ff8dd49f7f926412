"""The ceiling: a bare Flask app replaying captured responses, with no auth and no database.

``gunicorn 'benchmarks.bare_app:create_app()'`` with ``BENCH_BARE_RESPONSES`` naming a JSON
file ``{path: {"headers": {...}, "body": base64}}`` written by :func:`save_responses`.
"""

from __future__ import annotations

import base64
import json
import os
import typing as t
from pathlib import Path

from flask import Flask
from flask import Response


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
    for number, (url, response) in enumerate(stored.items()):
        body = base64.b64decode(response["body"])
        headers = response["headers"]

        def view(body: bytes = body, headers: dict[str, str] = headers) -> Response:
            return Response(body, headers=headers)

        app.add_url_rule(url, endpoint=f"replay{number}", view_func=view)
    return app
