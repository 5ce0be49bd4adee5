"""Waiting for workloads to roll out, with a live progress view (``apply --wait``,
``rollout status``).

Theory of operation
-------------------
What "rolled out" means is a table, :data:`PROGRESS`: per kind, a function from
the object (as the gateway shows it) to a :class:`Rollout` — how many replicas
are wanted, updated, ready and available, whether it is done, and why it is
stuck (queued for quota, failed).  A PinApp is rolled out once the federation
has observed its generation, every desired replica runs the new template and is
available, and no old replica is left; a PinPod once it is Running and Ready; a
job once it runs (or has finished).  Kinds without a rollout are done at once.

:func:`wait` polls each object (a ``get`` every half second: cheap, served from
the gateway's cache, and bounded by the deadline however quiet the object is)
and draws one Rich progress bar per object until all are done, one failed, or
the timeout passes.  Done must be seen twice in a row, and a target created a
moment ago may not be in the cache yet: a read races the gateway's cache, never
the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pincompute.sdk import Client, KindRef, NotFound

from .common import err


@dataclass(frozen=True, slots=True)
class Rollout:
    desired: int
    updated: int = 0
    ready: int = 0
    available: int = 0
    done: bool = False
    failed: str = ""
    waiting: str = ""
    """Why it is not progressing (queued for quota, paused, ...)."""
    phase: str = ""

    def line(self) -> str:
        text = (f"{self.updated}/{self.desired} updated, {self.ready} ready, "
                f"{self.available} available")
        if self.phase:
            text += f" · {self.phase}"
        if self.failed or self.waiting:
            text += f" · {self.failed or self.waiting}"
        return text


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _generation_seen(obj: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = _status(obj).get("observedGeneration")
    return generation is None or observed is None or observed >= generation


def queue_reason(obj: Mapping[str, Any]) -> str:
    """Why a workload waits for admission, with its queue position, or ``""``."""
    admission = _status(obj).get("admission") or {}
    if admission.get("state") == "Queued":
        where = f" (#{admission['position']} in {admission.get('queue')})" \
            if admission.get("position") else ""
        return f"queued{where}: {admission.get('reason') or 'waiting for quota'}"
    if admission.get("state") == "Preempted":
        return f"preempted: back in the queue after {admission.get('notBefore') or 'a back-off'}"
    return ""


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return next((c for c in _status(obj).get("conditions") or ()
                 if c.get("type") == type_), {})


def app_rollout(obj: Mapping[str, Any]) -> Rollout:
    spec, status = obj.get("spec") or {}, _status(obj)
    desired = 0 if spec.get("stopped") else int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    existing = int(status.get("replicas") or 0)
    phase = str(status.get("phase") or "")
    zones = str((status.get("rollout") or {}).get("phase") or "Complete")
    done = (_generation_seen(obj) and phase in ("Running", "Stopped") and updated >= desired
            and available >= desired and existing <= desired
            and zones in ("Complete", "Failed"))
    progressing = _condition(obj, "Progressing")
    failed = progressing.get("message", "rollout failed") \
        if phase == "Failed" or progressing.get("reason") == "ProgressDeadlineExceeded" else ""
    waiting = queue_reason(obj) or ("paused" if spec.get("paused") or phase == "Paused"
                                    else "")
    return Rollout(desired=desired, updated=min(updated, desired),
                   ready=int(status.get("readyReplicas") or 0), available=available,
                   done=done, failed=failed, waiting=waiting, phase=phase)


def pod_rollout(obj: Mapping[str, Any]) -> Rollout:
    phase = str(_status(obj).get("phase") or "")
    ready = _condition(obj, "Ready").get("status") in ("True", True)
    up = phase == "Running" and ready
    return Rollout(desired=1, updated=1 if phase else 0, ready=int(ready), available=int(up),
                   done=up or phase == "Succeeded", phase=phase,
                   failed="the pod failed" if phase == "Failed" else "",
                   waiting=queue_reason(obj))


def job_rollout(obj: Mapping[str, Any]) -> Rollout:
    status = _status(obj)
    phase = str(status.get("phase") or "")
    active = int(status.get("active") or 0)
    return Rollout(desired=1, updated=int(phase not in ("", "Pending")), ready=int(active > 0),
                   available=int(phase in ("Running", "Succeeded")),
                   done=phase in ("Running", "Succeeded"), phase=phase,
                   failed="the job failed" if phase == "Failed" else "",
                   waiting=queue_reason(obj))


PROGRESS: dict[str, Callable[[Mapping[str, Any]], Rollout]] = {
    "PinApp": app_rollout,
    "PinPod": pod_rollout,
    "PinJob": job_rollout,
    "PinTrainingJob": job_rollout,
}
"""What rolled out means, per kind (kinds not listed are done once accepted)."""


@dataclass(frozen=True, slots=True)
class Target:
    ref: KindRef
    name: str
    project: str | None
    generation: int = 0
    """The generation our own write produced: an older one read back is the cache's lag."""

    @property
    def label(self) -> str:
        return f"{self.ref.kind.lower()}/{self.name}"


def wait(pc: Client, targets: Sequence[Target], *, timeout: float, interval: float = 0.5,
         quiet: bool = False) -> tuple[bool, str]:
    """Until every target is rolled out: (True, "") — or (False, why) on failure or timeout."""
    targets = [t for t in targets if t.ref.kind in PROGRESS]
    if not targets:
        return True, ""
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=24),
               TextColumn("{task.fields[line]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False, disable=quiet) as bars:
        tasks = {t: bars.add_task(t.label, total=None, line="waiting…") for t in targets}
        pending = set(targets)
        seen: set[Target] = set()
        done_once: set[Target] = set()
        while True:
            for t in list(pending):
                try:
                    obj = pc.get(t.ref, t.name, project=t.project)
                except NotFound:
                    if t in seen:
                        return False, f"{t.label} was deleted"
                    continue  # just created: not in the gateway's cache yet
                seen.add(t)
                state = PROGRESS[t.ref.kind](obj)
                if (obj.get("metadata") or {}).get("generation", 0) < t.generation:
                    state = Rollout(desired=state.desired, phase="(catching up)")
                # The bar fills as replicas are updated and available; its last step is
                # "done" (a task that reaches its total early stops its clock).
                bars.update(tasks[t], total=state.desired + 1,
                            completed=min(state.updated, state.available), line=state.line())
                if state.failed:
                    return False, f"{t.label}: {state.failed}"
                if state.done and t in done_once:
                    bars.update(tasks[t], completed=state.desired + 1)
                    pending.discard(t)
                elif state.done:
                    done_once.add(t)
                else:
                    done_once.discard(t)
            if not pending:
                return True, ""
            if time.monotonic() >= deadline:
                t = next(iter(pending))
                state = PROGRESS[t.ref.kind](pc.get(t.ref, t.name, project=t.project))
                return False, f"{t.label} not rolled out after {timeout:g}s ({state.line()})"
            time.sleep(interval)
