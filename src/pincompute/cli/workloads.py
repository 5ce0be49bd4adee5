"""``apply``, ``get``, ``describe``, ``delete``: objects by kind and name, as kubectl has them.

Objects are named ``KIND NAME`` or ``KIND/NAME``, the kind by singular, plural or
short name (:func:`pincompute.sdk.resolve_kind`).  ``apply`` creates or updates
every object of its files and, with ``--wait``, shows a live progress view until
they have rolled out (:mod:`.rollout`).  ``get -w`` prints a row per change.
``describe`` is :mod:`.describe`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import typer

from pincompute.sdk import Client, Gone, KindRef, PinComputeError, WatchEvent, parse_object_ref

from . import describe as describing
from . import manifests, output, rollout
from .common import (
    FAILED,
    USAGE,
    OutputOpt,
    ProjectOpt,
    console,
    error_line,
    fail,
    handled,
    hint_for,
    session,
)


def complete_kind(incomplete: str) -> list[str]:
    from pincompute.sdk import KINDS

    names = sorted({n for ref in KINDS for n in ref.names})
    return [n for n in names if n.startswith(incomplete.lower())]


KindArg = Annotated[str, typer.Argument(
    metavar="KIND[/NAME]", help="a kind (pinapp, pinapps, app, ...), or KIND/NAME",
    autocompletion=complete_kind)]
NameArg = Annotated[str | None, typer.Argument(metavar="[NAME]", help="the object's name")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="the member cluster (for nodes)")]


def resolve(first: str, second: str | None) -> tuple[KindRef, str | None]:
    with handled():
        return parse_object_ref(first, second)


def apply(
    filenames: Annotated[list[str], typer.Option(
        "--filename", "-f", help="a YAML/JSON file, a directory of them, or - for stdin")],
    project: ProjectOpt = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="show the rollout live and return once every object rolled out")]
        = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most")] = 300.0,
) -> None:
    """Create or update the objects of files (multi-document YAML, directories)."""
    try:
        items = manifests.load(filenames)
    except manifests.ManifestError as e:
        raise fail(str(e), code=USAGE) from None
    failed = 0
    targets: list[rollout.Target] = []
    with session(project=project) as pc:
        for item in items:
            try:
                result, obj = pc.apply(item.obj)
            except PinComputeError as e:
                code, hint = hint_for(e, server=pc.server)
                error_line(f"{item.source} {item.label}: {e}", hint=hint)
                failed = failed or code
                continue
            console.print(f"{item.label} {result}", highlight=False)
            ref = parse_object_ref(item.obj["kind"])[0]
            md = obj.get("metadata") or {}
            targets.append(rollout.Target(ref, item.label.split("/", 1)[1],
                                          md.get("namespace") or pc.project,
                                          int(md.get("generation") or 0)))
        if failed:
            raise typer.Exit(failed)
        if wait:
            ok, why = rollout.wait(pc, targets, timeout=timeout)
            if not ok:
                raise fail(why, code=FAILED,
                           hint="`pincompute describe` it for its conditions and events")
            console.print("rolled out", highlight=False)


def get(
    kind: KindArg,
    name: NameArg = None,
    project: ProjectOpt = None,
    out: OutputOpt = "table",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="print every change")] = False,
    selector: Annotated[str | None, typer.Option(
        "--selector", "-l", help="label selector, e.g. app=web,tier!=preemptible")] = None,
    cluster: ClusterOpt = None,
) -> None:
    """List objects of a kind, or show one; -w keeps printing changes."""
    ref, obj_name = resolve(kind, name)
    output.check_format(out)
    with session(project=project) as pc:
        if ref.scope == "cluster" and not cluster:
            raise fail(f"{ref.plural} belong to a member cluster", code=USAGE,
                       hint="pass --cluster NAME (`pincompute cluster list` names them)")
        if watch:
            _watch(pc, ref, obj_name, out=out, selector=selector, cluster=cluster)
            return
        if obj_name:
            output.print_objects(ref, [pc.get(ref, obj_name, cluster=cluster)], output=out,
                                 single=True)
        else:
            items = list(pc.list_all(ref, cluster=cluster, label_selector=selector))
            output.print_objects(ref, items, output=out)


def _watch(pc: Client, ref: KindRef, name: str | None, *, out: str, selector: str | None,
           cluster: str | None) -> None:
    wide = out == "wide"
    widths = [max(len(h), 14) for h in output.headers(ref, wide=wide)]
    if out in ("table", "wide"):
        print(_fixed(output.headers(ref, wide=wide), widths), flush=True)
    for event in _events(pc, ref, name, selector=selector, cluster=cluster):
        if event.type == "BOOKMARK":
            continue
        if out in ("json", "yaml"):
            output.print_data({"type": event.type, "object": event.object}, output=out)
            if out == "yaml":
                print("---")
        elif out == "name":
            print(f"{ref.kind.lower()}/{event.name}", flush=True)
        else:
            cells = output.row(ref, event.object, wide=wide)
            if event.type == "DELETED":
                cells[-1] = "deleted"
            print(_fixed(cells, widths), flush=True)


def _events(pc: Client, ref: KindRef, name: str | None, *, selector: str | None,
            cluster: str | None) -> Iterator[WatchEvent]:
    """Every change until Ctrl-C: a stream the server ends (a timeout, a watcher cut off
    for falling behind) is resumed from the last version seen; one too old to resume
    from (410) starts over, replaying the objects as they are."""
    version: str | None = None
    while True:
        try:
            for event in pc.watch(ref, name=name, label_selector=selector, cluster=cluster,
                                  resource_version=version):
                version = event.resource_version or version
                yield event
        except Gone:
            version = None


def _fixed(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()


def describe(
    kind: KindArg,
    name: NameArg = None,
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    events: Annotated[int, typer.Option(help="how many recent events to show")] = 10,
) -> None:
    """Show an object: spec summary, placements, conditions, pods, queue, events."""
    ref, obj_name = resolve(kind, name)
    if not obj_name:
        raise fail(f"describe which {ref.kind}?", code=USAGE,
                   hint=f"pincompute describe {ref.kind.lower()} NAME")
    with session(project=project) as pc:
        obj = pc.get(ref, obj_name, cluster=cluster)
        describing.show(pc, ref, obj, events=events)


def delete(
    kind: Annotated[str | None, typer.Argument(
        metavar="[KIND[/NAME]]", help="a kind, or KIND/NAME", autocompletion=complete_kind)]
        = None,
    names: Annotated[list[str] | None, typer.Argument(metavar="[NAME]...")] = None,
    filenames: Annotated[list[str] | None, typer.Option(
        "--filename", "-f", help="delete the objects of these files")] = None,
    project: ProjectOpt = None,
    ignore_not_found: Annotated[bool, typer.Option(
        "--ignore-not-found", help="an object that does not exist is not an error")] = False,
) -> None:
    """Delete objects: KIND NAME..., KIND/NAME..., or -f FILE."""
    targets: list[tuple[KindRef, str, str | None]] = []
    if filenames:
        try:
            for item in manifests.load(filenames):
                ref, name = parse_object_ref(item.obj["kind"])[0], item.obj["metadata"]["name"]
                targets.append((ref, name, item.obj["metadata"].get("namespace")))
        except (manifests.ManifestError, PinComputeError) as e:
            raise fail(str(e), code=USAGE) from None
    elif kind:
        rest = list(names or [])
        if "/" in kind:
            for word in [kind, *rest]:
                ref, name = resolve(word, None)
                targets.append((ref, name or "", None))
        else:
            ref, _ = resolve(kind, None)
            targets.extend((ref, n, None) for n in rest)
    if not targets or any(not name for _, name, _ in targets):
        raise fail("delete what?", code=USAGE,
                   hint="pincompute delete KIND NAME, KIND/NAME or -f FILE")
    with session(project=project) as pc:
        from pincompute.sdk import NotFound

        for ref, name, ns in targets:
            try:
                pc.delete(ref, name, project=ns)
            except NotFound:
                if not ignore_not_found:
                    raise
                continue
            console.print(f'{ref.kind.lower()} "{name}" deleted', highlight=False)


def register(app: typer.Typer) -> None:
    for fn in (apply, get, describe, delete):
        app.command()(fn)


__all__ = ["register"]
