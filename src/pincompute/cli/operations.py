"""Operations on running workloads: ``scale``, ``pause``, ``resume``, ``stop``, ``start``,
``restart``, ``restart-container``, ``suspend``, ``trigger``, ``rollout status|undo|history``.

Each is one ``POST .../{plural}/{name}/{operation}`` through the SDK.  The target
is ``NAME`` (a PinApp, the kind these mostly apply to), ``KIND/NAME`` or ``KIND
NAME``; a kind without the operation is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from pincompute.sdk import KindRef, parse_object_ref

from . import rollout
from .common import FAILED, USAGE, ProjectOpt, console, fail, handled, session
from .output import grid

Target = Annotated[list[str], typer.Argument(
    metavar="[KIND/]NAME", help="NAME (a PinApp), KIND/NAME or KIND NAME")]


def target(words: list[str], *, default_kind: str = "pinapp", operation: str = ""
           ) -> tuple[KindRef, str]:
    with handled():
        if len(words) == 1 and "/" not in words[0]:
            ref, name = parse_object_ref(default_kind, words[0])
        elif len(words) in (1, 2):
            ref, name = parse_object_ref(words[0], words[1] if len(words) == 2 else None)
        else:
            raise fail("give NAME, KIND/NAME or KIND NAME", code=USAGE)
    if not name:
        raise fail(f"which {ref.kind}?", code=USAGE)
    if operation and operation not in ref.operations:
        have = ", ".join(ref.operations) or "none"
        raise fail(f"a {ref.kind} cannot {operation}", code=USAGE,
                   hint=f"its operations: {have}")
    return ref, name


def _done(ref: KindRef, name: str, what: str) -> None:
    console.print(f"{ref.kind.lower()}/{name} {what}", highlight=False)


def _simple(operation: str, what: str, doc: str, *, default_kind: str = "pinapp"
            ) -> Callable[..., None]:
    def command(names: Target, project: ProjectOpt = None) -> None:
        ref, name = target(names, default_kind=default_kind, operation=operation)
        with session(project=project) as pc:
            pc.operate(ref, name, operation)
        _done(ref, name, what)
    command.__doc__ = doc
    command.__name__ = operation
    return command


def scale(
    names: Target,
    replicas: Annotated[int, typer.Option("--replicas", "-r", min=0, help="replicas wanted")],
    project: ProjectOpt = None,
) -> None:
    """Set a PinApp's replicas (over all its clusters)."""
    ref, name = target(names, operation="scale")
    with session(project=project) as pc:
        pc.operate(ref, name, "scale", {"replicas": replicas})
    _done(ref, name, f"scaled to {replicas}")


def restart_container(
    names: Annotated[list[str], typer.Argument(
        metavar="[KIND/]NAME", help="a PinPod NAME, or pinapp/NAME with --replica")],
    container: Annotated[str, typer.Option("--container", "-c", help="the container")],
    replica: Annotated[str | None, typer.Option(
        help="for a PinApp: the replica (its pod's name) whose container restarts")] = None,
    project: ProjectOpt = None,
) -> None:
    """Restart one container of a PinPod, or of one replica of a PinApp."""
    ref, name = target(names, default_kind="pinpod", operation="restart-container")
    if ref.kind == "PinApp" and not replica:
        raise fail("which replica?", code=USAGE,
                   hint="pass --replica POD (`pincompute describe app NAME` lists them)")
    with session(project=project) as pc:
        body: dict[str, Any] = {"container": container}
        if replica:
            body["pod"] = replica
        pc.operate(ref, name, "restart-container", body)
    _done(ref, name, f"container {container} restarting")


rollout_app = typer.Typer(no_args_is_help=True, help="Follow and undo rollouts.")


@rollout_app.command("status")
def rollout_status(
    names: Target,
    project: ProjectOpt = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 600.0,
    watch: Annotated[bool, typer.Option(
        "--watch/--no-watch", "-w", help="wait for the rollout to finish")] = True,
) -> None:
    """Show a rollout's progress and block until it is done (exit 1 if it fails)."""
    ref, name = target(names)
    if ref.kind not in rollout.PROGRESS:
        raise fail(f"a {ref.kind} has no rollout", code=USAGE)
    with session(project=project) as pc:
        if not watch:
            state = rollout.PROGRESS[ref.kind](pc.get(ref, name))
            console.print(f"{ref.kind.lower()}/{name}: {state.line()}"
                          + ("; rolled out" if state.done else ""), highlight=False)
            raise typer.Exit(0 if state.done else FAILED)
        ok, why = rollout.wait(pc, [rollout.Target(ref, name, pc.project)], timeout=timeout)
        if not ok:
            raise fail(why, hint=f"pincompute describe {ref.kind.lower()} {name}")
    console.print(f"{ref.kind.lower()}/{name} successfully rolled out", highlight=False)


@rollout_app.command("undo")
def rollout_undo(
    names: Target,
    to_revision: Annotated[str | None, typer.Option(
        "--to-revision", help="a revision number or hash (default: the previous one)")] = None,
    project: ProjectOpt = None,
) -> None:
    """Roll a PinApp back to an earlier revision."""
    ref, name = target(names, operation="rollback")
    with session(project=project) as pc:
        pc.rollback(name, revision=to_revision, kind=ref)
    _done(ref, name, "rolled back")


@rollout_app.command("history")
def rollout_history(
    names: Target,
    project: ProjectOpt = None,
    states: Annotated[bool, typer.Option(
        "--states", help="a PinApp's state transitions rather than its revisions")] = False,
) -> None:
    """A PinApp's revisions (what `rollout undo --to-revision` can pick); for other kinds,
    or with --states, the object's state transitions (admitted, queued, placed, ...)."""
    ref, name = target(names)
    with session(project=project) as pc:
        if "rollback" in ref.operations and not states:
            revisions = pc.revisions(name, kind=ref)
            grid(["REVISION", "HASH", "IMAGES", "CHANGE", "CREATED", ""],
                 [(r.get("number"), r.get("revision"),
                   ", ".join(f"{c}={i}" for c, i in (r.get("images") or {}).items()),
                   r.get("change"), r.get("created"), "current" if r.get("current") else "")
                  for r in revisions])
            return
        entries = pc.history(ref, name)
    grid(["TIME", "STATE", "REASON", "MESSAGE"],
          [(e.get("time"), e.get("state") or e.get("type"), e.get("reason"), e.get("message"))
           for e in entries])


def register(app: typer.Typer) -> None:
    app.command()(scale)
    for operation, what, doc in (
            ("pause", "paused", "Pause a PinApp's rollout."),
            ("stop", "stopped", "Stop a PinApp (or pinpod/NAME): nothing runs, its spec is kept."),
            ("start", "started", "Start a stopped PinApp (or pinpod/NAME) again."),
            ("restart", "restarting", "Replace a PinApp's replicas by a rolling restart."),
            ("resume", "resumed", "Resume a paused PinApp, or a suspended job (KIND/NAME).")):
        app.command(operation)(_simple(operation, what, doc))
    app.command("suspend")(_simple("suspend", "suspended",
                                   "Suspend a PinJob, PinTrainingJob or PinCronJob.",
                                   default_kind="pinjob"))
    app.command("trigger")(_simple("trigger", "triggered", "Run a PinCronJob now.",
                                   default_kind="pincronjob"))
    app.command("restart-container")(restart_container)
    app.add_typer(rollout_app, name="rollout")


