"""The PinPod operator's rules: the pod a PinPod wants, and what to do about the one it has.

Theory of operation
-------------------
Everything here is pure — dicts in, decisions out — so the rules are tested
without a cluster, and :mod:`.pinpods` only reads caches and writes what these
functions decide.

**The desired pod.**  :func:`desired_pod` turns a PinPod into its one Pod, named
like the PinPod (a stable identity: a replacement, on any node, has the same
name), through :func:`~.podtemplate.pod_for`.  Two hashes go on the pod so the
next decision needs only the pod: the *revision* (label; everything the PinPod
asks of the pod) and the *shape* (annotation, :func:`pod_shape`: what cannot
change on a live pod — volumes and pod-level fields, the set of containers,
tier and placement; on real clusters, where kube-apiserver lets only ``image``
change on a running pod, every container field but the image).  The per-container
hashes of :func:`~.podtemplate.pod_for` say which containers changed.  A
restart token (``spec.restarts``) is put into its container's environment
(:data:`RESTART_TOKEN_ENV`), so a new token is a change of that container alone:
the node agent restarts it alone, as it does for any changed container.

**The decision** is a table, :data:`ACTIONS`, from the :class:`Situation`
:func:`situation` finds — the PinPod, its pod (from the cache), the pod's node
and the clock — to an :class:`Action`.  The situations, in the order they are
checked:

* the pod is not ours (a pod of that name owned by something else) → report;
* ``spec.stopped``: a pod left → delete it; none → nothing;
* the pod is on a *dead* node — the Node is gone, or not Ready for longer than
  ``failover_grace`` — → force-delete it (nobody else will finish its deletion)
  and fail over;
* the pod is being deleted (a drain's eviction, the node lifecycle controller,
  a user, us) → wait for it to go (a drained node's pod: the failover's reason
  is noted first);
* the pod failed and must be replaced (``restartPolicy: Always``, or a node-side
  reason such as an eviction) → delete it and fail over;
* the pod finished for good (``Never``/``OnFailure``) → nothing;
* no pod: it was running before and we did not remove it (``status.podUID`` is
  still set) → *fail over*: create it again, recording from where and why; else
  → create it;
* a different shape → recreate (the status first says so, then the pod goes);
  another revision → update in place; else → nothing.

A failover is recorded in three steps, each durable in the status, so a restarted
manager carries on: the reason while the old pod goes (``pendingFailover``), an
entry in ``failoverHistory`` when the new pod is created, its ``toNode`` (and a
``FailedOver`` Event) once the scheduler has placed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pincompute.kube import objects
from pincompute.model.pod import PinPodSpec
from pincompute.model.views import spec_view
from pincompute.model.wellknown import (
    CONTAINER_HASHES_ANNOTATION,
    NODE_DRAIN_ANNOTATION,
    POD_SHAPE_ANNOTATION,
    PREFIX,
    RESTART_TOKEN_ENV,
    REVISION_LABEL,
    TIER_LABEL,
)

from .operator import is_controlled_by
from .podtemplate import Backend, parse_hashes, pod_for, template_hash
from .sidecarinjection import strip_injected

Obj = dict[str, Any]

_PINPOD_ONLY = ("tier", "placement", "stopped", "restarts")
"""PinPodSpec fields that are not PodSpec fields."""
REPLACED_REASONS = frozenset({"Evicted", "Preempting", "Shutdown", "Terminated", "NodeLost",
                              "NodeShutdown", "UnexpectedAdmissionError"})
"""A failed pod with one of these reasons failed because of its node, not its containers:
replaced whatever the restart policy."""


# --- the desired pod ----------------------------------------------------------------------------

def pod_template(pinpod: Mapping[str, Any]) -> Obj:
    """The PinPod as a pod template: its labels, its PodSpec with restart tokens applied."""
    spec = {k: v for k, v in pinpod["spec"].items() if k not in _PINPOD_ONLY}
    restarts = pinpod["spec"].get("restarts") or {}
    if restarts:
        spec["containers"] = [_with_token(c, restarts[c["name"]]) if c["name"] in restarts
                              else c for c in spec["containers"]]
    labels = dict(objects.meta(pinpod).get("labels") or {})
    # The user's annotations (the app template's: sim profiles, metrics scraping) reach
    # the pod; PinCompute's own (pincompute.io/...) are the PinPod's business only.
    annotations = {k: v for k, v in (objects.meta(pinpod).get("annotations") or {}).items()
                   if not k.startswith(PREFIX)}
    md: Obj = {"labels": labels, **({"annotations": annotations} if annotations else {})}
    return {"metadata": md, "spec": spec}


def _with_token(container: Mapping[str, Any], token: str) -> Obj:
    env = [e for e in container.get("env") or () if e.get("name") != RESTART_TOKEN_ENV]
    return {**container, "env": [*env, {"name": RESTART_TOKEN_ENV, "value": token}]}


def pod_shape(template: Mapping[str, Any], *, backend: Backend, tier: str,
              tolerations: Sequence[Mapping[str, Any]]) -> str:
    """The hash of what cannot change on a live pod (see the module docstring)."""
    spec = template["spec"]
    if backend == "embedded":
        containers: list[Any] = [(c["name"], c.get("type") or "main")
                                 for c in spec["containers"]]
    else:
        containers = [{k: v for k, v in c.items() if k != "image"} for c in spec["containers"]]
    rest = {k: v for k, v in spec.items() if k != "containers"}
    return template_hash({"spec": rest, "containers": containers, "tier": tier,
                          "tolerations": list(tolerations)})


def desired_pod(pinpod: Mapping[str, Any], *, backend: Backend) -> Obj:
    """The Pod ``pinpod`` wants (not yet bound), with its revision and shape."""
    spec = spec_view(PinPodSpec, pinpod)
    template = pod_template(pinpod)
    placement = pinpod["spec"].get("placement") or {}
    tolerations = placement.get("tolerations") or []
    tier = spec.tier
    shape = pod_shape(template, backend=backend, tier=tier, tolerations=tolerations)
    revision = template_hash({"template": template, "shape": shape})
    md = objects.meta(pinpod)
    return pod_for(template, name=md["name"], namespace=md["namespace"], owner=pinpod,
                   backend=backend, tier=tier, tolerations=tolerations, revision=revision,
                   annotations={POD_SHAPE_ANNOTATION: shape})


def shape_of(pod: Mapping[str, Any]) -> str | None:
    return (objects.meta(pod).get("annotations") or {}).get(POD_SHAPE_ANNOTATION)


def revision_of(pod: Mapping[str, Any]) -> str | None:
    return (objects.meta(pod).get("labels") or {}).get(REVISION_LABEL)


def changed_containers(live: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Containers of ``desired`` whose hash differs from the live pod's, in spec order."""
    old = parse_hashes((objects.meta(live).get("annotations") or {}).get(
        CONTAINER_HASHES_ANNOTATION))
    new = parse_hashes((objects.meta(desired).get("annotations") or {}).get(
        CONTAINER_HASHES_ANNOTATION))
    return [name for name, h in new.items() if old.get(name) != h]


def why_recreate(live: Mapping[str, Any], desired: Mapping[str, Any], *,
                 backend: Backend) -> str:
    """Why the change cannot be made in place, in words (for the status and the Event)."""
    # What the platform injected (PinSidecars) is not the PinPod's change.
    old_spec, new_spec = strip_injected(live.get("spec") or {}, live), desired.get("spec") or {}
    old_names = [c["name"] for c in old_spec.get("containers") or ()] + [
        c["name"] for c in old_spec.get("initContainers") or ()]
    new_names = [c["name"] for c in new_spec.get("containers") or ()] + [
        c["name"] for c in new_spec.get("initContainers") or ()]
    reasons: list[str] = []
    if sorted(old_names) != sorted(new_names):
        reasons.append("containers were added or removed")
    fields = sorted(k for k in {*old_spec, *new_spec} - {"containers", "initContainers",
                                                         "nodeName"}
                    if k in new_spec and old_spec.get(k) != new_spec.get(k))
    if backend == "embedded" and fields:
        reasons.append(f"pod fields changed: {', '.join(fields)}")
    if (objects.meta(live).get("labels") or {}).get(TIER_LABEL) != \
            (objects.meta(desired).get("labels") or {}).get(TIER_LABEL):
        reasons.append("the tier changed")
    changed = changed_containers(live, desired)
    if backend == "kubernetes" and changed:
        reasons.append(f"containers {', '.join(changed)} changed beyond their image "
                       "(a running pod's other fields cannot change on this cluster)")
    if not reasons:
        reasons.append("volumes, placement or pod-level fields changed")
    return "; ".join(reasons)


# --- nodes ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NodeHealth:
    dead: bool
    """The pod cannot run there any more: fail over."""
    reason: str = ""
    """``NodeGone`` or ``NodeNotReady`` when dead; ``NodeDrained`` when leaving."""
    recheck_in: float | None = None
    """Not Ready but within the grace: look again in this many seconds."""


def node_health(node: Mapping[str, Any] | None, *, now: float, grace: float) -> NodeHealth:
    """How the pod's node is, for failover (``now``: epoch seconds)."""
    if node is None:
        return NodeHealth(dead=True, reason="NodeGone")
    ready = objects.get_condition(node, "Ready")
    if ready is not None and ready.get("status") != "True":
        since = ready.get("lastTransitionTime")
        elapsed = now - objects.parse_time(since).timestamp() if since else grace
        if elapsed >= grace:
            return NodeHealth(dead=True, reason="NodeNotReady")
        return NodeHealth(dead=False, reason="NodeNotReady", recheck_in=grace - elapsed)
    if NODE_DRAIN_ANNOTATION in (objects.meta(node).get("annotations") or {}):
        return NodeHealth(dead=False, reason="NodeDrained")
    return NodeHealth(dead=False)


# --- the decision table -------------------------------------------------------------------------

class Situation(StrEnum):
    FOREIGN = "Foreign"
    """A pod of the PinPod's name that is not ours."""
    STOPPING = "Stopping"
    """``spec.stopped`` and a pod left."""
    STOPPED = "Stopped"
    """``spec.stopped``, no pod."""
    STRANDED = "Stranded"
    """The pod's node is dead."""
    TERMINATING = "Terminating"
    """The pod is being deleted, its node alive."""
    FAILED = "Failed"
    """The pod failed and must be replaced."""
    FINISHED = "Finished"
    """The pod is done for good (restartPolicy Never or OnFailure)."""
    LOST = "Lost"
    """No pod, though one was running and we did not remove it: fail over."""
    ABSENT = "Absent"
    """No pod, none expected (new, started, or recreated on purpose)."""
    RESHAPED = "Reshaped"
    """The pod's shape differs: the change cannot be made in place."""
    CHANGED = "Changed"
    """Only containers (or labels) differ: update in place."""
    CURRENT = "Current"


class Action(StrEnum):
    REPORT = "Report"
    """Tell the user (Warning) and leave the pod alone."""
    DELETE = "Delete"
    """Delete the pod gracefully, on purpose (stop): ``podUID`` cleared first."""
    FORCE_DELETE = "ForceDelete"
    """Remove the pod at once (its node will not), noting the failover's reason."""
    REPLACE = "Replace"
    """Delete the failed pod, noting the failover's reason."""
    WAIT = "Wait"
    """Nothing to do until the pod is gone."""
    FAIL_OVER = "FailOver"
    """Create the pod again and record a failover."""
    CREATE = "Create"
    RECREATE = "Recreate"
    """Say so in the status, then delete the pod (it is created again once gone)."""
    UPDATE_IN_PLACE = "UpdateInPlace"
    NONE = "None"


ACTIONS: Mapping[Situation, Action] = {
    Situation.FOREIGN: Action.REPORT,
    Situation.STOPPING: Action.DELETE,
    Situation.STOPPED: Action.NONE,
    Situation.STRANDED: Action.FORCE_DELETE,
    Situation.TERMINATING: Action.WAIT,
    Situation.FAILED: Action.REPLACE,
    Situation.FINISHED: Action.NONE,
    Situation.LOST: Action.FAIL_OVER,
    Situation.ABSENT: Action.CREATE,
    Situation.RESHAPED: Action.RECREATE,
    Situation.CHANGED: Action.UPDATE_IN_PLACE,
    Situation.CURRENT: Action.NONE,
}
"""What the operator does in each situation."""


def situation(pinpod: Mapping[str, Any], pod: Mapping[str, Any] | None, *,
              desired: Mapping[str, Any], node: NodeHealth | None) -> Situation:
    """Where the PinPod stands (see the module docstring for the order of the checks).

    ``node``: the health of the pod's node, ``None`` when the pod is not bound.
    """
    spec = pinpod["spec"]
    status = pinpod.get("status") or {}
    if pod is not None and not is_controlled_by(pod, pinpod):
        return Situation.FOREIGN
    if spec.get("stopped"):
        return Situation.STOPPED if pod is None else Situation.STOPPING
    if pod is None:
        return Situation.LOST if status.get("podUID") else Situation.ABSENT
    if node is not None and node.dead:
        return Situation.STRANDED
    if objects.is_deleting(pod):
        return Situation.TERMINATING
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed" and (spec.get("restartPolicy") == "Always" or
                              (pod.get("status") or {}).get("reason") in REPLACED_REASONS):
        return Situation.FAILED
    if phase in ("Succeeded", "Failed"):
        return Situation.FINISHED
    if shape_of(pod) != shape_of(desired):
        return Situation.RESHAPED
    if revision_of(pod) != revision_of(desired):
        return Situation.CHANGED
    return Situation.CURRENT


def updated_in_place(live: Mapping[str, Any], desired: Mapping[str, Any], *,
                     backend: Backend) -> Obj:
    """The live pod with the desired containers (embedded: whole containers; real clusters:
    their images), labels and hashes — for an update, keeping its resourceVersion."""
    pod = objects.deepcopy(live)
    md = pod["metadata"]
    want_md = desired["metadata"]
    md.setdefault("labels", {}).update(want_md.get("labels") or {})
    md.setdefault("annotations", {}).update(want_md.get("annotations") or {})
    changed = set(changed_containers(live, desired))
    spec, want = pod["spec"], desired["spec"]
    for key in ("containers", "initContainers"):
        wanted = {c["name"]: c for c in want.get(key) or ()}
        for i, c in enumerate(spec.get(key) or ()):
            if c["name"] not in changed or c["name"] not in wanted:
                continue
            if backend == "embedded":
                spec[key][i] = objects.deepcopy(wanted[c["name"]])
            else:
                spec[key][i] = {**c, "image": wanted[c["name"]]["image"]}
    return pod


__all__ = [
    "ACTIONS", "REPLACED_REASONS", "Action", "NodeHealth", "Situation", "changed_containers",
    "desired_pod", "node_health", "pod_shape", "pod_template", "revision_of", "shape_of",
    "situation", "updated_in_place", "why_recreate",
]
