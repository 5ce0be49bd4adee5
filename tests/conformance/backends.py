"""How the conformance suite gets a cluster: one harness per backend.

The tests only see a :class:`~pincompute.kube.KubeClient` and a few facts and
helpers the harness provides for what differs between an in-process store and a
real API server:

* ``isolated``: nothing but the test writes to the cluster, so a list's
  resourceVersion moves only with the test's own writes (true for embedded,
  false on a real cluster where leases and events are written all the time);
* ``event_timeout`` / ``gc_timeout``: how long to wait for a watch event / for
  the asynchronous garbage collector and namespace controller;
* ``too_old_resource_version``: a resourceVersion a watch must answer with Gone;
* ``bookmark_watch_kwargs``: watch arguments under which a BOOKMARK arrives soon.

Backend options a test needs (``@pytest.mark.backend_options(history_size=8)``,
``bookmark_interval``, ``watch_buffer``) tune the embedded store; a real server
ignores them and is provoked another way.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import importlib.util
import inspect
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube import AlreadyExists, KubeClient, Resource

from .widget import CRDS, WIDGET_CRD, WIDGETS, validate_widget

BACKENDS_ENV = "PINCOMPUTE_TEST_BACKENDS"
KNOWN = ("embedded", "embedded-memory", "kubernetes")

Churn = Callable[[int], Awaitable[Any]]


def selected_backends() -> list[str]:
    raw = os.environ.get(BACKENDS_ENV, "embedded")
    names = [b.strip() for b in raw.split(",") if b.strip()]
    return names or ["embedded"]


class Harness(abc.ABC):
    name: str
    isolated: bool = False
    event_timeout: float = 10.0
    gc_timeout: float = 60.0

    def __init__(self) -> None:
        self.client: KubeClient | None = None
        self.options: dict[str, Any] = {}

    @abc.abstractmethod
    async def start(self, **options: Any) -> KubeClient: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def too_old_resource_version(self, client: KubeClient, resource: Resource,
                                       namespace: str | None, churn: Churn) -> str:
        """A resourceVersion that a watch of ``resource`` must answer with Gone.

        ``churn(i)`` makes one write to ``resource``; a backend that needs to push
        old versions out of its history calls it as often as it must.
        """

    def bookmark_watch_kwargs(self) -> dict[str, Any]:
        return {}


class EmbeddedHarness(Harness):
    isolated = True
    event_timeout = 5.0
    gc_timeout = 5.0
    OPTIONS = ("history_size", "watch_buffer", "bookmark_interval")

    def __init__(self, path: Path | None, name: str) -> None:
        super().__init__()
        self.path = path
        self.name = name
        self.store: Any = None

    async def start(self, **options: Any) -> KubeClient:
        from pincompute.kube.backends.embedded import EmbeddedStore

        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise TypeError(f"unknown backend options {sorted(unknown)}")
        self.options = options
        self.store = await EmbeddedStore.open(path=self.path, **options)
        self.store.register(WIDGETS, validator=validate_widget)
        self.client = self.store.client()
        return self.client

    async def stop(self) -> None:
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def too_old_resource_version(self, client: KubeClient, resource: Resource,
                                       namespace: str | None, churn: Churn) -> str:
        history = self.options.get("history_size")
        if not history:
            raise RuntimeError("mark the test @pytest.mark.backend_options(history_size=N)")
        rv = (await client.list(resource, namespace=namespace, limit=1)).resource_version
        for i in range(2 * history + 2):
            await churn(i)
        return rv


class KubernetesHarness(Harness):
    """A real kube-apiserver (the real-backend issue wires the connection)."""

    name = "kubernetes"
    isolated = False
    event_timeout = 15.0
    gc_timeout = 90.0
    MODULE = "pincompute.kube.backends.kubernetes"

    async def start(self, **options: Any) -> KubeClient:
        self.options = options
        if importlib.util.find_spec(self.MODULE) is None:
            pytest.fail(f"{BACKENDS_ENV} asks for the 'kubernetes' backend, but it is not yet "
                        f"available ({self.MODULE} does not exist)", pytrace=False)
        module = importlib.import_module(self.MODULE)
        factory = getattr(module, "connect", None)
        if factory is None:
            pytest.fail(f"{self.MODULE} has no connect(); wire it in "
                        "tests/conformance/backends.py", pytrace=False)
        client = factory()
        if inspect.isawaitable(client):
            client = await client
        self.client = client
        await self._install_crd(client)
        return client

    async def _install_crd(self, client: KubeClient) -> None:
        try:
            await client.create(CRDS, WIDGET_CRD)
        except AlreadyExists:
            pass
        name = WIDGET_CRD["metadata"]["name"]
        async with asyncio.timeout(60):
            while True:
                crd = await client.get(CRDS, name)
                conditions = (crd.get("status") or {}).get("conditions") or ()
                if any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in conditions):
                    return
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def too_old_resource_version(self, client: KubeClient, resource: Resource,
                                       namespace: str | None, churn: Churn) -> str:
        # Every real cluster has compacted revision 1 away long ago.
        return "1"

    def bookmark_watch_kwargs(self) -> dict[str, Any]:
        # The API server sends a bookmark about two seconds before a watch's deadline.
        return {"timeout_seconds": 8}


def make_harness(name: str, tmp_path: Path) -> Harness:
    if name == "embedded":
        return EmbeddedHarness(tmp_path / "db", name)
    if name == "embedded-memory":
        return EmbeddedHarness(None, name)
    if name == "kubernetes":
        return KubernetesHarness()
    pytest.fail(f"unknown backend {name!r} in {BACKENDS_ENV} (known: {', '.join(KNOWN)})",
                pytrace=False)
