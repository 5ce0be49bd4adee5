"""The node runtime API's wire protocol, shared by its server and its client.

Theory of operation
-------------------
Everything both ends must agree on lives here and nowhere else, so the client
(:mod:`.client`) needs nothing of the node and a gateway can speak the protocol
from this module alone:

* **paths** — ``/healthz``, ``/pods``, ``/stats`` and the per-container
  ``/logs/{namespace}/{pod}/{container}``, ``/logfiles/...`` and ``/exec/...``
  (:func:`container_path`);
* **the token** — every request but ``/healthz`` carries
  ``Authorization: Bearer <token>`` (:func:`bearer`, :func:`bearer_token`);
* **log options** — the query of a logs request (:class:`LogOptions`, both ways);
* **exec** — the upgrade token :data:`EXEC_PROTOCOL`, the query naming the command
  (:func:`exec_query`, :func:`exec_command`), and the frames multiplexing the
  command's streams over the upgraded connection: one byte channel, four bytes
  big-endian length, payload (:func:`encode_frame`, :func:`read_frame`).  Channel
  :data:`STDIN` carries the client's input (an empty frame closes it),
  :data:`STDOUT` and :data:`STDERR` the output, and :data:`STATUS` one final JSON
  object ``{"exitCode": n}`` (:func:`exit_frame`, :func:`exit_code`) after which
  the server closes.  With ``tty=1`` the command runs on a terminal: its output
  (stdout and stderr merged, as on any terminal) comes on :data:`STDOUT`, an
  empty :data:`STDIN` frame types end-of-file (``^D``), and the client sends
  :data:`RESIZE` frames, ``{"width": cols, "height": rows}``
  (:func:`resize_frame`, :func:`parse_resize`), as Kubernetes' channel 4.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import orjson

EXEC_PROTOCOL = "pincompute-exec.v1"
"""The ``Upgrade`` token of an exec request."""

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
"""Exec frame channels."""

FRAME_HEAD = struct.Struct(">BI")
"""An exec frame's head: channel (1 byte), payload length (4 bytes, big-endian)."""

MAX_FRAME = 1024 * 1024
"""The largest exec frame a client accepts."""

MAX_HEADER_BYTES = 16 * 1024
"""The largest request head the server reads."""

HEALTHZ_PATH = "/healthz"
PODS_PATH = "/pods"
STATS_PATH = "/stats"
LOGS = "logs"
LOGFILES = "logfiles"
EXEC = "exec"

AUTHORIZATION = "Authorization"
"""The header carrying the bearer token."""


# --- paths -----------------------------------------------------------------------------------

def container_path(verb: str, namespace: str, pod: str, container: str) -> str:
    """``/{verb}/{namespace}/{pod}/{container}``, each part quoted."""
    return f"/{verb}/{quote(namespace)}/{quote(pod)}/{quote(container)}"


# --- the token -------------------------------------------------------------------------------

def bearer(token: str) -> str:
    """The ``Authorization`` header value for ``token``."""
    return f"Bearer {token}"


def bearer_token(value: str) -> str | None:
    """The token of an ``Authorization: Bearer`` header value, or None for another scheme."""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# --- logs --------------------------------------------------------------------------------------

def flag(query: Mapping[str, Sequence[str]], name: str) -> bool:
    """A boolean query parameter: ``1``, ``true`` or ``yes`` (any case) is true."""
    return (query.get(name) or [""])[0].lower() in ("1", "true", "yes")


def _first(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogOptions:
    """What a logs request asks for (``kubectl logs`` flags)."""

    follow: bool = False
    """Keep streaming until the container instance exits (or the client hangs up)."""
    tail: int | None = None
    """Only the last N lines."""
    since: str | None = None
    """Only lines from this RFC 3339 time on."""
    since_seconds: float | None = None
    """Only lines from the last N seconds (ignored with ``since``)."""
    previous: bool = False
    """The previous instance's log."""
    timestamps: bool = False
    """Prefix each line with its time."""
    file: str | None = None
    """A file of the container's ``logging`` volume instead of stdout/stderr (one name:
    no ``/``; with ``tail`` and ``follow`` only)."""
    volume: str | None = None
    """With ``file``: which logging volume (needed when the container mounts several)."""

    def params(self) -> dict[str, str]:
        """The request's query parameters."""
        out: dict[str, str] = {}
        if self.follow:
            out["follow"] = "1"
        if self.tail is not None:
            out["tail"] = str(self.tail)
        if self.since is not None:
            out["since"] = self.since
        if self.since_seconds is not None:
            out["sinceSeconds"] = str(self.since_seconds)
        if self.previous:
            out["previous"] = "1"
        if self.timestamps:
            out["timestamps"] = "1"
        if self.file is not None:
            out["file"] = self.file
        if self.volume is not None:
            out["volume"] = self.volume
        return out

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> LogOptions:
        """Parse a request's query; raises ValueError for a malformed number."""
        tail = _first(query, "tail")
        since_seconds = _first(query, "sinceSeconds")
        return cls(follow=flag(query, "follow"), tail=int(tail) if tail else None,
                   since=_first(query, "since") or None,
                   since_seconds=float(since_seconds) if since_seconds else None,
                   previous=flag(query, "previous"), timestamps=flag(query, "timestamps"),
                   file=_first(query, "file"), volume=_first(query, "volume"))


# --- exec --------------------------------------------------------------------------------------

def exec_query(command: Sequence[str], *, stdin: bool, tty: bool = False) -> str:
    """The query of an exec request: one ``command`` parameter per argument."""
    return urlencode([("command", c) for c in command] + ([("stdin", "1")] if stdin else [])
                     + ([("tty", "1")] if tty else []))


def exec_command(query: Mapping[str, Sequence[str]]) -> tuple[list[str], bool]:
    """The command (argv) of an exec request, and whether it takes stdin."""
    return list(query.get("command") or ()), flag(query, "stdin")


def resize_frame(width: int, height: int) -> bytes:
    """A :data:`RESIZE` frame: the terminal is now ``width`` columns by ``height`` rows."""
    return encode_frame(RESIZE, orjson.dumps({"width": width, "height": height}))


def parse_resize(payload: bytes) -> tuple[int, int]:
    """(width, height) of a :data:`RESIZE` payload; ValueError if it is not one."""
    try:
        size = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"a resize is a JSON object: {exc}") from None
    if not isinstance(size, dict):
        raise ValueError("a resize is a JSON object {\"width\": n, \"height\": n}")
    width, height = size.get("width"), size.get("height")
    if type(width) is not int or type(height) is not int:
        raise ValueError("a resize needs integer width and height")
    return width, height


def encode_frame(channel: int, data: bytes) -> bytes:
    return FRAME_HEAD.pack(channel, len(data)) + data


async def read_frame(reader: asyncio.StreamReader, *,
                     limit: int | None) -> tuple[int, bytes] | None:
    """The next frame, or None at the end of the stream.

    Raises ValueError for a frame longer than ``limit`` (None: no limit) and
    ConnectionError if the connection breaks.
    """
    try:
        channel, size = FRAME_HEAD.unpack(await reader.readexactly(FRAME_HEAD.size))
        if limit is not None and size > limit:
            raise ValueError("exec frame too large")
        return channel, await reader.readexactly(size) if size else b""
    except asyncio.IncompleteReadError:
        return None


def exit_frame(returncode: int) -> bytes:
    """The :data:`STATUS` frame for a process's return code (-N: killed by signal N)."""
    code = returncode if returncode >= 0 else 128 - returncode
    return encode_frame(STATUS, orjson.dumps({"exitCode": code}))


def exit_code(payload: bytes) -> int:
    """The exit code in a :data:`STATUS` frame's payload (-1 if it has none)."""
    return int(orjson.loads(payload).get("exitCode", -1))


__all__ = [
    "AUTHORIZATION", "EXEC", "EXEC_PROTOCOL", "FRAME_HEAD", "HEALTHZ_PATH", "LOGFILES", "LOGS",
    "MAX_FRAME", "MAX_HEADER_BYTES", "PODS_PATH", "RESIZE", "STATS_PATH", "STATUS", "STDERR",
    "STDIN", "STDOUT", "LogOptions", "bearer", "bearer_token", "container_path", "encode_frame",
    "exec_command", "exec_query", "exit_code", "exit_frame", "flag", "parse_resize",
    "read_frame", "resize_frame",
]
