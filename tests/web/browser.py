"""Debian's Chromium under Playwright, for the console's tests (no browser is downloaded).

``chromium()`` launches ``/usr/bin/chromium`` headless with networking features that would
call out (component updates, sync, QUIC...) turned off. Without it the test is skipped, or
fails when ``CI=true`` (a real-browser test that silently skips tests nothing).
``axe_violations(page)`` runs axe-core (vendored by ``make web-assets``) in the page and
returns the serious and critical violations.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("PINCOMPUTE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tools" / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "console"
DOCS_IMAGES = ROOT / "docs" / "images"


def require_browser() -> None:
    """Skip (fail with CI=true) when Chromium, Playwright or axe-core is missing."""
    missing = []
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing.append(f"{CHROMIUM} (tools/system-deps.sh installs Debian's chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if not AXE.exists():
        missing.append(f"{AXE} (make web-assets)")
    if missing:
        message = "browser tests need " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


async def launch(playwright: Any) -> Any:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2 A/AA violations on the page as it is now."""
    if not await page.evaluate("() => Boolean(window.axe)"):
        # Evaluated through the DevTools protocol: the page's policy forbids inline scripts.
        await page.evaluate(AXE.read_text())
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21aa"] });
        return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    }""")
    return list(result)


async def screenshot(page: Any, name: str, tmp_dir: Path, *, mask: list[Any] | None = None
                     ) -> None:
    """The page as a PNG in the test's directory and test-artifacts/console/, and in
    docs/images/ when PINCOMPUTE_DOCS_IMAGES=1 (refreshing the tutorial's pictures); ``mask``
    covers secrets (a token shown once)."""
    places = [tmp_dir, ARTIFACTS]
    if os.environ.get("PINCOMPUTE_DOCS_IMAGES") == "1":
        places.append(DOCS_IMAGES)
    for place in places:
        place.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(place / f"console-{name}.png"), full_page=True,
                              mask=mask or [])
