from __future__ import annotations

from types import SimpleNamespace

import pytest

from pincompute.scheduler.framework import Registry
from pincompute.scheduler.plugins import in_tree


def test_in_tree_registry_names_every_plugin() -> None:
    names = set(in_tree())
    assert {"NodeResourcesFit", "PodTopologySpread", "Gang", "Preemption", "TierPriority",
            "MostAllocated", "LeastAllocated", "DefaultBinder"} <= names


def test_names_are_unique_and_must_match() -> None:
    reg = Registry({"A": lambda args, handle: SimpleNamespace(name="A")})
    with pytest.raises(ValueError):
        reg.register("A", lambda args, handle: None)
    reg.register("Liar", lambda args, handle: SimpleNamespace(name="Other"))
    with pytest.raises(ValueError):
        reg.create("Liar", {}, None)
    with pytest.raises(ValueError):
        reg.create("Missing", {}, None)
    merged = reg.merge(Registry({"B": lambda args, handle: SimpleNamespace(name="B")}))
    assert set(merged) == {"A", "Liar", "B"} and len(merged) == 3
    with pytest.raises(ValueError):
        reg.merge(Registry({"A": lambda args, handle: None}))
