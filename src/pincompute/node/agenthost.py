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

A new node is also made from its pool's node image, resolved by the node-image
controller into the pool's :data:`~pincompute.model.wellknown.RESOLVED_IMAGE_ANNOTATION`
(:func:`image_options`): the image's labels and taints (the pool's own win), the
daemons the node waits for before it is Ready, and its agent settings (health-probe
interval and thresholds, probe scale), which win over the cluster's defaults.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pincompute.kube.protocol import KubeClient
from pincompute.model.wellknown import RESOLVED_IMAGE_ANNOTATION, NodeRuntimeKind

from .agent import NodeAgent, NodeConfig, pool_limits
from .fleet import NodeFleet
from .health import Thresholds
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
        spec = pool.get("spec") or {}
        labels, taints, config = image_options(pool)
        identity = NodeIdentity.from_node_pool(
            dict(pool), name, zone=self.zone, labels={**labels, **(spec.get("labels") or {})},
            taints=[*taints, *(dict(t) for t in spec.get("taints") or ())])
        runtime = spec.get("runtime") or self.runtime
        await self.fleet.add(self._config(identity, runtime=runtime, pool=pool, slot=slot,
                                          image=config))

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
                pool: Mapping[str, Any] | None, slot: str,
                image: Mapping[str, Any] | None = None) -> NodeConfig:
        options: dict[str, Any] = {
            "runtime": runtime,
            "root_dir": self.node_dir / slot if self.node_dir is not None else None,
            "sim_defaults": sim_pool_defaults(dict(pool)) if pool is not None else {},
            **(pool_limits(dict(pool)) if pool is not None else {}),  # pids, default memory
            **self.node_options, **(image or {})}
        return NodeConfig(identity=identity, **options)


def image_options(pool: Mapping[str, Any]
                  ) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]:
    """(labels, taints, NodeConfig fields) of the pool's resolved node image (empty when
    the pool has none, or an unreadable one)."""
    raw = ((pool.get("metadata") or {}).get("annotations") or {}).get(
        RESOLVED_IMAGE_ANNOTATION)
    try:
        image = json.loads(raw) if raw else {}
    except ValueError:
        image = {}
    if not isinstance(image, dict):
        return {}, [], {}
    agent = image.get("agent") or {}
    config: dict[str, Any] = {}
    if agent.get("statusIntervalSeconds"):
        config["status_interval"] = float(agent["statusIntervalSeconds"])
    if agent.get("probeScale"):
        config["probe_scale"] = float(agent["probeScale"])
    thresholds = {field: agent[key] for key, field in (
        ("memoryAvailableBytes", "memory_available_bytes"),
        ("diskFreeRatio", "disk_free_ratio"), ("overloadRatio", "overload_ratio"))
        if agent.get(key) is not None}
    if thresholds:
        config["thresholds"] = Thresholds(**thresholds)
    if image.get("daemons"):
        config["required_daemons"] = tuple(image["daemons"])
    return (dict(image.get("labels") or {}), [dict(t) for t in image.get("taints") or ()],
            config)


__all__ = ["AgentHost", "image_options"]
