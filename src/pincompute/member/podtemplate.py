"""PinCompute pod templates become core Pods that both backends run.

Theory of operation
-------------------
Every workload operator (PinPod, PinApp, PinJob, PinTrainingJob, PinDaemon)
ends in the same step: a PinCompute pod template (``{"metadata": ..., "spec":
PodSpec}``, already validated and defaulted by the store or the CRD) becomes a
``v1`` Pod.  :func:`pod_for` is that step, for both backends:

* **embedded** member clusters run pods with PinCompute's node agent, which
  reads PinCompute's own fields: ``containers[].type == "sidecar"``, the
  volume kinds ``persistent``/``shared``/``logging`` and ``networkMode``.  The
  spec is kept as written.
* **kubernetes** (real member clusters): kube-apiserver knows none of those,
  and silently drops unknown fields, so they are mapped to core fields —
  sidecars become native sidecar containers (``initContainers`` with
  ``restartPolicy: Always``, in declaration order, so they start first and
  stop last as on the node agent); ``persistent`` becomes a
  PersistentVolumeClaim named :func:`claim_name` (the PinPod operator creates
  it: the claim follows the workload, not the pod), ``shared`` the claim
  ``share-<share>``, ``logging`` an ``emptyDir``; the PinCompute kind of each
  mapped volume is kept in the ``pincompute.io/volume-kinds`` annotation and a
  ``networkMode`` other than ``host`` (which is ``hostNetwork``) in
  ``pincompute.io/network-mode``.

On both, the pod is scheduled by PinCompute's scheduler (``schedulerName``),
labelled with its tier (the scheduler derives priority from it; a raw
``spec.priority`` is refused by kube-apiserver's Priority admission), carries
its workload's tolerations and node selector, and — for gangs — the pod group
label and annotations.  Labels say which workload owns the pod
(:func:`pincompute.member.operator.workload_labels`), and the pod has one
controlling owner reference.

Revisions: :func:`template_hash` is a stable short hash of a template (key
order does not matter), like Kubernetes' ``pod-template-hash``;
:func:`container_hashes` hashes each container, and :func:`diff_containers`
says which containers changed between two specs and whether the change can be
made in place.  Both are written on the pod (``pincompute.io/revision``,
``pincompute.io/container-hashes``), so an operator decides from the pod alone.

Cost: stored objects were validated when written, so nothing is validated
again here; the template is read as a dict and copied once (orjson).  Measured
in tests/member/test_podtemplate.py: tens of microseconds per pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from pincompute.kube.objects import deepcopy, owner_reference
from pincompute.model.wellknown import (
    CONTAINER_HASHES_ANNOTATION,
    DEFAULT_TIER,
    NETWORK_MODE_ANNOTATION,
    POD_GROUP_LABEL,
    POD_GROUP_MIN_MEMBER_ANNOTATION,
    POD_GROUP_TIMEOUT_ANNOTATION,
    SCHEDULER_NAME,
    TIER_LABEL,
    VOLUME_KINDS_ANNOTATION,
    Tier,
)

from .operator import workload_labels

Obj = dict[str, Any]
Backend = Literal["embedded", "kubernetes"]
"""Where the pod runs: PinCompute's node agents, or a real cluster's kubelets."""

_POD_SPEC_FIELDS = ("restartPolicy", "terminationGracePeriodSeconds", "activeDeadlineSeconds")
"""PodSpec fields copied as they are (core Pods spell them the same)."""
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
"""Kubernetes' ``SafeEncodeString`` alphabet: no vowels (no words), no look-alikes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PodGroup:
    """A gang: pods placed all together or not at all (DESIGN §6)."""

    name: str
    """The group's name (a label value), unique in the namespace."""
    min_member: int
    """How many of the group's pods must be placeable together."""
    timeout_seconds: int | None = None
    """How long reserved members wait for the rest (default: the scheduler's)."""


# --- hashes ------------------------------------------------------------------------------------

def _hash(value: Any, length: int) -> str:
    digest = hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS),
                             digest_size=8).digest()
    n = int.from_bytes(digest, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, len(_SAFE))
        out.append(_SAFE[r])
    return "".join(out)


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable 10-character revision hash of a template (or spec): equal content, equal hash.

    A valid label value; key order does not matter.
    """
    return _hash(template, 10)


def container_hash(container: Mapping[str, Any]) -> str:
    """A stable 8-character hash of one container's spec."""
    return _hash(container, 8)


def container_hashes(spec: Mapping[str, Any]) -> dict[str, str]:
    """Container name → :func:`container_hash`, for every container of a PodSpec."""
    return {c["name"]: container_hash(c) for c in spec.get("containers") or ()}


@dataclass(frozen=True, slots=True)
class ContainerDiff:
    """What changed between two pod specs, container by container."""

    changed: tuple[str, ...]
    """Containers present in both whose spec differs, in the new spec's order."""
    images_only: bool
    """Every changed container differs only in ``image`` (in place even on real clusters)."""
    in_place: bool
    """The change can be made to the running pod: only existing containers changed (same
    names and types); volumes and pod-level fields are equal."""

    @property
    def unchanged(self) -> bool:
        return self.in_place and not self.changed


def diff_containers(old: Mapping[str, Any], new: Mapping[str, Any]) -> ContainerDiff:
    """Compare two PodSpecs (JSON dicts) for a per-container update decision.

    An operator updates in place when ``in_place`` (embedded: any container field;
    real clusters: only when ``images_only``) and recreates the pod otherwise.
    """
    old_c = {c["name"]: c for c in old.get("containers") or ()}
    new_list = list(new.get("containers") or ())
    same_set = (len(old_c) == len(new_list)
                and all(c["name"] in old_c
                        and (old_c[c["name"]].get("type") or "main") == (c.get("type") or "main")
                        for c in new_list))
    pod_fields_equal = all(old.get(k) == new.get(k) for k in
                           {*old, *new} - {"containers"})
    changed: list[str] = []
    images_only = True
    for c in new_list:
        before = old_c.get(c["name"])
        if before is None or before == c:
            continue
        changed.append(c["name"])
        if images_only:
            a = {k: v for k, v in before.items() if k != "image"}
            b = {k: v for k, v in c.items() if k != "image"}
            images_only = a == b
    return ContainerDiff(tuple(changed), images_only and same_set,
                         same_set and pod_fields_equal)


# --- names -------------------------------------------------------------------------------------

def claim_name(owner: Mapping[str, Any], volume: str) -> str:
    """The PersistentVolumeClaim of a ``persistent`` volume on real clusters: one per
    workload (not per pod), so its data survives the pod: ``<owner>-<volume>``."""
    return f"{owner['metadata']['name']}-{volume}"


def share_claim_name(share: str) -> str:
    """The PersistentVolumeClaim of a project share on real clusters (ReadWriteMany)."""
    return f"share-{share}"


def persistent_claims(template: Mapping[str, Any], *, owner: Mapping[str, Any],
                      namespace: str) -> list[Obj]:
    """The PersistentVolumeClaims a template's ``persistent`` volumes need on real clusters.

    One per volume, named :func:`claim_name`, owned by ``owner`` (the PinPod: the data
    lives as long as it does, across pod recreation and failover) and labelled like its
    pods. Embedded clusters need none (the node agent keys the directory by owner).
    """
    out: list[Obj] = []
    for v in template["spec"].get("volumes") or ():
        source = v.get("persistent")
        if source is None:
            continue
        spec: Obj = {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": source["size"]}}}
        if source.get("storageClass"):
            spec["storageClassName"] = source["storageClass"]
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim_name(owner, v["name"]), "namespace": namespace,
                                 "labels": workload_labels(owner),
                                 "ownerReferences": [owner_reference(owner)]},
                    "spec": spec})
    return out


# --- the conversion ----------------------------------------------------------------------------

def pod_for(template: Mapping[str, Any], *, name: str, namespace: str,
            owner: Mapping[str, Any], backend: Backend, tier: Tier = DEFAULT_TIER,
            labels: Mapping[str, str] | None = None,
            annotations: Mapping[str, str] | None = None,
            tolerations: Sequence[Mapping[str, Any]] | None = None,
            node_selector: Mapping[str, str] | None = None,
            affinity: Mapping[str, Any] | None = None,
            topology_spread: Sequence[Mapping[str, Any]] | None = None,
            env: Mapping[str, str | Mapping[str, Any]] | None = None,
            pod_group: PodGroup | None = None,
            revision: str | None = None, index: int | None = None,
            role: str | None = None, hostname: str | None = None,
            subdomain: str | None = None) -> Obj:
    """A core Pod running ``template`` for ``owner`` on ``backend``.

    ``template`` is a PodTemplate's JSON (``{"metadata": {...}, "spec": {...}}``); a
    PinPod passes ``{"spec": pinpod["spec"]}`` (its extra ``tier``/``placement`` are left
    out). ``owner`` (with apiVersion, kind, metadata.name and uid) becomes the controlling
    owner reference and the workload labels; ``revision`` defaults to
    :func:`template_hash` of ``template``. ``labels``/``annotations`` are added last
    (the template's come first, PinCompute's next). ``tolerations`` and
    ``node_selector`` (the workload's placement) add to the template's; ``affinity`` and
    ``topology_spread`` (core ``affinity`` and ``topologySpreadConstraints``) are set as
    given. ``env`` is added to every container (replacing variables of the same name), in
    its order: ``JOB_COMPLETION_INDEX``, ``RANK``, ...; a value is a string, or a core
    ``EnvVarSource`` (``{"fieldRef": ...}``, ``{"configMapKeyRef": ...}``) read when the
    container starts. ``hostname``/``subdomain`` give the pod a
    stable DNS name. The result is the caller's own (nothing is shared with ``template``).
    """
    src_spec: Mapping[str, Any] = template["spec"]
    src_md: Mapping[str, Any] = template.get("metadata") or {}
    containers = src_spec["containers"]
    if env:
        containers = [_with_env(c, env) for c in containers]
    out_labels: dict[str, str] = dict(src_md.get("labels") or {})
    out_labels.update(workload_labels(
        owner, revision=revision if revision is not None else template_hash(template),
        index=index, role=role))
    out_labels[TIER_LABEL] = tier
    out_annotations: dict[str, str] = dict(src_md.get("annotations") or {})
    out_annotations[CONTAINER_HASHES_ANNOTATION] = ",".join(
        f"{c['name']}={container_hash(c)}" for c in src_spec["containers"])  # before env
    if pod_group is not None:
        out_labels[POD_GROUP_LABEL] = pod_group.name
        out_annotations[POD_GROUP_MIN_MEMBER_ANNOTATION] = str(pod_group.min_member)
        if pod_group.timeout_seconds is not None:
            out_annotations[POD_GROUP_TIMEOUT_ANNOTATION] = str(pod_group.timeout_seconds)
    spec: Obj = {"schedulerName": SCHEDULER_NAME}
    for key in _POD_SPEC_FIELDS:
        if key in src_spec:
            spec[key] = src_spec[key]
    selector = dict(src_spec.get("nodeSelector") or {})
    if node_selector:
        selector.update(node_selector)
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = list(tolerations)
    if affinity:
        spec["affinity"] = affinity
    if topology_spread:
        spec["topologySpreadConstraints"] = list(topology_spread)
    if hostname is not None:
        spec["hostname"] = hostname
    if subdomain is not None:
        spec["subdomain"] = subdomain
    volumes = src_spec.get("volumes")
    mode = src_spec.get("networkMode")
    if backend == "embedded":
        spec["containers"] = containers
        if volumes:
            spec["volumes"] = volumes
        if mode:
            spec["networkMode"] = mode
    else:
        spec["containers"] = [_kube_container(c) for c in containers
                              if c.get("type") != "sidecar"]
        sidecars = [_kube_container(c) | {"restartPolicy": "Always"} for c in containers
                    if c.get("type") == "sidecar"]
        if sidecars:
            spec["initContainers"] = sidecars
        if volumes:
            kinds: list[str] = []
            spec["volumes"] = [_kube_volume(v, owner, kinds) for v in volumes]
            if kinds:
                out_annotations[VOLUME_KINDS_ANNOTATION] = ",".join(kinds)
        if mode == "host":
            spec["hostNetwork"] = True
        elif mode and mode != "routable":
            out_annotations[NETWORK_MODE_ANNOTATION] = mode
    if labels:
        out_labels.update(labels)
    if annotations:
        out_annotations.update(annotations)
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": out_labels,
                     "annotations": out_annotations,
                     "ownerReferences": [owner_reference(owner)]},
        "spec": spec,
    }
    return deepcopy(pod)  # one copy: the template's nested dicts are never shared


def _with_env(c: Mapping[str, Any], env: Mapping[str, str | Mapping[str, Any]]) -> Obj:
    kept = [e for e in c.get("env") or () if e["name"] not in env]
    added: list[Obj] = [{"name": k, "value": v} if isinstance(v, str)
                        else {"name": k, "valueFrom": v} for k, v in env.items()]
    return {**c, "env": kept + added}


def _kube_container(c: Mapping[str, Any]) -> Obj:
    return {k: v for k, v in c.items() if k != "type"}


def _kube_volume(v: Mapping[str, Any], owner: Mapping[str, Any], kinds: list[str]) -> Obj:
    name = v["name"]
    if "persistent" in v:
        kinds.append(f"{name}=persistent")
        return {"name": name, "persistentVolumeClaim": {"claimName": claim_name(owner, name)}}
    if "shared" in v:
        kinds.append(f"{name}=shared")
        shared = v["shared"]
        claim: Obj = {"claimName": share_claim_name(shared["share"])}
        if shared.get("readOnly"):
            claim["readOnly"] = True
        return {"name": name, "persistentVolumeClaim": claim}
    if "logging" in v:
        kinds.append(f"{name}=logging")
        limit = (v["logging"] or {}).get("sizeLimit")
        return {"name": name, "emptyDir": {"sizeLimit": limit} if limit else {}}
    return dict(v)  # emptyDir, configMap, secret: core sources already


def kube_sidecar(container: Mapping[str, Any]) -> Obj:
    """A PinCompute sidecar container as a real cluster's native sidecar (an init container
    with ``restartPolicy: Always``), as :func:`pod_for` writes it."""
    return _kube_container(container) | {"restartPolicy": "Always"}


def kube_volume(volume: Mapping[str, Any], *, owner: Mapping[str, Any]
                ) -> tuple[Obj, str | None]:
    """A PinCompute volume as a core volume, as :func:`pod_for` writes it, and its
    ``name=kind`` entry for ``pincompute.io/volume-kinds`` (None for core sources)."""
    kinds: list[str] = []
    out = _kube_volume(volume, owner, kinds)
    return out, (kinds[0] if kinds else None)


def parse_hashes(value: str | None) -> dict[str, str]:
    """The ``pincompute.io/container-hashes`` annotation back as name → hash."""
    if not value:
        return {}
    return dict(item.split("=", 1) for item in value.split(",") if "=" in item)


__all__ = [
    "Backend", "ContainerDiff", "PodGroup", "claim_name", "container_hash", "container_hashes",
    "diff_containers", "kube_sidecar", "kube_volume", "parse_hashes", "persistent_claims",
    "pod_for", "share_claim_name",
    "template_hash",
]
