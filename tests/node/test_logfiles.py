"""Files of a logging volume: listed, streamed with tail and follow, and never reached through
a link, a hard link or a FIFO the pod planted."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pincompute.node import logfiles
from pincompute.node.logfiles import LogFileError, list_files, open_file, open_volume, stream


@pytest.fixture
def pod_dir(tmp_path: Path) -> Path:
    (tmp_path / "pod" / "logging" / "logs").mkdir(parents=True)
    return tmp_path / "pod"


def volume(pod_dir: Path) -> Path:
    return pod_dir / "logging" / "logs"


async def read_all(fd: int, **options: object) -> bytes:
    return b"".join([c async for c in stream(fd, **options)])  # type: ignore[arg-type]


def test_list_shows_regular_files_only(pod_dir: Path) -> None:
    v = volume(pod_dir)
    (v / "app.log").write_text("hello\n")
    (v / "sub").mkdir()
    (v / "link").symlink_to(v / "app.log")
    os.mkfifo(v / "fifo")
    fd = open_volume(pod_dir, "logs")
    try:
        files = list_files(fd)
    finally:
        os.close(fd)
    assert [f["name"] for f in files] == ["app.log"]
    assert files[0]["size"] == 6 and files[0]["modified"].endswith("Z")


async def test_stream_whole_tail_and_follow(pod_dir: Path) -> None:
    v = volume(pod_dir)
    (v / "app.log").write_text("".join(f"line {i}\n" for i in range(10)))
    with open_volume_fd(pod_dir) as vfd:
        assert (await read_all(open_file(vfd, "app.log", owner=None))).count(b"\n") == 10
        assert await read_all(open_file(vfd, "app.log", owner=None), tail=2) == \
            b"line 8\nline 9\n"
        assert await read_all(open_file(vfd, "app.log", owner=None), tail=0) == b""
        done = False
        chunks = stream(open_file(vfd, "app.log", owner=None), tail=1, follow=True,
                        done=lambda: done, interval=0.02)
        assert await anext(chunks) == b"line 9\n"
        with (v / "app.log").open("a") as f:
            f.write("line 10\n")
        assert await asyncio.wait_for(anext(chunks), 2) == b"line 10\n"
        done = True
        assert [c async for c in chunks] == []


def test_tail_offset_counts_lines_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * (logfiles.CHUNK + 10) + b"\nlast\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        assert os.pread(fd, size, logfiles.tail_offset(fd, 1, size=size)) == b"last\n"
        assert logfiles.tail_offset(fd, 5, size=size) == 0
    finally:
        os.close(fd)


def test_links_fifos_other_names_and_foreign_files_are_refused(pod_dir: Path,
                                                              tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    v = volume(pod_dir)
    (v / "shadow").symlink_to(secret)
    os.link(secret, v / "hard")
    os.mkfifo(v / "fifo")
    (v / "mine").write_text("x\n")
    with open_volume_fd(pod_dir) as vfd:
        for name in ("shadow", "hard", "fifo", "../logs/mine", "..", "nope"):
            with pytest.raises(LogFileError):
                open_file(vfd, name, owner=None)
        with pytest.raises(LogFileError, match="does not belong"):
            open_file(vfd, "mine", owner=os.geteuid() + 1)
        os.close(open_file(vfd, "mine", owner=os.geteuid()))


def test_a_volume_replaced_by_a_link_is_refused(pod_dir: Path, tmp_path: Path) -> None:
    os.rmdir(volume(pod_dir))
    (tmp_path / "elsewhere").mkdir()
    volume(pod_dir).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LogFileError):
        open_volume(pod_dir, "logs")
    with pytest.raises(LogFileError):
        open_volume(pod_dir, "../logging")


@contextlib.contextmanager
def open_volume_fd(pod_dir: Path) -> Iterator[int]:
    fd = open_volume(pod_dir, "logs")
    try:
        yield fd
    finally:
        os.close(fd)
