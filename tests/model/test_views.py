"""Typed views read a stored dict exactly as the validated model would."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from pincompute.model import registry
from pincompute.model.app import PinAppSpec
from pincompute.model.platform import (
    MemberClusterSpec,
    NodePoolSpec,
    ProjectStatus,
)
from pincompute.model.views import spec_view, status_view, view

from ._support import TEMPLATE, make

POOL = {"instanceType": "m5.xlarge", "capacity": {"cpu": "4", "memory": "8Gi"}, "maxSize": 3,
        "labels": {"team": "a"}, "taints": [{"key": "gpu", "effect": "NoSchedule"}]}

SAMPLES: dict[str, dict[str, Any]] = {
    "NodePool": POOL,
    "PinApp": {"template": TEMPLATE, "replicas": 3,
               "placement": {"zones": ["zone-a", "zone-b"]}},
    "MemberCluster": {"zone": "zone-a", "hardware": [{"name": "nvidia-a100", "count": 8}],
                      "connection": {"type": "Kubeconfig", "kubeconfigSecretRef":
                                     {"name": "zone-a"}}},
    "Project": {"members": [{"user": "ana", "role": "admin"}],
                "quota": {"reserved": {"cpu": "64"}}},
    "PinJob": {"template": TEMPLATE, "completions": 4, "parallelism": 2},
}


def same(seen: Any, expected: Any) -> None:
    """``seen`` (from a view) reads like ``expected`` (from the model), field by field."""
    if isinstance(expected, BaseModel):
        for name in type(expected).model_fields:
            same(getattr(seen, name), getattr(expected, name))
    elif isinstance(expected, list):
        assert isinstance(seen, list) and len(seen) == len(expected)
        for s, e in zip(seen, expected, strict=True):
            same(s, e)
    elif isinstance(expected, dict):
        assert isinstance(seen, dict) and seen.keys() == expected.keys()
        for key in expected:
            same(seen[key], expected[key])
    else:
        assert seen == expected


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_a_view_of_a_stored_spec_reads_like_the_model(kind: str) -> None:
    stored = registry.validate(make(kind, SAMPLES[kind]))
    model = registry.KINDS[kind].spec
    same(spec_view(model, stored), model.model_validate(stored["spec"]))


def test_defaults_nested_views_and_absent_fields() -> None:
    spec = view(NodePoolSpec, POOL)  # not even defaulted by a store
    assert (spec.min_size, spec.desired_size, spec.tier, spec.node_image) == (0, None,
                                                                             "ondemand", None)
    assert spec.capacity.cpu == "4" and spec.capacity.gpu is None
    assert spec.taints is not None and spec.taints[0].key == "gpu"
    assert spec.labels == {"team": "a"}
    conn = spec_view(MemberClusterSpec, {"spec": {"zone": "zone-a"}}).connection
    assert conn.type == "Embedded" and conn.kubeconfig_secret_ref is None
    assert status_view(ProjectStatus, {"metadata": {}}).phase is None


def test_a_required_field_that_is_absent_is_an_error() -> None:
    with pytest.raises(KeyError, match="instanceType"):
        _ = view(NodePoolSpec, {}).instance_type


def test_views_do_not_copy_or_write() -> None:
    data: dict[str, Any] = {"template": TEMPLATE, "replicas": 2}
    spec = view(PinAppSpec, data)
    assert spec.replicas == 2
    data["replicas"] = 5
    assert spec.replicas == 5  # a window onto the dict, not a copy
    with pytest.raises(AttributeError):
        spec.replicas = 3
    assert view(PinAppSpec, data) == spec and view(PinAppSpec, {}) != spec
