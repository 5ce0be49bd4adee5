"""One process at a time opens a store: the store takes its directory's lock (issue 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore, StoreInUse
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES

_OPEN = """
import asyncio, sys
from pincompute.kube.backends.embedded import EmbeddedStore, StoreUnavailable
async def main():
    try:
        store = await EmbeddedStore.open(path=sys.argv[1])
    except StoreUnavailable as e:
        print("refused:", e)
        return
    print("opened")
    await store.close()
asyncio.run(main())
"""


def _open_elsewhere(path: Path) -> str:
    done = subprocess.run([sys.executable, "-c", _OPEN, str(path)], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


async def test_a_second_process_cannot_open_an_open_store(tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    await store.client().create(NAMESPACES, {"metadata": {"name": "ns"}})
    try:
        answer = _open_elsewhere(tmp_path)
        assert answer.startswith("refused:") and str(tmp_path) in answer, answer
        assert "in use by pid" in answer and "\n" not in answer
        with pytest.raises(StoreInUse):  # a second open in this process, too
            await EmbeddedStore.open(path=tmp_path)
        # The refused opens changed nothing.
        await store.client().create(CONFIGMAPS, {"metadata": {"name": "a"}}, namespace="ns")
    finally:
        await store.close()
    assert _open_elsewhere(tmp_path) == "opened"  # released at close


async def test_a_store_that_fails_to_open_releases_its_lock(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await EmbeddedStore.open(path=tmp_path, synchronous="SOMETIMES")
    store = await EmbeddedStore.open(path=tmp_path)
    await store.close()
