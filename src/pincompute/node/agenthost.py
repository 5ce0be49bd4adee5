"""The node agents of one embedded member cluster, started and stopped by name.

Theory of operation
-------------------
The node provisioner (:mod:`pincompute.member.provisioner`) decides which nodes a
cluster's NodePools should have; this module is how those decisions become
running :class:`~.agent.NodeAgent` objects of this process.  Keeping the two apart
keeps the layers straight — ``member`` decides over API objects, ``node`` owns the
agents — and the assembly (:mod:`pincompute.controllers`) hands an
:class:`AgentHost` to the provisioner, which only knows the small
:class:`~pincompute.member.provisioner.NodeHost` protocol it implements.

Every agent of the cluster lives in one :class:`~.fleet.NodeFleet` (one shared pod
watch, started on first use).  A node is built either from its pool's spec (a new
node) or from the identity its registered Node object carries (re-adoption after a
restart: the node keeps what it was created with, whatever the pool says now).
Each node keeps its directories under ``<node_dir>/<slot>``, where the provisioner
names the slot (``<pool>-<index>``), so a re-adopted node finds its old ones.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pincompute.kube.protocol import KubeClient
from pincompute.model.wellknown import NodeRuntimeKind

from .agent import NodeAgent, NodeConfig, pool_limits
from .fleet import NodeFleet
from .registration import NodeIdentity, registered_runtime
from .simruntime import pool_defaults as sim_pool_defaults


class AgentHost:
    """Runs the node agents of one member cluster (implements the provisioner's NodeHost)."""

    def __init__(self, client: KubeClient, *, zone: str = "",
                 runtime: NodeRuntimeKind = "process", node_dir: Path | None = None,
                 node_options: Mapping[str, Any] | None = None) -> None:
        self.zone = zone
        """The zone of every node (label ``topology.kubernetes.io/zone``)."""
        self.runtime: NodeRuntimeKind = runtime
        """The runtime of nodes whose pool names none."""
        self.node_dir = node_dir
        """Where nodes keep their directories (required for the process runtime)."""
        self.node_options = dict(node_options or {})
        """Further :class:`~.agent.NodeConfig` fields for every node."""
        self.fleet = NodeFleet(client, ())
        self._started = False
        self._lock = asyncio.Lock()

    @property
    def agents(self) -> Mapping[str, NodeAgent]:
        """The running agents, by node name."""
        return self.fleet.agents

    def pool_of(self, name: str) -> str | None:
        """The pool of the running agent ``name``."""
        agent = self.fleet.agents.get(name)
        return agent.config.identity.node_pool if agent is not None else None

    @staticmethod
    def registered(node: Mapping[str, Any]) -> bool:
        """Whether a Node object was registered by a node agent (so one can adopt it)."""
        return registered_runtime(node) is not None

    async def start(self) -> None:
        """Start the shared pod watch (idempotent)."""
        async with self._lock:
            if not self._started:
                await self.fleet.start()
                self._started = True

    async def add_new(self, pool: Mapping[str, Any], name: str, *, slot: str) -> None:
        """Start a new node ``name`` of ``pool``, made from the pool's spec."""
        identity = NodeIdentity.from_node_pool(dict(pool), name, zone=self.zone)
        runtime = (pool.get("spec") or {}).get("runtime") or self.runtime
        await self.fleet.add(self._config(identity, runtime=runtime, pool=pool, slot=slot))

    async def adopt(self, node: Mapping[str, Any], pool: Mapping[str, Any] | None, *,
                    slot: str) -> None:
        """Start an agent again for a registered Node, with the identity it carries."""
        identity = NodeIdentity.from_node(dict(node))
        runtime = registered_runtime(dict(node)) or self.runtime
        await self.fleet.add(self._config(identity, runtime=runtime, pool=pool, slot=slot))

    async def remove(self, name: str) -> None:
        """Stop node ``name``'s agent (its Node and pods are left as they are)."""
        await self.fleet.remove(name)

    async def forget(self, slot: str) -> None:
        """Delete a removed node's directories."""
        if self.node_dir is not None:
            await asyncio.to_thread(shutil.rmtree, self.node_dir / slot, True)

    async def close(self) -> None:
        """Stop every agent (their Nodes stay, to be re-adopted by the next start)."""
        await self.fleet.stop()
        self._started = False

    def _config(self, identity: NodeIdentity, *, runtime: str,
                pool: Mapping[str, Any] | None, slot: str) -> NodeConfig:
        options: dict[str, Any] = {
            "runtime": runtime,
            "root_dir": self.node_dir / slot if self.node_dir is not None else None,
            "sim_defaults": sim_pool_defaults(dict(pool)) if pool is not None else {},
            **(pool_limits(dict(pool)) if pool is not None else {}),  # pids, default memory
            **self.node_options}
        return NodeConfig(identity=identity, **options)


__all__ = ["AgentHost"]
