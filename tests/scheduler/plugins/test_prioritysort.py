from __future__ import annotations

from pincompute.scheduler.framework import QueuedPod
from pincompute.scheduler.plugins.prioritysort import PrioritySort
from tests.scheduler.support import gang, info, pod


def test_priority_then_group_then_arrival() -> None:
    sort = PrioritySort()
    g = gang("train", 2)

    def qp(name: str, seq: int, first: int | None = None, **kw: object) -> QueuedPod:
        return QueuedPod(info(pod(name, **kw)), seq=seq, first_seq=first or seq)  # type: ignore[arg-type]

    pods = [qp("late-reserved", 9, tier="reserved"), qp("a", 1), qp("m2", 5, 2, **g),
            qp("b", 3), qp("m1", 2, 2, **g), qp("spot", 0, tier="preemptible")]
    order = [q.info.name for q in sorted(pods, key=sort.sort_key)]
    assert order == ["late-reserved", "a", "m1", "m2", "b", "spot"]
