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
* ``namespace_ready``: waits until a new namespace takes every kind of object (on a
  real cluster: until the controller manager has made its default ServiceAccount,
  without which the ServiceAccount admission plugin refuses pods).

The ``kubernetes`` harness talks to the kubeconfig it is given: the session's host
cluster (``tests/kubeenv_fixture.py``) or ``$PINCOMPUTE_TEST_KUBECONFIG``.  It
installs the Widget CRD once per server and waits until it is Established and served.

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

from pincompute.kube import AlreadyExists, KubeClient, NotFound, Resource

from .widget import CRDS, WIDGET_CRD, WIDGETS, validate_widget

BACKENDS_ENV = "PINCOMPUTE_TEST_BACKENDS"
#: A cluster to test the kubernetes backend against instead of the session's own.
KUBECONFIG_ENV = "PINCOMPUTE_TEST_KUBECONFIG"
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount",
                           status_subresource=False)
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

    async def namespace_ready(self, client: KubeClient, name: str) -> None:  # noqa: B027
        """Wait until a new namespace can take every kind of object (a no-op in-process)."""


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
    """A real kube-apiserver: the session's host cluster (``tests/kubeenv_fixture.py``),
    or the cluster ``$PINCOMPUTE_TEST_KUBECONFIG`` names."""

    name = "kubernetes"
    isolated = False
    event_timeout = 15.0
    gc_timeout = 90.0
    MODULE = "pincompute.kube.backends.kubernetes"
    # CRDs already Established, per server: installed once per session, not per test.
    _established: set[str] = set()

    def __init__(self, kubeconfig: str | Path | None = None) -> None:
        super().__init__()
        self.kubeconfig = kubeconfig

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
        client = factory(str(self.kubeconfig) if self.kubeconfig is not None else None)
        if inspect.isawaitable(client):
            client = await client
        self.client = client
        server = getattr(client, "server", str(self.kubeconfig))
        if server not in self._established:
            await self._install_crd(client)
            self._established.add(server)
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
                    break
                await asyncio.sleep(0.2)
            # Established means served; wait until the collection answers too, so the
            # first test does not race the API server's handler installation.
            while True:
                try:
                    await client.list(WIDGETS, namespace="default", limit=1)
                    return
                except NotFound:
                    await asyncio.sleep(0.2)

    async def namespace_ready(self, client: KubeClient, name: str) -> None:
        # Pods cannot be created in a namespace before the controller manager has made
        # its default ServiceAccount (the ServiceAccount admission plugin refuses them);
        # Kubernetes' own e2e framework waits for it the same way.
        async with asyncio.timeout(30):
            while True:
                try:
                    await client.get(SERVICEACCOUNTS, "default", namespace=name)
                    return
                except NotFound:
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def too_old_resource_version(self, client: KubeClient, resource: Resource,
                                       namespace: str | None, churn: Churn) -> str:
        # Older than anything in the API server's watch cache, which starts at the
        # revision it first listed from etcd: revision 1 never qualifies on a real server.
        # One write all the same, so that callers find the object churned as on the
        # embedded store (a later "change it back" patch must be a change).
        await churn(0)
        return "1"

    def bookmark_watch_kwargs(self) -> dict[str, Any]:
        # The API server sends a bookmark about two seconds before a watch's deadline.
        return {"timeout_seconds": 8}


def make_harness(name: str, tmp_path: Path, *,
                 kubeconfig: str | Path | None = None) -> Harness:
    if name == "embedded":
        return EmbeddedHarness(tmp_path / "db", name)
    if name == "embedded-memory":
        return EmbeddedHarness(None, name)
    if name == "kubernetes":
        return KubernetesHarness(kubeconfig)
    pytest.fail(f"unknown backend {name!r} in {BACKENDS_ENV} (known: {', '.join(KNOWN)})",
                pytrace=False)
