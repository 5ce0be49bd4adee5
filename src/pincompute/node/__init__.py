"""The node layer of embedded clusters: the node agent and the node lifecycle controller.

A node agent (:class:`~.agent.NodeAgent`) is the kubelet of an embedded member
cluster: it registers a Node, renews its Lease, reports conditions, and runs the
pods bound to it through a container runtime — ``process`` (real processes,
isolated per pod by uid and cgroup) or ``sim`` (simulated, for scale).  The node
lifecycle controller (:mod:`.nodelifecyclecontroller`) watches the Leases and
taints and evicts when a node goes silent.

Starting a node for an embedded cluster::

    from pincompute.node import NodeAgent, NodeConfig, NodeIdentity

    agent = NodeAgent(client, NodeConfig(
        identity=NodeIdentity(name="zone-a-1-n1", zone="zone-a", node_pool="general",
                              cpu="4", memory="8Gi"),
        runtime="process", root_dir=data_dir / "nodes" / "zone-a-1-n1"))
    await agent.start()          # registered, Ready, running the pods bound to it
    ...
    await agent.stop()           # containers stopped; the Lease is left to expire

Modules, one concept each:

* one pod: :mod:`.worker` (orchestrates; a :mod:`.syncloop`), :mod:`.podlifecycle`
  (the pod's states as a table, grace periods), :mod:`.containerlifecycle` (the
  container state machine and the pod planner), :mod:`.podsandbox` (sandbox
  set-up and teardown), :mod:`.containerrunner` (container start, stop, exits,
  probes), :mod:`.workercontext` (what a worker gets from its agent),
  :mod:`.status`, :mod:`.events`, :mod:`.backoff`, :mod:`.probes`, :mod:`.logs`,
  :mod:`.env`;
* the sandbox's parts: :mod:`.network` (with :mod:`.blockregistry`, the machine's
  address blocks, and :mod:`.bindguard`, each pod bound to its own address, on
  :mod:`.bpf`), :mod:`.volumes`, :mod:`.identity`, :mod:`.cgroups`, :mod:`.fsguard`
  (file primitives that never follow a tenant's link);
* container runtimes: :mod:`.containerruntime` (the interface),
  :mod:`.processruntime`, :mod:`.simruntime`;
* the node: :mod:`.agent`, :mod:`.registration`, :mod:`.health`, :mod:`.eviction`
  (volume ``sizeLimit`` and the disk reserve), :mod:`.fleet`
  (many sim nodes sharing one informer), :mod:`.runtimeapi` (the node runtime API:
  protocol, server, exec sessions, client) with :mod:`.terminal` (the pty of an
  interactive exec);
* the control plane's side: :mod:`.nodelifecyclecontroller`.

The names below are loaded on first use, so importing a light module of this
package (``pincompute.node.runtimeapi``, the client of the node runtime API) does
not load the agent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent import NodeAgent, NodeConfig
    from .backoff import BackoffPolicy
    from .registration import NodeIdentity

_HOMES = {"NodeAgent": "agent", "NodeConfig": "agent", "BackoffPolicy": "backoff",
          "NodeIdentity": "registration"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = ["BackoffPolicy", "NodeAgent", "NodeConfig", "NodeIdentity"]
