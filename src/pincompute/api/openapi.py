"""The OpenAPI document of the gateway, exported to ``docs/openapi.json`` and ``docs/api.md``.

The gateway serves it live at ``/openapi.json``; the copy in ``docs/`` is for generating
clients in other languages, and ``docs/api.md`` (:mod:`.apidoc`) is the same document for
readers.  ``python -m pincompute.api.openapi [DOCS_DIR]`` rewrites both; a test fails when
either copy is stale, so they never differ from the app.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from .apidoc import render_markdown
from .app import create_app

DOCS_DIR = Path("docs")
DOC_PATH = DOCS_DIR / "openapi.json"
MARKDOWN_PATH = DOCS_DIR / "api.md"


def openapi_document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(None).openapi()
    return doc


def render() -> bytes:
    """The document as committed: sorted keys, two-space indent, a final newline."""
    return orjson.dumps(openapi_document(),
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def render_api_md() -> bytes:
    """``docs/api.md``: the reference rendered from the document."""
    return render_markdown(openapi_document()).encode()


def main(argv: list[str]) -> int:
    docs = Path(argv[1]) if len(argv) > 1 else DOCS_DIR
    for name, text in ((DOC_PATH.name, render()), (MARKDOWN_PATH.name, render_api_md())):
        path = docs / name
        path.write_bytes(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
