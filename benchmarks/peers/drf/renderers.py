"""The JSON renderer of the DRF peer: DRF's own, writing the bytes our API writes.

Flask's JSON provider (and so our API) sorts keys, escapes everything outside ASCII and
ends the body with a newline; DRF's ``JSONRenderer`` keeps declaration order and writes
UTF-8. Only those three settings differ: the encoder is still DRF's (the standard
library's ``json`` with DRF's ``JSONEncoder``), as an idiomatic DRF project would have it.
"""

from __future__ import annotations

import json
import typing as t

from rest_framework.compat import SHORT_SEPARATORS
from rest_framework.renderers import JSONRenderer


class SortedJSONRenderer(JSONRenderer):
    ensure_ascii = True

    def render(
        self,
        data: t.Any,
        accepted_media_type: str | None = None,
        renderer_context: t.Mapping[str, t.Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        text = json.dumps(
            data,
            cls=self.encoder_class,
            ensure_ascii=self.ensure_ascii,
            allow_nan=not self.strict,
            separators=SHORT_SEPARATORS,
            sort_keys=True,
        )
        return text.encode() + b"\n"
