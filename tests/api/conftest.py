"""Fixtures of the gateway's tests, for every test of the REST API to reuse.

``api`` gives a started embedded region (sim runtime, two zones, one node per member
cluster, project ``demo``) behind a started gateway, with the admin token and an httpx
client already authenticated as the platform admin::

    async def test_something(api: ApiEnv) -> None:
        r = await api.client.get("/api/v1/projects/demo/pinapps")
        token = await api.token(user="bob", project="demo", role="viewer")
        async with api.as_token(token) as bob: ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pincompute.api.context import ApiSettings
from pincompute.gateway import Gateway
from pincompute.region import Region


@dataclass
class ApiEnv:
    region: Region
    gateway: Gateway
    client: httpx.AsyncClient
    """Authenticated as the platform admin."""

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def admin_token(self) -> str:
        return self.gateway.admin_token

    async def token(self, *, user: str, project: str | None = None, role: str | None = None,
                    admin: bool = False) -> str:
        """A new token minted by the admin through the API."""
        body: dict[str, object] = {"user": user, "admin": admin}
        if project is not None:
            body["project"] = project
            body["role"] = role or "viewer"
        r = await self.client.post("/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    @contextlib.asynccontextmanager
    async def as_token(self, token: str) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=self.url, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as c:
            yield c


@contextlib.asynccontextmanager
async def api_env(region_dir: Path, *, settings: ApiSettings | None = None,
                  zones: int = 2, node_options: dict[str, Any] | None = None
                  ) -> AsyncIterator[ApiEnv]:
    """A small sim region behind a gateway (for fixtures with other settings)."""
    region = await Region.open(region_dir, zones=zones, nodes_per_cluster=1, runtime="sim",
                               health_port=None, node_options=node_options)
    try:
        await region.start()
        await region.ensure_project("demo")
        async with Gateway.start(region, settings=settings) as gw, httpx.AsyncClient(
                base_url=gw.url, timeout=30,
                headers={"Authorization": f"Bearer {gw.admin_token}"}) as client:
            yield ApiEnv(region=region, gateway=gw, client=client)
    finally:
        await region.close()


@pytest.fixture
async def api(region_dir: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(region_dir, settings=ApiSettings(
            audit_path=region_dir / "audit.log")) as env:
        yield env
