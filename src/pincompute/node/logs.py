"""Container logs: per-instance files with size-bounded rotation, tail, since, follow.

Theory of operation
-------------------
The agent reads each container's stdout and stderr through pipes and writes
every line, in the CRI logging format the kubelet uses::

    2024-06-01T12:00:00.123456789Z stdout F hello world

(timestamp, stream, ``F`` for a full line or ``P`` for a piece of a longer one,
content), into files under ``<root>/<namespace>_<pod>_<uid>/<container>/``.  Each
container *instance* (attempt ``n``: 0 for the first start, +1 per restart)
writes its own segments ``<n>.<seq>.log``; when a segment reaches ``max_bytes``
the writer starts the next one and deletes the oldest beyond ``max_files``, so a
container's disk use is bounded.  Segments are never renamed, so a reader that
has a file open never sees it move; it simply goes on to the next segment.

The previous instance's log (``kubectl logs --previous``) is the highest attempt
below the current one; the agent prunes attempts older than that.

Timestamps are fixed-width UTC with nanoseconds, so comparing the strings
compares the times — ``since`` is a string comparison.  Following a log waits
on the writer (same process) for new lines; a log whose writer is closed — the
container instance exited — ends the follow once read to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import os
import re
import shutil
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .fsguard import UnsafePath, check_name

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5
PARTIAL_LIMIT = 16 * 1024
"""A line longer than this is written in ``P`` pieces (as containerd does)."""

_SEGMENT = re.compile(r"^(\d+)\.(\d+)\.log$")


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 UTC with nanoseconds, fixed width (so string order is time order)."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z"


def format_since(since: _dt.datetime | str) -> str:
    """A ``since`` bound in the log timestamp format."""
    if isinstance(since, str):
        since = _dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    if since.tzinfo is None:
        since = since.replace(tzinfo=_dt.UTC)
    ns = int(since.timestamp()) * 1_000_000_000 + since.microsecond * 1000
    return timestamp(ns)


@dataclass(frozen=True, slots=True)
class LogLine:
    time: str
    stream: str
    partial: bool
    content: bytes

    def render(self, *, timestamps: bool) -> bytes:
        body = self.content if self.partial else self.content + b"\n"
        return f"{self.time} ".encode() + body if timestamps else body


def parse_line(raw: bytes) -> LogLine | None:
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return LogLine(parts[0].decode(), parts[1].decode(), parts[2] == b"P", content)


class LogWriter:
    """Writes one container instance's output; rotates by size."""

    def __init__(self, directory: Path, attempt: int, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_files: int = DEFAULT_MAX_FILES) -> None:
        self.directory = directory
        self.attempt = attempt
        self.max_bytes = max(max_bytes, 256)
        self.max_files = max(max_files, 1)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        existing = segments(directory, attempt)
        self._seq = (existing[-1][0] + 1) if existing else 0
        self._file: BinaryIO | None = None
        self._size = 0
        self._pending: dict[str, bytearray] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self.closed = False
        self._open_segment()

    def _open_segment(self) -> None:
        path = self.directory / f"{self.attempt}.{self._seq:06d}.log"
        self._file = open(path, "ab")  # owned until close()
        self._size = self._file.tell()
        # Drop the oldest segments of this attempt beyond max_files.
        for _, old in segments(self.directory, self.attempt)[:-self.max_files]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()

    def write(self, stream: str, data: bytes) -> None:
        """Append raw output of ``stream`` (``stdout``/``stderr``); whole lines are written."""
        if self.closed or not data:
            return
        buf = self._pending.setdefault(stream, bytearray())
        buf += data
        out: list[bytes] = []
        while True:
            nl = buf.find(b"\n", 0, PARTIAL_LIMIT + 1)
            if nl >= 0:
                out.append(self._record(stream, bytes(buf[:nl]), partial=False))
                del buf[:nl + 1]
            elif len(buf) > PARTIAL_LIMIT:
                out.append(self._record(stream, bytes(buf[:PARTIAL_LIMIT]), partial=True))
                del buf[:PARTIAL_LIMIT]
            else:
                break
        if out:
            self._append(out)

    def _record(self, stream: str, content: bytes, *, partial: bool) -> bytes:
        return b"%s %s %s %s\n" % (timestamp().encode(), stream.encode(),
                                   b"P" if partial else b"F", content)

    def _append(self, records: list[bytes]) -> None:
        assert self._file is not None
        for record in records:
            if self._size > 0 and self._size + len(record) > self.max_bytes:
                self._file.close()
                self._seq += 1
                self._open_segment()
            self._file.write(record)
            self._size += len(record)
        self._file.flush()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def wait(self) -> None:
        """Until more is written or the writer closes."""
        if self.closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def close(self) -> None:
        if self.closed:
            return
        rest = [self._record(s, bytes(b), partial=False) for s, b in self._pending.items() if b]
        self._pending.clear()
        if rest:
            self._append(rest)
        self.closed = True
        if self._file is not None:
            self._file.close()
        self._wake()


def segments(directory: Path, attempt: int) -> list[tuple[int, Path]]:
    """The segments of one attempt, oldest first."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            m = _SEGMENT.match(entry.name)
            if m and int(m.group(1)) == attempt:
                found.append((int(m.group(2)), Path(entry.path)))
    found.sort()
    return found


def attempts(directory: Path) -> list[int]:
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            m = _SEGMENT.match(entry.name)
            if m:
                found.add(int(m.group(1)))
    return sorted(found)


class LogNotFound(LookupError):
    """No log for that container (or no previous instance's)."""


class LogStore:
    """All container logs of one node, and the writers currently open."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_files: int = DEFAULT_MAX_FILES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_files = max_files
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._writers: dict[tuple[Path, int], LogWriter] = {}

    @staticmethod
    def pod_dir_name(namespace: str, name: str, uid: str) -> str:
        return f"{namespace}_{name}_{uid}"

    def container_dir(self, pod_dir: str, container: str) -> Path:
        # Names come from pod specs and API requests: one path component each, or no log.
        try:
            return self.root / check_name(pod_dir, what="pod") / check_name(
                container, what="container name")
        except UnsafePath as exc:
            raise LogNotFound(str(exc)) from exc

    def open_writer(self, pod_dir: str, container: str, attempt: int) -> LogWriter:
        directory = self.container_dir(pod_dir, container)
        writer = LogWriter(directory, attempt, max_bytes=self.max_bytes,
                           max_files=self.max_files)
        self._writers[(directory, attempt)] = writer
        # Keep this attempt and the one before it (``--previous``), nothing older.
        for old in attempts(directory):
            if old < attempt - 1:
                for _, path in segments(directory, old):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        return writer

    def close_writer(self, writer: LogWriter) -> None:
        writer.close()
        self._writers.pop((writer.directory, writer.attempt), None)

    def remove_pod(self, pod_dir: str) -> None:
        for key in [k for k in self._writers if k[0].parent.name == pod_dir]:
            self._writers.pop(key).close()
        shutil.rmtree(self.root / pod_dir, ignore_errors=True)

    def pod_dirs(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return [e.name for e in os.scandir(self.root) if e.is_dir()]
        return []

    async def read(self, pod_dir: str, container: str, *, previous: bool = False,
                   tail: int | None = None, since: str | None = None, follow: bool = False,
                   timestamps: bool = False, streams: tuple[str, ...] = ("stdout", "stderr"),
                   ) -> AsyncGenerator[bytes, None]:
        """The log of the current (or previous) instance, rendered as the user sees it."""
        directory = self.container_dir(pod_dir, container)
        found = attempts(directory)
        if not found:
            raise LogNotFound(f"no logs for container {container!r}")
        if previous:
            if len(found) < 2:
                raise LogNotFound(f"previous terminated container {container!r} not found")
            attempt = found[-2]
            follow = False
        else:
            attempt = found[-1]
        writer = self._writers.get((directory, attempt))
        if tail is not None:
            lines = _tail(directory, attempt, tail, since=since, streams=streams)
            for line in lines:
                yield line.render(timestamps=timestamps)
            if not follow:
                return
            start = _end_position(directory, attempt)
        else:
            start = None
        async for line in _scan(directory, attempt, start=start,
                                writer=writer if follow else None):
            if line.stream in streams and (since is None or line.time >= since):
                yield line.render(timestamps=timestamps)


def _end_position(directory: Path, attempt: int) -> tuple[int, int]:
    segs = segments(directory, attempt)
    if not segs:
        return (0, 0)
    seq, path = segs[-1]
    try:
        return (seq, path.stat().st_size)
    except FileNotFoundError:
        return (seq, 0)


def _tail(directory: Path, attempt: int, n: int, *, since: str | None,
          streams: tuple[str, ...]) -> list[LogLine]:
    if n <= 0:
        return []
    picked: list[LogLine] = []
    for _, path in reversed(segments(directory, attempt)):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        chunk = [ln for ln in (parse_line(r) for r in raw.splitlines()) if ln is not None
                 and ln.stream in streams and (since is None or ln.time >= since)]
        picked[:0] = chunk
        if sum(1 for ln in picked if not ln.partial) >= n:
            break
    # Keep the last n full lines (with the pieces belonging to them).
    count = 0
    for i in range(len(picked) - 1, -1, -1):
        if not picked[i].partial:
            count += 1
            if count > n:
                return picked[i + 1:]
    return picked


async def _scan(directory: Path, attempt: int, *, start: tuple[int, int] | None,
                writer: LogWriter | None) -> AsyncIterator[LogLine]:
    """Lines of an attempt from ``start`` (segment, offset); with a writer, follow it."""
    seq, offset = start if start is not None else (-1, 0)
    while True:
        progressed = False
        for s, path in segments(directory, attempt):
            if s < seq:
                continue
            if s > seq:
                seq, offset = s, 0
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                continue
            # Only whole records: a writer may be in the middle of one.
            end = data.rfind(b"\n") + 1
            for raw in data[:end].splitlines():
                line = parse_line(raw)
                if line is not None:
                    yield line
            if end:
                progressed = True
            offset += end
        if writer is None:
            return
        if writer.closed and not progressed:
            return
        if not progressed:
            await writer.wait()


__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_FILES", "LogLine", "LogNotFound", "LogStore",
    "LogWriter", "attempts", "format_since", "parse_line", "segments", "timestamp",
]
