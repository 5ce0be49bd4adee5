"""Printing objects: tables from the kinds' printer columns, or YAML, JSON, names.

A kind's table is what ``kubectl get`` would show for its CRD: NAME, the printer
columns of the kinds table (priority > 0 only with ``-o wide``) and AGE.  Column
paths are the CRDs' simple JSONPath (``.status.readyReplicas``; ``\\.`` escapes a
dot inside a label key).  ``-o yaml`` and ``-o json`` print the objects as the
gateway answered them (one object alone, several as a ``List``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from rich.table import Table

from pincompute.sdk import KindRef

from .common import USAGE, console, fail

FORMATS = ("table", "wide", "yaml", "json", "name")
_PATH_SPLIT = re.compile(r"(?<!\\)\.")


def check_format(output: str) -> str:
    if output not in FORMATS:
        raise fail(f"-o {output}: unknown output format", code=USAGE,
                   hint="use one of " + ", ".join(FORMATS))
    return output


def lookup(obj: Any, path: str) -> Any:
    """The value at a printer column's path (``None`` if any step is missing)."""
    value = obj
    for part in _PATH_SPLIT.split(path.lstrip(".")):
        if not part:
            continue
        key = part.replace("\\.", ".")
        if isinstance(value, Mapping):
            value = value.get(key)
        else:
            return None
    return value


def age(timestamp: str | None, *, now: dt.datetime | None = None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` since an RFC 3339 time, as kubectl shows ages."""
    if not timestamp:
        return "-"
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def node_status(node: Mapping[str, Any]) -> str:
    ready = next((c for c in lookup(node, ".status.conditions") or ()
                  if isinstance(c, Mapping) and c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if lookup(node, ".spec.unschedulable"):
        status += ",SchedulingDisabled"
    return status


def row(ref: KindRef, obj: Mapping[str, Any], *, wide: bool) -> list[str]:
    cells = [cell(lookup(obj, ".metadata.name"))]
    for column in ref.columns:
        if column.priority and not wide:
            continue
        if ref.kind == "Node" and column.name == "Status":
            cells.append(node_status(obj))
        else:
            cells.append(cell(lookup(obj, column.json_path)))
    cells.append(age(lookup(obj, ".metadata.creationTimestamp")))
    return cells


def headers(ref: KindRef, *, wide: bool) -> list[str]:
    return ["NAME", *(c.name.upper() for c in ref.columns if wide or not c.priority), "AGE"]


def table(ref: KindRef, objects: Iterable[Mapping[str, Any]], *, wide: bool) -> Table:
    out = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers(ref, wide=wide):
        out.add_column(header, overflow="fold")
    for obj in objects:
        out.add_row(*row(ref, obj, wide=wide))
    return out


def print_objects(ref: KindRef, objects: Sequence[Mapping[str, Any]], *, output: str,
                  single: bool = False) -> None:
    """Print objects in the format asked for (``single``: one object, not a list)."""
    if output in ("yaml", "json"):
        body: Any = objects[0] if single and objects else {
            "apiVersion": "v1", "kind": "List", "items": list(objects)}
        print_data(body, output=output)
    elif output == "name":
        for obj in objects:
            print(f"{ref.kind.lower()}/{lookup(obj, '.metadata.name')}")
    elif not objects:
        console.print(f"No {ref.plural} found.", highlight=False)
    else:
        console.print(table(ref, objects, wide=output == "wide"))


def print_data(data: Any, *, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")


def grid(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A borderless table of ``rows`` under ``headers`` (cells rendered by :func:`cell`)."""
    table = Table(box=None, pad_edge=True, header_style="bold", padding=(0, 1, 0, 1))
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console.print(table)
