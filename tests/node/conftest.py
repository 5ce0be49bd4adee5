"""Fixtures for node tests: an embedded cluster, node agents, and a process safety net.

Every agent a test starts is stopped at teardown (which stops its containers);
after that, any process still running from the test's node directory is killed
with its process group, so nothing a test started outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.node import BackoffPolicy, NodeAgent, NodeConfig, NodeIdentity

# Containers may run as an unprivileged uid, which cannot read /root (where the
# venv's interpreter lives); the system interpreter is world-readable.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
NAMESPACES_FOR_TESTS = ("default", "team-a", "team-b", "pincompute-system")


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0,
                     interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (fails the test after ``timeout``)."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await check()
                if last:
                    return last
                await asyncio.sleep(interval)
    except TimeoutError:
        pytest.fail(f"condition not reached within {timeout}s; last value: {last!r}")


def make_pod(name: str, containers: list[dict[str, Any]], *, node: str | None = "n1",
             namespace: str = "default", **spec: Any) -> dict[str, Any]:
    for c in containers:
        c.setdefault("image", "local")
    metadata = spec.pop("metadata", {})
    pod_spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Always",
                                "terminationGracePeriodSeconds": 5, **spec}
    if node is not None:
        pod_spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, **metadata},
            "spec": pod_spec}


def py(code: str) -> list[str]:
    return [PYTHON, "-u", "-c", code]


async def get_pod(client: KubeClient, name: str, namespace: str = "default") -> dict[str, Any]:
    return await client.get(PODS, name, namespace=namespace)


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        if c["name"] == name:
            return c
    return {}


@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    for ns in NAMESPACES_FOR_TESTS:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": ns}})
    yield client
    await store.close()


@pytest.fixture
def node_root() -> Iterator[Path]:
    """A directory pods running as other uids can reach (its parents are o+x)."""
    root = Path(tempfile.mkdtemp(prefix="pincompute-node-test-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        _kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def _kill_leftovers(root: Path) -> None:
    """The safety net: kill (by process group) anything still running from ``root``."""
    prefix = str(root)
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cwd = proc.info.get("cwd") or ""
            cmd = " ".join(proc.info.get("cmdline") or ())
            if proc.pid != os.getpid() and (cwd.startswith(prefix) or prefix in cmd):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()


FAST_BACKOFF = BackoffPolicy(initial=0.2, maximum=1.0, reset_after=600.0)


@pytest.fixture
async def make_agent(cluster: KubeClient, node_root: Path
                     ) -> AsyncIterator[Callable[..., Awaitable[NodeAgent]]]:
    agents: list[NodeAgent] = []

    async def make(name: str = "n1", *, runtime: str = "process", **options: Any) -> NodeAgent:
        identity_options = {k: options.pop(k) for k in list(options)
                            if k in NodeIdentity.__dataclass_fields__}
        identity = NodeIdentity(name=name, **identity_options)
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("probe_scale", 0.2)
        options.setdefault("record_events", True)
        options.setdefault("shutdown_grace", 2.0)
        if runtime == "process":
            options.setdefault("root_dir", node_root / name)
            options.setdefault("storage_dir", node_root / "storage")
        agent = NodeAgent(cluster, NodeConfig(identity=identity, runtime=runtime,  # type: ignore[arg-type]
                                              **options))
        await agent.start()
        agents.append(agent)
        return agent

    yield make
    for agent in reversed(agents):
        await agent.stop()
