"""cgroups: the per-pod pids cap (real cgroups, as root)."""

from __future__ import annotations

import os
import uuid

import pytest

from pincompute.node.cgroups import Limits, detect


@pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")
def test_the_pod_pids_cap_holds_for_its_containers_together():
    manager, why = detect(f"test-{uuid.uuid4().hex[:8]}")
    if manager is None or not manager.has_pids:
        pytest.skip(f"no pids controller here: {why}")
    pod = f"pod{uuid.uuid4().hex[:8]}"
    try:
        manager.limit_pids([pod], 7)
        group = manager.create([pod, "main"], Limits(pids=5))
        base = manager.bases.get("pids") or manager.bases["unified"]
        assert (base / pod / "pids.max").read_text().strip() == "7"
        assert (group.dirs.get("pids", group.dirs.get("unified")) / "pids.max"
                ).read_text().strip() == "5"
        group.remove()
    finally:
        manager.remove([])
