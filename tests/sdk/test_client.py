"""The sync client against the real gateway, and its parity with the async one.

The gateway serves on this test's event loop, so the sync calls run in a thread.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from pathlib import Path

import pytest

from pincompute.sdk import AsyncClient, Client, Config, NotFound, RateLimited, RetryPolicy
from pincompute.sdk import write_config as save
from tests.api.conftest import ApiEnv

from .support import pinapp

pytestmark = pytest.mark.asyncio(loop_scope="package")


def _public(cls: type) -> dict[str, list[str]]:
    return {name: list(inspect.signature(fn).parameters)
            for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_") and name != "from_config"}


async def test_sync_and_async_clients_have_the_same_methods() -> None:
    assert _public(Client) == _public(AsyncClient)
    assert len(_public(Client)) >= 40


async def test_sync_client_from_config_file(gateway: ApiEnv, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(Config(server=gateway.url, token=gateway.admin_token, project="demo"),
                path=tmp_path / "config.yaml")
    monkeypatch.setenv("PINCOMPUTE_CONFIG", str(path))
    for var in ("PINCOMPUTE_SERVER", "PINCOMPUTE_TOKEN", "PINCOMPUTE_PROJECT"):
        monkeypatch.delenv(var, raising=False)

    def work() -> tuple[str, list[str], str]:
        with Client.from_config() as pc:
            result, _ = pc.apply(pinapp("sync-app"))
            events = []
            for event in pc.watch("pinapps", name="sync-app"):
                events.append(event.type)
                break
            try:
                pc.get("app", "missing")
            except NotFound as e:
                missing = e.reason
            return result, events, missing

    assert await asyncio.to_thread(work) == ("created", ["ADDED"], "NotFound")


async def test_rate_limited_is_raised_or_waited_out(gateway: ApiEnv) -> None:
    """Requests without a valid token are limited per address (20/s): a burst gets 429s,
    raised with attempts=1 and waited out (Retry-After) by the default policy."""
    bad = "pct_000000000000_" + "y" * 43

    async def burst(policy: RetryPolicy) -> list[BaseException]:
        async with AsyncClient(gateway.url, token=bad, project="demo", retry=policy) as pc:
            results = await asyncio.gather(*(pc.list("app") for _ in range(40)),
                                           return_exceptions=True)
        return [r for r in results if isinstance(r, BaseException)]

    once = await burst(RetryPolicy(attempts=1))
    limited = [e for e in once if isinstance(e, RateLimited)]
    assert limited and all(e.retry_after > 0 for e in limited)
    await asyncio.sleep(1.0)
    patient = await burst(RetryPolicy(attempts=10, timeout=20))
    assert patient and not any(isinstance(e, RateLimited) for e in patient)
    assert os.environ.get("PINCOMPUTE_TOKEN") != bad
