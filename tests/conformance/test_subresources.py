"""Streamed subresources (``pods/<name>/log``): one call on every backend, kind-agnostic.

A real API server proxies a pod's log from the node's kubelet; the embedded store
has no kubelet behind it (its nodes' runtime API serves logs), so it answers
MethodNotAllowed for the subresource — after the same NotFound for a missing
object as a real server, which is what a caller branches on first.
"""

from __future__ import annotations

import pytest

from pincompute.kube.errors import BadRequest, MethodNotAllowed, NotFound
from pincompute.kube.resource import PODS

from .helpers import pod


async def read(client, name: str, ns: str, **params: str) -> bytes:
    stream = await client.read_subresource(PODS, name, "log", namespace=ns, params=params)
    return b"".join([chunk async for chunk in stream])


async def test_the_log_of_a_missing_pod_is_not_found(client, ns):
    with pytest.raises(NotFound):
        await read(client, "missing", ns, container="main")


async def test_a_pod_log_is_read_where_the_backend_serves_it(client, ns, backend_name):
    await client.create(PODS, pod("p", ns))
    container = (await client.get(PODS, "p", namespace=ns))["spec"]["containers"][0]["name"]
    if backend_name.startswith("embedded"):
        with pytest.raises(MethodNotAllowed) as err:
            await read(client, "p", ns, container=container)
        assert "runtime API" in err.value.message
        return
    # Not yet on a node: nothing logged, an empty log.
    assert await read(client, "p", ns, container=container, tailLines="10") == b""
    with pytest.raises(BadRequest) as bad:
        await read(client, "p", ns, container="nope")
    assert "nope" in bad.value.message
