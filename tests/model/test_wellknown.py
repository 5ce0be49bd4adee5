"""PinCompute's well-known names, and that nothing else spells them (or Kubernetes' own)."""

from __future__ import annotations

import ast
from pathlib import Path

import pincompute
from pincompute.kube import names
from pincompute.kube import wellknown as kube_names
from pincompute.model import wellknown
from pincompute.model.placement import DEFAULT_TIER, TIERS
from pincompute.scheduler import labels

SRC = Path(pincompute.__file__).parent

# Modules other work is rewriting right now (by path prefix: kubeenv becomes a package);
# their copies move to the wellknown modules when that work lands.  Remove an entry once
# its module imports the names.
PENDING = {
    "node/registration": {"kubernetes.io/os", "kubernetes.io/arch"},
}


def test_keys_are_qualified_names_under_our_prefix() -> None:
    for name in wellknown.__all__:
        value = getattr(wellknown, name)
        if name.endswith(("_LABEL", "_ANNOTATION", "_FINALIZER", "_RESOURCE")):
            assert names.qualified_name(value) == [], name
            assert value.startswith(wellknown.PREFIX), name
    assert names.dns1123_label(wellknown.SYSTEM_NAMESPACE) == []


def test_tiers() -> None:
    assert wellknown.TIERS == (wellknown.RESERVED, wellknown.ONDEMAND, wellknown.PREEMPTIBLE)
    assert wellknown.DEFAULT_TIER in wellknown.TIERS
    assert (TIERS, DEFAULT_TIER) == (wellknown.TIERS, wellknown.DEFAULT_TIER)
    assert set(labels.TIER_PRIORITY) == set(wellknown.TIERS)


def _spelled_names() -> dict[str, str]:
    """Every well-known label, annotation, taint or namespace → the constant naming it."""
    found = {}
    for module in (kube_names, wellknown):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, str) and ("/" in value or value.endswith("-system")
                                           or value.startswith("kube-")):
                found[value] = f"{module.__name__}.{name}"
    return found


def test_nothing_else_spells_a_well_known_name() -> None:
    known = _spelled_names()
    copies = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "wellknown.py":
            continue
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in known
                    and id(node) not in docstrings
                    and not any(rel.startswith(prefix) and node.value in values
                                for prefix, values in PENDING.items())):
                copies.append(f"{rel}:{node.lineno}: {node.value!r} (use {known[node.value]})")
    assert not copies, "\n".join(copies)
