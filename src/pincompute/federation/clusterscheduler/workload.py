"""What the cluster scheduler reads of a workload: its request, parsed once per generation.

Theory of operation
-------------------
A decision needs a few facts of the workload object: its kind, tier and
placement, how many replicas it has, what one replica asks for and what all of
them ask for together, and how its replicas may be divided:

* ``Divided`` — split among clusters (PinApp; other kinds only with
  ``placement.replicaScheduling.allowSplit``);
* ``Duplicated`` — every chosen cluster runs all of them
  (``replicaScheduling.type: Duplicated``, and the platform kinds: a PinDaemon runs
  one pod per node of every matching cluster, a PinSidecar is injected in every
  cluster; neither carries a replica count);
* ``Whole`` — one cluster runs them all: jobs, pods and gangs (training jobs)
  unless their spec allows splitting.  The unit that must fit is then the
  whole workload (the sum over a training job's roles).

Parsing is the costly part (pod templates, quantities, the placement's cache
key), and it depends only on the spec, so :class:`RequestCache` keeps the parsed
:class:`Request` per uid for its ``metadata.generation`` — the generation changes
exactly when the spec does — and a decision only reads the object's current
placements afresh (:func:`current_placements`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from pincompute.model.wellknown import DEFAULT_TIER, TIERS

from .resources import NDIMS, PODS, RequestError, pod_vector

Mode = Literal["Divided", "Duplicated", "Whole"]
EMPTY: Mapping[str, Any] = {}
_CACHE_MAX = 65_536


@dataclass(frozen=True, slots=True)
class Request:
    """One workload generation as the scheduler sees it (read-only, shared by decisions)."""

    kind: str
    tier: str
    tier_index: int
    placement: Mapping[str, Any]
    replicas: int
    """Total replicas (0 for PinDaemon, which has none)."""
    per_replica: np.ndarray
    """What one replica asks for (the largest role, per dimension, for training jobs)."""
    whole: np.ndarray
    """What all replicas ask for together (pods = replicas)."""
    mode: Mode
    counted: bool
    """Whether placements carry replica counts (not for PinDaemon)."""
    static_key: bytes
    """Kind, tier and placement: equal keys give equal answers from spec-only filters."""

    @property
    def spread(self) -> Mapping[str, Mapping[str, Any]]:
        return {c["topology"]: c for c in self.placement.get("spread") or ()}

    @property
    def replica_scheduling(self) -> Mapping[str, Any]:
        return self.placement.get("replicaScheduling") or EMPTY


def parse_request(obj: Mapping[str, Any]) -> Request:
    """The :class:`Request` of a workload object (raises :class:`RequestError`)."""
    kind = obj.get("kind", "")
    spec = obj.get("spec") or EMPTY
    placement: Mapping[str, Any] = spec.get("placement") or EMPTY
    tier = spec.get("tier") or DEFAULT_TIER
    split = bool((placement.get("replicaScheduling") or EMPTY).get("allowSplit"))
    counted = True
    if kind == "PinApp":
        replicas = 0 if spec.get("stopped") else int(spec.get("replicas", 1))
        roles = [(replicas, pod_vector(spec["template"]["spec"], "spec.template.spec"))]
        split = True
    elif kind == "PinJob":
        replicas = int(spec.get("parallelism", 1))
        roles = [(replicas, pod_vector(spec["template"]["spec"], "spec.template.spec"))]
    elif kind == "PinCronJob":
        body = spec["jobTemplate"]["spec"]
        replicas = int(body.get("parallelism", 1))
        roles = [(replicas, pod_vector(body["template"]["spec"],
                                       "spec.jobTemplate.spec.template.spec"))]
    elif kind == "PinTrainingJob":
        roles = [(int(role.get("replicas", 1)),
                  pod_vector(role["template"]["spec"], f"spec.roles.{name}.template.spec"))
                 for name, role in (spec.get("roles") or EMPTY).items() if role]
        replicas = sum(n for n, _ in roles)
    elif kind == "PinPod":
        replicas = 1
        roles = [(1, pod_vector(spec, "spec"))]
    elif kind in ("PinDaemon", "PinSidecar"):
        # Platform kinds, wherever workloads may run: duplicated, without a replica count
        # (a PinDaemon runs one pod per node of every matching cluster).
        placement = {"clusterSelector": spec.get("clusterSelector"),
                     "tolerations": spec.get("tolerations"),
                     "replicaScheduling": {"type": "Duplicated"}}
        placement = {k: v for k, v in placement.items() if v is not None}
        replicas, roles, counted, split = 0, [], False, True
    else:
        raise RequestError(f"the cluster scheduler does not place kind {kind!r}")
    per_replica = np.zeros(NDIMS, dtype=np.int64)
    whole = np.zeros(NDIMS, dtype=np.int64)
    for n, vec in roles:
        if n > 0:
            np.maximum(per_replica, vec, out=per_replica)
            whole += n * vec
    if not counted:
        per_replica[PODS] = 0
    scheduling = placement.get("replicaScheduling") or EMPTY
    mode: Mode
    if not split:
        mode = "Whole"
    elif scheduling.get("type") == "Duplicated":
        mode = "Duplicated"
    else:
        mode = "Divided"
    if tier not in TIERS:
        raise RequestError(f"spec.tier: unknown tier {tier!r}")
    static_key = orjson.dumps([kind, tier, placement], option=orjson.OPT_SORT_KEYS)
    return Request(kind=kind, tier=tier, tier_index=TIERS.index(tier), placement=placement,
                   replicas=replicas, per_replica=per_replica, whole=whole, mode=mode,
                   counted=counted, static_key=static_key)


def current_placements(obj: Mapping[str, Any]) -> dict[str, int]:
    """Replicas per cluster of the workload's last decision (``status.placements``)."""
    out: dict[str, int] = {}
    for p in (obj.get("status") or EMPTY).get("placements") or ():
        name = p.get("cluster")
        if name:
            out[name] = int(p.get("replicas") or 0)
    return out


class RequestCache:
    """Parsed requests by uid, valid for one generation; bounded (cleared when full)."""

    def __init__(self, *, size: int = _CACHE_MAX) -> None:
        self._size = size
        self._entries: dict[str, tuple[int, str, Request]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, obj: Mapping[str, Any]) -> Request:
        meta = obj.get("metadata") or EMPTY
        uid = meta.get("uid")
        if not uid:
            self.misses += 1
            return parse_request(obj)
        generation = int(meta.get("generation") or 0)
        kind = obj.get("kind", "")
        got = self._entries.get(uid)
        if got is not None and got[0] == generation and got[1] == kind:
            self.hits += 1
            return got[2]
        self.misses += 1
        request = parse_request(obj)
        if got is None and len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[uid] = (generation, kind, request)
        return request

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)
