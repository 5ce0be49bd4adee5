"""What one drain pass remembers of the apps' budgets (refusals only), and how it works on a
node's apps side by side."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pincompute.model.disruption import Decision
from pincompute.model.wellknown import APP_UID_LABEL
from pincompute.ops.draining import PassMemo, evict_pods


def test_an_eviction_that_used_the_last_room_refuses_the_rest_of_the_pass() -> None:
    memo = PassMemo()
    memo.allowed("uid-a", 2, app="ns/a", pod="a-0")  # room left: the API is asked again
    assert "uid-a" not in memo.refused
    memo.allowed("uid-a", 0, app="ns/a", pod="a-1")
    assert memo.refused["uid-a"] == ("PinApp ns/a: its budget has no room until pod a-1 is "
                                     "replaced", "ns/a")


def test_no_budget_remembers_nothing_and_a_refusal_is_kept() -> None:
    memo = PassMemo()
    memo.allowed("uid-c", None, app="", pod="c-0")  # no budget: the API is asked each time
    assert "uid-c" not in memo.refused
    memo.refuse("uid-d", "no", "ns/d")
    assert memo.refused["uid-d"] == ("no", "ns/d")


class SlowDeletes:
    """A client whose deletes each take 50 ms (a commit under load), counting the most at
    once."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.running = 0
        self.most = 0

    async def delete(self, resource: object, name: str, **_: object) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        self.deleted.append(name)


def app_pod(name: str, app: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "labels": {APP_UID_LABEL: app}}, "spec": {"nodeName": "n1"}}


async def test_a_nodes_apps_are_evicted_side_by_side_and_each_app_in_turn() -> None:
    client = SlowDeletes()
    pods = [app_pod(f"p{i}", f"app-{i}") for i in range(20)]
    # Three pods of one app whose budget has room for one: the first goes, the next two
    # are refused without asking again.
    pods += [app_pod(f"x{i}", "app-x") for i in range(3)]
    asked: list[str] = []

    def decide(pod: Mapping[str, Any]) -> Decision:
        asked.append(pod["metadata"]["name"])
        room = 0 if pod["metadata"]["labels"][APP_UID_LABEL] == "app-x" else 5
        return Decision(True, "WithinBudget", app=f"ns/{pod['metadata']['labels'][APP_UID_LABEL]}",
                        room=room)

    started = time.monotonic()
    result = await evict_pods(client, pods, decide=decide)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert sorted(client.deleted) == sorted([f"p{i}" for i in range(20)] + ["x0"])
    assert client.most == 21  # every app at once (one after the other: 21 x 50 ms)
    assert elapsed < 0.5
    assert "x1" not in asked and "x2" not in asked
    assert result.evicted == [f"ns/p{i}" for i in range(20)] + ["ns/x0"]  # the pods' order
    assert result.blocked_by == ["ns/app-x"] and len(result.blocked) == 2
    assert result.remaining == 23


async def test_a_limit_counts_evictions_across_the_apps() -> None:
    client = SlowDeletes()
    pods = [app_pod(f"p{i}", f"app-{i}") for i in range(10)]
    result = await evict_pods(client, pods, limit=4,  # type: ignore[arg-type]
                              decide=lambda pod: Decision(True, "WithinBudget"))
    assert len(client.deleted) == 4 and len(result.evicted) == 4
