"""The node layer of embedded clusters: the node agent and the node lifecycle controller.

A node agent (:class:`~.agent.NodeAgent`) is the kubelet of an embedded member
cluster: it registers a Node, renews its Lease, reports conditions, and runs the
pods bound to it through a runtime — ``process`` (real processes, isolated per
pod by uid and cgroup) or ``sim`` (simulated, for scale).  The node lifecycle
controller (:mod:`.nodelifecyclecontroller`) watches the Leases and taints and evicts when a
node goes silent.

Starting a node for an embedded cluster::

    from pincompute.node import NodeAgent, NodeConfig, NodeIdentity

    agent = NodeAgent(client, NodeConfig(
        identity=NodeIdentity(name="zone-a-1-n1", zone="zone-a", node_pool="general",
                              cpu="4", memory="8Gi"),
        runtime="process", root_dir=data_dir / "nodes" / "zone-a-1-n1"))
    await agent.start()          # registered, Ready, running the pods bound to it
    ...
    await agent.stop()           # containers stopped; the Lease is left to expire

Modules, one concept each: :mod:`.containerlifecycle` (the container state machine and
the pod planner), :mod:`.backoff`, :mod:`.probes`, :mod:`.logs`, :mod:`.env`,
:mod:`.network`, :mod:`.volumes`, :mod:`.identity`, :mod:`.cgroups`,
:mod:`.containerruntime` (the runtime interface), :mod:`.processruntime`, :mod:`.simruntime`,
:mod:`.status`, :mod:`.events`, :mod:`.worker` (one pod), :mod:`.registration`,
:mod:`.health`, :mod:`.agent`, :mod:`.api` (the node runtime API and its client),
:mod:`.fleet` (many sim nodes sharing one informer), :mod:`.nodelifecyclecontroller`.
"""

from .agent import NodeAgent, NodeConfig
from .backoff import BackoffPolicy
from .registration import NodeIdentity

__all__ = ["BackoffPolicy", "NodeAgent", "NodeConfig", "NodeIdentity"]
