"""One gateway for every SDK test (:mod:`tests.gateway_fixture`); tests that need other
settings start their own with :func:`tests.api.conftest.api_env`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from pincompute.sdk import AsyncClient
from tests.api.conftest import ApiEnv
from tests.gateway_fixture import shared_gateway


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def gateway() -> AsyncIterator[ApiEnv]:
    async with shared_gateway("pincompute-sdk-") as env:
        yield env


@pytest_asyncio.fixture(loop_scope="package")
async def pc(gateway: ApiEnv) -> AsyncIterator[AsyncClient]:
    """An async client of the shared gateway as the platform admin, project ``demo``."""
    async with AsyncClient(gateway.url, token=gateway.admin_token, project="demo") as client:
        yield client
