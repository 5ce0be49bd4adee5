"""Kubernetes' well-known names: valid keys, spelled as Kubernetes spells them."""

from __future__ import annotations

from pincompute.kube import names, wellknown


def test_label_and_taint_keys_are_qualified_names() -> None:
    keys = [getattr(wellknown, n) for n in wellknown.__all__
            if n.endswith(("_LABEL", "_TAINT", "_RESOURCE"))]
    assert keys
    for key in keys:
        assert names.qualified_name(key) == [], key
        assert key.split("/")[0].endswith(("kubernetes.io", "nvidia.com")), key


def test_namespaces_are_labels() -> None:
    for name in (wellknown.KUBE_SYSTEM_NAMESPACE, wellknown.NODE_LEASE_NAMESPACE):
        assert names.dns1123_label(name) == []
