"""WSGI entry point of the DRF peer: ``gunicorn benchmarks.peers.drf.wsgi:application``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.peers.drf.settings")

application = get_wsgi_application()
