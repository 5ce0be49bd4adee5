"""Kubernetes' ToleratesTaint, the one rule the controllers share."""

from __future__ import annotations

import pytest

from pincompute.kube.tolerations import tolerates

TAINT = {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": "dedicated", "value": "batch", "effect": "NoSchedule"}, True),
    ({"key": "dedicated", "value": "batch"}, True),                 # any effect
    ({"key": "dedicated", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),                                 # everything
    ({"key": "dedicated", "value": "web"}, False),
    ({"key": "dedicated", "value": "batch", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
    ({"value": "batch"}, False),                                    # empty key needs Exists
])
def test_tolerates(toleration: dict[str, str], expected: bool) -> None:
    assert tolerates(toleration, TAINT) is expected
