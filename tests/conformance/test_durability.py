"""Durability of the persisted embedded store (DESIGN §12: a ``kill -9`` at any
instant loses no acknowledged write), and reopening a closed store."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from pincompute.kube import AlreadyExists, NotFound
from pincompute.kube.resource import NAMESPACES

from .backends import selected_backends
from .helpers import CONFIGMAPS, WIDGETS, configmap, rv, widget
from .widget import validate_widget

pytestmark = pytest.mark.skipif("embedded" not in selected_backends(),
                                reason="the durability tests exercise the embedded store")

WRITER = Path(__file__).with_name("durability_writer.py")
NAMESPACE = "durability"


async def _open(path: Path):
    from pincompute.kube.backends.embedded import EmbeddedStore

    store = await EmbeddedStore.open(path=path)
    store.register(WIDGETS, validator=validate_widget)
    return store


async def _burst_and_kill(path: Path, prefix: str, acks_wanted: int) -> dict[str, int]:
    """Run the writer until ``acks_wanted`` acks, SIGKILL it, return every acked name."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), "32", prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    acked: dict[str, int] = {}
    try:
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
            if line.strip() != b"READY":
                err = await proc.stderr.read()
                pytest.fail(f"writer did not start: {line!r} {err.decode()[-2000:]}")
            while len(acked) < acks_wanted:
                line = await proc.stdout.readline()
                if not line:
                    err = await proc.stderr.read()
                    pytest.fail(f"writer died early: {err.decode()[-2000:]}")
                _, name, version = line.split()
                acked[name.decode()] = int(version)
            proc.send_signal(signal.SIGKILL)
            # Lines already in the pipe were acknowledged before the kill, too.
            rest = await proc.stdout.read()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for line in rest.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"ACK":
            acked[parts[1].decode()] = int(parts[2])
    return acked


async def _check_survivors(path: Path, acked: dict[str, int]) -> int:
    store = await _open(path)
    try:
        client = store.client()
        listed = await client.list(CONFIGMAPS, namespace=NAMESPACE)
        present = {o["metadata"]["name"]: o for o in listed.items}
        lost = sorted(set(acked) - set(present))
        assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
        for name, version in acked.items():
            assert rv(present[name]) == version, name
            assert present[name]["data"]["payload"] == "x" * 200
        newest = max(rv(o) for o in present.values())
        assert rv(listed.resource_version) >= newest

        # The store takes writes again, with versions past everything before the kill.
        one = next(iter(acked))
        with pytest.raises(AlreadyExists):
            await client.create(CONFIGMAPS, configmap(one, NAMESPACE))
        after = await client.create(CONFIGMAPS, configmap(f"after-{len(present)}", NAMESPACE))
        assert rv(after) > newest
        updated = await client.patch(CONFIGMAPS, after["metadata"]["name"],
                                     {"data": {"n": "updated"}}, namespace=NAMESPACE)
        assert rv(updated) > rv(after)
        return len(present)
    finally:
        await store.close()


async def test_kill_9_during_a_write_burst_loses_no_acknowledged_write(tmp_path):
    path = tmp_path / "db"
    acked = await _burst_and_kill(path, "first", 3000)
    count = await _check_survivors(path, acked)
    # Recovery of a recovered store: kill it again mid-burst and check everything.
    acked2 = await _burst_and_kill(path, "second", 2000)
    assert set(acked2).isdisjoint(acked)
    assert min(acked2.values()) > max(acked.values())
    count2 = await _check_survivors(path, {**acked, **acked2})
    assert count2 >= count + len(acked2)


async def test_reopen_restores_the_store(tmp_path):
    path = tmp_path / "db"
    store = await _open(path)
    client = store.client()
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "reopen"}})
    kept = await client.create(CONFIGMAPS, configmap("kept", "reopen", data={"v": "1"}))
    kept["data"] = {"v": "2"}
    kept = await client.update(CONFIGMAPS, kept)
    await client.create(CONFIGMAPS, configmap("dropped", "reopen"))
    await client.delete(CONFIGMAPS, "dropped", namespace="reopen")
    w = await client.create(WIDGETS, widget("w", "reopen", size=3))
    w["status"] = {"phase": "Ready"}
    w = await client.update_status(WIDGETS, w)
    held = await client.create(CONFIGMAPS, configmap("held", "reopen", finalizers=["x.io/f"]))
    held = await client.delete(CONFIGMAPS, "held", namespace="reopen")
    before = await client.list(CONFIGMAPS, namespace="reopen")
    await store.close()

    store = await _open(path)
    try:
        client = store.client()
        got = await client.get(CONFIGMAPS, "kept", namespace="reopen")
        assert got == kept
        with pytest.raises(NotFound):
            await client.get(CONFIGMAPS, "dropped", namespace="reopen")
        got_w = await client.get(WIDGETS, "w", namespace="reopen")
        assert got_w == w and got_w["metadata"]["generation"] == 1
        got_held = await client.get(CONFIGMAPS, "held", namespace="reopen")
        assert got_held["metadata"]["deletionTimestamp"] == held["metadata"]["deletionTimestamp"]
        after = await client.list(CONFIGMAPS, namespace="reopen")
        assert after.items == before.items
        newer = await client.create(CONFIGMAPS, configmap("newer", "reopen"))
        assert rv(newer) > rv(before.resource_version)
        assert newer["metadata"]["uid"] not in {o["metadata"]["uid"] for o in before.items}
    finally:
        await store.close()
