"""The pty of an interactive exec: ownership, size, reads to the end, typing."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from pincompute.node.terminal import DEFAULT_SIZE, MAX_DIMENSION, open_terminal


async def test_a_command_on_the_terminal_reads_what_is_typed_and_is_heard() -> None:
    term = open_terminal()
    try:
        assert term.size() == DEFAULT_SIZE
        term.resize(132, 50)
        assert term.size() == (132, 50)
        for bad in ((0, 10), (10, 0), (MAX_DIMENSION + 1, 10), (-1, -1)):
            with pytest.raises(ValueError):
                term.resize(*bad)
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "stty size; read line; echo got $line", stdin=term.slave,
            stdout=term.slave, stderr=term.slave, start_new_session=True)
        term.spawned()
        await term.write(b"hi\n")
        out = b""
        while chunk := await asyncio.wait_for(term.read(), 5):
            out += chunk
        assert await proc.wait() == 0
        text = out.decode().replace("\r\n", "\n")
        assert "50 132\n" in text and "got hi\n" in text
        assert await term.read() == b""  # no process holds the terminal any more
    finally:
        term.close()
    term.close()  # twice is harmless
    await term.write(b"late")


def test_the_slave_is_handed_to_the_pods_identity() -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a tty's owner needs root")  # CI runs as root
    term = open_terminal(uid=4242, gid=4343)
    try:
        assert term.slave is not None
        st = os.fstat(term.slave)
        assert (st.st_uid, st.st_gid) == (4242, 4343)
        assert stat.S_IMODE(st.st_mode) == 0o620
        assert not os.get_inheritable(term.master)
    finally:
        term.close()
