"""Real Kubernetes clusters on loopback ports, for the real-cluster test tier and for developers.

Theory of operation
-------------------
A :class:`KubeEnv` is a handful of real Kubernetes control planes (one *host* and
any number of *member* clusters, DESIGN §1) made of the upstream binaries that
``tools/build-kube.sh`` builds from pinned Go modules.  Nothing is simulated but
the nodes.  Each cluster is four processes, each in its own process group and
each logging to its own file::

    etcd ──> kube-apiserver ──> kube-controller-manager   (GC, namespaces, service
                           └──> kwok                        accounts, node lifecycle…)
                                 (simulated nodes: heartbeats, pod phases)

The modules, in the order an environment uses them:

- :mod:`.specs` — what to run: :class:`ClusterSpec`, :class:`NodePool`,
  :func:`default_clusters`;
- :mod:`.binaries` — finding (or building) the binaries: :func:`find_binaries`;
- :mod:`.workdir` — the work directory, its owner record, :func:`sweep_stale`;
- :mod:`.pki` — certificate authority, serving certificates, tokens, kubeconfigs;
- :mod:`.components` — the four binaries' command lines and stop order;
- :mod:`.kwok` — kwok's stages (``kwok-stages.yaml``, package data) and its Nodes;
- :mod:`.wellknown` — the label and annotation keys put on those Nodes;
- :mod:`.processes` — supervised processes, readiness waits, stopping;
- :mod:`.cluster` — one cluster: its files, start-up sequence and :class:`KubeCluster`;
- :mod:`.environment` — :class:`KubeEnv`, all clusters started and stopped together;
- :mod:`.threaded` — :class:`KubeEnvThread`, a KubeEnv on a loop of its own;
- :mod:`.errors` — :class:`KubeEnvError` and its kinds.

*Footprint.*  The machine running the suite may have two cores, so the control
planes are trimmed (see :mod:`.components`).  Measured on two cores (Kubernetes
1.37): the default three clusters (six kwok nodes) are ready in 4 to 5 s and stop in
about a second; idle, their eleven processes hold about 1.3 GB of memory (three API
servers at ~270 MB each) and use about 4 % of one core.

*Teardown.*  :meth:`KubeEnv.down` sends SIGTERM to every process group, waits,
SIGKILLs stragglers and reaps them, then removes the work directory unless
``keep`` is set.  On Linux every child also gets ``PR_SET_PDEATHSIG`` (SIGKILL), so
even a ``kill -9`` of the Python process leaves no control plane behind; work
directories orphaned that way are swept by the next start (:func:`sweep_stale`).

*Use.*  Asynchronous code writes ``async with KubeEnv.start(...) as env`` (or
``env = await KubeEnv.start(...)`` and later ``await env.down()``); synchronous code,
such as a session-scoped pytest fixture that must outlive many event loops, uses
:class:`KubeEnvThread`, which runs the environment on its own loop in a thread.
Each :class:`KubeCluster` exposes its name, role, zone, server URL, admin token,
kubeconfig path and ``client()`` (a :mod:`pincompute.kube.backends.kubernetes`
client for that kubeconfig).
"""

from __future__ import annotations

from .binaries import BINARIES, KUBE_BIN_ENV, find_binaries
from .cluster import KubeCluster
from .environment import KubeEnv
from .errors import KubeBinariesMissing, KubeEnvError, KubeEnvStartupError
from .specs import ClusterSpec, NodePool, default_clusters
from .threaded import KubeEnvThread
from .wellknown import INSTANCE_TYPE_LABEL, KWOK_ANNOTATION, POOL_LABEL, ZONE_LABEL
from .workdir import sweep_stale

__all__ = [
    "BINARIES", "INSTANCE_TYPE_LABEL", "KUBE_BIN_ENV", "KWOK_ANNOTATION", "POOL_LABEL",
    "ZONE_LABEL", "ClusterSpec", "KubeBinariesMissing", "KubeCluster", "KubeEnv",
    "KubeEnvError", "KubeEnvStartupError", "KubeEnvThread", "NodePool", "default_clusters",
    "find_binaries", "sweep_stale",
]
