"""What every verb shares: the consoles, exit codes, errors as one line, the SDK client.

Theory of operation
-------------------
User verbs talk to the gateway through the SDK only (:func:`client`), configured
by the config file, the environment and the global flags (``--server``,
``--token``; ``--project/-p`` on each verb), in that order of precedence.
Every SDK failure is turned, by :func:`handled`, into one red line on stderr —
the gateway's message, the fields at fault, and a hint saying what to do — and an
exit code saying what kind of failure it was (:data:`EXIT_CODES`), never a
traceback.  Scripts branch on the code: 3 not found, 4 not allowed, 5 conflict, ...
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from pincompute.sdk import (
    ApiError,
    Client,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MissingScope,
    NotFound,
    PinComputeError,
    RateLimited,
    RetryPolicy,
    Timeout,
    Unauthorized,
    UnknownKind,
    Unreachable,
    load_config,
)

# A retry is not news to a person at the prompt; the error that ends them is (one line).
logging.getLogger("stamina").setLevel(logging.ERROR)

# Piped output is not folded at 80 columns (a table row stays one line for grep and awk).
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

OK, FAILED, USAGE, NOT_FOUND, NOT_ALLOWED, CONFLICT, INVALID, UNREACHABLE, RATE_LIMITED = (
    0, 1, 2, 3, 4, 5, 6, 7, 8)
INTERRUPTED = 130
EXIT_CODES: dict[int, str] = {
    OK: "success",
    FAILED: "the request failed (a server error, or an operation that did not finish)",
    USAGE: "bad usage: an unknown verb, flag or kind, a missing argument, an unreadable file",
    NOT_FOUND: "the object (or project, pod, cluster) does not exist",
    NOT_ALLOWED: "not authenticated, or the token lacks the permission",
    CONFLICT: "the object exists already, or changed meanwhile",
    INVALID: "the server rejected the object or a parameter as invalid",
    UNREACHABLE: "the server could not be reached or did not answer in time",
    RATE_LIMITED: "too many requests; try again later",
    INTERRUPTED: "interrupted (Ctrl-C)",
}


def fail(message: str, *, code: int = FAILED, hint: str = "") -> typer.Exit:
    """Print one error line (never wrapped, never a traceback); return the Exit to raise."""
    error_line(message, hint=hint)
    return typer.Exit(code)


def error_line(message: str, *, hint: str = "") -> None:
    """``error: <message> — <hint>`` on stderr, one line."""
    line = f"[red]error:[/red] {_escape(message)}"
    if hint:
        line += f" [dim]— {_escape(hint)}[/dim]"
    err.print(line, soft_wrap=True, highlight=False, markup=True)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {_escape(message)}", soft_wrap=True,
              highlight=False, markup=True)


DEFAULT_DATA_DIR = Path("~/.pincompute/data")
"""Where ``up`` keeps a region's data unless told otherwise."""


@dataclass(slots=True)
class Globals:
    server: str | None = None
    token: str | None = None


GLOBALS = Globals()

ProjectOpt = Annotated[str | None, typer.Option(
    "--project", "-p", help="the project (default: PINCOMPUTE_PROJECT or the config's)",
    show_default=False)]
OutputOpt = Annotated[str, typer.Option(
    "--output", "-o", help="table, wide, yaml, json or name")]


CLI_RETRY = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.1, wait_max=0.5)
"""A person waits at the prompt: a server that is down is said so within a second."""


def client(*, project: str | None = None, timeout: float = 30.0) -> Client:
    """The SDK client for this invocation (config file < environment < flags)."""
    try:
        config = load_config(server=GLOBALS.server, token=GLOBALS.token, project=project)
    except ConfigError as e:
        raise fail(str(e), code=USAGE, hint="fix or remove the file") from None
    return Client(config=config, timeout=timeout, retry=CLI_RETRY)


def hint_for(error: PinComputeError, *, server: str = "") -> tuple[int, str]:
    """The exit code and the hint for an SDK error."""
    if isinstance(error, Unauthorized):
        return NOT_ALLOWED, ("set a valid token: PINCOMPUTE_TOKEN, --token or the config "
                             "file (pincompute up writes one for the local region)")
    if isinstance(error, Forbidden):
        return NOT_ALLOWED, "ask a project admin for a role, or use another token"
    if isinstance(error, NotFound):
        return NOT_FOUND, "check the name and the project (-p); `pincompute get KIND` lists them"
    if isinstance(error, Gone):
        return CONFLICT, "the watch fell behind; run the command again"
    if isinstance(error, Conflict):
        return CONFLICT, "it changed meanwhile or exists already; get it again and retry"
    if isinstance(error, Invalid):
        return INVALID, "fix the field(s) named and try again"
    if isinstance(error, RateLimited):
        return RATE_LIMITED, f"retry in {error.retry_after:g}s"
    if isinstance(error, Unreachable | Timeout):
        return UNREACHABLE, (f"is the server running at {server}? start a local region with "
                             "`pincompute up --detach`, or set PINCOMPUTE_SERVER")
    if isinstance(error, UnknownKind | MissingScope):
        return USAGE, ""
    if isinstance(error, ApiError) and error.status_code >= 500:
        return FAILED, "the server failed; its log says why"
    return FAILED, ""


@contextlib.contextmanager
def handled(*, server: str = "") -> Iterator[None]:
    """Turn SDK errors (and Ctrl-C) into one line and an exit code."""
    try:
        yield
    except PinComputeError as e:
        code, hint = hint_for(e, server=server)
        raise fail(str(e), code=code, hint=hint) from None
    except KeyboardInterrupt:
        err.print("")
        raise typer.Exit(INTERRUPTED) from None
    except BrokenPipeError:  # `pincompute logs ... | head`: the reader has had enough
        # Python flushes stdout at exit, into the closed pipe: point it at /dev/null first.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(OK) from None


@contextlib.contextmanager
def session(*, project: str | None = None, timeout: float = 30.0) -> Iterator[Client]:
    """A client whose errors become one line and an exit code."""
    pc = client(project=project, timeout=timeout)
    try:
        with handled(server=pc.server):
            yield pc
    finally:
        pc.close()


def require_project(pc: Client) -> str:
    if not pc.project:
        raise fail("no project given", code=USAGE,
                   hint="pass -p PROJECT, set PINCOMPUTE_PROJECT, or `project:` in the config")
    return pc.project


def die(message: str, *, code: int = FAILED, hint: str = "") -> NoReturn:
    raise fail(message, code=code, hint=hint)
