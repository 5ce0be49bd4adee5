from __future__ import annotations

import pytest

from pincompute.scheduler.plugins.allocation import (
    fraction_row,
    fractions,
    parse_resources,
    scored_resources,
)
from tests.scheduler.support import info, node, pod, table_of


def test_fractions_include_the_pod_and_clip() -> None:
    t = table_of(node("a", cpu="2", memory="2Gi"), node("none", cpu="0", memory="0"))
    t.add_pod(info(pod("x", cpu="1")), "a", assumed=True)
    p = info(pod("p", cpu="2", memory="1Gi"))
    cpu = fractions(t, p, slice(0, t.n), "cpu")
    assert list(cpu) == [1.0, 1.0]  # 3/2 clipped; nothing allocatable counts as full
    mem = fractions(t, p, slice(0, t.n), "memory")
    assert mem[t.row_of["a"]] == pytest.approx(0.5 + 128 / 2048)
    for r in range(t.n):
        assert fraction_row(t, p, r, "memory") == pytest.approx(mem[r])


def test_resource_weights() -> None:
    assert parse_resources({}) == {"cpu": 1.0, "memory": 1.0}
    res = parse_resources({"resources": {"cpu": 2, "nvidia.com/gpu": 1}})
    assert scored_resources(info(pod("cpu-only")), res) == {"cpu": 2.0}
    assert scored_resources(info(pod("gpu", gpu=1)), res) == res
