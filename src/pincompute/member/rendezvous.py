"""How the pods of a training job find each other: ranks, TF_CONFIG, and the peers' addresses.

Theory of operation
-------------------
A distributed training job's processes meet at a *rendezvous*: PyTorch's
workers connect to ``MASTER_ADDR:MASTER_PORT`` and know their ``RANK`` in a
world of ``WORLD_SIZE``; TensorFlow's read ``TF_CONFIG``, the address of every
member of the cluster and their own task.  Ranks and tasks are known when the
pods are made, the addresses are not: a pod gets its IP only when a node sets
up its sandbox (an embedded node hands out a ``127.x`` address; a real cluster's
CNI one from the node's pod range), and every pod of the gang is created before
any is placed (the scheduler places all of them or none).

So the addresses travel the way Kubernetes already lets a value reach a
container after the pod was written — a ConfigMap key read when the container
*starts* (``valueFrom.configMapKeyRef``), which is how both the node agent and
the kubelet behave:

* the pods are created with ``MASTER_ADDR`` (PyTorch) or the cluster spec inside
  ``TF_CONFIG`` (TensorFlow, through ``$(PINCOMPUTE_TF_CLUSTER)`` expansion) taken
  from the job's rendezvous ConfigMap, ``<job>-rendezvous`` (:func:`configmap_name`);
  the coordinator itself (PyTorch's rank 0) reads its own ``status.podIP``;
* until the key exists, the node cannot build the container's environment and
  retries with its back-off (``CreateContainerConfigError``, as the kubelet does:
  a container waits at most one back-off period — 10 s by default — after the
  addresses are known);
* the operator writes the key as soon as the addresses it needs are in the
  pods' status (:func:`rendezvous_data`): PyTorch needs only the coordinator's,
  TensorFlow every member's.

Why not the alternatives: stable per-pod host names need a resolver every
container uses, and the process runtime has neither cluster DNS nor a per-pod
``/etc/hosts`` (no mount namespace); creating the workers only once the master
has an address would break gang scheduling, which places nobody until every
member exists; a discovery file on a volume would need every training script to
poll it.  A ConfigMap key read at start is the same on both backends and needs
nothing of the training program but to retry its first connection.

The key names carry the group's *attempt* (``MASTER_ADDR.2``): when the operator
restarts the gang, the new pods read keys no previous pod could have written, so
no container ever starts with a dead peer's address.  The training processes
still retry connecting: a peer may not be listening yet.

Everything here is a pure function of the spec; tests read it without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pincompute.model.training import DEFAULT_PORTS, ROLE_NAMES, PinTrainingJobSpec

EnvValue = str | Mapping[str, Any]

_TF_CLUSTER_VAR = "PINCOMPUTE_TF_CLUSTER"
_TF_CLUSTER_ROLES = ("chief", "master", "worker", "ps")
"""Roles in TensorFlow's cluster spec (the evaluator is not part of the cluster)."""


@dataclass(frozen=True, slots=True)
class Member:
    """One pod of the job: its role, index within the role, and global rank."""

    role: str
    index: int
    rank: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.role, self.index)


def members(spec: PinTrainingJobSpec) -> list[Member]:
    """Every pod of the job, in rank order: master/chief first, then workers, ps, evaluator.

    PyTorch's ``RANK`` is this rank (master 0; without a master, worker 0 is rank 0).
    """
    out: list[Member] = []
    for role in ROLE_NAMES:  # the spec may be a view: fields only, no methods
        value = getattr(spec.roles, role)
        for i in range(value.replicas if value is not None else 0):
            out.append(Member(role, i, len(out)))
    return out


def port_of(spec: PinTrainingJobSpec) -> int:
    """The rendezvous port (the framework's default when the store did not fill it in)."""
    return spec.port or DEFAULT_PORTS[spec.framework]


def coordinator(spec: PinTrainingJobSpec) -> tuple[str, int]:
    """The pod whose address is ``MASTER_ADDR`` and whose success is the job's (by default):
    rank 0 — the master or chief, else worker 0 (as Kubeflow's operators do)."""
    return members(spec)[0].key


def pod_name(job: str, role: str, index: int) -> str:
    """A member's pod: ``<job>-<role>-<index>``, the same name in every attempt."""
    return f"{job}-{role}-{index}"


def configmap_name(job: str) -> str:
    """The job's rendezvous ConfigMap."""
    return f"{job}-rendezvous"


def master_addr_key(attempt: int) -> str:
    return f"MASTER_ADDR.{attempt}"


def tf_cluster_key(attempt: int) -> str:
    return f"TF_CLUSTER.{attempt}"


def env_for(spec: PinTrainingJobSpec, member: Member, *, job: str,
            attempt: int) -> dict[str, EnvValue]:
    """The rendezvous environment of one member's containers (ordered: later values may
    refer to earlier ones with ``$(NAME)``)."""
    port = str(port_of(spec))
    cm = configmap_name(job)
    if spec.framework == "pytorch":
        addr: EnvValue
        if member.key == coordinator(spec):
            addr = {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
        else:
            addr = {"configMapKeyRef": {"name": cm, "key": master_addr_key(attempt)}}
        return {"MASTER_ADDR": addr, "MASTER_PORT": port,
                "WORLD_SIZE": str(len(members(spec))), "RANK": str(member.rank),
                "LOCAL_RANK": "0"}
    task = json.dumps({"type": member.role, "index": member.index})
    return {_TF_CLUSTER_VAR: {"configMapKeyRef": {"name": cm, "key": tf_cluster_key(attempt)}},
            "TF_CONFIG": f'{{"cluster": $({_TF_CLUSTER_VAR}), "task": {task}, '
                         f'"environment": "cloud"}}'}


def rendezvous_data(spec: PinTrainingJobSpec, *, attempt: int,
                    ips: Mapping[tuple[str, int], str]) -> dict[str, str] | None:
    """The rendezvous ConfigMap's data for ``attempt``, given the members' pod IPs by
    ``(role, index)``; ``None`` while an address it needs is unknown."""
    if spec.framework == "pytorch":
        ip = ips.get(coordinator(spec))
        return {master_addr_key(attempt): ip} if ip else None
    cluster: dict[str, list[str]] = {}
    for m in members(spec):
        if m.role not in _TF_CLUSTER_ROLES:
            continue
        ip = ips.get(m.key)
        if not ip:
            return None
        cluster.setdefault(m.role, []).append(f"{ip}:{port_of(spec)}")
    return {tf_cluster_key(attempt): json.dumps(cluster, separators=(",", ":"))}


def addresses_of(data: Mapping[str, str] | None, *, attempt: int) -> set[str]:
    """The pod IPs a rendezvous ConfigMap's data announced for ``attempt``."""
    if not data:
        return set()
    if (addr := data.get(master_addr_key(attempt))) is not None:
        return {addr}
    if (cluster := data.get(tf_cluster_key(attempt))) is not None:
        return {hostport.rpartition(":")[0]
                for hosts in json.loads(cluster).values() for hostport in hosts}
    return set()


__all__ = [
    "EnvValue", "Member", "addresses_of", "configmap_name", "coordinator", "env_for",
    "master_addr_key", "members", "pod_name", "port_of", "rendezvous_data", "tf_cluster_key",
]
