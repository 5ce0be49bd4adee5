"""The label and annotation keys the environment writes on its simulated nodes.

Theory of operation
-------------------
Each kwok Node is created with the labels a real kubelet (and a cloud provider's node
pools) would give it, so schedulers and controllers see ordinary nodes, plus the
annotation by which kwok recognises the nodes it must simulate.  The keys are spelled
only here.  (The Kubernetes ones belong to ``pincompute.kube``'s well-known names, the
node-pool label to PinCompute's own names in ``model``; they move there once those
modules exist.)  The environment sets no taints.
"""

from __future__ import annotations

__all__ = [
    "ARCH_LABEL", "HOSTNAME_LABEL", "INSTANCE_TYPE_LABEL", "KWOK_ANNOTATION",
    "KWOK_ANNOTATION_VALUE", "KWOK_TYPE_LABEL", "KWOK_TYPE_VALUE", "OS_LABEL", "POOL_LABEL",
    "ZONE_LABEL",
]

# --- Kubernetes (k8s.io/api/core/v1 well_known_labels.go) ---------------------------------------
ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
HOSTNAME_LABEL = "kubernetes.io/hostname"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"

# --- kwok ---------------------------------------------------------------------------------------
#: kwok manages only nodes annotated ``KWOK_ANNOTATION=KWOK_ANNOTATION_VALUE`` (its
#: ``--manage-nodes-with-annotation-selector``), never a node it was not given.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
#: The label ``kwokctl`` puts on its nodes (``type=kwok``); readiness is checked by it.
KWOK_TYPE_LABEL = "type"
KWOK_TYPE_VALUE = "kwok"

# --- PinCompute ---------------------------------------------------------------------------------
POOL_LABEL = "pincompute.io/node-pool"
