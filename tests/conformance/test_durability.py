"""Durability of the persisted embedded store (DESIGN §12: a ``kill -9`` at any
instant loses no acknowledged write, and neither does a power loss), and reopening
a closed store.

A SIGKILL leaves the page cache intact, so on its own it cannot tell a store that
syncs from one that does not.  The power-loss runs load ``powerloss.c`` into the
writer (LD_PRELOAD): it keeps, for each store file, only what was fsynced
(``FILE.synced``), and after the kill each file is replaced by that copy — every
write not yet synced is lost.  The same run with ``synchronous=OFF`` or ``NORMAL``
must lose acknowledged writes, which proves the test can fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
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
SHIM_SOURCE = Path(__file__).with_name("powerloss.c")
NAMESPACE = "durability"
STORE_FILES = "store.db"  # store.db, -wal, -shm (persistence.DB_FILE)


@pytest.fixture(scope="session")
def powerloss_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The power-loss shim, compiled for this machine (needs a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        reason = "no C compiler (cc) to build the power-loss shim"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"durability test not run under CI=true: {reason}")
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("powerloss") / "powerloss.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(SHIM_SOURCE),
                    "-ldl", "-lpthread"], check=True, capture_output=True)
    return out


async def _open(path: Path):
    from pincompute.kube.backends.embedded import EmbeddedStore

    store = await EmbeddedStore.open(path=path)
    store.register(WIDGETS, validator=validate_widget)
    return store


def _store_files(path: Path) -> list[Path]:
    return [p for p in path.iterdir()
            if p.name.startswith(STORE_FILES) and not p.name.endswith(".synced")]


def _arm_power_loss(path: Path) -> None:
    """What is on disk now counts as synced (it is what the last power loss left)."""
    for stale in path.glob(f"{STORE_FILES}*.synced"):
        stale.unlink()
    for file in _store_files(path):
        if not file.name.endswith("-shm"):
            shutil.copyfile(file, f"{file}.synced")


def _lose_power(path: Path) -> None:
    """Leave each store file as the disk holds it: its synced copy, or nothing."""
    for file in _store_files(path):
        file.unlink()
    for synced in path.glob(f"{STORE_FILES}*.synced"):
        synced.rename(synced.with_name(synced.name.removesuffix(".synced")))


Acks = dict[str, tuple[str, int]]  # name -> (last acknowledged ACK/UPD/DEL, resourceVersion)


async def _burst_and_kill(path: Path, prefix: str, acks_wanted: int, *,
                          synchronous: str = "FULL", shim: Path | None = None) -> Acks:
    """Run the writer until ``acks_wanted`` acks, SIGKILL it, return every ack per name.

    With ``shim``, the kill is a power loss: what was not synced is gone.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if shim is not None:
        path.mkdir(parents=True, exist_ok=True)
        _arm_power_loss(path)
        env.update(LD_PRELOAD=str(shim), POWERLOSS_DIR=str(path.resolve()),
                   POWERLOSS_PREFIX=STORE_FILES)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), "32", prefix, synchronous,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    acked: Acks = {}
    count = 0

    def take(line: bytes) -> None:
        nonlocal count
        parts = line.split()
        if len(parts) == 3 and parts[0] in (b"ACK", b"UPD", b"DEL"):
            acked[parts[1].decode()] = (parts[0].decode(), int(parts[2]))
            count += 1

    try:
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
            if line.strip() != b"READY":
                err = await proc.stderr.read()
                pytest.fail(f"writer did not start: {line!r} {err.decode()[-2000:]}")
            while count < acks_wanted:
                line = await proc.stdout.readline()
                if not line:
                    err = await proc.stderr.read()
                    pytest.fail(f"writer died early: {err.decode()[-2000:]}")
                take(line)
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
        take(line)
    if shim is not None:
        _lose_power(path)
    return acked


async def _losses(path: Path, acked: Acks) -> list[str]:
    """Every acknowledged write the reopened store does not have (empty: none lost)."""
    store = await _open(path)
    try:
        listed = await store.client().list(CONFIGMAPS, namespace=NAMESPACE)
    except NotFound:  # not even the namespace's resource type: nothing survived
        listed = None
    finally:
        await store.close()
    present = {o["metadata"]["name"]: o for o in listed.items} if listed else {}
    lost = []
    for name, (what, version) in sorted(acked.items()):
        obj = present.get(name)
        if what == "DEL":
            if obj is not None:
                lost.append(f"delete of {name} at {version}")
        elif obj is None or rv(obj) < version:
            lost.append(f"{'create' if what == 'ACK' else 'update'} of {name} at {version}")
        elif what == "UPD" and obj["data"]["n"] != "updated":
            lost.append(f"update of {name} at {version}")
    return lost


async def _check_survivors(path: Path, acked: Acks) -> int:
    lost = await _losses(path, acked)
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
    store = await _open(path)
    try:
        client = store.client()
        listed = await client.list(CONFIGMAPS, namespace=NAMESPACE)
        present = {o["metadata"]["name"]: o for o in listed.items}
        for name, obj in present.items():
            assert name.startswith("after-") or obj["data"]["payload"] == "x" * 200
        newest = max(rv(o) for o in present.values())
        assert rv(listed.resource_version) >= max(newest, *(v for _, v in acked.values()))

        # The store takes writes again, with versions past everything before the kill.
        one = next(name for name, (what, _) in acked.items() if what != "DEL")
        with pytest.raises(AlreadyExists):
            await client.create(CONFIGMAPS, configmap(one, NAMESPACE))
        after = await client.create(CONFIGMAPS, configmap(f"after-{len(present)}", NAMESPACE))
        assert rv(after) > max(v for _, v in acked.values())
        updated = await client.patch(CONFIGMAPS, after["metadata"]["name"],
                                     {"data": {"n": "updated"}}, namespace=NAMESPACE)
        assert rv(updated) > rv(after)
        return len(present)
    finally:
        await store.close()


@pytest.mark.parametrize("crash", ["kill-9", "power-loss"])
async def test_crash_during_a_write_burst_loses_no_acknowledged_write(tmp_path, crash,
                                                                      request):
    shim = request.getfixturevalue("powerloss_shim") if crash == "power-loss" else None
    path = tmp_path / "db"
    # Long enough, with power loss, to pass a WAL checkpoint (16 MiB of WAL): the
    # database file itself is then written, and must be synced too.
    acked = await _burst_and_kill(path, "first", 20_000 if shim else 3000, shim=shim)
    assert {what for what, _ in acked.values()} == {"ACK", "UPD", "DEL"}
    if shim is not None:
        assert (path / "store.db").stat().st_size > 2**20, "no checkpoint during the burst"
    count = await _check_survivors(path, acked)
    # Recovery of a recovered store: crash it again mid-burst and check everything.
    acked2 = await _burst_and_kill(path, "second", 2000, shim=shim)
    assert set(acked2).isdisjoint(acked)
    assert min(v for _, v in acked2.values()) > max(v for _, v in acked.values())
    live = sum(what != "DEL" for what, _ in acked2.values())
    count2 = await _check_survivors(path, {**acked, **acked2})
    assert count2 >= count + live - sum(what == "DEL" for what, _ in acked2.values()) - 1


@pytest.mark.parametrize("synchronous", ["OFF", "NORMAL"])
async def test_power_loss_loses_acknowledged_writes_without_fsync(tmp_path, synchronous,
                                                                  powerloss_shim):
    """The power-loss test can fail: without an fsync per commit, acked writes are lost."""
    path = tmp_path / "db"
    acked = await _burst_and_kill(path, "first", 1500, synchronous=synchronous,
                                  shim=powerloss_shim)
    lost = await _losses(path, acked)
    assert len(lost) > 100, lost  # far more than a torn last batch


async def test_the_store_runs_in_wal_mode_with_full_sync(tmp_path):
    """What durability rests on is asked for, and read back at open (see persistence)."""
    path = tmp_path / "db"
    store = await _open(path)
    await store.client().create(NAMESPACES, {"metadata": {"name": "x"}})
    with sqlite3.connect(path / "store.db") as db:  # journal_mode is kept in the file
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._commit.log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    await store.close()


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
