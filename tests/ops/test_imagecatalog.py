"""Node-image inheritance (pure)."""

from __future__ import annotations

from pincompute.ops.imagecatalog import descendants, resolve

CATALOG = {
    "base": {"version": "1", "baseOS": "ubuntu-24.04", "runtimeVersion": "1.7",
             "labels": {"os": "ubuntu", "team": "infra"}, "settings": {"kernel": "6.1"},
             "taints": [{"key": "x", "effect": "NoSchedule", "value": "a"}],
             "daemons": ["pincompute-system/log-"],
             "agent": {"statusIntervalSeconds": 10, "probeScale": 1}},
    "gpu": {"version": "2", "type": "gpu", "parent": "base", "runtimeVersion": "1.8",
            "labels": {"team": "ml", "accel": "nvidia"},
            "taints": [{"key": "x", "effect": "NoSchedule", "value": "b"},
                       {"key": "gpu", "effect": "NoSchedule"}],
            "daemons": ["pincompute-system/log-", "pincompute-system/dcgm-"],
            "agent": {"probeScale": 2}},
    "gpu-a100": {"version": "3", "type": "gpu", "parent": "gpu", "image": "ami-123"},
    "orphan": {"version": "1", "parent": "missing"},
    "loop-a": {"version": "1", "parent": "loop-b"},
    "loop-b": {"version": "1", "parent": "loop-a"},
}


def test_a_child_overrides_its_ancestors_nearest_first() -> None:
    r = resolve("gpu-a100", CATALOG)
    assert r.phase == "Ready" and r.ancestors == ["gpu", "base"]
    out = r.resolved
    assert out is not None
    assert (out["name"], out["type"], out["version"], out["image"]) == \
        ("gpu-a100", "gpu", "3", "ami-123")
    assert (out["baseOS"], out["runtimeVersion"]) == ("ubuntu-24.04", "1.8")
    assert out["labels"] == {"os": "ubuntu", "team": "ml", "accel": "nvidia"}
    assert out["settings"] == {"kernel": "6.1"}
    assert out["taints"] == [{"key": "x", "effect": "NoSchedule", "value": "b"},
                             {"key": "gpu", "effect": "NoSchedule"}]
    assert out["daemons"] == ["pincompute-system/log-", "pincompute-system/dcgm-"]
    assert out["agent"] == {"statusIntervalSeconds": 10, "probeScale": 2}


def test_missing_parents_and_cycles_are_invalid_with_the_reason() -> None:
    orphan = resolve("orphan", CATALOG)
    assert orphan.phase == "Invalid" and "parent image missing does not exist" in orphan.message
    loop = resolve("loop-a", CATALOG)
    assert loop.phase == "Invalid" and "cycle: loop-a → loop-b → loop-a" in loop.message
    assert descendants("base", CATALOG) == ["gpu", "gpu-a100"]
    assert descendants("gpu-a100", CATALOG) == []
