"""The label and annotation keys the environment writes on its simulated nodes.

Theory of operation
-------------------
Each kwok Node is created with the labels a real kubelet (and a cloud provider's node
pools) would give it, so schedulers and controllers see ordinary nodes, plus the
annotation by which kwok recognises the nodes it must simulate.  The Kubernetes
keys come from ``pincompute.kube.wellknown`` and the node-pool label from
``pincompute.model.wellknown``; only kwok's own keys are spelled here.  The environment
sets no taints.
"""

from __future__ import annotations

__all__ = [
    "ARCH_LABEL", "HOSTNAME_LABEL", "INSTANCE_TYPE_LABEL", "KWOK_ANNOTATION",
    "KWOK_ANNOTATION_VALUE", "KWOK_TYPE_LABEL", "KWOK_TYPE_VALUE", "OS_LABEL", "POOL_LABEL",
    "ZONE_LABEL",
]

# --- Kubernetes' and PinCompute's own, spelled once in their wellknown modules -------------------
from pincompute.kube.wellknown import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    INSTANCE_TYPE_LABEL,
    OS_LABEL,
    ZONE_LABEL,
)
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL

# --- kwok ---------------------------------------------------------------------------------------
#: kwok manages only nodes annotated ``KWOK_ANNOTATION=KWOK_ANNOTATION_VALUE`` (its
#: ``--manage-nodes-with-annotation-selector``), never a node it was not given.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
#: The label ``kwokctl`` puts on its nodes (``type=kwok``); readiness is checked by it.
KWOK_TYPE_LABEL = "type"
KWOK_TYPE_VALUE = "kwok"
