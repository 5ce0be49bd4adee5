"""Grace periods of a graceful delete, as a table (no store needed)."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube.backends.embedded.deletion import (
    DEFAULT_GRACE_SECONDS,
    grace_seconds,
    needs_grace,
)


def pod(*, node: str | None = "n1", phase: str | None = "Running",
        grace: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"spec": spec, "status": {"phase": phase} if phase else {}}


@pytest.mark.parametrize(("obj", "requested", "expected"), [
    (pod(), None, DEFAULT_GRACE_SECONDS),
    (pod(grace=5), None, 5),
    (pod(grace=5), 2, 2),          # the request wins
    (pod(grace=5), 0, 0),
    (pod(grace=-1), None, DEFAULT_GRACE_SECONDS),   # nonsense falls back to the default
    (pod(grace="10"), None, DEFAULT_GRACE_SECONDS),
])
def test_grace_seconds(obj: dict[str, Any], requested: int | None, expected: int) -> None:
    assert grace_seconds(obj, requested) == expected


@pytest.mark.parametrize(("obj", "requested", "expected"), [
    (pod(), None, True),                      # bound and running: the node must stop it
    (pod(node=None), None, False),            # never bound: nothing to stop
    (pod(phase="Succeeded"), None, False),    # finished: nothing to stop
    (pod(phase="Failed"), None, False),
    (pod(phase=None), None, True),
    (pod(), 0, False),                        # grace 0: at once
    (pod(grace=0), None, False),
])
def test_needs_grace(obj: dict[str, Any], requested: int | None, expected: bool) -> None:
    assert needs_grace(obj, requested) is expected
