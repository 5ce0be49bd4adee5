"""One gateway for every SDK test: a small sim region behind a real gateway on loopback.

Package-scoped (its event loop too) so the SDK tests pay for one region; tests
that need a gateway with other settings start their own with
:func:`tests.api.conftest.api_env`.  The sync :class:`~pincompute.sdk.Client` is
driven from a thread (``asyncio.to_thread``): the gateway serves on the test's
event loop, which a blocking call on it would stall.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from pincompute.api.context import ApiSettings
from pincompute.sdk import AsyncClient
from tests.api.conftest import ApiEnv, api_env


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def gateway() -> AsyncIterator[ApiEnv]:
    path = Path(tempfile.mkdtemp(prefix="pincompute-sdk-"))
    path.chmod(0o711)
    try:
        async with api_env(path / "data", settings=ApiSettings(
                audit_path=path / "audit.log")) as env:
            yield env
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="package")
async def pc(gateway: ApiEnv) -> AsyncIterator[AsyncClient]:
    """An async client of the shared gateway as the platform admin, project ``demo``."""
    async with AsyncClient(gateway.url, token=gateway.admin_token, project="demo") as client:
        yield client
