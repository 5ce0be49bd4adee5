"""The PinApp operator: N PinPod replicas, rolled out like a Deployment's pods.

Theory of operation
-------------------
PinApp → PinPods → Pods (DESIGN §5): this operator keeps an app's PinPods, and
the PinPod operator turns each into its pod (in place when only containers
change).  A level-triggered reconciler per PinApp on two informers, PinApps and
PinPods (owned; indexed by their controller's uid).  Each pass:

1. a rollback request (the :data:`~pincompute.model.wellknown.ROLLBACK_TO_ANNOTATION`
   the API sets) is applied first: that revision's template, from the history,
   is written into the spec and the annotation removed, in one update;
2. the update revision is the hash of the template (with tier and placement),
   its *shape* the hash with container images blanked;
3. the app's PinPods become :class:`~.rollout.Replica` records — revision (label),
   shape (annotation), ready and *available* (the PinPod Ready, on its current spec
   — the images its pod reports are the spec's — for ``minReadySeconds``);
4. :func:`~.rollout.phase_of` and the :data:`~.rollout.STEPS` table say what to
   do, :func:`~.rollout.plan` how much; the plan is carried out: PinPods created
   (named ``<app>-<5 random characters>``, as a ReplicaSet names pods), deleted
   (foreground: a PinPod is gone once its pod is, which Recreate waits for) or
   updated in place (their containers' images);
5. the status — counts, revisions, the history (:mod:`.apphistory`), conditions
   Available/Progressing/Paused/Stopped — is written, and Events say what changed.

Restarts: everything the operator must remember is in the API — the PinPods
(labels: revision; annotation: shape) and the app's status (history, progress
time).  Its caches lag its own writes, so created names and deleted or updated
PinPods are remembered (:class:`~.expectations.Expectations`) until the cache
shows them; a restarted manager lists afresh and needs none of it.  Creating
with random names can therefore neither duplicate (the pass waits for its
creations to show) nor lose a replica (the count is always re-read).

Stop/start: ``spec.stopped`` keeps ``spec.replicas`` untouched, so starting
returns to the previous count with nothing else to remember.  Restart: a new
:data:`~pincompute.model.wellknown.RESTARTED_AT_ANNOTATION` in the template is
a new revision (a rolling restart, like ``kubectl rollout restart``).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.names import generate_name
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.model.app import PinAppSpec
from pincompute.model.registry import PINAPPS, PINPODS
from pincompute.model.views import spec_view
from pincompute.model.wellknown import (
    APP_UID_LABEL,
    REVISION_LABEL,
    ROLLBACK_TO_ANNOTATION,
    TEMPLATE_SHAPE_ANNOTATION,
)
from pincompute.runtime.cache import index_by_controller_uid
from pincompute.runtime.controller import Controller, Event, not_status_only
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from . import apphistory
from .expectations import TTL, Expectations
from .operator import (
    FAILED_CREATE,
    NORMAL,
    UPDATED_IN_PLACE,
    WARNING,
    close_with_manager,
    event_recorder,
    observe,
    shard_of,
    workload_labels,
)
from .podtemplate import Backend, template_hash
from .rollout import PHASES, STEPS, Phase, Plan, Replica, Step, bounds, phase_of, plan
from .slowstart import slow_start

Obj = dict[str, Any]

BY_APP = "pinapps:controller-uid"
"""The PinPod informer's index by controlling owner uid."""

SCALED_UP: Final = "ScaledUp"
SCALED_DOWN: Final = "ScaledDown"
ROLLOUT_STARTED: Final = "RolloutStarted"
ROLLOUT_COMPLETED: Final = "RolloutCompleted"
PAUSED: Final = "Paused"
RESUMED: Final = "Resumed"
STOPPED: Final = "Stopped"
STARTED: Final = "Started"
ROLLBACK: Final = "Rollback"
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"

_log = get_logger(__name__)


# --- the PinPods of an app (pure) ---------------------------------------------------------------

def app_template(app: Mapping[str, Any]) -> Obj:
    """What a revision is made of: the template, with the tier and placement."""
    spec = app["spec"]
    return {"template": spec["template"], "tier": spec.get("tier"),
            "placement": spec.get("placement")}


def revision_of(app: Mapping[str, Any]) -> tuple[str, str]:
    """The app's update revision and its shape (the hash with container images blanked)."""
    whole = app_template(app)
    revision = template_hash(whole)
    blank = objects.deepcopy(whole)
    for c in blank["template"]["spec"].get("containers") or ():
        c["image"] = ""
    return revision, template_hash(blank)


def pinpod_for(app: Mapping[str, Any], template: Mapping[str, Any], *, name: str,
               revision: str, shape: str) -> Obj:
    """The PinPod of one replica of ``app`` running ``template``."""
    md = template.get("metadata") or {}
    spec = objects.deepcopy(template["spec"])
    spec["tier"] = app["spec"].get("tier") or "ondemand"
    if app["spec"].get("placement"):
        spec["placement"] = objects.deepcopy(app["spec"]["placement"])
    labels = {**(md.get("labels") or {}), **workload_labels(app, revision=revision),
              APP_UID_LABEL: objects.uid_of(app)}
    annotations = {**(md.get("annotations") or {}), TEMPLATE_SHAPE_ANNOTATION: shape}
    return {"apiVersion": PINPODS.api_version, "kind": PINPODS.kind,
            "metadata": {"name": name, "namespace": objects.namespace_of(app),
                         "labels": labels, "annotations": annotations,
                         "ownerReferences": [objects.owner_reference(app)]},
            "spec": spec}


def replica_of(pinpod: Mapping[str, Any], *, min_ready_seconds: int, now: float) -> Replica:
    md = objects.meta(pinpod)
    ready = objects.get_condition(pinpod, "Ready") or {}
    is_ready = ready.get("status") == "True" and \
        ready.get("observedGeneration") in (None, md.get("generation"))
    available = is_ready and _runs_spec(pinpod)
    if available and min_ready_seconds > 0:
        since = ready.get("lastTransitionTime")
        available = bool(since) and now - objects.parse_time(str(since)).timestamp() >= \
            min_ready_seconds
    return Replica(name=md["name"], revision=(md.get("labels") or {}).get(REVISION_LABEL, ""),
                   shape=(md.get("annotations") or {}).get(TEMPLATE_SHAPE_ANNOTATION, ""),
                   ready=is_ready, available=available)


def replica_changed(event: Event) -> bool:
    """A PinPod event its app must see: added, deleted, being deleted, its controller or
    what the app counts of it (:func:`replica_of`) changed.  A pod's move changes its
    PinPod's status four or five times (terminating, failing over, placed, running,
    ready); the app looks at every replica on each pass, so only two of those reach it."""
    if event.type != "update" or event.old is None:
        return True
    old, new = event.old, event.object
    if objects.is_deleting(old) != objects.is_deleting(new) or \
            objects.controller_of(old) != objects.controller_of(new):
        return True
    return replica_of(old, min_ready_seconds=0, now=0.0) != \
        replica_of(new, min_ready_seconds=0, now=0.0) or _ready_since(old) != _ready_since(new)


def _ready_since(pinpod: Mapping[str, Any]) -> Any:
    return (objects.get_condition(pinpod, "Ready") or {}).get("lastTransitionTime")


def _runs_spec(pinpod: Mapping[str, Any]) -> bool:
    """The images the pod reports are the spec's (an in-place update has reached it)."""
    want = {c["name"]: c.get("image") for c in pinpod["spec"].get("containers") or ()}
    for c in (pinpod.get("status") or {}).get("containerStatuses") or ():
        image = c.get("image")
        if image and c.get("name") in want and want[c["name"]] != image:
            return False
    return True


# --- the reconciler ----------------------------------------------------------------------------

class PinAppReconciler:
    """Keeps each PinApp's PinPods as declared (see the module docstring)."""

    def __init__(self, *, client: KubeClient, backend: Backend, pinapps: SharedInformer,
                 pinpods: SharedInformer, recorder: EventRecorder) -> None:
        self.client = client
        self.backend = backend
        self.pinapps = pinapps
        self.pinpods = pinpods
        self.recorder = recorder
        self.expect = Expectations()
        self._replicas: dict[str, tuple[str | None, Replica]] = {}
        """PinPod uid → (resourceVersion, its Replica) (see :meth:`_replica`)."""
        self.in_place: dict[str, tuple[str, float]] = {}
        """PinPod uid → (the revision it was updated to in place, until when to expect it):
        the cache may still show the old revision."""

    async def reconcile(self, request: Request) -> Result | None:
        cached = self.pinapps.get(request.name, namespace=request.namespace)
        if cached is None or objects.is_deleting(cached):
            return None  # its PinPods go with it (owner references)
        annotations = objects.meta(cached).get("annotations") or {}
        if ROLLBACK_TO_ANNOTATION in annotations:
            return await self._rollback(cached, annotations[ROLLBACK_TO_ANNOTATION])
        try:
            return await self._sync(cached)
        except Conflict:
            return Result(requeue=True)

    async def _sync(self, cached: Mapping[str, Any]) -> Result | None:
        app = shard_of(cached)
        uid = objects.uid_of(app)
        spec = spec_view(PinAppSpec, app)
        now = time.time()
        owned = self.pinpods.by_index(BY_APP, uid)  # the index is by controller uid
        if self.expect.creations_pending(uid, (objects.name_of(p) for p in owned)):
            return Result(requeue_after=0.2)  # our last creations are not in the cache yet
        update_revision, update_shape = revision_of(app)
        live: list[Obj] = []
        terminating = 0
        replicas: list[Replica] = []
        for p in owned:
            if objects.is_deleting(p) or self.expect.released(objects.uid_of(p),
                                                              still_held=True):
                terminating += 1
                continue
            live.append(p)
            r = self._replica(p, min_ready_seconds=spec.min_ready_seconds, now=now)
            if self._updated_unseen(objects.uid_of(p), r.revision, update_revision, now):
                r = Replica(r.name, update_revision, update_shape)  # updated, not yet seen
            replicas.append(r)
        by_name = {objects.name_of(p): p for p in live}
        old_status: Mapping[str, Any] = cached.get("status") or {}
        want = 0 if spec.stopped else spec.replicas
        new = [r for r in replicas if r.revision == update_revision]
        old = [r for r in replicas if r.revision != update_revision]
        available = sum(1 for r in replicas if r.available)
        complete = not old and len(new) == want and available == want and not terminating
        stalled_for, progress_time = self._progress(old_status, update_revision, replicas,
                                                    now=now)
        phase = phase_of(stopped=spec.stopped, paused=spec.paused,
                         recreate=spec.strategy.type == "Recreate", old=len(old),
                         terminating=terminating,
                         complete=complete, stalled_for=stalled_for,
                         deadline=spec.progress_deadline_seconds)
        step = STEPS[phase]
        counts = Counter(r.revision for r in replicas)
        current = update_revision if complete else (
            counts.most_common(1)[0][0] if old and counts else
            old_status.get("currentRevision") or update_revision)
        history = apphistory.record(
            old_status.get("revisions") or (), revision=update_revision,
            template=app["spec"]["template"], live=set(counts) | {current},
            limit=spec.revision_history_limit, now=objects.now())
        rolling = spec.strategy.rolling_update
        todo = plan(step, replicas, want=want, update_revision=update_revision,
                    update_shape=update_shape, current_revision=current,
                    bounds=bounds(want, max_surge=rolling.max_surge if rolling else 0,
                                  max_unavailable=rolling.max_unavailable if rolling else 1))
        if step is Step.RECREATE and todo.create and terminating:
            todo = Plan()  # Recreate: the old pods must be gone first
        obj = objects.deepcopy(cached)
        self._events(obj, old_status, phase, update_revision, old_replicas=len(old))
        await self._carry_out(obj, todo, by_name, history=history, step=step,
                              update_revision=update_revision, update_shape=update_shape)
        status = self._status(obj, replicas, phase=phase, want=want, available=available,
                              update_revision=update_revision, current=current,
                              history=history, progress_time=progress_time, spec=spec)
        await self._write_status(obj, status)
        if phase in (Phase.PROGRESSING, Phase.RECREATING) and not todo.empty:
            return None  # the changes we made bring us back
        if phase is Phase.PROGRESSING:
            # Wake for the deadline, and for minReadySeconds to pass.
            wait = spec.progress_deadline_seconds - stalled_for
            if spec.min_ready_seconds:
                wait = min(wait, 1.0)
            return Result(requeue_after=max(0.2, wait))
        if phase is Phase.COMPLETE and spec.min_ready_seconds and \
                any(r.ready and not r.available for r in replicas):
            return Result(requeue_after=1.0)
        return None

    def _replica(self, pinpod: Mapping[str, Any], *, min_ready_seconds: int,
                 now: float) -> Replica:
        """:func:`replica_of`, remembered per PinPod version: an app's reconcile looks at
        every replica, and most have not changed since its last one.  With
        ``minReadySeconds`` the answer depends on the clock and is not remembered."""
        if min_ready_seconds > 0:
            return replica_of(pinpod, min_ready_seconds=min_ready_seconds, now=now)
        md = objects.meta(pinpod)
        uid, rv = md.get("uid") or "", md.get("resourceVersion")
        hit = self._replicas.get(uid)
        if hit is not None and hit[0] == rv:
            return hit[1]
        replica = replica_of(pinpod, min_ready_seconds=0, now=now)
        self._replicas[uid] = (rv, replica)
        return replica

    def forget(self, pinpod: Mapping[str, Any]) -> None:
        self._replicas.pop(objects.uid_of(pinpod), None)

    def _updated_unseen(self, uid: str, seen: str, update_revision: str, now: float) -> bool:
        expected = self.in_place.get(uid)
        if expected is None:
            return False
        revision, until = expected
        if seen == revision or until < now:
            del self.in_place[uid]
            return False
        return revision == update_revision

    # -- progress and events --------------------------------------------------------------------

    def _progress(self, status: Mapping[str, Any], revision: str,
                  replicas: Sequence[Replica], *, now: float) -> tuple[float, str]:
        """Seconds since the rollout last moved, and the time to record."""
        seen = (status.get("updateRevision"), status.get("replicas"),
                status.get("updatedReplicas"), status.get("readyReplicas"),
                status.get("availableReplicas"))
        counts = (revision, len(replicas), sum(1 for r in replicas if r.revision == revision),
                  sum(1 for r in replicas if r.ready), sum(1 for r in replicas if r.available))
        last = status.get("lastProgressTime")
        if last is None or seen != counts or status.get("phase") in ("Paused", "Stopped"):
            return 0.0, objects.now()
        return now - objects.parse_time(last).timestamp(), last

    def _events(self, app: Obj, old: Mapping[str, Any], phase: Phase, revision: str, *,
                old_replicas: int) -> None:
        """Events for what changed since the status last written (``old``)."""
        before = old.get("phase")
        name = objects.name_of(app)
        after = PHASES[phase].status_phase
        if before != after:
            if phase is Phase.PAUSED:
                self.recorder.record(app, NORMAL, PAUSED, f"PinApp {name} paused")
            elif phase is Phase.STOPPED:
                self.recorder.record(app, NORMAL, STOPPED, f"PinApp {name} stopped")
            elif phase is Phase.FAILED:
                self.recorder.record(app, WARNING, PROGRESS_DEADLINE_EXCEEDED,
                                     f"PinApp {name} has not progressed for "
                                     f"{app['spec'].get('progressDeadlineSeconds', 600)}s")
            if before == "Paused" and phase is not Phase.STOPPED:
                self.recorder.record(app, NORMAL, RESUMED, f"PinApp {name} resumed")
            if before == "Stopped" and phase is not Phase.PAUSED:
                self.recorder.record(app, NORMAL, STARTED, f"PinApp {name} started")
            if phase is Phase.COMPLETE and before in ("Progressing", "Failed"):
                self.recorder.record(app, NORMAL, ROLLOUT_COMPLETED,
                                     f"Revision {revision} rolled out")
        # A rollout starts when replicas of another revision must be replaced: a new
        # template, or the first pass after a pause or a stop that left some.
        rolling = phase in (Phase.PROGRESSING, Phase.RECREATING) and old_replicas > 0
        if rolling and old and (old.get("updateRevision") != revision or
                                before not in ("Progressing", "Failed")):
            self.recorder.record(app, NORMAL, ROLLOUT_STARTED,
                                 f"Rolling out revision {revision}")

    # -- acting -----------------------------------------------------------------------------------

    async def _carry_out(self, app: Obj, todo: Plan, by_name: Mapping[str, Obj], *,
                         history: Sequence[Mapping[str, Any]], step: Step,
                         update_revision: str, update_shape: str) -> None:
        uid = objects.uid_of(app)
        name = objects.name_of(app)
        if todo.delete:
            for victim in todo.delete:
                pinpod = by_name[victim]
                with contextlib.suppress(NotFound):
                    await self.client.delete(
                        PINPODS, victim, namespace=objects.namespace_of(pinpod),
                        propagation_policy="Foreground",
                        preconditions=Preconditions(uid=objects.uid_of(pinpod)))
                # Until the cache shows it being deleted, it is not a live replica.
                self.expect.release(objects.uid_of(pinpod))
            self.recorder.record(app, NORMAL, SCALED_DOWN,
                                 f"Scaled down: deleted PinPods {', '.join(todo.delete)}")
        if todo.in_place:
            for target in todo.in_place:
                pinpod = objects.deepcopy(by_name[target])
                want = pinpod_for(app, app["spec"]["template"], name=target,
                                  revision=update_revision, shape=update_shape)
                pinpod["spec"] = want["spec"]
                pinpod["metadata"]["labels"] = want["metadata"]["labels"]
                pinpod["metadata"]["annotations"] = {
                    **(pinpod["metadata"].get("annotations") or {}),
                    **want["metadata"]["annotations"]}
                await self.client.update(PINPODS, pinpod)
                self.in_place[objects.uid_of(pinpod)] = (update_revision, time.time() + TTL)
            self.recorder.record(app, NORMAL, UPDATED_IN_PLACE,
                                 f"Updated PinPods {', '.join(todo.in_place)} in place to "
                                 f"revision {update_revision} (only images changed)")
        if todo.create:
            revision = todo.revision or update_revision
            template: Mapping[str, Any] = app["spec"]["template"]
            shape = update_shape
            if revision != update_revision:  # paused: the current revision's template
                entry = apphistory.find(history, revision)
                if entry is not None and entry.get("template"):
                    template = entry["template"]
                    whole = {**app, "spec": {**app["spec"], "template": template}}
                    revision, shape = revision_of(whole)
                else:
                    revision = update_revision
            namespace = objects.namespace_of(app)

            async def make_one() -> str | None:
                pinpod_name = generate_name(f"{name}-")
                try:
                    await self.client.create(PINPODS, pinpod_for(
                        app, template, name=pinpod_name, revision=revision, shape=shape),
                        namespace=namespace)
                except AlreadyExists:
                    return None  # a random name taken: the next pass makes another
                # Until the cache shows it, the next pass waits (it would create more).
                self.expect.created(uid, pinpod_name)
                return pinpod_name

            # Side by side in doubling batches: one commit wait per batch, not per replica.
            results, error = await slow_start(todo.create, make_one)
            made = [n for n in results if n is not None]
            if error is not None:
                self.recorder.record(app, WARNING, FAILED_CREATE,
                                     f"Error creating a PinPod: {error}")
            if made:
                self.recorder.record(app, NORMAL, SCALED_UP,
                                     f"Scaled up: created PinPods {', '.join(made)} "
                                     f"(revision {revision})")
            if error is not None:
                raise error

    async def _rollback(self, cached: Mapping[str, Any], target: str) -> Result | None:
        app = objects.deepcopy(cached)
        history = (cached.get("status") or {}).get("revisions") or []
        entry = apphistory.find(history, target)
        del app["metadata"]["annotations"][ROLLBACK_TO_ANNOTATION]
        if entry is None or not entry.get("template"):
            self.recorder.record(app, WARNING, ROLLBACK,
                                 f"Cannot roll back to revision {target or 'previous'}: "
                                 "not in the history")
        else:
            app["spec"]["template"] = objects.deepcopy(entry["template"])
            self.recorder.record(app, NORMAL, ROLLBACK,
                                 f"Rolled back to revision {entry.get('revision')} "
                                 f"(number {entry.get('number')})")
        try:
            await self.client.update(PINAPPS, app)
        except (Conflict, NotFound):
            return Result(requeue=True)
        return None

    # -- status -----------------------------------------------------------------------------------

    def _status(self, obj: Obj, replicas: Sequence[Replica], *, phase: Phase, want: int,
                available: int, update_revision: str, current: str,
                history: Sequence[Mapping[str, Any]], progress_time: str,
                spec: PinAppSpec) -> Obj:
        status: Obj = obj.setdefault("status", {})
        status.update(
            replicas=len(replicas),
            readyReplicas=sum(1 for r in replicas if r.ready),
            availableReplicas=available,
            updatedReplicas=sum(1 for r in replicas if r.revision == update_revision),
            unavailableReplicas=max(0, want - available),
            selector=f"{APP_UID_LABEL}={objects.uid_of(obj)}",
            currentRevision=current, updateRevision=update_revision,
            revisions=list(history), lastProgressTime=progress_time,
            phase=PHASES[phase].status_phase)
        rolling = spec.strategy.rolling_update
        # Recreate promises no availability during an update, but the app is available
        # only with every replica (as a Deployment's maxUnavailable is 0 for Recreate).
        need = want - (bounds(want, max_surge=rolling.max_surge,
                              max_unavailable=rolling.max_unavailable).unavailable
                       if rolling else 0)
        generation = objects.meta(obj).get("generation")
        facts = PHASES[phase]
        objects.set_condition(obj, "Available", available >= need and want > 0,
                              reason="MinimumReplicasAvailable" if available >= need
                              else "MinimumReplicasUnavailable",
                              message=f"{available} of {want} replicas available",
                              observed_generation=generation)
        objects.set_condition(obj, "Progressing", facts.progressing, reason=facts.reason,
                              observed_generation=generation)
        objects.set_condition(obj, "Paused", spec.paused,
                              reason="Paused" if spec.paused else "Resumed",
                              observed_generation=generation)
        objects.set_condition(obj, "Stopped", spec.stopped,
                              reason="Stopped" if spec.stopped else "Started",
                              observed_generation=generation)
        observe(obj)
        return status

    async def _write_status(self, obj: Obj, status: Obj) -> None:
        cached = self.pinapps.get(objects.name_of(obj), namespace=objects.namespace_of(obj))
        if cached is not None and _same(cached.get("status") or {}, status):
            return
        with contextlib.suppress(NotFound):
            await self.client.update_status(PINAPPS, obj)


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Equal but for the progress time (it moves only with the counts)."""
    return {k: v for k, v in old.items() if k != "lastProgressTime"} == \
        {k: v for k, v in new.items() if k != "lastProgressTime"}


def add_pinapp_controller(manager: Manager, *, client: KubeClient, backend: Backend,
                          identity: str, name: str = "pinapps",
                          batch: float = 0.05, workers: int = 8) -> Controller:
    """Run the PinApp operator for the member cluster ``client`` in ``manager``.

    ``workers``: apps reconciled at once (never the same one twice); a reconcile waits
    for its writes' commits, which other apps' writes share.

    ``batch``: seconds a PinPod's change waits for its app's other PinPods' changes, so
    that a drain moving many of an app's replicas at once costs one reconcile of the
    app (each looks at every replica), not one per change."""
    pinapps = manager.informer(client, PINAPPS)
    pinpods = manager.informer(client, PINPODS)
    pinpods.add_indexer(BY_APP, index_by_controller_uid)
    recorder = event_recorder(client, operator="pinapps", identity=identity)
    reconciler = PinAppReconciler(client=client, backend=backend, pinapps=pinapps,
                                  pinpods=pinpods, recorder=recorder)
    controller = manager.controller(name, reconciler, workers=workers)
    # Not on its own status writes (one per replica turning ready or not, at a drain):
    # every reconcile looks at every replica, and what it wrote it already knew.
    controller.for_(pinapps, predicate=not_status_only)
    controller.owns(pinpods, owner=PINAPPS, batch=batch, predicate=replica_changed)
    pinpods.add_event_handler(on_delete=reconciler.forget)

    close_with_manager(manager, recorder, name=name)
    return controller


__all__ = [
    "BY_APP", "PAUSED", "PROGRESS_DEADLINE_EXCEEDED", "RESUMED", "ROLLBACK",
    "ROLLOUT_COMPLETED", "ROLLOUT_STARTED", "SCALED_DOWN", "SCALED_UP", "STARTED", "STOPPED",
    "PinAppReconciler", "add_pinapp_controller", "app_template", "pinpod_for", "replica_changed",
    "replica_of", "revision_of",
]
