"""What a pod worker gets from its node agent: the node's services and settings.

Theory of operation
-------------------
Every pod worker of a node shares one :class:`WorkerContext`, built by the agent
once its runtime, networking, log store and event recorder exist.  It is the
worker's only way to the node — the API client, the container runtime, the pod
address block — so a worker, its sandbox set-up (:mod:`.podsandbox`) and its
containers (:mod:`.containerrunner`) can be driven by a test with a context of
their own, and hold no reference to the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pincompute.kube.protocol import KubeClient

from .backoff import CRASH_LOOP, BackoffPolicy
from .configsync import ConfigSync
from .containerruntime import ContainerRuntime
from .events import EventRecorder
from .logs import LogStore
from .network import Networking

if TYPE_CHECKING:
    from .worker import PodWorker


@dataclass(slots=True)
class WorkerContext:
    """What a pod worker needs from its node agent."""

    client: KubeClient
    runtime: ContainerRuntime
    networking: Networking
    node_name: str
    node_ip: str
    allocatable: Mapping[str, str]
    backoff: BackoffPolicy = CRASH_LOOP
    probe_scale: float = 1.0
    logs: LogStore | None = None
    events: EventRecorder | None = None
    sidecar_min_grace: float = 2.0
    configs: ConfigSync | None = None
    """Process nodes: keeps config volumes in step with their objects (:mod:`.configsync`)."""
    on_done: Callable[[PodWorker], None] | None = None
    """Called once a worker has nothing left to do (pod gone, sandbox removed)."""
    metrics_url: Callable[[str], str] | None = None
    """Process nodes: a pod's push URL on the node-local metrics endpoint, by pod uid
    (:mod:`.metricsendpoint`), given to its containers as ``PINCOMPUTE_METRICS_URL``."""


__all__ = ["WorkerContext"]
