"""A fleet: many node agents in one process sharing one pod watch (sim scale).

Theory of operation
-------------------
One agent watching its own pods costs the API one watch with a field selector,
which is right for a handful of process nodes.  At thousands of sim nodes in one
process it is wasteful twice over: the store evaluates every pod event against
thousands of watchers' selectors, and every agent keeps a cache of its own.  A
:class:`NodeFleet` runs its agents with ``watch_pods=False`` and one list/watch of
all pods, and routes each event to the agent named in the pod's
``spec.nodeName`` (a dict lookup).  Pods bound to nodes outside the fleet are
ignored.

The fleet keeps no cache beyond what the pod workers hold, and what they hold is
*trimmed* (:func:`trim`): the pod's metadata that matters to a node, its spec,
and the parts of its status a worker reads (phase, address, start time,
conditions, restart counts) — and *interned* (the process-wide :class:`Interner` of
:mod:`pincompute.kube.intern`, which the scheduler shares): condition lists, restart
counts, container specs, volumes, tolerations, labels and annotations equal to another
pod's are that pod's objects, and so are strings of few values (namespace, node name,
phase, start time: ``intern_str``).  A decoded pod is ~10 KB of Python objects, its status
nearly half of it and its containers most of the rest; at 120,000 pods that is
the difference between fitting the memory target or not.  Workers only ever
read pods, and write status through the API, so nothing is lost.

The loop is the informer's :class:`~pincompute.runtime.reflector.Reflector`
(list, watch from the list's resourceVersion, re-watch when a stream ends,
relist on Gone, back off on errors); the fleet is its sink, minus the cache and
indexes: each listed page is routed as it arrives, and the end of a relist
synthesises deletes for pods that vanished meanwhile.  Agents start with
bounded concurrency (registration is a few API calls each) and stop together.

Membership can change while the fleet runs (the node provisioner grows and
shrinks pools through it): :meth:`NodeFleet.add` starts an agent and then routes
the pods already bound to its node (one list by ``spec.nodeName``, an indexed
read), since the shared watch dropped their events while the node had no agent;
:meth:`NodeFleet.remove` stops one.  Agents join exactly as single agents do,
readiness gate included (:mod:`.registration`): no pod is scheduled to a fleet
node before its health probes pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from pincompute.kube.intern import Interner, intern_str
from pincompute.kube.intern import shared as shared_interner
from pincompute.kube.protocol import DELETED, KubeClient, WatchEvent
from pincompute.kube.resource import PODS
from pincompute.runtime.logging import get_logger
from pincompute.runtime.reflector import Reflector

from .agent import NodeAgent, NodeConfig

_log = get_logger(__name__)

_META = ("name", "namespace", "uid", "labels", "annotations", "ownerReferences",
         "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion")
_STATUS = ("phase", "podIP", "startTime", "conditions")
_SHARED_SPEC = ("containers", "volumes", "tolerations", "nodeSelector", "affinity")
_SHARED_META = ("labels", "annotations")
# Equal between pods: condition lists (pods Ready in the same second), restart counts
# (every pod that never restarted), phases and start times (strings, interned).
_SHARED_STATUS = ("conditions", "containerStatuses", "phase", "startTime")


def trim(pod: Mapping[str, Any], intern: Interner | None = None) -> dict[str, Any]:
    """The part of a pod a node agent reads (see the module docstring)."""
    md = pod.get("metadata") or {}
    status = pod.get("status") or {}
    kept = {k: status[k] for k in _STATUS if k in status}
    if status.get("containerStatuses"):
        kept["containerStatuses"] = [{"name": c.get("name"),
                                      "restartCount": c.get("restartCount", 0)}
                                     for c in status["containerStatuses"]]
    meta = {k: md[k] for k in _META if k in md}
    spec = pod.get("spec") or {}
    if intern is not None:
        for k in _SHARED_META:
            if k in meta:
                meta[k] = intern(meta[k])
        if "namespace" in meta:
            meta["namespace"] = intern_str(meta["namespace"])
        spec = {k: intern(v) if k in _SHARED_SPEC else intern_str(v) for k, v in spec.items()}
        for k in _SHARED_STATUS:
            if k in kept:
                kept[k] = intern(kept[k]) if k != "phase" and k != "startTime" \
                    else intern_str(kept[k])
    return {"apiVersion": intern_str(pod.get("apiVersion", "v1")),
            "kind": intern_str(pod.get("kind", "Pod")), "metadata": meta, "spec": spec,
            "status": kept}


class NodeFleet:
    def __init__(self, client: KubeClient, configs: Iterable[NodeConfig], *,
                 page_size: int = 1000) -> None:
        self.client = client
        self.agents: dict[str, NodeAgent] = {
            c.name: NodeAgent(client, c, watch_pods=False) for c in configs}
        self.page_size = page_size
        self._known: dict[str, str] = {}
        """uid → node of every routed pod (to synthesise deletes after a relist)."""
        self._on_node: dict[str, set[str]] = {}
        """node → the uids ``_known`` maps to it (a removed node's, without a scan)."""
        self._seen: set[str] = set()
        """uids listed by the list in progress."""
        # Shared with the process's other consumers of pods (the scheduler's cache).
        self._intern = shared_interner()
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self.relists = 0
        self._reflector = Reflector(client, PODS, self, page_size=page_size,
                                    watch_timeout=None, log=_log.bind(fleet="pods"))

    def _route(self, kind: str, pod: Mapping[str, Any]) -> None:
        node: str = (pod.get("spec") or {}).get("nodeName") or ""
        agent = self.agents.get(node) if node else None
        if agent is None:
            return
        uid = pod["metadata"]["uid"]
        if kind == "delete":
            self._forget(uid)
        else:
            was = self._known.get(uid)
            if was != agent.name:
                if was is not None:
                    self._forget(uid)
                self._known[uid] = agent.name  # the agent's string, not one per pod
                self._on_node.setdefault(agent.name, set()).add(uid)
        agent.pod_event(kind, trim(pod, self._intern))

    def _forget(self, uid: str) -> str | None:
        node = self._known.pop(uid, None)
        if node is not None:
            uids = self._on_node.get(node)
            if uids is not None:
                uids.discard(uid)
                if not uids:
                    del self._on_node[node]
        return node

    # -- the reflector's sink --

    def begin_list(self) -> None:
        self._seen = set()

    def list_page(self, items: list[dict[str, Any]]) -> None:
        seen, known = self._seen, self._known
        for pod in items:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            self._route("update" if uid in known else "add", pod)

    def end_list(self, resource_version: str) -> None:
        seen, self._seen = self._seen, set()
        for uid in [u for u in self._known if u not in seen]:
            node = self._forget(uid)
            agent = self.agents.get(node) if node is not None else None
            if agent is not None and uid in agent.workers:
                agent.workers[uid].delete()
        self.relists += 1
        self._synced.set()

    def on_event(self, event: WatchEvent) -> None:
        pod = event.object
        self._route("delete" if event.type == DELETED else "update"
                    if pod["metadata"]["uid"] in self._known else "add", pod)

    # -- lifecycle --

    async def start(self, *, concurrency: int = 64) -> None:
        limit = asyncio.Semaphore(concurrency)

        async def one(agent: NodeAgent) -> None:
            async with limit:
                await agent.start()

        await asyncio.gather(*(one(a) for a in self.agents.values()))
        self._task = asyncio.create_task(self._reflector.run(), name="fleet pod watch")
        synced = asyncio.ensure_future(self._synced.wait())
        await asyncio.wait((synced, self._task), return_when=asyncio.FIRST_COMPLETED)
        synced.cancel()
        if self._task.done():
            self._task.result()

    async def add(self, config: NodeConfig) -> NodeAgent:
        """Start one more agent in the running fleet; returns it once it has started."""
        if self._task is None:
            raise RuntimeError("start the fleet before adding nodes to it")
        if config.name in self.agents:
            raise ValueError(f"node {config.name} is already in the fleet")
        agent = NodeAgent(self.client, config, watch_pods=False)
        try:
            await agent.start()
        except BaseException:
            with contextlib.suppress(Exception):  # the start's own error is the one to raise
                await agent.stop()
            raise
        self.agents[agent.name] = agent
        # Pods bound before the agent joined were dropped by _route: catch up.
        page = await self.client.list(PODS, field_selector=f"spec.nodeName={agent.name}")
        for pod in page.items:
            self._route("update" if pod["metadata"]["uid"] in self._known else "add", pod)
        return agent

    async def remove(self, name: str) -> None:
        """Stop one agent and forget it (its Node and pods are left as they are)."""
        agent = self.agents.pop(name, None)
        if agent is None:
            return
        for uid in self._on_node.pop(name, ()):
            self._known.pop(uid, None)
        await agent.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        results = await asyncio.gather(*(a.stop() for a in self.agents.values()),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r

    async def wait_idle(self) -> None:
        for agent in self.agents.values():
            await agent.wait_idle()

    def pod_count(self) -> int:
        return sum(len(a.workers) for a in self.agents.values())


__all__ = ["Interner", "NodeFleet", "trim"]
