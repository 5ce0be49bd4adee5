"""What an environment is made of: cluster specs and their simulated node pools.

Theory of operation
-------------------
A :class:`ClusterSpec` is plain, frozen data — a cluster's name, its role in the
region (one *host*, any number of *members*, DESIGN §1), its zone, the
:class:`NodePool` shapes of its kwok nodes and the controllers its controller
manager runs.  Nothing here starts anything; :class:`~pincompute.kubeenv.KubeEnv`
turns a tuple of specs into running clusters.  :func:`default_clusters` is the shape
the test tier and ``pincompute dev kube-env`` use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

__all__ = ["DEFAULT_CONTROLLERS", "ClusterSpec", "NodePool", "default_clusters"]

#: Controllers each kube-controller-manager runs: garbage collection and namespace
#: deletion (API semantics), service accounts and the root CA bundle (pods can be
#: created), node lifecycle, taint eviction and pod GC (nodes failing), and the
#: workload controllers a member cluster may be handed.
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
    "root-ca-certificate-publisher-controller", "node-lifecycle-controller",
    "taint-eviction-controller", "pod-garbage-collector-controller", "replicaset-controller",
    "deployment-controller", "job-controller", "ttl-after-finished-controller",
)


@dataclass(frozen=True, slots=True)
class NodePool:
    """Simulated nodes of one shape: ``nodes`` kwok Nodes labelled with the pool's name."""

    name: str
    _: KW_ONLY
    nodes: int = 1
    instance_type: str = "kwok.standard-4"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """What one cluster of the environment is: its name, role, zone and node pools."""

    name: str
    _: KW_ONLY
    role: Literal["host", "member"] = "member"
    zone: str | None = None
    node_pools: tuple[NodePool, ...] = ()
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS

    @property
    def node_count(self) -> int:
        return sum(p.nodes for p in self.node_pools)


def default_clusters(*, members: int = 2) -> tuple[ClusterSpec, ...]:
    """One host (no nodes) and ``members`` member clusters ``member-a``… in ``zone-a``…,
    each with a ``general`` pool of two nodes and a ``highmem`` pool of one."""
    if not 0 <= members <= 26:
        raise ValueError("members must be between 0 and 26")
    pools = (NodePool("general", nodes=2, instance_type="kwok.standard-4", cpu="4",
                      memory="16Gi"),
             NodePool("highmem", nodes=1, instance_type="kwok.highmem-8", cpu="8",
                      memory="64Gi"))
    specs = [ClusterSpec("host", role="host")]
    for i in range(members):
        letter = chr(ord("a") + i)
        specs.append(ClusterSpec(f"member-{letter}", role="member", zone=f"zone-{letter}",
                                 node_pools=pools))
    return tuple(specs)
