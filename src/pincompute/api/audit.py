"""The audit log: every mutating call and every denial, append-only, queryable by admins.

Theory of operation
-------------------
The audit middleware (:mod:`.middleware`) calls :meth:`AuditLog.record` once per request
that changed something (any method but GET/HEAD/OPTIONS) or was refused (401, 403),
whatever the outcome: who (the authenticated user, or ``system:anonymous``), what (method,
route template, path), which object (project, kind, name), the result (``allowed``,
``denied``, ``failed`` with the HTTP code and the reason) and when (RFC 3339, UTC, with
microseconds).

Records are kept in memory for queries (the newest ``memory`` of them) and, when the log has
a file, appended to it as JSON lines — opened ``O_APPEND`` and mode 0600, written by a
background task in batches (a request never writes itself; no fsync: the log is a record,
not the store of record), flushed on stop.  Nothing
ever rewrites or removes a line; on start the file's tail refills the memory, so queries see
history across restarts.  ``GET /api/v1/audit`` (platform admins) filters by user, project,
kind, verb, result and time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from pincompute.kube import objects

RECORD_FIELDS = ("time", "user", "verb", "route", "path", "project", "resource", "name",
                 "code", "result", "reason")


class AuditLog:
    """Append-only audit records: memory for queries, a JSON-lines file for keeps."""

    def __init__(self, *, path: Path | None = None, memory: int = 100_000) -> None:
        self.path = path
        self._memory: collections.deque[dict[str, Any]] = collections.deque(maxlen=memory)
        self._pending: list[bytes] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fd: int | None = None

    async def start(self) -> None:
        if self.path is None or self._task is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.path, 0o600)
        for record in await asyncio.to_thread(_tail, self.path, self._memory.maxlen or 0):
            self._memory.append(record)
        self._task = asyncio.create_task(self._writer(), name="audit writer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def record(self, *, user: str, verb: str, route: str, path: str, project: str | None,
               resource: str | None, name: str | None, code: int, result: str,
               reason: str = "") -> dict[str, Any]:
        entry = {"time": objects.now_micro(), "user": user, "verb": verb, "route": route,
                 "path": path, "project": project, "resource": resource, "name": name,
                 "code": code, "result": result, "reason": reason}
        self._memory.append(entry)
        if self.path is not None:
            self._pending.append(orjson.dumps(entry) + b"\n")
            self._wake.set()
        return entry

    def query(self, *, user: str | None = None, project: str | None = None,
              resource: str | None = None, verb: str | None = None,
              result: str | None = None, since: str | None = None,
              limit: int = 500) -> list[dict[str, Any]]:
        """Matching records, newest first."""
        out: list[dict[str, Any]] = []
        for entry in reversed(self._memory):
            if since is not None and entry["time"] < since:
                break
            if ((user is None or entry["user"] == user)
                    and (project is None or entry["project"] == project)
                    and (resource is None or entry["resource"] == resource)
                    and (verb is None or entry["verb"] == verb.upper())
                    and (result is None or entry["result"] == result)):
                out.append(entry)
                if len(out) >= limit:
                    break
        return out

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch and self._fd is not None:
                # An appending write without fsync lands in the page cache: microseconds,
                # cheaper than a hop to a worker thread.
                os.write(self._fd, b"".join(batch))

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch and self._fd is not None:
            os.write(self._fd, b"".join(batch))


def _tail(path: Path, count: int) -> Iterable[dict[str, Any]]:
    if count <= 0:
        return []
    lines: collections.deque[bytes] = collections.deque(maxlen=count)
    with path.open("rb") as f:
        for line in f:
            lines.append(line)
    out = []
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            out.append(orjson.loads(line))
    return out
