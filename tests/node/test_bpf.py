"""eBPF instruction encoding, label linking, and the bpf(2) calls (loading needs root)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pincompute.node import bpf
from pincompute.node.bindguard import _unified_dir


def test_instructions_encode_as_the_kernel_reads_them() -> None:
    assert bpf.mov64_imm(bpf.R0, 1).encode() == bytes([0xB7, 0x00, 0, 0, 1, 0, 0, 0])
    assert bpf.exit_().encode() == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
    # dst in the low nibble, src in the high one; offset little-endian.
    assert bpf.ldx_w(bpf.R2, bpf.R1, 24).encode() == bytes([0x61, 0x12, 24, 0, 0, 0, 0, 0])
    assert bpf.stx_w(bpf.R1, bpf.R3, 4).encode() == bytes([0x63, 0x31, 4, 0, 0, 0, 0, 0])
    # A 32-bit immediate with the sign bit set travels as its two's complement.
    assert bpf.mov32_imm(bpf.R3, 0xC840407F).encode() == bytes(
        [0xB4, 0x03, 0, 0, 0x7F, 0x40, 0x40, 0xC8])


def test_link_resolves_forward_jumps_to_labels() -> None:
    program = bpf.link([
        bpf.jeq32_imm(bpf.R2, 0xFFFFFFFF, "yes"),
        bpf.ja("no"),
        "yes",
        bpf.mov64_imm(bpf.R0, 1),
        bpf.exit_(),
        "no",
        bpf.mov64_imm(bpf.R0, 0),
        bpf.exit_(),
    ])
    assert [i.off for i in program] == [1, 2, 0, 0, 0, 0]
    assert all(i.target is None for i in program)
    jeq = program[0].encode()
    assert jeq[0] == 0x16 and jeq[4:] == b"\xff\xff\xff\xff"  # JMP32 | JEQ | K
    assert len(bpf.assemble(program)) == 8 * len(program)


@pytest.mark.parametrize(("items", "error"), [
    ([bpf.ja("nowhere"), bpf.exit_()], "no label"),
    (["top", bpf.mov64_imm(bpf.R0, 0), bpf.ja("top")], "jump back"),
    (["a", bpf.exit_(), "a", bpf.exit_()], "defined twice"),
])
def test_link_refuses_bad_labels(items: list[bpf.Insn | str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        bpf.link(items)


def test_an_unlinked_jump_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="not linked"):
        bpf.ja("later").encode()


needs_root = pytest.mark.skipif(os.geteuid() != 0 or bpf.supported() is not None,
                                reason="loading cgroup eBPF programs needs root")


@needs_root
def test_a_program_loads_and_a_bad_one_is_refused_with_the_verifiers_log() -> None:
    fd = bpf.prog_load([bpf.mov64_imm(bpf.R0, 1), bpf.exit_()],
                       prog_type=bpf.PROG_TYPE_CGROUP_SOCK_ADDR,
                       expected_attach_type=bpf.CGROUP_INET4_BIND, name="ok")
    os.close(fd)
    with pytest.raises(bpf.BPFError) as refused:
        # R0 is never set: the verifier rejects the exit.
        bpf.prog_load([bpf.exit_()], prog_type=bpf.PROG_TYPE_CGROUP_SOCK_ADDR,
                      expected_attach_type=bpf.CGROUP_INET4_BIND)
    assert "R0" in refused.value.log


@pytest.fixture
def cgroup2_dir() -> Iterator[Path]:
    here = _unified_dir()
    if os.geteuid() != 0 or here is None:
        pytest.skip("needs root and cgroup v2")
    path = Path(tempfile.mkdtemp(prefix="test-bpf-", dir=here))
    try:
        yield path
    finally:
        path.rmdir()  # a cgroup directory goes with rmdir alone (and takes its programs)


@needs_root
def test_attach_query_and_detach_on_a_cgroup(cgroup2_dir: Path) -> None:
    fd = bpf.prog_load([bpf.mov64_imm(bpf.R0, 1), bpf.exit_()],
                       prog_type=bpf.PROG_TYPE_CGROUP_SOCK_ADDR,
                       expected_attach_type=bpf.CGROUP_INET4_BIND)
    cg = os.open(cgroup2_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        bpf.prog_attach(fd, cg, bpf.CGROUP_INET4_BIND)
        os.close(fd)  # the attachment keeps the program
        assert len(bpf.prog_query(cg, bpf.CGROUP_INET4_BIND)) == 1
        assert bpf.prog_query(cg, bpf.CGROUP_INET6_BIND) == []
        bpf.prog_detach(cg, bpf.CGROUP_INET4_BIND)
        assert bpf.prog_query(cg, bpf.CGROUP_INET4_BIND) == []
    finally:
        os.close(cg)
