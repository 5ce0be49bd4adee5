"""Waiting for something a controller does asynchronously, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0,
                     what: str = "the condition", interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def is_true(value: Any) -> Any:
    """``value`` as an awaitable, for :func:`eventually` over plain state:
    ``eventually(lambda: is_true(cache.has_synced))``."""
    return value


async def recorded(client: KubeClient, *, reason: str, namespace: str = "default",
                   name: str | None = None, kind: str | None = None,
                   match: Callable[[dict[str, Any]], bool] | None = None,
                   timeout: float = 15.0) -> list[dict[str, Any]]:
    """Wait for an Event with ``reason`` (about ``name``/``kind``, passing ``match``); return
    every such Event.  Recorders write Events in the background, after the status write a test
    waits for, so a single look right after it may come too early."""
    def wanted(e: dict[str, Any]) -> bool:
        involved = e.get("involvedObject") or {}
        return (e.get("reason") == reason
                and (name is None or involved.get("name") == name)
                and (kind is None or involved.get("kind") == kind)
                and (match is None or match(e)))

    async def found() -> list[dict[str, Any]]:
        return [e for e in (await client.list(EVENTS, namespace=namespace)).items if wanted(e)]

    return await eventually(found, timeout=timeout,
                            what=f"a {reason} Event" + (f" about {name}" if name else ""))
