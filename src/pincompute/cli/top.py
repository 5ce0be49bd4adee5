"""``top pods|apps|nodes``: what is used right now, as ``kubectl top`` shows it.

The numbers come from the gateway's ``top`` routes (through the SDK), which read
the records the node agents write every reporting interval (15 s by default): a
pod's CPU is the average over the last interval, its memory the last sample.
Tables show CPU in millicores (``250m``) and memory in mebibytes (``32Mi``), as
kubectl does, and beside each the share of what was asked for — of the pods'
requests for pods and apps, of the node's allocatable for nodes — where that is
known (``-`` where nothing was requested).  A pod without a sample yet shows ``-``;
one whose node stopped reporting is flagged ``stale`` (its numbers are old).
``-o json|yaml`` print the gateway's rows unchanged, bytes and millicores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import typer

from pincompute.kube.quantity import QuantityError, cpu_millis, to_int

from .common import USAGE, ProjectOpt, console, fail, session, warn
from .output import grid, lookup, print_data

top_app = typer.Typer(no_args_is_help=True,
                      help="CPU and memory in use: pods, apps, nodes (like kubectl top).")

FORMATS = ("table", "json", "yaml")
SORT_KEYS = ("name", "cpu", "memory")

TopOutput = Annotated[str, typer.Option("--output", "-o", help="table, json or yaml")]
SortBy = Annotated[str, typer.Option(
    "--sort-by", help="name, cpu or memory (the largest first)")]


def millicores(value: int | None) -> str:
    """``250m`` (``-`` without a sample)."""
    return "-" if value is None else f"{value}m"


def mebibytes(value: int | None) -> str:
    """``32Mi``: whole mebibytes, as ``kubectl top`` rounds (``-`` without a sample)."""
    return "-" if value is None else f"{value // (1 << 20)}Mi"


def percent(used: int | None, of: int | None) -> str:
    """``125%`` of a request or capacity; ``-`` when either is unknown or zero."""
    if used is None or not of:
        return "-"
    return f"{round(100 * used / of)}%"


def _check(output: str, sort_by: str) -> None:
    if output not in FORMATS:
        raise fail(f"-o {output}: unknown output format", code=USAGE,
                   hint="use one of " + ", ".join(FORMATS))
    if sort_by not in SORT_KEYS:
        raise fail(f"--sort-by {sort_by}: unknown key", code=USAGE,
                   hint="use one of " + ", ".join(SORT_KEYS))


def _sorted(rows: Sequence[Mapping[str, Any]], sort_by: str) -> list[Mapping[str, Any]]:
    if sort_by == "name":
        return list(rows)
    field = {"cpu": "cpuMillicores", "memory": "memoryBytes"}[sort_by]
    return sorted(rows, key=lambda r: -(r.get(field) or 0))


def _emit(kind: str, rows: Sequence[Mapping[str, Any]], output: str, *, empty: str,
          table: Callable[[Sequence[Mapping[str, Any]]], None]) -> None:
    if output != "table":
        print_data({"apiVersion": "v1", "kind": kind, "items": list(rows)}, output=output)
    elif not rows:
        console.print(empty, highlight=False)
    else:
        table(rows)


@top_app.command("pods")
def top_pods(
    project: ProjectOpt = None,
    app: Annotated[str | None, typer.Option("--app", help="only this app's pods")] = None,
    containers: Annotated[bool, typer.Option(
        "--containers", help="a line per container")] = False,
    sort_by: SortBy = "name",
    output: TopOutput = "table",
) -> None:
    """CPU and memory each pod of a project uses, and the share of its requests."""
    _check(output, sort_by)
    with session(project=project) as pc:
        rows = _sorted(pc.top_pods(app=app), sort_by)

    def table(rows: Sequence[Mapping[str, Any]]) -> None:
        if containers:
            grid(["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
                 [(r["name"], c["name"], millicores(c.get("cpuMillicores")),
                   mebibytes(c.get("memoryBytes")))
                  for r in rows for c in r.get("containers") or ()])
        else:
            grid(["NAME", "APP", "CPU(cores)", "CPU%REQ", "MEMORY(bytes)", "MEM%REQ", "NODE"],
                 [(r["name"], r.get("app"), millicores(r.get("cpuMillicores")),
                   percent(r.get("cpuMillicores"), r.get("cpuRequestMillicores")),
                   mebibytes(r.get("memoryBytes")),
                   percent(r.get("memoryBytes"), r.get("memoryRequestBytes")),
                   r.get("node")) for r in rows])
        stale = sorted({str(r.get("node")) for r in rows if r.get("stale")})
        if stale:
            warn(f"no recent report from node(s) {', '.join(stale)}: their pods' numbers "
                 "are old")

    where = f" of app {app}" if app else ""
    _emit("PodUsageList", rows, output, table=table,
          empty=f"No pods{where} with usage reported yet.")


@top_app.command("apps")
def top_apps(project: ProjectOpt = None, sort_by: SortBy = "name",
             output: TopOutput = "table") -> None:
    """CPU and memory each app of a project uses (its pods together), and the share of
    their requests."""
    _check(output, sort_by)
    with session(project=project) as pc:
        rows = _sorted(pc.top_apps(), sort_by)

    def table(rows: Sequence[Mapping[str, Any]]) -> None:
        grid(["NAME", "KIND", "PODS", "CPU(cores)", "CPU%REQ", "MEMORY(bytes)", "MEM%REQ"],
             [(r["name"], r.get("kind"), f"{r.get('readyPods', 0)}/{r.get('pods', 0)}",
               millicores(r.get("cpuMillicores")),
               percent(r.get("cpuMillicores"), r.get("cpuRequestMillicores")),
               mebibytes(r.get("memoryBytes")),
               percent(r.get("memoryBytes"), r.get("memoryRequestBytes"))) for r in rows])

    _emit("AppUsageList", rows, output, table=table, empty="No apps with usage reported yet.")


def _allocatable(node: Mapping[str, Any], resource: str) -> int | None:
    value = lookup(node, f".status.allocatable.{resource}")
    if value is None:
        return None
    try:
        return cpu_millis(value) if resource == "cpu" else to_int(value)
    except QuantityError:
        return None


@top_app.command("nodes")
def top_nodes(
    cluster: Annotated[str | None, typer.Option(
        "--cluster", help="one member cluster (default: every one)")] = None,
    sort_by: SortBy = "name",
    output: TopOutput = "table",
) -> None:
    """CPU and memory the pods of each node use together, and the share of the node's
    allocatable."""
    _check(output, sort_by)
    with session() as pc:
        rows = _sorted(pc.top_nodes(cluster), sort_by)
        nodes: dict[tuple[str, str], Mapping[str, Any]] = {}
        if output == "table":
            for name in sorted({str(r["cluster"]) for r in rows}):
                nodes.update(((name, n["metadata"]["name"]), n) for n in pc.nodes(name))

    def table(rows: Sequence[Mapping[str, Any]]) -> None:
        def share(r: Mapping[str, Any], field: str, resource: str) -> str:
            node = nodes.get((r["cluster"], r["name"]))
            return percent(r.get(field), _allocatable(node, resource) if node else None)

        grid(["NAME", "CLUSTER", "PODS", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"],
             [(r["name"], r["cluster"], r.get("pods"), millicores(r.get("cpuMillicores")),
               share(r, "cpuMillicores", "cpu"), mebibytes(r.get("memoryBytes")),
               share(r, "memoryBytes", "memory")) for r in rows])

    _emit("NodeUsageList", rows, output, table=table,
          empty="No node has reported usage yet.")


def register(app: typer.Typer) -> None:
    app.add_typer(top_app, name="top")
