from __future__ import annotations

from types import SimpleNamespace

from pincompute.kube.errors import Conflict
from pincompute.scheduler.framework import Code, CycleState
from pincompute.scheduler.plugins.defaultbinder import DefaultBinder
from tests.scheduler.support import info, pod


class FakeBinder:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.bound: list[tuple[str, str]] = []

    async def bind(self, p: object, node: str) -> None:
        if self.fail:
            raise Conflict("stale")
        self.bound.append((p.name, node))  # type: ignore[attr-defined]


async def test_binds_through_the_binder_and_reports_refusals() -> None:
    ok = FakeBinder()
    plugin = DefaultBinder(SimpleNamespace(binder=ok))
    assert (await plugin.bind(CycleState(), info(pod("p")), "n1")).ok
    assert ok.bound == [("p", "n1")]
    refused = DefaultBinder(SimpleNamespace(binder=FakeBinder(fail=True)))
    status = await refused.bind(CycleState(), info(pod("p")), "n1")
    assert status.code == Code.ERROR and "stale" in status.message
    missing = DefaultBinder(SimpleNamespace(binder=None))
    assert (await missing.bind(CycleState(), info(pod("p")), "n1")).code == Code.ERROR
