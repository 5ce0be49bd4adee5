"""Looking inside workloads: ``logs``, ``exec``, ``events``.

``logs`` reads one pod's log, or — given ``KIND/NAME`` — every replica's at once,
each line prefixed with its pod (one reader thread per pod feeding one printer, so
lines never interleave mid-line); ``-f`` follows until Ctrl-C.  ``exec`` runs a
command in a pod's container over the SDK's websocket session; with ``-it`` the
local terminal goes raw (:mod:`.terminal`), keys and window size are forwarded,
and the command's exit code becomes ours.  ``events`` lists a project's or one
object's events, oldest first.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from pincompute.sdk import Client, Conflict, NotFound, PinComputeError, parse_object_ref

from . import terminal
from .common import CONFLICT, USAGE, ProjectOpt, console, fail, handled, session
from .describe import event_time
from .output import age, grid, lookup

if TYPE_CHECKING:
    from pincompute.sdk.exec import ExecSession

_COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def seconds(text: str | None) -> int | None:
    """``90``, ``90s``, ``5m``, ``2h``, ``1d`` → seconds."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if not match:
        raise fail(f"--since {text}: not a duration", code=USAGE, hint="e.g. 30s, 5m, 2h, 1d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
        match.group(2)]


def workload_pods(pc: Client, words: str) -> list[dict[str, Any]] | None:
    """The pods of ``KIND/NAME`` (``None`` if ``words`` names a pod)."""
    if "/" not in words:
        return None
    with handled(server=pc.server):
        ref, name = parse_object_ref(words)
    if ref.kind not in ("PinApp", "PinPod", "PinJob", "PinTrainingJob"):
        raise fail(f"a {ref.kind} has no pods", code=USAGE)
    pods = pc.pods(ref, name or "")
    if not pods:
        raise fail(f"{words} has no pods yet", code=USAGE,
                   hint=f"pincompute describe {words} says why")
    return pods


def logs(
    pod: Annotated[str, typer.Argument(metavar="POD|KIND/NAME",
                                       help="a pod, or a workload for all its replicas")],
    container: Annotated[str | None, typer.Option("--container", "-c")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")]
        = False,
    tail: Annotated[int | None, typer.Option(help="only the last N lines (per pod)")] = None,
    since: Annotated[str | None, typer.Option(help="only lines newer than 30s, 5m, 2h...")]
        = None,
    previous: Annotated[bool, typer.Option("--previous", help="the previous (crashed) run")]
        = False,
    prefix: Annotated[bool | None, typer.Option(
        "--prefix/--no-prefix", help="prefix lines with the pod (default: with several)")]
        = None,
    project: ProjectOpt = None,
) -> None:
    """Print a pod's logs, or all replicas' of a workload (KIND/NAME) with prefixes."""
    since_s = seconds(since)
    with session(project=project, timeout=30.0) as pc:
        pods = workload_pods(pc, pod)
        names = [p["metadata"]["name"] for p in pods] if pods is not None else [pod]
        options = dict(container=container, follow=follow, tail_lines=tail,
                       since_seconds=since_s, previous=previous)
        if len(names) == 1 and not prefix:
            try:
                for line in pc.logs(names[0], **options):  # type: ignore[arg-type]
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
            except NotFound as e:
                raise fail(str(e), code=3, hint="for all replicas of an app: "
                           "pincompute logs app/NAME") from None
            return
        _multiplex(pc, names, options)


def _multiplex(pc: Client, pods: list[str], options: dict[str, Any]) -> None:
    lines: queue.Queue[tuple[int, str | None, Exception | None]] = queue.Queue(maxsize=10000)

    def read(i: int, pod: str) -> None:
        try:
            for line in pc.logs(pod, **options):
                lines.put((i, line, None))
        except Exception as e:  # reported by the printer, which owns the exit code
            lines.put((i, None, e))
            return
        lines.put((i, None, None))

    width = max(len(p) for p in pods)
    for i, pod in enumerate(pods):
        threading.Thread(target=read, args=(i, pod), daemon=True, name=f"logs-{pod}").start()
    open_streams = len(pods)
    while open_streams:
        i, line, error = lines.get()
        if line is None:
            open_streams -= 1
            if error is not None:
                if not isinstance(error, PinComputeError):
                    raise error
                console.print(Text(f"[{pods[i]}] ", style=_COLORS[i % len(_COLORS)])
                              + Text(f"log unavailable: {error}", style="red"))
            continue
        head = Text(f"[{pods[i].ljust(width)}] ", style=_COLORS[i % len(_COLORS)])
        console.print(head + Text(line), soft_wrap=True, highlight=False)


def exec_(
    pod: Annotated[str, typer.Argument(metavar="POD|KIND/NAME",
                                       help="a pod, or a workload (its first ready pod)")],
    command: Annotated[list[str] | None, typer.Argument(
        metavar="-- COMMAND...", help="the command and its arguments")] = None,
    container: Annotated[str | None, typer.Option("--container", "-c")] = None,
    stdin: Annotated[bool, typer.Option("--stdin", "-i", help="pass stdin to the command")]
        = False,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="a terminal: raw mode, resize")]
        = False,
    project: ProjectOpt = None,
) -> None:
    """Run a command in a pod's container; -it for an interactive shell."""
    if command and command[0] == "--":  # click keeps it once options parsing has stopped
        command = command[1:]
    if not command:
        raise fail("exec needs a command", code=USAGE,
                   hint="pincompute exec POD -- ls /   or   pincompute exec -it POD -- sh")
    with session(project=project, timeout=30.0) as pc:
        pods = workload_pods(pc, pod)
        name = _first_ready(pods) if pods is not None else pod
        interactive = tty and terminal.is_tty()
        try:
            remote = pc.exec(name, command, container=container, tty=interactive,
                             stdin=stdin or interactive)
        except Conflict as e:  # the container is not running (yet, or any more)
            raise fail(str(e), code=CONFLICT,
                       hint=f"pincompute describe {pod if '/' in pod else 'KIND/NAME'} shows "
                       "its pods' state") from None
        with remote:
            code = _interactive(remote, raw=interactive) if (stdin or interactive) \
                else _output(remote)
    raise typer.Exit(code)


def _first_ready(pods: list[dict[str, Any]]) -> str:
    for pod in pods:
        if any(s.get("ready") for s in lookup(pod, ".status.containerStatuses") or ()):
            return str(pod["metadata"]["name"])
    return str(pods[0]["metadata"]["name"])


def _output(remote: ExecSession) -> int:
    out, errs = sys.stdout.buffer, sys.stderr.buffer
    for channel, data in remote:
        target = out if channel == 1 else errs
        target.write(data)
        target.flush()
    return remote.exit_code if remote.exit_code is not None else 1


def _interactive(remote: ExecSession, *, raw: bool) -> int:
    def pump() -> None:
        try:
            while data := terminal.read_stdin():
                remote.send(data)
            remote.close_stdin()
        except (OSError, PinComputeError):
            return  # the command ended (the session is closed) or stdin failed

    reader = threading.Thread(target=pump, daemon=True, name="exec-stdin")
    if raw:
        with terminal.raw_mode(), terminal.on_resize(remote.resize):
            reader.start()
            return _output(remote)
    reader.start()
    return _output(remote)


def events(
    obj: Annotated[str | None, typer.Argument(
        metavar="[KIND/NAME]", help="one object's events (default: the project's)")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Normal or Warning")] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    since: Annotated[str | None, typer.Option(help="only newer than 30s, 5m, 2h...")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many (the newest)")] = None,
    out: Annotated[str, typer.Option("--output", "-o", help="table, yaml or json")] = "table",
    project: ProjectOpt = None,
) -> None:
    """List events, oldest first: a project's, or one object's (KIND/NAME)."""
    since_s = seconds(since)
    with session(project=project) as pc:
        if obj:
            ref, name = parse_object_ref(obj)
            if not name:
                raise fail("give KIND/NAME", code=USAGE)
            items = pc.events(ref, name, type=type_, reason=reason, since_seconds=since_s,
                              limit=limit)
        else:
            items = pc.events(type=type_, reason=reason, since_seconds=since_s, limit=limit)
    if out in ("yaml", "json"):
        from .output import print_data

        print_data({"items": items}, output=out)
        return
    if not items:
        console.print("No events found.")
        return
    grid(["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"], [
        (age(event_time(e)), e.get("type"), e.get("reason"),
         f"{str(lookup(e, '.involvedObject.kind') or '').lower()}/"
         f"{lookup(e, '.involvedObject.name')}", e.get("message")) for e in items])


def register(app: typer.Typer) -> None:
    app.command()(logs)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    app.command()(events)
