"""Node-image rotations: ``rotation list|status|pause|resume|abort``.

Theory of operation
-------------------
A Rotation (issue 13) replaces a member cluster's nodes with nodes of a new image; the
ops rotation controller writes its progress to ``status``: the phase, nodes replaced of
the total, done/total per pool, the nodes in progress, the apps whose disruption budgets
hold a drain (``blockedBy``, with the why in ``message``), failed nodes and, for a staged
rotation, each cluster's child.  These verbs read and change it through the SDK only.

``status NAME`` prints that progress once (``-o json|yaml``: the object); ``-w`` follows
the object's watch stream and draws one Rich progress bar per pool (per cluster for a
staged rotation) until the rotation ends — exit 0 when it succeeded, 1 when it failed or
was aborted or the ``--timeout`` passed.  Without a NAME, every rotation.  ``pause``,
``resume`` and ``abort`` merge-patch ``spec.paused`` / ``spec.abort``; the controller
acts on its next pass (a pause lets the nodes in progress finish).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from pincompute.sdk import Client, resolve_kind

from .common import FAILED, USAGE, OutputOpt, console, fail, session
from .output import age, check_format, grid, print_data, print_objects

rotation_app = typer.Typer(no_args_is_help=True,
                           help="Node-image rotations: list, status, pause, resume, abort.")

FINAL_PHASES: dict[str, int] = {"Succeeded": 0, "Aborted": FAILED, "Failed": FAILED}
"""Phases a rotation never leaves, with the exit code of ``status -w`` ending on them."""

PLANNING = "(planning)"
"""The bar of a rotation whose pools are not known yet."""

NameArg = Annotated[str | None, typer.Argument(
    metavar="NAME", help="the rotation (default: every rotation)", show_default=False)]


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def phase_of(obj: Mapping[str, Any]) -> str:
    return str(_status(obj).get("phase") or "Pending")


def bars_of(obj: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """``(label, done, total)`` per pool — per cluster for a staged rotation."""
    status = _status(obj)
    if status.get("clusters"):
        return [(f"{c.get('cluster')}" + (f" ({c['stage']})" if c.get("stage") else ""),
                 int(c.get("replaced") or 0), int(c.get("total") or 0))
                for c in status["clusters"]]
    return [(str(p.get("pool")), int(p.get("done") or 0), int(p.get("total") or 0))
            for p in status.get("pools") or ()]


def progress_line(obj: Mapping[str, Any]) -> str:
    """One line: phase, nodes replaced, what is in progress and what holds it."""
    status = _status(obj)
    parts = [phase_of(obj)]
    if status.get("totalNodes") is not None:
        parts.append(f"{status.get('replacedNodes') or 0}/{status['totalNodes']} nodes")
    if status.get("stage"):
        parts.append(f"stage {status['stage']}")
    if status.get("inProgress"):
        parts.append("replacing " + ", ".join(status["inProgress"]))
    if status.get("blockedBy"):
        parts.append("blocked by " + ", ".join(status["blockedBy"]))
    return " · ".join(parts)


def describe(obj: Mapping[str, Any]) -> None:
    """The rotation's progress, for a person."""
    spec, status = obj.get("spec") or {}, _status(obj)
    name = obj["metadata"]["name"]
    where = spec.get("cluster") or "stages " + ", ".join(spec.get("stages") or ())
    console.print(f"[bold]rotation/{name}[/]  {phase_of(obj)}  {where} → image "
                  f"{spec.get('targetImage')}", highlight=False)
    facts: list[tuple[str, Any]] = [
        ("Replaced", f"{status.get('replacedNodes') or 0}/{status.get('totalNodes') or 0} "
                     "nodes" if status.get("totalNodes") is not None else None),
        ("Step", status.get("currentStep")),
        ("Stage", status.get("stage")),
        ("Current", ", ".join(status.get("inProgress") or ()) or None),
        ("Blocked by", ", ".join(status.get("blockedBy") or ()) or None),
        ("Failed nodes", ", ".join(status.get("failedNodes") or ()) or None),
        ("Message", status.get("message")),
        ("Spec", ", ".join(k for k in ("paused", "abort") if spec.get(k)) or None),
        ("Started", f"{status['startTime']} ({age(status['startTime'])} ago)"
                    if status.get("startTime") else None),
        ("Finished", status.get("completionTime")),
    ]
    for label, value in facts:
        if value is not None:
            console.print(f"  {label + ':':<14}{value}", highlight=False)
    rows = bars_of(obj)
    if rows:
        head = "CLUSTER" if status.get("clusters") else "POOL"
        grid([head, "DONE", "TOTAL", ""], [
            (label, done, total, _bar(done, total)) for label, done, total in rows])


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else width
    return "█" * filled + "░" * (width - filled) + f" {100 * done // total if total else 100}%"


def _rotations(pc: Client, name: str | None) -> list[dict[str, Any]]:
    if name is not None:
        return [pc.get("rotation", name)]
    return list(pc.list("rotation").items)


@rotation_app.command("list")
def rotation_list(out: OutputOpt = "table") -> None:
    """Every rotation with its phase and nodes replaced."""
    check_format(out)
    with session() as pc:
        items = pc.list("rotation").items
    print_objects(resolve_kind("rotation"), items, output=out)


@rotation_app.command("status")
def rotation_status(
    name: NameArg = None,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w", help="follow the rotation until it ends, a bar per pool")] = False,
    timeout: Annotated[int, typer.Option(min=1, max=86400,
                                         help="seconds to watch at most")] = 3600,
    out: Annotated[str, typer.Option("--output", "-o", help="table, yaml or json")] = "table",
) -> None:
    """A rotation's progress: phase, done/total per pool, the node in progress, the app
    blocking a drain and why."""
    if out not in ("table", "yaml", "json"):
        raise fail(f"--output {out}: unknown format", code=USAGE, hint="table, yaml or json")
    with session(timeout=float(timeout) + 30.0) as pc:
        objs = _rotations(pc, name)
        if watch:
            objs = _follow(pc, objs, name=name, timeout=timeout, quiet=out != "table")
    if out != "table":
        print_data(objs[0] if name is not None else {
            "apiVersion": "v1", "kind": "List", "items": objs}, output=out)
    elif not objs:
        console.print("No rotations found.")
    elif not watch:
        for obj in objs:
            describe(obj)
    if watch:
        _verdict(objs, timeout=timeout)


def _follow(pc: Client, objs: Sequence[dict[str, Any]], *, name: str | None, timeout: int,
            quiet: bool) -> list[dict[str, Any]]:
    """Follow the watch stream until every rotation followed has ended (or the deadline)."""
    current = {o["metadata"]["name"]: o for o in objs}
    if not current or all(phase_of(o) in FINAL_PHASES for o in current.values()):
        _draw_final(current.values(), quiet=quiet)
        return list(current.values())
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=30),
               MofNCompleteColumn(), TextColumn("{task.fields[line]}"))
    with Progress(*columns, console=console, disable=quiet) as bars:
        tasks: dict[tuple[str, str], TaskID] = {}

        def draw(obj: Mapping[str, Any]) -> None:
            rot = obj["metadata"]["name"]
            line = progress_line(obj)
            rows = bars_of(obj)
            if rows and (rot, PLANNING) in tasks:
                bars.remove_task(tasks.pop((rot, PLANNING)))
            for label, done, total in rows or [(PLANNING, 0, 0)]:
                key = (rot, label)
                if key not in tasks:
                    tasks[key] = bars.add_task(f"{rot}/{label}", total=None, line="")
                bars.update(tasks[key], completed=done, total=total or None, line=line)

        for obj in current.values():
            draw(obj)
        while time.monotonic() < deadline:
            left = max(1, int(deadline - time.monotonic()))
            for event in pc.watch("rotation", name=name, timeout_seconds=left):
                if event.type == "DELETED" and event.name in current:
                    raise fail(f"rotation/{event.name} was deleted", code=FAILED)
                elif event.type in ("ADDED", "MODIFIED") and (
                        name is not None or event.name in current):
                    current[event.name] = event.object
                    draw(event.object)
                if all(phase_of(o) in FINAL_PHASES for o in current.values()):
                    return list(current.values())
                if time.monotonic() >= deadline:
                    break
    return list(current.values())


def _draw_final(objs: Any, *, quiet: bool) -> None:
    if not quiet:
        for obj in objs:
            describe(obj)


def _verdict(objs: Sequence[Mapping[str, Any]], *, timeout: int) -> None:
    """The exit of ``status -w``: 0 when every rotation succeeded, else why not."""
    for obj in objs:
        name, phase = obj["metadata"]["name"], phase_of(obj)
        message = _status(obj).get("message")
        if phase not in FINAL_PHASES:
            raise fail(f"rotation/{name} still {phase} after {timeout}s "
                       f"({progress_line(obj)})", code=FAILED)
        if FINAL_PHASES[phase]:
            raise fail(f"rotation/{name} {phase}" + (f": {message}" if message else ""),
                       code=FINAL_PHASES[phase])
        console.print(f"rotation/{name} {phase}: "
                      f"{progress_line(obj).removeprefix(phase + ' · ')}", highlight=False)


def _patch(field: str, value: bool, verb: str, doc: str) -> Any:
    def command(name: Annotated[str, typer.Argument(help="the rotation")]) -> None:
        with session() as pc:
            obj = pc.patch("rotation", name, {"spec": {field: value}})
        console.print(f"rotation/{name} {verb} ({progress_line(obj)})", highlight=False)
    command.__doc__ = doc
    return command


rotation_app.command("pause")(_patch(
    "paused", True, "paused", "Take no new node; the nodes in progress finish (spec.paused)."))
rotation_app.command("resume")(_patch(
    "paused", False, "resumed", "Carry on with a paused rotation."))
rotation_app.command("abort")(_patch(
    "abort", True, "aborted", "Stop now: nodes not yet drained are handed back (spec.abort)."))


def register(app: typer.Typer) -> None:
    app.add_typer(rotation_app, name="rotation")
