"""The node-image catalog: an image with everything it inherits folded in.

Theory of operation
-------------------
A NodeImage may name a ``parent``; a child overrides its ancestors, nearest
first.  :func:`resolve` walks the chain to its root (a missing parent or a cycle
makes the image ``Invalid``, with the reason) and folds it from the root down:

================== ===============================================================
field              rule
================== ===============================================================
image, baseOS,     the nearest image that sets it
runtimeVersion
labels, settings   merged by key, the child's value winning
taints             merged by (key, effect), the child's winning
daemons            the union, ancestors' first, without repeats
agent              merged field by field, the child's winning
name, type,        the image's own
version
================== ===============================================================

Pure functions over the specs (camelCase JSON), tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCALARS = ("image", "baseOS", "runtimeVersion")


@dataclass(frozen=True, slots=True)
class Resolution:
    phase: str
    """``Ready`` or ``Invalid``."""
    message: str = ""
    ancestors: list[str] = field(default_factory=list)
    resolved: dict[str, Any] | None = None


def chain(name: str, catalog: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], str]:
    """``name`` and its ancestors, nearest first, and what broke the chain ('' if
    nothing)."""
    out = [name]
    parent = (catalog[name].get("parent") if name in catalog else None)
    while parent:
        if parent in out:
            return out, f"inheritance cycle: {' → '.join([*out, parent])}"
        if parent not in catalog:
            return out, f"parent image {parent} does not exist"
        out.append(parent)
        parent = catalog[parent].get("parent")
    return out, ""


def resolve(name: str, catalog: Mapping[str, Mapping[str, Any]]) -> Resolution:
    """Image ``name`` of ``catalog`` (name → spec) resolved."""
    if name not in catalog:
        return Resolution("Invalid", f"image {name} does not exist")
    names, broken = chain(name, catalog)
    if broken:
        return Resolution("Invalid", broken, names[1:])
    out: dict[str, Any] = {}
    labels: dict[str, str] = {}
    settings: dict[str, str] = {}
    taints: dict[tuple[str, str], dict[str, str]] = {}
    daemons: list[str] = []
    agent: dict[str, Any] = {}
    for image in reversed(names):  # root first: nearer images override
        spec = catalog[image]
        for key in SCALARS:
            if spec.get(key) is not None:
                out[key] = spec[key]
        labels.update(spec.get("labels") or {})
        settings.update(spec.get("settings") or {})
        for taint in spec.get("taints") or ():
            taints[(taint["key"], taint.get("effect", ""))] = dict(taint)
        for daemon in spec.get("daemons") or ():
            if daemon not in daemons:
                daemons.append(daemon)
        agent.update({k: v for k, v in (spec.get("agent") or {}).items() if v is not None})
    own = catalog[name]
    out.update(name=name, type=own.get("type", "general"), version=own.get("version"))
    if labels:
        out["labels"] = labels
    if settings:
        out["settings"] = settings
    if taints:
        out["taints"] = list(taints.values())
    if daemons:
        out["daemons"] = daemons
    if agent:
        out["agent"] = agent
    return Resolution("Ready", "", names[1:], out)


def descendants(name: str, catalog: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The images that inherit from ``name`` (directly or not)."""
    return sorted(other for other in catalog if other != name
                  and name in chain(other, catalog)[0][1:])


__all__ = ["Resolution", "chain", "descendants", "resolve"]
