"""Replicated groups of a PinJob: stable names, the environment, the discovery file.

Theory of operation
-------------------
A PinJob with ``groups`` (JobSet's replicated jobs) lays its groups out in one
index space (:func:`pincompute.member.jobstate.group_slots`).  Pod ``i`` of group
``g`` of job ``j`` is reachable at the *stable name* ``j-g-i`` whatever pod
currently runs it (a retry gets a new pod name, never a new stable name):

* the pod's ``hostname`` is its stable name and its ``subdomain`` the job; on
  real clusters the operator adds a headless Service named after the job
  (:func:`headless_service`), so ``<stable name>.<job>`` resolves in DNS;
* its environment names everyone: ``PINCOMPUTE_<GROUP>_HOSTS`` lists each
  group's stable names (comma-separated), ``PINCOMPUTE_JOB_GROUP`` and
  ``JOB_COMPLETION_INDEX`` say who the pod is, ``PINCOMPUTE_HOSTS_FILE`` where
  the discovery file is;
* the discovery file (``/etc/pincompute/job/hosts``, /etc/hosts form: ``<ip>
  <stable name>`` per line, in index order) is the ConfigMap ``<job>-hosts``,
  mounted into every container; the operator rewrites it as pods get addresses.

The environment is fixed when a pod is created, so addresses live only in the
file, which follows the ConfigMap: the embedded node agent rewrites configMap
volumes atomically when their object changes (:mod:`pincompute.node.configsync`),
as the kubelet does on real clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pincompute.kube import objects
from pincompute.model.wellknown import JOB_HOSTS_MOUNT, JOB_HOSTS_SUFFIX, OWNER_UID_LABEL

from .jobstate import Slot, pod_outcome

Obj = dict[str, Any]
HOSTS_KEY = "hosts"
"""The discovery file's name (the ConfigMap's key)."""
HOSTS_VOLUME = "pincompute-job-hosts"
HOSTS_FILE = f"{JOB_HOSTS_MOUNT}/{HOSTS_KEY}"


def stable_name(job: str, slot: Slot) -> str:
    """``<job>-<group>-<index>``."""
    return f"{job}-{slot.group}-{slot.local}"


def hosts_configmap_name(job: str) -> str:
    return job + JOB_HOSTS_SUFFIX


def hosts_env_name(group: str) -> str:
    """``PINCOMPUTE_<GROUP>_HOSTS`` (upper case, ``-`` as ``_``)."""
    return "PINCOMPUTE_" + group.upper().replace("-", "_") + "_HOSTS"


def group_env(job: str, groups: Sequence[tuple[str, int]], slot: Slot) -> dict[str, str]:
    """The environment of the pod running ``slot`` (``groups``: ``[(name, replicas)]``)."""
    env = {"PINCOMPUTE_JOB_GROUP": str(slot.group), "JOB_COMPLETION_INDEX": str(slot.local),
           "PINCOMPUTE_HOSTS_FILE": HOSTS_FILE}
    for name, replicas in groups:
        env[hosts_env_name(name)] = ",".join(f"{job}-{name}-{i}" for i in range(replicas))
    return env


def current_hosts(job: str, slots: Sequence[Slot],
                  pods_by_index: Mapping[int, Sequence[Mapping[str, Any]]]) -> dict[str, str]:
    """Stable name → IP of the pod now answering to it (running first, then succeeded)."""
    out: dict[str, str] = {}
    for slot in slots:
        best = None
        for pod in pods_by_index.get(slot.index, ()):
            ip = (pod.get("status") or {}).get("podIP")
            outcome = pod_outcome(pod)
            if not ip or objects.is_deleting(pod) or outcome == "Failed":
                continue
            if best is None or outcome is None:
                best = ip
        if best is not None:
            out[stable_name(job, slot)] = best
    return out


def hosts_text(hosts: Mapping[str, str], slots: Sequence[Slot], job: str) -> str:
    """The discovery file: ``<ip> <stable name>`` lines in index order."""
    return "".join(f"{hosts[name]} {name}\n" for slot in slots
                   if (name := stable_name(job, slot)) in hosts)


def hosts_configmap(owner: Mapping[str, Any], text: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": hosts_configmap_name(objects.name_of(owner)),
                         "namespace": objects.namespace_of(owner),
                         "ownerReferences": [objects.owner_reference(owner)]},
            "data": {HOSTS_KEY: text}}


def headless_service(owner: Mapping[str, Any]) -> Obj:
    """Real clusters: the headless Service named after the job that, with each pod's
    ``hostname``/``subdomain``, gives ``<stable name>.<job>`` a DNS record."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": objects.name_of(owner), "namespace": objects.namespace_of(owner),
                         "ownerReferences": [objects.owner_reference(owner)]},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {OWNER_UID_LABEL: objects.uid_of(owner)}}}


def mount_hosts(pod: Obj, job: str) -> None:
    """Mount the discovery ConfigMap (optional: the pod may start before it exists) into
    every container of ``pod`` at :data:`~pincompute.model.wellknown.JOB_HOSTS_MOUNT`."""
    spec = pod["spec"]
    spec.setdefault("volumes", []).append(
        {"name": HOSTS_VOLUME, "configMap": {"name": hosts_configmap_name(job),
                                             "optional": True}})
    mount = {"name": HOSTS_VOLUME, "mountPath": JOB_HOSTS_MOUNT, "readOnly": True}
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or ():
            c.setdefault("volumeMounts", []).append(dict(mount))


__all__ = [
    "HOSTS_FILE", "HOSTS_KEY", "current_hosts", "group_env", "headless_service",
    "hosts_configmap",
    "hosts_configmap_name", "hosts_env_name", "hosts_text", "mount_hosts", "stable_name",
]
