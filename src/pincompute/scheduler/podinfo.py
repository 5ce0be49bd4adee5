"""A pod as the scheduler sees it: parsed once, compared by equivalence class.

Theory of operation
-------------------
Pods stay raw JSON dicts everywhere in PinCompute (ANCHORS: typed conversion is
the bottleneck of Python Kubernetes clients), but the scheduler looks at the same
few fields of a pod many times: its requests, tier and priority, tolerations,
selectors, affinity, spread constraints and pod group.  :class:`PodInfo` parses
them once, when the pod enters the scheduler, into plain tuples and integers.

Requests are summed as Kubernetes sums them (see :mod:`.resources`): CPU in
millicores, memory in bytes, GPUs (``nvidia.com/gpu``) and pods in units.

**Equivalence class.**  Two pods whose scheduling-relevant fields are equal —
namespace, requests, priority, tier, nodeName, node selector, affinity,
tolerations, spread constraints and labels — get the same answer from every
filter and score plugin on the same cluster state.  :attr:`PodInfo.class_key` is
a canonical encoding of those fields; the scheduler caches per-class feasibility
and score vectors under it (see :mod:`.equivalence`).  Pod names, uids and the
pod group are deliberately left out: replicas of one workload share a class.

A pod whose spec cannot be understood (a malformed quantity, an unknown
operator) raises :class:`PodSpecError`; the scheduler reports it on the pod
instead of crashing or retrying forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pincompute.kube.errors import BadRequest
from pincompute.kube.selectors import OP_IN, LabelSelector, Requirement, selector_from_dict

from . import labels as L
from .resources import PodSpecError, pod_requests

Obj = dict[str, Any]

TOLERATE_NO_SCHEDULE = ("NoSchedule", "NoExecute")


# --- tolerations -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # Equal | Exists
    value: str
    effect: str    # "" matches every effect

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == value


def parse_tolerations(raw: Sequence[Mapping[str, Any]] | None) -> tuple[Toleration, ...]:
    out = []
    for i, t in enumerate(raw or ()):
        op = t.get("operator") or "Equal"
        if op not in ("Equal", "Exists"):
            raise PodSpecError(f"spec.tolerations[{i}].operator: unsupported value {op!r}")
        out.append(Toleration(str(t.get("key") or ""), op, str(t.get("value") or ""),
                              str(t.get("effect") or "")))
    return tuple(out)


def tolerates_all(tolerations: Sequence[Toleration], key: str, value: str, effect: str) -> bool:
    return any(t.tolerates(key, value, effect) for t in tolerations)


# --- node selector terms (node affinity) -------------------------------------------------------

NODE_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True, slots=True)
class NodeRequirement:
    key: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """Requirements ANDed together; ``fields`` are on ``metadata.name`` only."""

    expressions: tuple[NodeRequirement, ...]
    fields: tuple[NodeRequirement, ...]


def _parse_requirements(raw: Sequence[Mapping[str, Any]] | None, where: str,
                        *, fields: bool = False) -> tuple[NodeRequirement, ...]:
    out = []
    for i, r in enumerate(raw or ()):
        key = str(r.get("key") or "")
        op = r.get("operator")
        values = tuple(str(v) for v in r.get("values") or ())
        here = f"{where}[{i}]"
        if not key:
            raise PodSpecError(f"{here}.key: Required value")
        if op not in NODE_OPS or (fields and op not in ("In", "NotIn")):
            raise PodSpecError(f"{here}.operator: unsupported value {op!r}")
        if fields and key != "metadata.name":
            raise PodSpecError(f"{here}.key: only metadata.name is supported")
        if op in ("In", "NotIn") and not values:
            raise PodSpecError(f"{here}.values: must be non-empty for {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise PodSpecError(f"{here}.values: must be empty for {op}")
        if op in ("Gt", "Lt"):
            if len(values) != 1:
                raise PodSpecError(f"{here}.values: must have one element for {op}")
            try:
                int(values[0])
            except ValueError:
                raise PodSpecError(f"{here}.values[0]: must be an integer for {op}") from None
        out.append(NodeRequirement(key, op, values))
    return tuple(out)


def parse_term(raw: Mapping[str, Any], where: str) -> NodeSelectorTerm:
    return NodeSelectorTerm(
        _parse_requirements(raw.get("matchExpressions"), f"{where}.matchExpressions"),
        _parse_requirements(raw.get("matchFields"), f"{where}.matchFields", fields=True))


def term_matches(term: NodeSelectorTerm, labels: Mapping[str, str], name: str) -> bool:
    """Scalar evaluation of a term (the reference and test oracle for the vector code)."""
    if not term.expressions and not term.fields:
        return False  # an empty term matches nothing, as in Kubernetes
    for r in term.expressions:
        if not _requirement_matches(r, labels.get(r.key)):
            return False
    return all(_requirement_matches(r, name) for r in term.fields)


def _requirement_matches(r: NodeRequirement, value: str | None) -> bool:
    op = r.op
    if op == "In":
        return value is not None and value in r.values
    if op == "NotIn":
        return value is None or value not in r.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if value is None:
        return False
    try:
        number = int(value)
    except ValueError:
        return False
    bound = int(r.values[0])
    return number > bound if op == "Gt" else number < bound


# --- pod (anti-)affinity terms and spread constraints ------------------------------------------

# A requirement no labels satisfy: what a missing labelSelector means in pod terms.
_NOTHING = Requirement("\x00", OP_IN, frozenset())


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """Pods matching ``selector`` in ``namespaces`` (None: every namespace) per ``topology_key``."""

    selector: LabelSelector
    namespaces: frozenset[str] | None
    topology_key: str

    def matches_pod(self, namespace: str, pod_labels: Mapping[str, str]) -> bool:
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.selector.matches(pod_labels)


def _selector(raw: Mapping[str, Any] | None, where: str) -> LabelSelector:
    try:
        return selector_from_dict(raw, param=where)
    except BadRequest as e:
        raise PodSpecError(f"{where}: {e.message}") from None


def parse_affinity_term(raw: Mapping[str, Any], own_namespace: str,
                        where: str) -> PodAffinityTerm:
    key = str(raw.get("topologyKey") or "")
    if not key:
        raise PodSpecError(f"{where}.topologyKey: Required value")
    sel_raw = raw.get("labelSelector")
    # A missing labelSelector matches no pods, as in Kubernetes.
    selector = _selector(sel_raw, f"{where}.labelSelector") if sel_raw is not None \
        else LabelSelector((_NOTHING,))
    ns_selector = raw.get("namespaceSelector")
    namespaces: frozenset[str] | None
    if ns_selector is not None:
        if ns_selector:
            raise PodSpecError(f"{where}.namespaceSelector: only the empty selector (all "
                               "namespaces) is supported")
        namespaces = None
    else:
        namespaces = frozenset(str(n) for n in raw.get("namespaces") or ()) or \
            frozenset((own_namespace,))
    return PodAffinityTerm(selector, namespaces, key)


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool  # whenUnsatisfiable: DoNotSchedule
    selector: LabelSelector
    min_domains: int
    honor_affinity: bool  # nodeAffinityPolicy: Honor (default)
    honor_taints: bool    # nodeTaintsPolicy: Honor (default Ignore)


def parse_spread(raw: Sequence[Mapping[str, Any]] | None, pod_labels: Mapping[str, str],
                 ) -> tuple[SpreadConstraint, ...]:
    out = []
    for i, c in enumerate(raw or ()):
        where = f"spec.topologySpreadConstraints[{i}]"
        try:
            skew = int(c.get("maxSkew", 0))
        except (TypeError, ValueError):
            raise PodSpecError(f"{where}.maxSkew: must be an integer") from None
        if skew < 1:
            raise PodSpecError(f"{where}.maxSkew: must be greater than zero")
        key = str(c.get("topologyKey") or "")
        if not key:
            raise PodSpecError(f"{where}.topologyKey: Required value")
        when = c.get("whenUnsatisfiable") or "DoNotSchedule"
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise PodSpecError(f"{where}.whenUnsatisfiable: unsupported value {when!r}")
        selector = _selector(c.get("labelSelector"), f"{where}.labelSelector") \
            if c.get("labelSelector") is not None else LabelSelector((_NOTHING,))
        keys = c.get("matchLabelKeys") or ()
        if keys:
            # matchLabelKeys: the pod's own values for these keys join the selector.
            extra = {k: pod_labels[k] for k in keys if k in pod_labels}
            if extra:
                merged = selector_from_dict({"matchLabels": extra})
                selector = LabelSelector(selector.requirements + merged.requirements)
        min_domains = int(c.get("minDomains") or 1)
        out.append(SpreadConstraint(
            skew, key, when == "DoNotSchedule", selector, max(min_domains, 1),
            (c.get("nodeAffinityPolicy") or "Honor") == "Honor",
            (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"))
    return tuple(out)


# --- the pod -----------------------------------------------------------------------------------

@dataclass(slots=True, eq=False)
class PodInfo:
    """The parsed, scheduling-relevant view of one pod (the source dict is shared, read-only)."""

    obj: Obj
    uid: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    cpu: int
    memory: int
    gpu: int
    priority: int
    tier: str
    node_name: str
    scheduler_name: str
    node_selector: tuple[tuple[str, str], ...]
    required_terms: tuple[NodeSelectorTerm, ...] | None
    preferred_terms: tuple[tuple[int, NodeSelectorTerm], ...]
    tolerations: tuple[Toleration, ...]
    spread: tuple[SpreadConstraint, ...]
    anti_required: tuple[PodAffinityTerm, ...]
    anti_preferred: tuple[tuple[int, PodAffinityTerm], ...]
    group: str  # "namespace/name" of the pod group, "" when none
    min_member: int
    group_timeout: float | None
    nominated_node: str
    deleting: bool
    terminal: bool
    gated: bool
    grace_seconds: int
    class_key: bytes
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __repr__(self) -> str:
        return f"<PodInfo {self.namespace}/{self.name}>"

    @classmethod
    def from_pod(cls, obj: Obj) -> PodInfo:
        """Parse a pod; raises :class:`PodSpecError` for specs the scheduler cannot honour."""
        md = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        namespace = md.get("namespace") or ""
        pod_labels: Mapping[str, str] = md.get("labels") or {}
        annotations: Mapping[str, str] = md.get("annotations") or {}
        cpu, mem, gpu = pod_requests(spec)
        tier = L.tier_of(pod_labels)
        prio = spec.get("priority")
        priority = prio if isinstance(prio, int) and not isinstance(prio, bool) \
            else L.TIER_PRIORITY[tier]
        node_selector_raw = spec.get("nodeSelector") or {}
        node_selector = tuple(sorted((str(k), str(v)) for k, v in node_selector_raw.items()))
        affinity = spec.get("affinity") or {}
        required_terms: tuple[NodeSelectorTerm, ...] | None = None
        preferred: tuple[tuple[int, NodeSelectorTerm], ...] = ()
        anti_required: tuple[PodAffinityTerm, ...] = ()
        anti_preferred: tuple[tuple[int, PodAffinityTerm], ...] = ()
        if affinity:
            na = affinity.get("nodeAffinity") or {}
            req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
            if req is not None:
                where = ("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuring"
                         "Execution.nodeSelectorTerms")
                required_terms = tuple(parse_term(t, f"{where}[{i}]")
                                       for i, t in enumerate(req.get("nodeSelectorTerms") or ()))
            pref = []
            for i, p in enumerate(na.get("preferredDuringSchedulingIgnoredDuringExecution") or ()):
                where = f"spec.affinity.nodeAffinity.preferredDuringScheduling[{i}]"
                pref.append((int(p.get("weight") or 0),
                             parse_term(p.get("preference") or {}, f"{where}.preference")))
            preferred = tuple(pref)
            paa = affinity.get("podAntiAffinity") or {}
            anti_required = tuple(
                parse_affinity_term(t, namespace, f"spec.affinity.podAntiAffinity.required[{i}]")
                for i, t in enumerate(paa.get("requiredDuringSchedulingIgnoredDuringExecution")
                                      or ()))
            anti_preferred = tuple(
                (int(t.get("weight") or 0),
                 parse_affinity_term(t.get("podAffinityTerm") or {}, namespace,
                                     f"spec.affinity.podAntiAffinity.preferred[{i}]"))
                for i, t in enumerate(paa.get("preferredDuringSchedulingIgnoredDuringExecution")
                                      or ()))
        tolerations = parse_tolerations(spec.get("tolerations"))
        spread = parse_spread(spec.get("topologySpreadConstraints"), pod_labels)
        group_name = pod_labels.get(L.POD_GROUP_LABEL, "")
        group = f"{namespace}/{group_name}" if group_name else ""
        min_member = 0
        timeout: float | None = None
        if group:
            raw_min = annotations.get(L.POD_GROUP_MIN_MEMBER,
                                      pod_labels.get(L.POD_GROUP_MIN_MEMBER))
            try:
                min_member = int(raw_min) if raw_min is not None else 1
            except ValueError:
                raise PodSpecError(f"metadata.annotations[{L.POD_GROUP_MIN_MEMBER}]: must be an "
                                   "integer") from None
            raw_timeout = annotations.get(L.POD_GROUP_TIMEOUT)
            if raw_timeout is not None:
                try:
                    timeout = float(raw_timeout)
                except ValueError:
                    raise PodSpecError(f"metadata.annotations[{L.POD_GROUP_TIMEOUT}]: must be a "
                                       "number") from None
        grace = spec.get("terminationGracePeriodSeconds")
        node_name = spec.get("nodeName") or ""
        key_parts: list[Any] = [namespace, cpu, mem, gpu, priority, tier, node_name]
        # Only the parts a pod actually has go into the key, so the common case is cheap.
        if node_selector:
            key_parts.append(node_selector)
        if affinity:
            key_parts.append(affinity)
        if spec.get("tolerations"):
            key_parts.append(spec["tolerations"])
        if spread:
            key_parts.append(spec.get("topologySpreadConstraints"))
        if pod_labels:
            key_parts.append(pod_labels)
        class_key = _shared_key(orjson.dumps(key_parts, option=orjson.OPT_SORT_KEYS))
        return cls(
            obj=obj, uid=md.get("uid") or "", namespace=namespace, name=md.get("name") or "",
            labels=pod_labels, cpu=cpu, memory=mem, gpu=gpu, priority=priority, tier=tier,
            node_name=node_name, scheduler_name=spec.get("schedulerName") or "",
            node_selector=node_selector, required_terms=required_terms,
            preferred_terms=preferred, tolerations=tolerations, spread=spread,
            anti_required=anti_required, anti_preferred=anti_preferred, group=group,
            min_member=min_member, group_timeout=timeout,
            nominated_node=status.get("nominatedNodeName") or "",
            deleting=bool(md.get("deletionTimestamp")),
            terminal=status.get("phase") in ("Succeeded", "Failed"),
            gated=bool(spec.get("schedulingGates")),
            grace_seconds=grace if isinstance(grace, int) and grace >= 0 else 30,
            class_key=class_key, created=md.get("creationTimestamp") or "")


# Pods of one class share one key object.  orjson's result also keeps a 4 KiB
# allocation however short the JSON: ~3.9 KB per pod, 470 MB at 120,000 pods.
_CLASS_KEYS: dict[bytes, bytes] = {}
_MAX_CLASS_KEYS = 65_536


def _shared_key(raw: bytes) -> bytes:
    key = _CLASS_KEYS.get(raw)
    if key is None:
        if len(_CLASS_KEYS) >= _MAX_CLASS_KEYS:
            _CLASS_KEYS.clear()  # bounded: keys already handed out stay valid
        key = _CLASS_KEYS[raw] = bytes(memoryview(raw))
    return key


def is_terminal(obj: Mapping[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
