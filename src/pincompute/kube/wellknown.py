"""Kubernetes' well-known names: labels, taints, namespaces, conditions, spelled once.

Theory of operation
-------------------
Kubernetes fixes the spelling of the labels, taints and names its components
agree on (``k8s.io/api/core/v1``'s ``well_known_labels.go`` and
``well_known_taints.go``, the recommended ``app.kubernetes.io/*`` labels, the
pod condition types the scheduler writes).  PinCompute's components meet in API
objects, not calls, so they must spell these the same way; this module is the
one place they are spelled, and every package imports them from here (never from
another controller package).  PinCompute's own names (``pincompute.io/*``,
tiers, the system namespace) live in :mod:`pincompute.model.wellknown`.

Plain ``str`` constants only: importing this module costs nothing.
"""

from __future__ import annotations

from typing import Final

# --- node labels (well_known_labels.go) ---------------------------------------------------------

HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
OS_LABEL: Final = "kubernetes.io/os"
ARCH_LABEL: Final = "kubernetes.io/arch"
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
REGION_LABEL: Final = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL: Final = "node.kubernetes.io/instance-type"

# --- recommended labels (app.kubernetes.io) -----------------------------------------------------

APP_NAME_LABEL: Final = "app.kubernetes.io/name"
APP_PART_OF_LABEL: Final = "app.kubernetes.io/part-of"

# --- node taints (well_known_taints.go) ---------------------------------------------------------

NOT_READY_TAINT: Final = "node.kubernetes.io/not-ready"
"""The node's Ready condition is False (the node lifecycle controller; a joining node)."""
UNREACHABLE_TAINT: Final = "node.kubernetes.io/unreachable"
"""The node's Ready condition is Unknown: its heartbeat stopped."""
UNSCHEDULABLE_TAINT: Final = "node.kubernetes.io/unschedulable"
"""The node is cordoned (``spec.unschedulable``); tolerating it lets a pod land anyway."""
DISK_PRESSURE_TAINT: Final = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE_TAINT: Final = "node.kubernetes.io/memory-pressure"
PID_PRESSURE_TAINT: Final = "node.kubernetes.io/pid-pressure"
NETWORK_UNAVAILABLE_TAINT: Final = "node.kubernetes.io/network-unavailable"

# --- namespaces ---------------------------------------------------------------------------------

DEFAULT_NAMESPACE: Final = "default"
KUBE_SYSTEM_NAMESPACE: Final = "kube-system"
KUBE_PUBLIC_NAMESPACE: Final = "kube-public"
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
"""Where each node's heartbeat Lease lives (named after the node)."""

# --- resources ----------------------------------------------------------------------------------

GPU_RESOURCE: Final = "nvidia.com/gpu"
"""The extended resource GPUs are requested and advertised as (NVIDIA's device plugin name)."""

# --- pod conditions and reasons, as kube-scheduler writes them ----------------------------------

POD_SCHEDULED: Final = "PodScheduled"
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_SCHEDULER_ERROR: Final = "SchedulerError"
DISRUPTION_TARGET: Final = "DisruptionTarget"
REASON_PREEMPTED: Final = "PreemptionByScheduler"

__all__ = [
    "APP_NAME_LABEL",
    "APP_PART_OF_LABEL",
    "ARCH_LABEL",
    "DEFAULT_NAMESPACE",
    "DISK_PRESSURE_TAINT",
    "DISRUPTION_TARGET",
    "GPU_RESOURCE",
    "HOSTNAME_LABEL",
    "INSTANCE_TYPE_LABEL",
    "KUBE_PUBLIC_NAMESPACE",
    "KUBE_SYSTEM_NAMESPACE",
    "MEMORY_PRESSURE_TAINT",
    "NETWORK_UNAVAILABLE_TAINT",
    "NODE_LEASE_NAMESPACE",
    "NOT_READY_TAINT",
    "OS_LABEL",
    "PID_PRESSURE_TAINT",
    "POD_SCHEDULED",
    "REASON_PREEMPTED",
    "REASON_SCHEDULER_ERROR",
    "REASON_UNSCHEDULABLE",
    "REGION_LABEL",
    "UNREACHABLE_TAINT",
    "UNSCHEDULABLE_TAINT",
    "ZONE_LABEL",
]
