"""PinSidecar injection: platform sidecars added to a pod as it is created, and upgraded.

Theory of operation
-------------------
**Where injection happens.**  Kubernetes injects sidecars with a mutating
admission webhook; PinCompute cannot count on one (the embedded store's
admission only validates, and a webhook on real member clusters needs a
serving certificate and an endpoint reachable from kube-apiserver, out of
scope here).  What every pod of a workload does pass through is its operator's
creation call, so injection is a *pod admission hook*
(:func:`pincompute.member.operator.add_pod_admission`) that
:func:`pincompute.member.operator.create_pod` — the one way operators create
pods — runs before writing the pod.  The same code then serves both backends,
and injection reads the PinSidecar and Namespace informer caches, no API call.
Pods written by anyone else (a raw ``kubectl create``) are not injected: users
submit workloads, not pods.

**What matches.**  A PinSidecar matches a pod when its ``selector`` matches the
pod's labels — these include the workload labels and the tier label
(``pincompute.io/tier``), so "every reserved-tier pod" is a selector — and its
``namespaceSelector`` (if any) matches the labels of the pod's namespace,
which carry the project (``pincompute.io/project``).

**How it is injected.**  Matching PinSidecars, in ascending ``order`` then
name, add their containers *before* the pod's own (sidecars start in spec order
and stop in reverse, so platform sidecars come up first and go last) and their
volumes; on real clusters containers become native sidecars
(``initContainers`` with ``restartPolicy: Always``) and volumes core sources,
as :func:`~.podtemplate.pod_for` maps them.  A PinSidecar whose container or
volume name the pod already uses is skipped (the pod's own wins).  The pod
records what was injected in :data:`~pincompute.model.wellknown.SIDECARS_ANNOTATION`:
per PinSidecar its version (a hash of its containers and volumes) and the hash
of each injected container, so an upgrade can proceed container by container
and a workload operator can tell its own containers from injected ones
(:func:`strip_injected`, before :func:`~.podtemplate.diff_containers`).

**Upgrades** (:func:`next_step`): a pod whose record is behind the PinSidecar's
version gets, in place, the next injected container whose hash differs, one per
step — the PinSidecar operator waits for that container to be ready before the
next (main containers are never touched: the node agent updates per container).
The record keeps the id the updated container ran as (``restarting``): until the
pod's status shows another, the update has not reached the node and the pod
counts as unavailable — durable, so a restarted operator keeps the budget.
When the change cannot be made in place (volumes changed, containers added or
removed, or a real cluster and more than images), the pod must be recreated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pincompute.kube import objects
from pincompute.kube.selectors import LabelSelector, selector_from_dict
from pincompute.model.wellknown import SIDECARS_ANNOTATION, VOLUME_KINDS_ANNOTATION

from .podtemplate import Backend, container_hash, kube_sidecar, kube_volume, template_hash

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sidecar:
    """One PinSidecar as injection needs it (parsed once per version, from the cache)."""

    name: str
    version: str
    order: int
    containers: tuple[Obj, ...]
    volumes: tuple[Obj, ...]
    selector: LabelSelector
    namespace_selector: LabelSelector | None
    strategy: str
    max_unavailable: int | str

    @property
    def hashes(self) -> dict[str, str]:
        return {c["name"]: container_hash(c) for c in self.containers}


def sidecar_version(spec: Mapping[str, Any]) -> str:
    """The version of a PinSidecar: a hash of what it injects (containers and volumes)."""
    return template_hash({"containers": spec["containers"], "volumes": spec.get("volumes")
                          or []})


def parse_sidecar(obj: Mapping[str, Any]) -> Sidecar:
    """A stored PinSidecar (validated and defaulted on write) as a :class:`Sidecar`."""
    spec = obj["spec"]
    strategy = spec.get("updateStrategy") or {}
    ns_selector = spec.get("namespaceSelector")
    containers = tuple({**c, "type": "sidecar"} for c in spec["containers"])
    return Sidecar(
        name=objects.name_of(obj), version=sidecar_version(spec), order=spec.get("order", 0),
        containers=containers, volumes=tuple(spec.get("volumes") or ()),
        selector=selector_from_dict(spec.get("selector")),
        namespace_selector=selector_from_dict(ns_selector) if ns_selector else None,
        strategy=strategy.get("type", "InPlace"),
        max_unavailable=strategy.get("maxUnavailable", "10%"))


def matches(sidecar: Sidecar, *, pod_labels: Mapping[str, str],
            namespace_labels: Mapping[str, str] | None) -> bool:
    """Whether ``sidecar`` is injected into a pod with these labels in that namespace."""
    if not sidecar.selector.matches(pod_labels):
        return False
    return sidecar.namespace_selector is None or sidecar.namespace_selector.matches(
        namespace_labels or {})


# --- the record on the pod ------------------------------------------------------------------------

def injected(pod: Mapping[str, Any]) -> dict[str, Obj]:
    """PinSidecar → ``{"version", "containers": {name: hash}, "volumes": [names]}``, plus
    ``"updating": version`` while an upgrade is part-way through the containers."""
    raw = (objects.meta(pod).get("annotations") or {}).get(SIDECARS_ANNOTATION)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _dump(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def strip_injected(spec: Mapping[str, Any], pod: Mapping[str, Any]) -> Obj:
    """``spec`` (a Pod's) without what PinSidecars injected: what its operator wrote."""
    record = injected(pod)
    if not record:
        return dict(spec)
    containers = {n for r in record.values() for n in r.get("containers") or {}}
    volumes = {n for r in record.values() for n in r.get("volumes") or ()}
    out = dict(spec)
    for key in ("containers", "initContainers"):
        if key in spec:
            kept = [c for c in spec[key] if c["name"] not in containers]
            if kept:
                out[key] = kept
            else:
                out.pop(key)
    if "volumes" in spec:
        kept_v = [v for v in spec["volumes"] if v["name"] not in volumes]
        if kept_v:
            out["volumes"] = kept_v
        else:
            out.pop("volumes")
    return out


# --- injection ----------------------------------------------------------------------------------

def inject(pod: Obj, sidecars: Iterable[Sidecar], *, backend: Backend,
           namespace_labels: Mapping[str, str] | None) -> tuple[Obj, list[str]]:
    """Add every matching sidecar to ``pod`` (changed in place and returned).

    Returns the pod and the names of matching PinSidecars skipped for a name clash.
    """
    md = pod["metadata"]
    labels = md.get("labels") or {}
    chosen = sorted((s for s in sidecars
                     if matches(s, pod_labels=labels, namespace_labels=namespace_labels)),
                    key=lambda s: (s.order, s.name))
    if not chosen:
        return pod, []
    spec = pod["spec"]
    record = injected(pod)
    taken_c = {c["name"] for key in ("containers", "initContainers") for c in spec.get(key)
               or ()}
    own_v = {v["name"]: v for v in spec.get("volumes") or ()}
    taken_v = set(own_v)
    skipped: list[str] = []
    add_c: list[Obj] = []
    add_v: list[Obj] = []
    kinds: list[str] = []
    owner = objects.controller_of(pod) or {"metadata": {"name": md["name"]}}
    owner_md = {"metadata": {"name": owner.get("name", md["name"])}}
    for s in chosen:
        if s.name in record:
            continue  # injected already (a retried creation)
        names = [c["name"] for c in s.containers]
        # A volume the pod declares identically is shared, not added (an app's logging
        # volume its shipper reads); a different one of the same name is a clash.
        mine = [(v, *(_as_pod_volume(v, backend=backend, owner=owner_md))) for v in s.volumes]
        shared = {v["name"] for v, core, _ in mine if own_v.get(v["name"]) == core}
        vols = [v["name"] for v in s.volumes if v["name"] not in shared]
        if taken_c & set(names) or taken_v & set(vols) or len(set(names)) != len(names):
            skipped.append(s.name)
            continue
        taken_c.update(names)
        taken_v.update(vols)
        for c in s.containers:
            add_c.append(objects.deepcopy(c) if backend == "embedded" else kube_sidecar(c))
        for v, core, kind in mine:
            if v["name"] in shared:
                continue
            add_v.append(core)
            if kind:
                kinds.append(kind)
        record[s.name] = {"version": s.version, "containers": s.hashes, "volumes": vols}
    if not add_c:
        return pod, skipped
    key = "containers" if backend == "embedded" else "initContainers"
    spec[key] = add_c + list(spec.get(key) or ())
    if add_v:
        spec["volumes"] = list(spec.get("volumes") or ()) + add_v
    annotations = md.setdefault("annotations", {})
    annotations[SIDECARS_ANNOTATION] = _dump(record)
    if kinds:
        existing = annotations.get(VOLUME_KINDS_ANNOTATION)
        annotations[VOLUME_KINDS_ANNOTATION] = ",".join(([existing] if existing else []) + kinds)
    return pod, skipped


def _as_pod_volume(volume: Mapping[str, Any], *, backend: Backend,
                   owner: Mapping[str, Any]) -> tuple[Obj, str | None]:
    if backend == "embedded":
        return objects.deepcopy(dict(volume)), None
    return kube_volume(volume, owner=owner)


# --- upgrades -------------------------------------------------------------------------------------

Step = Literal["current", "container", "recreate"]


@dataclass(frozen=True, slots=True)
class UpgradeStep:
    """What an upgrade does next to one pod."""

    kind: Step
    """``current`` (nothing to do), ``container`` (update :attr:`container` in place) or
    ``recreate`` (the change cannot be made in place)."""
    container: str | None = None
    pod: Obj | None = None
    """For ``container``: the whole new Pod to write (update, with its resourceVersion)."""


def next_step(pod: Mapping[str, Any], sidecar: Sidecar, *, backend: Backend) -> UpgradeStep:
    """The next step of upgrading ``pod``'s copy of ``sidecar`` (it must be injected)."""
    record = injected(pod)
    mine = record.get(sidecar.name)
    if mine is None or mine.get("version") == sidecar.version:
        return UpgradeStep("current")
    have: dict[str, str] = mine.get("containers") or {}
    want = sidecar.hashes
    if set(have) != set(want) or not set(mine.get("volumes") or ()) <= {
            v["name"] for v in sidecar.volumes}:
        return UpgradeStep("recreate")
    key = "containers" if backend == "embedded" else "initContainers"
    spec = pod.get("spec") or {}
    volumes_now = {v["name"]: v for v in spec.get("volumes") or ()}
    for v in sidecar.volumes:
        now = volumes_now.get(v["name"])
        target = v if backend == "embedded" else kube_volume(v, owner={"metadata": {
            "name": (objects.controller_of(pod) or {}).get("name", "")}})[0]
        if now != target:
            return UpgradeStep("recreate")  # a volume of a running pod cannot change
    for c in sidecar.containers:
        name = c["name"]
        if have.get(name) == want[name]:
            continue
        new_c = objects.deepcopy(c) if backend == "embedded" else kube_sidecar(c)
        old_c = next((x for x in spec.get(key) or () if x["name"] == name), None)
        if old_c is None:
            return UpgradeStep("recreate")
        if backend != "embedded":
            rest_old = {k: v for k, v in old_c.items() if k != "image"}
            rest_new = {k: v for k, v in new_c.items() if k != "image"}
            if rest_old != rest_new:
                return UpgradeStep("recreate")  # real clusters change images only
        new_pod = objects.deepcopy(dict(pod))
        new_pod["spec"][key] = [new_c if x["name"] == name else x
                                for x in new_pod["spec"][key]]
        new_record = injected(new_pod)
        entry = dict(new_record[sidecar.name])
        entry["containers"] = {**have, name: want[name]}
        # The container id it runs as now: until the status shows another, the update
        # has not reached the node (the upgrade counts the pod as unavailable).
        entry["restarting"] = {name: container_ids(pod).get(name, "")}
        if entry["containers"] == want:
            entry["version"] = sidecar.version
            entry.pop("updating", None)
        else:
            entry["updating"] = sidecar.version  # the next container waits for this one
        new_record[sidecar.name] = entry
        new_pod["metadata"].setdefault("annotations", {})[SIDECARS_ANNOTATION] = _dump(
            new_record)
        return UpgradeStep("container", name, new_pod)
    # Every container is current but the version is not (only the order of volumes or a
    # field outside containers changed): record the version.
    new_pod = objects.deepcopy(dict(pod))
    new_record = injected(new_pod)
    entry = {**new_record[sidecar.name], "version": sidecar.version}
    entry.pop("updating", None)
    entry.pop("restarting", None)
    new_record[sidecar.name] = entry
    new_pod["metadata"].setdefault("annotations", {})[SIDECARS_ANNOTATION] = _dump(new_record)
    return UpgradeStep("container", None, new_pod)


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [s for key in ("containerStatuses", "initContainerStatuses")
            for s in status.get(key) or ()]


def container_ids(pod: Mapping[str, Any]) -> dict[str, str]:
    """Container name → the id it runs as (main containers and native sidecars)."""
    return {s["name"]: s.get("containerID") or "" for s in _statuses(pod)}


def sidecars_ready(pod: Mapping[str, Any], sidecar: str, names: Sequence[str]) -> bool:
    """Whether the named containers of ``pod``'s copy of PinSidecar ``sidecar`` all run
    ready — and one just updated has restarted since (its container id moved on)."""
    ready = {s["name"]: bool(s.get("ready")) for s in _statuses(pod)}
    if not all(ready.get(n, False) for n in names):
        return False
    restarting = (injected(pod).get(sidecar) or {}).get("restarting") or {}
    if restarting:
        ids = container_ids(pod)
        return all(ids.get(n, "") != old for n, old in restarting.items())
    return True


__all__ = [
    "Sidecar", "UpgradeStep", "container_ids", "inject", "injected", "matches", "next_step",
    "parse_sidecar",
    "sidecar_version", "sidecars_ready", "strip_injected",
]
