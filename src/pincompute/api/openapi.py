"""The OpenAPI document of the gateway, exported to ``docs/openapi.json``.

The gateway serves it live at ``/openapi.json``; the copy in ``docs/`` is for readers and
for generating clients in other languages.  ``python -m pincompute.api.openapi`` rewrites
it; a test fails when the copy is stale, so the two never differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from .app import create_app

DOC_PATH = Path("docs/openapi.json")


def openapi_document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(None).openapi()
    return doc


def render() -> bytes:
    """The document as committed: sorted keys, two-space indent, a final newline."""
    return orjson.dumps(openapi_document(),
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DOC_PATH
    path.write_bytes(render())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
