"""Each pod binds only its own address: cgroup eBPF programs on ``bind(2)``.

Theory of operation
-------------------
In the process runtime every pod has an address of its own on the loopback
interface (:mod:`.network`), but the kernel lets any process bind any of
``127.0.0.0/8``: without a guard a pod could take another pod's address and
port, or a port of the node's address before the agent forwards it.  A network
namespace per pod would take the pod off the shared loopback (its own ``lo``
cannot carry the ``127.x`` address others reach it by) and need a veth pair
and an agent-side proxy per pod; instead the node attaches two tiny programs
(:mod:`.bpf`) to a cgroup v2 directory per pod,
``<agent's cgroup2>/pincompute/<node's machine-local name>/pod<uid>``, which every
process of the pod joins between fork and exec (like its v1 cgroups, see
:mod:`.cgroups`).  A socket belongs to the cgroup of the process that created
it, so everything the pod's processes and their children open is covered, and
an unprivileged pod cannot leave the directory (its ``cgroup.procs`` files are
root's).  The kernel runs the programs on every ``bind`` of an IPv4 / IPv6
socket of the pod:

``bind4``  allow the pod's own address; rewrite the wildcard ``0.0.0.0`` to the
           pod's address (so ``bind 0.0.0.0:8080`` serves on the pod's address
           only, and two replicas on one node never collide); refuse anything
           else (``EPERM``) — other pods' addresses, the node's address (the agent
           itself binds the declared host ports and forwards them), 127.0.0.1.
``bind6``  the same for IPv6 sockets: the pod's address as IPv4-mapped
           (``::ffff:<ip>``) is allowed, ``::`` and ``::ffff:0.0.0.0`` are rewritten
           to it (a dual-stack server such as ``python -m http.server`` then serves
           on the pod's address), any other IPv6 address — ``::1`` included — is
           refused: pods have no IPv6 address.

Ports chosen by the kernel (``listen`` or ``sendto`` on an unbound socket)
do not pass through ``bind``: such a socket gets a free ephemeral port on the
wildcard address — never a port someone else holds or one the pod chose.  (It
would receive a connection to *another* address at that random port where
nothing else listens; filtering what a pod receives by destination would close
that too and is not done here.)

A program stays attached while its cgroup directory exists, agent restarts
included; :meth:`BindGuard.detach` kills what is left in the directory and
removes it.  :func:`probe` checks once per process that the mechanism works
here (root, cgroup v2 mounted, the programs load and attach, and a child in a
test cgroup is refused and rewritten as described) — :func:`available` is what
the node reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

from . import bpf
from .cgroups import ROOT_NAME, _mounts, _own_paths

_USER_IP4 = 4
"""Offsets in ``struct bpf_sock_addr``: ``user_ip4`` and ``user_ip6[4]``."""
_USER_IP6 = 8
_MAPPED = int.from_bytes(b"\x00\x00\xff\xff", "little")
"""The third word of an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``)."""


def ip_word(ip: str) -> int:
    """An IPv4 address as the 32-bit word the kernel's context holds (network order)."""
    return int.from_bytes(ipaddress.IPv4Address(ip).packed, "little")


def bind4_program(ip: str) -> list[bpf.Insn]:
    """Allow ``ip``, rewrite ``0.0.0.0`` to it, refuse everything else."""
    own = ip_word(ip)
    return bpf.link([
        bpf.ldx_w(bpf.R2, bpf.R1, _USER_IP4),
        bpf.jeq32_imm(bpf.R2, own, "allow"),
        bpf.jne32_imm(bpf.R2, 0, "deny"),
        bpf.mov32_imm(bpf.R3, own),
        bpf.stx_w(bpf.R1, bpf.R3, _USER_IP4),
        "allow",
        bpf.mov64_imm(bpf.R0, 1),
        bpf.exit_(),
        "deny",
        bpf.mov64_imm(bpf.R0, 0),
        bpf.exit_(),
    ])


def bind6_program(ip: str) -> list[bpf.Insn]:
    """Allow ``::ffff:ip``, rewrite ``::`` and ``::ffff:0.0.0.0`` to it, refuse the rest."""
    own = ip_word(ip)
    return bpf.link([
        bpf.ldx_w(bpf.R2, bpf.R1, _USER_IP6),
        bpf.ldx_w(bpf.R3, bpf.R1, _USER_IP6 + 4),
        bpf.ldx_w(bpf.R4, bpf.R1, _USER_IP6 + 8),
        bpf.ldx_w(bpf.R5, bpf.R1, _USER_IP6 + 12),
        bpf.jne32_imm(bpf.R2, 0, "deny"),
        bpf.jne32_imm(bpf.R3, 0, "deny"),
        bpf.jeq32_imm(bpf.R4, _MAPPED, "mapped"),
        bpf.jne32_imm(bpf.R4, 0, "deny"),
        bpf.jeq32_imm(bpf.R5, 0, "rewrite"),  # "::"; "::1" and the like are refused
        bpf.ja("deny"),
        "mapped",
        bpf.jeq32_imm(bpf.R5, own, "allow"),
        bpf.jne32_imm(bpf.R5, 0, "deny"),
        "rewrite",
        bpf.mov32_imm(bpf.R4, _MAPPED),
        bpf.stx_w(bpf.R1, bpf.R4, _USER_IP6 + 8),
        bpf.mov32_imm(bpf.R5, own),
        bpf.stx_w(bpf.R1, bpf.R5, _USER_IP6 + 12),
        "allow",
        bpf.mov64_imm(bpf.R0, 1),
        bpf.exit_(),
        "deny",
        bpf.mov64_imm(bpf.R0, 0),
        bpf.exit_(),
    ])


def attach(directory: Path, ip: str) -> None:
    """Load the guard for ``ip`` and attach it to the cgroup v2 ``directory`` (replacing)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for hook, program in ((bpf.CGROUP_INET4_BIND, bind4_program(ip)),
                              (bpf.CGROUP_INET6_BIND, bind6_program(ip))):
            prog = bpf.prog_load(program, prog_type=bpf.PROG_TYPE_CGROUP_SOCK_ADDR,
                                 expected_attach_type=hook, name="pc_bind")
            try:
                bpf.prog_attach(prog, fd, hook)
            finally:
                os.close(prog)  # the attachment holds the program now
    finally:
        os.close(fd)


def _unified_dir() -> Path | None:
    """This process's own cgroup v2 directory, if cgroup v2 is mounted."""
    mount = _mounts().get("unified")
    if mount is None:
        return None
    return mount / _own_paths().get("unified", "/").lstrip("/")


class BindGuard:
    """The bind guards of one node's pods, one cgroup v2 directory per pod."""

    def __init__(self, base: Path, *, join: bool = True) -> None:
        self.base = base
        """The node's directory, ``<agent's cgroup2>/pincompute/<node>``."""
        self.join = join
        """Whether processes join the pod's directory itself (``False`` when the
        cgroup v2 resource manager already puts them in a container directory below)."""

    def pod_dir(self, pod_uid: str) -> Path:
        return self.base / f"pod{pod_uid}"

    def attach(self, pod_uid: str, ip: str) -> None:
        d = self.pod_dir(pod_uid)
        d.mkdir(parents=True, exist_ok=True)
        attach(d, ip)

    def open_procs(self, pod_uid: str) -> list[int]:
        """Descriptors the child writes ``0`` to between fork and exec (close them after)."""
        if not self.join:
            return []
        return [os.open(self.pod_dir(pod_uid) / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)]

    async def detach(self, pod_uid: str, *, timeout: float = 2.0) -> None:
        """Kill what is left in the pod's directory and remove it (with its programs)."""
        d = self.pod_dir(pod_uid)
        if not d.exists():
            return
        with contextlib.suppress(OSError):
            _write(d / "cgroup.kill", "1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                d.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if loop.time() >= deadline:
                    return  # a later teardown or the next agent run removes it
                await asyncio.sleep(0.01)

    def close(self) -> None:
        """Remove the node's empty directories (its pods are stopped; a crashed run's
        leftovers go too), then the node's own."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.base):
                if entry.is_dir(follow_symlinks=False) and entry.name.startswith("pod"):
                    with contextlib.suppress(OSError):
                        os.rmdir(entry.path)
            self.base.rmdir()


def for_node(node: str, *, join: bool = True) -> tuple[BindGuard | None, str]:
    """The guard of ``node``'s pods, or ``None`` and why not."""
    why = probe()
    if why is not None:
        return None, why
    here = _unified_dir()
    assert here is not None  # the probe found it
    base = here / ROOT_NAME / node
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, f"cannot create {base}: {exc}"
    return BindGuard(base, join=join), f"bind guard at {base}"


def available() -> bool:
    """Whether pods of this machine can be confined to their own addresses."""
    return probe() is None


_PROBE_IP = "127.0.0.2"
_PROBE_SCRIPT = f"""
import socket
def bind(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind(addr)
        return s.getsockname()[0]
    except OSError as e:
        return e.errno
got = [bind(socket.AF_INET, ("127.0.0.3", 0)), bind(socket.AF_INET, ("0.0.0.0", 0)),
            bind(socket.AF_INET6, ("::", 0)), bind(socket.AF_INET6, ("::1", 0))]
print(got == [1, "{_PROBE_IP}", "::ffff:{_PROBE_IP}", 1] and "ok" or got)
"""


@functools.cache
def probe() -> str | None:
    """``None`` when the guard works on this machine, else why not (checked once)."""
    if os.geteuid() != 0:
        return "not running as root: cgroup eBPF programs cannot be attached"
    unsupported = bpf.supported()
    if unsupported is not None:
        return unsupported
    here = _unified_dir()
    if here is None:
        return "cgroup v2 is not mounted"
    test = here / ROOT_NAME / f".probe-{os.getpid()}"
    try:
        test.mkdir(parents=True, exist_ok=True)
        attach(test, _PROBE_IP)
        fd = os.open(test / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        try:
            out = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _PROBE_SCRIPT], capture_output=True,
                text=True, timeout=30, preexec_fn=lambda: os.write(fd, b"0"), check=False)
        finally:
            os.close(fd)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cgroup eBPF bind hooks do not work here: {exc}"
    finally:
        with contextlib.suppress(OSError):
            test.rmdir()
    if out.stdout.strip() != "ok":
        return (f"cgroup eBPF bind hooks do not confine a test process here "
                f"(saw {out.stdout.strip() or out.stderr.strip()[-200:]})")
    return None


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


__all__ = ["BindGuard", "attach", "available", "bind4_program", "bind6_program", "for_node",
           "ip_word", "probe"]
