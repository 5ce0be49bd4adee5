"""A minimal eBPF toolkit: instruction encoding and the bpf(2) calls the node needs.

Theory of operation
-------------------
The node confines each pod's sockets with small cgroup programs
(:mod:`.bindguard`).  Those programs are a dozen instructions, so instead of a
compiler toolchain (clang, libbpf, bcc) this module encodes eBPF instructions
directly and calls the ``bpf`` system call through :mod:`ctypes`:

* :class:`Insn` is one 8-byte instruction (``code``, ``dst``/``src`` registers,
  ``off``, ``imm``); the helpers below (:func:`ldx_w`, :func:`jeq32_imm`, ...)
  build the few forms the guard uses, and :func:`link` resolves jumps to named
  labels into instruction offsets.  32-bit jumps (``BPF_JMP32``, Linux 5.1)
  compare the low half of a register with an immediate, so an IPv4 address
  whose last byte is ≥ 128 (a negative ``s32`` immediate) still compares right.
* :func:`prog_load` verifies and loads a program and returns its descriptor;
  on refusal :class:`BPFError` carries the verifier's log.
* :func:`prog_attach` / :func:`prog_detach` / :func:`prog_query` attach a
  program to a cgroup (v2) directory for one hook, detach it, and list what is
  attached.  A program attached to a cgroup stays attached after its
  descriptor is closed and the agent exits; it goes with the cgroup directory.

Structure layouts follow ``include/uapi/linux/bpf.h``; the attribute block is
passed zero-filled beyond the fields used, as the kernel requires.  Only
little-endian machines are supported (the register nibbles of an instruction
are a C bit-field): :func:`supported` says whether this machine qualifies.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

# bpf(2) commands
PROG_LOAD = 5
PROG_ATTACH = 8
PROG_DETACH = 9
PROG_QUERY = 16

# program types and attach types (enum bpf_prog_type / bpf_attach_type)
PROG_TYPE_CGROUP_SOCK_ADDR = 18
CGROUP_INET4_BIND = 8
CGROUP_INET6_BIND = 9
CGROUP_INET4_CONNECT = 10
CGROUP_INET6_CONNECT = 11

# instruction classes and fields
_LDX, _STX, _JMP, _JMP32, _ALU, _ALU64 = 0x01, 0x03, 0x05, 0x06, 0x04, 0x07
_MEM, _W = 0x60, 0x00
_MOV, _JEQ, _JNE, _JA, _EXIT = 0xB0, 0x10, 0x50, 0x00, 0x90
_K, _X = 0x00, 0x08

R0, R1, R2, R3, R4, R5, R6 = range(7)

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361}
_ATTR_SIZE = 128
_LOG_SIZE = 65536


class BPFError(OSError):
    """A bpf(2) call failed; ``log`` holds the verifier's explanation for a refused load."""

    def __init__(self, errno: int, message: str, log: str = "") -> None:
        super().__init__(errno, f"{message}: {os.strerror(errno)}"
                         + (f"\n{log.strip()}" if log.strip() else ""))
        self.log = log


@dataclass(frozen=True, slots=True)
class Insn:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None
    """A jump's destination label, turned into ``off`` by :func:`link`."""

    def encode(self) -> bytes:
        if self.target is not None:
            raise ValueError(f"jump to {self.target!r} not linked")
        imm = self.imm - (1 << 32) if self.imm >= 1 << 31 else self.imm
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    return Insn(_ALU64 | _MOV | _X, dst, src)


def mov64_imm(dst: int, imm: int) -> Insn:
    return Insn(_ALU64 | _MOV | _K, dst, 0, 0, imm)


def mov32_imm(dst: int, imm: int) -> Insn:
    """``dst = (u32) imm`` (the upper half zeroed): any 32-bit value, sign bit or not."""
    return Insn(_ALU | _MOV | _K, dst, 0, 0, imm & 0xFFFFFFFF)


def ldx_w(dst: int, src: int, off: int) -> Insn:
    """``dst = *(u32 *)(src + off)``."""
    return Insn(_LDX | _MEM | _W, dst, src, off)


def stx_w(dst: int, src: int, off: int) -> Insn:
    """``*(u32 *)(dst + off) = src``."""
    return Insn(_STX | _MEM | _W, dst, src, off)


def jeq32_imm(dst: int, imm: int, target: str) -> Insn:
    """``if (u32) dst == (u32) imm: goto target``."""
    return Insn(_JMP32 | _JEQ | _K, dst, 0, 0, imm & 0xFFFFFFFF, target)


def jne32_imm(dst: int, imm: int, target: str) -> Insn:
    """``if (u32) dst != (u32) imm: goto target``."""
    return Insn(_JMP32 | _JNE | _K, dst, 0, 0, imm & 0xFFFFFFFF, target)


def ja(target: str) -> Insn:
    """``goto target``."""
    return Insn(_JMP | _JA, 0, 0, 0, 0, target)


def exit_() -> Insn:
    return Insn(_JMP | _EXIT)


def link(items: Sequence[Insn | str]) -> list[Insn]:
    """Instructions with labels (strings, marking the next instruction) → linked program.

    Jumps may only go forward (eBPF allows back-edges only in bounded loops,
    which the guard never needs), so a jump to an earlier label is refused here
    rather than by the verifier.
    """
    labels: dict[str, int] = {}
    insns: list[Insn] = []
    for item in items:
        if isinstance(item, str):
            if item in labels:
                raise ValueError(f"label {item!r} defined twice")
            labels[item] = len(insns)
        else:
            insns.append(item)
    out = []
    for index, insn in enumerate(insns):
        if insn.target is not None:
            if insn.target not in labels:
                raise ValueError(f"no label {insn.target!r}")
            off = labels[insn.target] - index - 1
            if off < 0:
                raise ValueError(f"jump back to {insn.target!r}")
            insn = replace(insn, off=off, target=None)
        out.append(insn)
    return out


def assemble(insns: Sequence[Insn]) -> bytes:
    return b"".join(i.encode() for i in insns)


def supported() -> str | None:
    """``None`` when this module can work here, else why not."""
    if sys.byteorder != "little":
        return "eBPF encoding here supports little-endian machines only"
    if platform.machine() not in _SYS_BPF:
        return f"no bpf(2) system call number known for {platform.machine()}"
    if sys.platform != "linux":
        return "eBPF needs Linux"
    return None


_libc: ctypes.CDLL | None = None


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    global _libc
    why = supported()
    if why is not None:
        raise BPFError(95, why)  # EOPNOTSUPP
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ret = int(_libc.syscall(ctypes.c_long(_SYS_BPF[platform.machine()]), ctypes.c_long(cmd),
                            attr, ctypes.c_uint(len(attr))))
    if ret < 0:
        raise BPFError(ctypes.get_errno(), f"bpf command {cmd}")
    return ret


def prog_load(insns: Sequence[Insn], *, prog_type: int, expected_attach_type: int,
              name: str = "", license: str = "GPL") -> int:
    """Verify and load a program; returns its file descriptor (close it when attached)."""
    code = ctypes.create_string_buffer(assemble(insns))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(_LOG_SIZE)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQQIIQII16sII", attr, 0, prog_type, len(insns),
                     ctypes.addressof(code), ctypes.addressof(lic), 1, _LOG_SIZE,
                     ctypes.addressof(log), 0, 0, name.encode()[:15], 0,
                     expected_attach_type)
    try:
        return _bpf(PROG_LOAD, attr)
    except BPFError as exc:
        raise BPFError(exc.errno or 0, "loading the program",
                       log.value.decode(errors="replace")) from None


def prog_attach(prog_fd: int, cgroup_fd: int, attach_type: int, *, flags: int = 0) -> None:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, attach_type, flags)
    _bpf(PROG_ATTACH, attr)


def prog_detach(cgroup_fd: int, attach_type: int) -> None:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, 0, attach_type, 0)
    _bpf(PROG_DETACH, attr)


def prog_query(cgroup_fd: int, attach_type: int, *, max_ids: int = 64) -> list[int]:
    """The ids of the programs attached to the cgroup itself for ``attach_type``."""
    ids = (ctypes.c_uint32 * max_ids)()
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, attach_type, 0, 0,
                     ctypes.addressof(ids), max_ids)
    _bpf(PROG_QUERY, attr)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:min(count, max_ids)])


__all__ = [
    "CGROUP_INET4_BIND", "CGROUP_INET4_CONNECT", "CGROUP_INET6_BIND", "CGROUP_INET6_CONNECT",
    "PROG_TYPE_CGROUP_SOCK_ADDR", "R0", "R1", "R2", "R3", "R4", "R5", "R6", "BPFError", "Insn",
    "assemble", "exit_", "ja", "jeq32_imm", "jne32_imm", "ldx_w", "link", "mov32_imm", "mov64_imm",
    "mov64_reg", "prog_attach", "prog_detach", "prog_load", "prog_query", "stx_w", "supported",
]
