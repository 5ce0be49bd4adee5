"""What every member-side workload operator shares: labels, ownership, shards, Events.

Theory of operation
-------------------
The workload operators (PinPod, PinApp, PinJob, PinTrainingJob, PinCronJob,
PinDaemon, PinSidecar) meet the rest of PinCompute only through API objects, so
the marks they leave must be spelled alike:

* **Ownership.** Everything an operator creates has one controlling owner
  reference to its workload (:func:`pincompute.kube.objects.owner_reference`,
  ``set_owner``, ``controller_of``) — garbage collection on real clusters, and
  the node agent keys a ``persistent`` volume by it — and the workload labels of
  :func:`workload_labels`; an operator lists its pods with
  :func:`owner_selector` (by uid: a name may be reused by a new object) and
  checks :func:`is_controlled_by` before touching one.
* **Shards.** The federation will split a host workload into per-cluster
  *shards* and write them into member clusters.  Until it does, a workload
  written into a member cluster is its own shard: :func:`shard_of` is where an
  operator reads what it must run (today the object itself), so that changing
  the rule later changes one function.
* **Status.** Conditions go through :func:`pincompute.kube.objects.set_condition`
  (``lastTransitionTime`` moves only on a flip); :func:`observe` stamps
  ``observedGeneration``.
* **Pod creation.** Operators create pods with :func:`create_pod`, never
  ``client.create(PODS, ...)``: it passes the pod through the *pod admission*
  hooks registered for that client (:func:`add_pod_admission`) first — the
  PinSidecar operator's injection (:mod:`.sidecarinjection`) is one — so what
  platform infrastructure adds to pods reaches every operator's pods alike, on
  embedded and real clusters (where no mutating webhook does it).
* **Events.** Every decision a user would want to see is an Event on the
  workload, written by :class:`pincompute.runtime.events.EventRecorder` (off the
  reconcile path, repeats aggregated); :func:`event_recorder` names it after the
  operator.  The reasons all operators share are spelled here.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from pincompute.kube.names import label_value
from pincompute.kube.objects import controller_of
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import PODS
from pincompute.kube.wellknown import APP_NAME_LABEL, APP_PART_OF_LABEL
from pincompute.model.wellknown import (
    APP_KIND_LABEL,
    APP_LABEL,
    INDEX_LABEL,
    OWNER_UID_LABEL,
    PART_OF,
    REVISION_LABEL,
    ROLE_LABEL,
    WORKLOAD_KIND_LABEL,
    WORKLOAD_NAME_LABEL,
)
from pincompute.runtime.cache import index_by_label
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager

Obj = dict[str, Any]

# --- Event reasons shared by the operators (CamelCase, as kube's controllers write them) -----

NORMAL: Final = "Normal"
WARNING: Final = "Warning"
CREATED: Final = "Created"
"""A pod (or claim) was created."""
DELETED: Final = "Deleted"
"""A pod was deleted (scaled down, replaced, finished with)."""
FAILED_CREATE: Final = "FailedCreate"
"""Creating a pod failed (Warning; the message says why)."""
FAILED_DELETE: Final = "FailedDelete"
SCALED: Final = "Scaled"
UPDATED_IN_PLACE: Final = "UpdatedInPlace"
"""Containers of a running pod were updated without recreating it."""
RECREATED: Final = "Recreated"
"""A pod was replaced because the change could not be made in place."""
FAILED_OVER: Final = "FailedOver"
"""A pod was recreated on another node after its node died or was drained."""
BACK_OFF: Final = "BackOff"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"


# --- labels and ownership --------------------------------------------------------------------

def workload_labels(owner: Mapping[str, Any], *, revision: str | None = None,
                    index: int | None = None, role: str | None = None) -> dict[str, str]:
    """The labels of everything ``owner`` creates: which workload, revision, index and role.

    ``app.kubernetes.io/name`` and ``pincompute.io/workload`` carry the owner's name
    when it fits a label value (63 characters); ``pincompute.io/owner-uid`` always does.
    ``pincompute.io/app`` and ``pincompute.io/app-kind`` name the top-level workload:
    inherited from ``owner``'s own labels when it has them (a PinApp's PinPod hands
    the PinApp's name on to its pod), else ``owner`` itself — service discovery
    (:mod:`.discovery`) groups pods by them.
    """
    md = owner["metadata"]
    name = md["name"]
    kind = owner["kind"].lower()
    out = {OWNER_UID_LABEL: md["uid"], WORKLOAD_KIND_LABEL: kind,
           APP_PART_OF_LABEL: PART_OF}
    if len(name) <= 63 and not label_value(name):
        out[WORKLOAD_NAME_LABEL] = name
        out[APP_NAME_LABEL] = name
    own = md.get("labels") or {}
    if own.get(APP_LABEL) and own.get(APP_KIND_LABEL):
        out[APP_LABEL] = own[APP_LABEL]
        out[APP_KIND_LABEL] = own[APP_KIND_LABEL]
    elif WORKLOAD_NAME_LABEL in out:
        out[APP_LABEL] = name
        out[APP_KIND_LABEL] = kind
    if revision is not None:
        out[REVISION_LABEL] = revision
    if index is not None:
        out[INDEX_LABEL] = str(index)
    if role is not None:
        out[ROLE_LABEL] = role
    return out


def owner_selector(owner: Mapping[str, Any]) -> dict[str, str]:
    """The label selector (``matchLabels``) of the objects ``owner`` created."""
    return {OWNER_UID_LABEL: owner["metadata"]["uid"]}


OWNER_INDEX: Final = "owner-uid"
"""The informer index of the objects each workload created, by its uid (see :func:`index_owned`)."""


def index_owned(informer: SharedInformer) -> SharedInformer:
    """Index ``informer`` (pods, claims, ...) by owner uid, so an operator reads a workload's
    objects with ``informer.by_index(OWNER_INDEX, uid)`` — no scan. Operators sharing the
    informer share the index (adding it twice is a no-op)."""
    informer.add_indexer(OWNER_INDEX, index_by_label(OWNER_UID_LABEL))
    return informer


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """``obj``'s controlling owner reference points at ``owner`` (by uid)."""
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


# --- shards ------------------------------------------------------------------------------------

def shard_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The shard of a workload this member cluster must run.

    Until the federation lands, a workload written into a member cluster is its own
    shard: this returns ``obj``. Operators read replicas and template from the result,
    never from ``obj`` directly, so the federation's rule replaces this one function.
    """
    return obj


# --- status ------------------------------------------------------------------------------------

def observe(obj: Obj, status: Obj | None = None) -> Obj:
    """Stamp ``status.observedGeneration`` with ``obj``'s generation; returns the status.

    ``status`` defaults to ``obj["status"]`` (created when absent).
    """
    target = status if status is not None else obj.setdefault("status", {})
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is not None:
        target["observedGeneration"] = generation
    return target


def resolve_count(value: int | str | None, total: int, *, round_up: bool,
                  default: int = 1) -> int:
    """An IntOrPercent (``maxUnavailable``, ``maxSurge``) as a count out of ``total``.

    ``"25%"`` of 10 is 3 with ``round_up`` (Kubernetes rounds maxSurge and a
    DaemonSet's maxUnavailable up), 2 without; ``None`` is ``default``.
    """
    if value is None:
        return default
    if isinstance(value, int):
        return value
    fraction = int(value.rstrip("%")) * total / 100
    return math.ceil(fraction) if round_up else math.floor(fraction)


# --- pod creation --------------------------------------------------------------------------------

PodAdmission = Callable[[Obj], Awaitable[Obj]]
"""A hook a pod passes through before it is created: returns the pod (changed or not)."""

_admission: weakref.WeakKeyDictionary[KubeClient, list[PodAdmission]] = \
    weakref.WeakKeyDictionary()


def add_pod_admission(client: KubeClient, hook: PodAdmission) -> Callable[[], None]:
    """Pass every pod :func:`create_pod` creates through ``client`` through ``hook``.

    Hooks run in the order added. Returns a function removing the hook (for a
    controller that stops). Keyed by the client object: the operators of one member
    cluster share their context's client.
    """
    hooks = _admission.setdefault(client, [])
    hooks.append(hook)

    def remove() -> None:
        if hook in hooks:
            hooks.remove(hook)

    return remove


async def admit_pod(client: KubeClient, pod: Obj) -> Obj:
    """``pod`` after every admission hook of ``client`` (the pod itself when none)."""
    for hook in tuple(_admission.get(client, ())):
        pod = await hook(pod)
    return pod


async def create_pod(client: KubeClient, pod: Obj) -> Obj:
    """Create ``pod`` (from :func:`~.podtemplate.pod_for`) after the pod admission hooks.

    Every operator creates its pods through this, so platform sidecars are injected
    into all of them. Returns the created pod; raises what ``client.create`` raises
    (``AlreadyExists`` for a stable name taken, ...).
    """
    pod = await admit_pod(client, pod)
    return await client.create(PODS, pod, namespace=pod["metadata"]["namespace"])


# --- events ------------------------------------------------------------------------------------

def event_recorder(client: KubeClient, *, operator: str, identity: str) -> EventRecorder:
    """The Event recorder of one operator in one member cluster.

    ``operator`` is its table name (``pinapps``), ``identity`` the process's
    (:func:`pincompute.controllers.identity`); Events show ``<operator>-controller``.
    Call ``recorder.record(obj, NORMAL, CREATED, "...")`` from a reconcile (it
    returns at once) and ``await recorder.close()`` when the manager stops
    (:func:`close_with_manager` arranges that).
    """
    return EventRecorder(client, component=f"{operator}-controller", host=identity)


def close_with_manager(manager: Manager, recorder: EventRecorder, *, name: str) -> None:
    """Close ``recorder`` (its pending writes flushed) when ``manager`` stops.

    A runnable on every replica, named ``<name>-events``, that waits for the end.
    """
    async def close_when_stopped() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await recorder.close()

    manager.add_runnable(close_when_stopped, name=f"{name}-events", needs_leader=False)


__all__ = [
    "BACK_OFF", "CREATED", "DELETED", "FAILED", "FAILED_CREATE", "FAILED_DELETE", "FAILED_OVER",
    "NORMAL", "OWNER_INDEX", "RECREATED", "SCALED", "SUCCEEDED", "UPDATED_IN_PLACE", "WARNING",
    "PodAdmission", "add_pod_admission", "admit_pod", "close_with_manager", "create_pod",
    "event_recorder",
    "index_owned", "is_controlled_by", "observe", "owner_selector", "resolve_count", "shard_of",
    "workload_labels",
]
