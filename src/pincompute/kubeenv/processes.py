"""Supervised processes: one binary each, in its own process group, logging to its own
file, dying with its parent; waiting for readiness while watching them; stopping them.

Theory of operation
-------------------
A :class:`ComponentProcess` starts its binary (an asyncio subprocess) in a new
session, so it and anything it forks form one process group that a signal reaches
as a whole, with stdout and stderr appended to its log file.  On Linux the child
also asks, between fork and exec, for ``PR_SET_PDEATHSIG`` (SIGKILL): should the
Python process die without stopping it (``kill -9``), the kernel kills it.

:func:`wait_for` polls a readiness check until it holds, failing fast with a
:class:`KubeEnvStartupError` if a watched process exits (its exit status and log
tail) or the deadline passes (the first watched process's log tail: the one being
waited for).  :func:`stop_processes` sends SIGTERM to every group, waits, then
SIGKILLs and reaps the stragglers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import httpx

from .errors import LOG_TAIL_LINES, KubeEnvStartupError

__all__ = ["ComponentProcess", "stop_processes", "wait_for"]

#: How long SIGKILLed stragglers get to be reaped.
_REAP_TIMEOUT = 30.0
#: How much of the end of a log :meth:`ComponentProcess.tail` reads.
_TAIL_BYTES = 64 * 1024


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL me when my parent thread dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class ComponentProcess:
    """One binary of a cluster: its own process group, its own log file."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, *,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        # Extra variables amend the inherited environment; none means inherit it as is.
        self.env = {**os.environ, **env} if env else None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None

    async def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env, start_new_session=True, preexec_fn=_die_with_parent)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log (or why there is none)."""
        try:
            with self.log.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - _TAIL_BYTES))
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    def describe_exit(self) -> str:
        assert self.process is not None
        code = self.process.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else \
            f"exited with status {code}"
        return f"{self.name} {how}; last lines of {self.log}:\n{self.tail()}"

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the process group, unless the process is not running."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit; whether it has."""
        if self.process is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self.process.wait()
        except TimeoutError:
            return False
        return True


async def wait_for(check: Callable[[], Awaitable[bool]], *, what: str,
                   watch: Sequence[ComponentProcess], deadline: float,
                   interval: float = 0.25) -> None:
    """Poll ``check`` every ``interval`` until it returns true; raise
    :class:`KubeEnvStartupError` if a process of ``watch`` exits first or ``deadline``
    (a :func:`time.monotonic` instant) passes.  HTTP errors and bad answers count as
    not yet ready (the last one is reported)."""
    last_error = ""
    while True:
        for proc in watch:
            if proc.exited:
                raise KubeEnvStartupError(f"{what}: {proc.describe_exit()}")
        try:
            if await check():
                return
        except (httpx.HTTPError, ValueError) as e:
            last_error = f" (last error: {e.__class__.__name__}: {e})"
        if time.monotonic() >= deadline:
            proc = watch[0]
            raise KubeEnvStartupError(
                f"{what}: not ready before the start-up deadline{last_error}; last lines of "
                f"{proc.log}:\n{proc.tail()}")
        await asyncio.sleep(interval)


async def stop_processes(procs: Sequence[ComponentProcess], *, timeout: float) -> None:
    """SIGTERM every process group, wait up to ``timeout`` seconds, then SIGKILL and reap
    the stragglers."""
    for p in procs:
        p.signal_group(signal.SIGTERM)
    done = await asyncio.gather(*(p.wait(timeout) for p in procs))
    stragglers = [p for p, ok in zip(procs, done, strict=True) if not ok]
    for p in stragglers:
        p.signal_group(signal.SIGKILL)
    await asyncio.gather(*(p.wait(_REAP_TIMEOUT) for p in stragglers))
