"""Container log files: CRI lines, rotation, tail, since, previous, follow."""

from __future__ import annotations

import asyncio

import pytest

from pincompute.node.logs import LogNotFound, LogStore, LogWriter, parse_line, segments, timestamp


async def read(store: LogStore, **kw) -> bytes:
    return b"".join([c async for c in store.read("ns_pod_uid", "main", **kw)])


def test_lines_are_cri_formatted_and_timestamps_sort(tmp_path):
    w = LogWriter(tmp_path, 0)
    w.write("stdout", b"hello\nwor")
    w.write("stdout", b"ld\n")
    w.write("stderr", b"no newline")
    w.close()
    (_, path), = segments(tmp_path, 0)
    lines = [parse_line(r) for r in path.read_bytes().splitlines()]
    assert [(ln.stream, ln.partial, ln.content) for ln in lines] == [
        ("stdout", False, b"hello"), ("stdout", False, b"world"), ("stderr", False,
                                                                  b"no newline")]
    assert lines[0].time <= lines[1].time
    assert timestamp(1_000_000_000) == "1970-01-01T00:00:01.000000000Z"


def test_long_lines_are_split_in_partial_records(tmp_path):
    w = LogWriter(tmp_path, 0)
    w.write("stdout", b"x" * 40_000 + b"\n")
    w.close()
    (_, path), = segments(tmp_path, 0)
    lines = [parse_line(r) for r in path.read_bytes().splitlines()]
    assert [ln.partial for ln in lines] == [True, True, False]
    assert b"".join(ln.content for ln in lines) == b"x" * 40_000


async def test_rotation_bounds_the_files_and_tail_reads_across_them(tmp_path):
    store = LogStore(tmp_path, max_bytes=1024, max_files=3)
    w = store.open_writer("ns_pod_uid", "main", 0)
    for i in range(200):
        w.write("stdout", f"line {i:03d}\n".encode())
    store.close_writer(w)
    files = segments(store.container_dir("ns_pod_uid", "main"), 0)
    assert len(files) == 3
    assert all(p.stat().st_size <= 1024 for _, p in files)
    text = (await read(store)).decode().splitlines()
    assert text[-1] == "line 199"
    assert len(text) < 200  # the oldest were rotated away
    assert (await read(store, tail=3)).decode().splitlines() == [
        "line 197", "line 198", "line 199"]


async def test_previous_and_since(tmp_path):
    store = LogStore(tmp_path)
    w0 = store.open_writer("ns_pod_uid", "main", 0)
    w0.write("stdout", b"first\n")
    store.close_writer(w0)
    with pytest.raises(LogNotFound):
        await read(store, previous=True)
    w1 = store.open_writer("ns_pod_uid", "main", 1)
    w1.write("stdout", b"second\n")
    mark = timestamp()
    await asyncio.sleep(0.001)
    w1.write("stderr", b"third\n")
    assert await read(store, previous=True) == b"first\n"
    assert await read(store) == b"second\nthird\n"
    assert await read(store, since=mark) == b"third\n"
    stamped = (await read(store, timestamps=True)).decode().splitlines()
    assert stamped[0].endswith("Z second")
    # Attempts older than the previous one are pruned.
    store.close_writer(w1)
    store.close_writer(store.open_writer("ns_pod_uid", "main", 2))
    assert await read(store, previous=True) == b"second\nthird\n"
    assert [p for p in store.container_dir("ns_pod_uid", "main").iterdir()
            if p.name.startswith("0.")] == []


async def test_follow_sees_new_lines_and_ends_with_the_writer(tmp_path):
    store = LogStore(tmp_path, max_bytes=512)
    w = store.open_writer("ns_pod_uid", "main", 0)
    w.write("stdout", b"before\n")
    got: list[bytes] = []

    async def follow():
        async for chunk in store.read("ns_pod_uid", "main", follow=True):
            got.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    for i in range(40):  # enough to rotate while following
        w.write("stdout", f"after {i}\n".encode())
        await asyncio.sleep(0)
    store.close_writer(w)
    async with asyncio.timeout(5):
        await task
    assert got[0] == b"before\n"
    assert got[-1] == b"after 39\n"
    assert len(got) == 41


async def test_tail_then_follow(tmp_path):
    store = LogStore(tmp_path)
    w = store.open_writer("ns_pod_uid", "main", 0)
    for i in range(5):
        w.write("stdout", f"{i}\n".encode())
    got: list[bytes] = []

    async def follow():
        async for chunk in store.read("ns_pod_uid", "main", follow=True, tail=1):
            got.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    w.write("stdout", b"5\n")
    store.close_writer(w)
    async with asyncio.timeout(5):
        await task
    assert got == [b"4\n", b"5\n"]
