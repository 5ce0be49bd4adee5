"""The bind guard's programs, run by the kernel for a real child process (needs root)."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pincompute.kube.resource import NODES
from pincompute.node import bindguard, bpf

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or bindguard._unified_dir() is None,
                                reason="cgroup eBPF programs need root and cgroup v2")

# The child binds each address and reports where it landed, or the errno.
_BINDS = """
import json, socket, sys
out = []
for family, host in json.loads(sys.argv[1]):
    s = socket.socket(getattr(socket, family), socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        out.append(s.getsockname()[0])
    except OSError as e:
        out.append(e.errno)
    s.close()
print(json.dumps(out))
"""


def binds_in(cgroup: Path, *addresses: tuple[str, str]) -> list[str | int]:
    """Where each ``(family, host)`` bind of a process in ``cgroup`` ends up (or its errno)."""
    fd = os.open(cgroup / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _BINDS,
                               json.dumps(addresses)], capture_output=True, text=True,
                              preexec_fn=lambda: os.write(fd, b"0"), check=True, timeout=30)
    finally:
        os.close(fd)
    return json.loads(done.stdout)


@pytest.fixture
def cgroup() -> Iterator[Path]:
    here = bindguard._unified_dir()
    assert here is not None
    path = Path(tempfile.mkdtemp(prefix="test-bindguard-", dir=here))
    try:
        yield path
    finally:
        path.rmdir()


def test_ip_word_is_the_address_in_network_order() -> None:
    assert bindguard.ip_word("127.64.0.2").to_bytes(4, "little") == bytes([127, 64, 0, 2])


# An address whose last byte is >= 128 checks the 32-bit comparisons (sign bit set).
@pytest.mark.parametrize("own", ["127.64.3.2", "127.64.3.200"])
def test_ipv4_binds_own_address_only_and_the_wildcard_lands_on_it(cgroup: Path,
                                                                   own: str) -> None:
    bindguard.attach(cgroup, own)
    got = binds_in(cgroup, ("AF_INET", own), ("AF_INET", "0.0.0.0"),
                   ("AF_INET", "127.64.3.3"), ("AF_INET", "127.0.0.1"),
                   ("AF_INET", "127.64.3.1"))
    assert got == [own, own, errno.EPERM, errno.EPERM, errno.EPERM]


@pytest.mark.parametrize("own", ["127.64.3.2", "127.64.3.200"])
def test_ipv6_binds_are_mapped_to_the_own_address_or_refused(cgroup: Path, own: str) -> None:
    bindguard.attach(cgroup, own)
    got = binds_in(cgroup, ("AF_INET6", "::"), ("AF_INET6", f"::ffff:{own}"),
                   ("AF_INET6", "::ffff:0.0.0.0"), ("AF_INET6", "::1"),
                   ("AF_INET6", "::ffff:127.64.3.3"), ("AF_INET6", "fe80::1"),
                   ("AF_INET6", "::2"))
    mapped = f"::ffff:{own}"
    assert got == [mapped, mapped, mapped, errno.EPERM, errno.EPERM, errno.EPERM, errno.EPERM]


def test_without_a_guard_any_loopback_address_binds(cgroup: Path) -> None:
    """The attack the guard stops, shown possible without it (the test is meaningful)."""
    assert binds_in(cgroup, ("AF_INET", "127.64.3.3")) == ["127.64.3.3"]


def test_attaching_again_replaces_the_pods_address(cgroup: Path) -> None:
    bindguard.attach(cgroup, "127.64.3.2")
    bindguard.attach(cgroup, "127.64.3.9")
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.prog_query(fd, bpf.CGROUP_INET4_BIND)) == 1
    finally:
        os.close(fd)
    assert binds_in(cgroup, ("AF_INET", "127.64.3.2"), ("AF_INET", "0.0.0.0")) == [
        errno.EPERM, "127.64.3.9"]


async def test_a_pods_guard_is_created_joined_and_removed_with_what_runs_in_it() -> None:
    assert bindguard.available() and bindguard.probe() is None
    guard, why = bindguard.for_node(f"test-node-{os.getpid()}")
    assert guard is not None, why
    try:
        guard.attach("uid-1", "127.64.3.2")
        fd, = guard.open_procs("uid-1")
        try:
            left = await asyncio.create_subprocess_exec(
                "sleep", "60", preexec_fn=lambda: os.write(fd, b"0"))
        finally:
            os.close(fd)
        assert str(left.pid) in (guard.pod_dir("uid-1") / "cgroup.procs").read_text().split()
        await guard.detach("uid-1")
        assert await asyncio.wait_for(left.wait(), 5) == -9  # killed by the teardown
        assert not guard.pod_dir("uid-1").exists()
        await guard.detach("uid-1")  # again: nothing to do
        guard.attach("uid-2", "127.64.3.3")  # left behind, say by a crash
    finally:
        guard.close()
    assert not guard.base.exists()


def test_processes_below_a_resource_cgroup_need_not_join_the_pod_directory() -> None:
    guard = bindguard.BindGuard(Path("/nonexistent"), join=False)
    assert guard.open_procs("uid-1") == []


async def test_a_node_without_the_guard_runs_degraded_and_says_so(
        make_agent, cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bindguard, "probe", lambda: "no eBPF here")
    agent = await make_agent()
    assert agent.runtime.bindguard is None
    reason = "no bind guard (no eBPF here): pods can bind any loopback address"
    assert reason in agent.degraded
    node = await cluster.get(NODES, "n1")
    degraded = next(c for c in node["status"]["conditions"] if c["type"] == "IsolationDegraded")
    assert degraded["status"] == "True" and reason in degraded["message"]


async def test_a_node_with_the_guard_enforces_it(make_agent, cluster) -> None:
    agent = await make_agent()
    assert agent.runtime.bindguard is not None
    assert not agent.degraded
    node = await cluster.get(NODES, "n1")
    degraded = next(c for c in node["status"]["conditions"] if c["type"] == "IsolationDegraded")
    assert degraded["status"] == "False"
