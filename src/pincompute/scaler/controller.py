"""The PinScaler controller: evaluates every scaler each interval and scales host PinApps.

Theory of operation
-------------------
It runs on the host, where users' PinApps live; federation divides a PinApp's
``spec.replicas`` across zones, so scaling the host object scales every zone's
share.  Its inputs are informers only: PinScalers and PinApps of the host, and
— through the cluster set, one informer per member — the node usage records of
every member cluster, folded into per-app sums by :class:`~.usageindex.UsageIndex`.

Each scaler is a key of one work queue.  A reconcile (:meth:`ScalerReconciler.reconcile`):

1. reads the scaler and its PinApp from the caches; a missing app, or one
   ``paused`` or ``stopped``, holds (``AbleToScale`` False with the reason);
   ``replicas: 0`` disables it, as in the HPA (``ScalingActive`` False);
2. reads every metric (:mod:`.readings`: the app's usage sums, the Prometheus
   source), and the floor of the open schedule windows (:mod:`.schedules`);
3. decides (:mod:`.decision`: windows, policies, bounds, cooldown);
4. writes ``spec.replicas`` of the PinApp when the decision changes it (a merge
   patch guarded by the app's resourceVersion, so a concurrent edit wins and is
   re-read), records an Event on the scaler (``SuccessfulRescale``, or
   ``FailedRescale``) and remembers the change for the rate policies;
5. writes the status when it differs (current/desired replicas, each metric's
   value, last scale time and reason, active schedules, the conditions
   ``AbleToScale``, ``ScalingActive`` and ``ScalingLimited``);
6. comes back after ``interval`` seconds, or at the next schedule change if sooner.

The clock (``clock``, epoch seconds) is injectable: windows, cooldowns and
schedules are all read from it, so tests move time instead of sleeping.
Per-scaler memory (:class:`~.decision.History`) is dropped when the scaler goes.
Parsed specs are cached by (uid, generation): validation runs once per edit,
not once per evaluation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.model.base import quantity_value
from pincompute.model.registry import PINAPPS, PINSCALERS
from pincompute.model.scaler import PinScalerSpec
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.reconciler import Request, Result

from . import decision, schedules
from .metrics import ScalerMetrics
from .prometheus import PrometheusSource
from .readings import AppState, Reading, app_state, combine, read_metrics
from .usageindex import UsageIndex

DEFAULT_INTERVAL = 15.0
SCALED = "SuccessfulRescale"
FAILED_SCALE = "FailedRescale"
FAILED_METRIC = "FailedGetMetric"


@dataclass(frozen=True, slots=True)
class Config:
    """A scaler's spec, parsed once per generation."""

    spec: PinScalerSpec
    behaviour: decision.Behaviour
    windows: tuple[schedules.Window, ...]


def parse(obj: dict[str, Any]) -> Config:
    spec = PinScalerSpec.model_validate(obj.get("spec") or {})
    up, down = spec.behavior.scale_up, spec.behavior.scale_down
    assert up is not None and down is not None  # filled by the model's defaults

    def rules(r: Any) -> decision.Rules:
        return decision.Rules(float(r.stabilization_window_seconds or 0), r.select_policy,
                              tuple(decision.Policy(p.type, p.value, p.period_seconds)
                                    for p in r.policies or ()))

    windows = tuple(schedules.Window(name=w.name or str(i), start=w.start, end=w.end,
                                     desired=w.desired_replicas, time_zone=w.time_zone)
                    for i, w in enumerate(spec.schedules or ()))
    return Config(spec, decision.Behaviour(up=rules(up), down=rules(down),
                                           cooldown_seconds=float(spec.cooldown_seconds)),
                  windows)


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None


class ScalerReconciler:
    def __init__(self, *, host: KubeClient, scalers: SharedInformer, apps: SharedInformer,
                 index: UsageIndex, prometheus: PrometheusSource, recorder: EventRecorder,
                 metrics: ScalerMetrics, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.scalers = scalers
        self.apps = apps
        self.index = index
        self.prometheus = prometheus
        self.recorder = recorder
        self.metrics = metrics
        self.interval = interval
        self.clock = clock
        self.histories: dict[str, decision.History] = {}
        self._exported: dict[str, list[str]] = {}
        """Per scaler: the metric names it has series for (removed with it)."""
        self._configs: dict[str, tuple[tuple[str, int], Config | str]] = {}
        self._expired_at = 0.0

    def _config(self, obj: dict[str, Any]) -> Config | str:
        md = objects.meta(obj)
        version = (md.get("uid", ""), int(md.get("generation") or 0))
        key = objects.key_of(obj)
        cached = self._configs.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            config: Config | str = parse(obj)
        except ValueError as exc:
            config = f"invalid spec: {exc}"
        self._configs[key] = (version, config)
        return config

    def forget(self, key: str) -> None:
        self.histories.pop(key, None)
        self._configs.pop(key, None)

    async def reconcile(self, request: Request) -> Result | None:
        started = time.perf_counter()
        try:
            return await self._reconcile(request)
        finally:
            self.metrics.evaluation.observe(time.perf_counter() - started)

    async def _reconcile(self, request: Request) -> Result | None:
        now = self.clock()
        if now - self._expired_at >= self.interval:
            # once per interval for all scalers: records of silent nodes stop counting
            self.index.expire()
            self._expired_at = now
        obj = self.scalers.get(request.name, namespace=request.namespace)
        key = request.key
        if obj is None or objects.is_deleting(obj):
            self.forget(key)
            self.metrics.forget(request.namespace, request.name, self._exported.pop(key, []))
            return None
        config = self._config(obj)
        status = objects.deepcopy(obj.get("status") or {})
        generation = objects.meta(obj).get("generation")
        if isinstance(config, str):
            await self._write_status(obj, status, conditions=[
                ("AbleToScale", False, "InvalidSpec", config)])
            return None
        spec = config.spec
        app = self.apps.get(spec.scale_target_ref.name, namespace=request.namespace)
        if app is None:
            await self._write_status(obj, status, conditions=[
                ("AbleToScale", False, "FailedGetScale",
                 f'PinApp "{spec.scale_target_ref.name}" not found')])
            return Result(requeue_after=self.interval)
        state = app_state(app)
        floor, floor_reason = schedules.floor(config.windows, now, minimum=spec.min_replicas)
        floor = min(floor, spec.max_replicas)
        open_now = [w.name for w in schedules.open_windows(config.windows, now)]
        usage = self.index.get(request.namespace, spec.scale_target_ref.name)
        readings = await read_metrics(spec.metrics or [], usage=usage, app=state,
                                      source=self.prometheus, tolerance=spec.tolerance)
        for r in readings:
            if r.error is not None:
                self.metrics.failures.labels(r.type).inc()
        status.update(currentReplicas=state.current, currentMetrics=[
            r.status() for r in readings] or None, activeSchedules=open_now or None,
            observedGeneration=generation)
        self._export(request, state, readings)
        app_spec = app.get("spec") or {}
        hold = None
        if app_spec.get("stopped"):
            hold = ("AppStopped", "the PinApp is stopped: no scaling until it is started")
        elif app_spec.get("paused"):
            hold = ("AppPaused", "the PinApp is paused: no scaling until it is resumed")
        if hold is not None:
            status["desiredReplicas"] = state.current
            await self._write_status(obj, status, conditions=[("AbleToScale", False, *hold)])
            return self._requeue(config, now)
        if state.current == 0 and spec.min_replicas > 0:
            status["desiredReplicas"] = 0
            await self._write_status(obj, status, conditions=[
                ("AbleToScale", True, "SucceededGetScale", "the PinApp can be scaled"),
                ("ScalingActive", False, "ScalingDisabled",
                 "scaling is disabled since the replica count of the PinApp is zero")])
            return self._requeue(config, now)
        history = self.histories.get(key)
        if history is None:
            history = self.histories[key] = decision.History()
            decision.seed(history, now=now, current=state.current)
        proposal, all_failed = combine(readings, state.current)
        last = parse_time(status.get("lastScaleTime"))
        d = decision.decide(current=state.current, proposal=proposal,
                            behaviour=config.behaviour, floor=floor,
                            maximum=spec.max_replicas, now=now, history=history,
                            last_scale_time=last, floor_reason=floor_reason)
        status["desiredReplicas"] = d.desired
        self.metrics.desired.labels(request.namespace, request.name).set(d.desired)
        conditions = self._conditions(d, readings, all_failed)
        if d.replicas != state.current:
            scaled = await self._scale(obj, app, d.replicas)
            if scaled:
                decision.record_scale(history, now=now, before=state.current, after=d.replicas)
                self.metrics.scalings.labels(
                    "up" if d.replicas > state.current else "down").inc()
                status.update(lastScaleTime=rfc3339(now), lastScaleReason=d.reason)
                self.recorder.record(obj, "Normal", SCALED,
                                     f"New size: {d.replicas}; reason: {d.reason}")
            else:
                conditions[0] = ("AbleToScale", False, FAILED_SCALE,
                                 "the PinApp changed meanwhile; trying again")
                await self._write_status(obj, status, conditions=conditions)
                return Result(requeue_after=min(1.0, self.interval))
        await self._write_status(obj, status, conditions=conditions)
        return self._requeue(config, now, cooldown_until=d.cooldown_until)

    def _conditions(self, d: decision.Decision, readings: list[Reading],
                    all_failed: bool) -> list[tuple[str, bool, str, str]]:
        if d.cooldown_until is not None:
            able = ("AbleToScale", False, "Cooldown",
                    f"the last scaling was less than the cooldown ago; next change allowed "
                    f"at {rfc3339(d.cooldown_until)}")
        else:
            able = ("AbleToScale", True, "ReadyForNewScale",
                    "recommended size matches current size" if d.replicas == d.desired
                    else "the last scale time was sufficiently old")
        failed = [r for r in readings if r.error is not None]
        if all_failed:
            active = ("ScalingActive", False, FAILED_METRIC,
                      "holding the current size: " + "; ".join(
                          f"{r.name}: {r.error}" for r in failed))
        elif failed:
            active = ("ScalingActive", True, "PartialMetrics",
                      "failing metrics hold the current size as a floor: " + "; ".join(
                          f"{r.name}: {r.error}" for r in failed))
        elif not readings:
            active = ("ScalingActive", True, "SchedulesOnly",
                      "no metrics: the size follows minReplicas and the schedules")
        else:
            active = ("ScalingActive", True, "ValidMetricFound",
                      "the scaler computed the replica count from its metrics")
        if d.limit is not None:
            limited = ("ScalingLimited", True, d.limit.reason, d.limit.message)
        else:
            limited = ("ScalingLimited", False, "DesiredWithinRange",
                       "the desired count is within the acceptable range")
        return [able, active, limited]

    async def _scale(self, scaler: dict[str, Any], app: dict[str, Any], replicas: int) -> bool:
        md = objects.meta(app)
        try:
            await self.host.patch(PINAPPS, md["name"], {
                "metadata": {"resourceVersion": md.get("resourceVersion")},
                "spec": {"replicas": replicas}}, namespace=md.get("namespace"))
            return True
        except (Conflict, NotFound) as exc:
            self.recorder.record(scaler, "Warning", FAILED_SCALE,
                                 f"could not set {md['name']} to {replicas} replicas: {exc}")
            return False

    async def _write_status(self, obj: dict[str, Any], status: dict[str, Any], *,
                            conditions: list[tuple[str, bool, str, str]]) -> None:
        updated = objects.deepcopy(obj)
        updated["status"] = status
        generation = objects.meta(obj).get("generation")
        for type_, value, reason, message in conditions:
            objects.set_condition(updated, type_, value, reason=reason, message=message,
                                  observed_generation=generation)
        clean = {k: v for k, v in updated["status"].items() if v is not None}
        if clean == (obj.get("status") or {}):
            return
        updated["status"] = clean
        # Conflict or gone: the scaler's next event (or the requeue) evaluates again.
        with contextlib.suppress(Conflict, NotFound):
            await self.host.update_status(PINSCALERS, updated)

    def _export(self, request: Request, state: AppState, readings: list[Reading]) -> None:
        self.metrics.current.labels(request.namespace, request.name).set(state.current)
        self._exported[request.key] = [r.name for r in readings]
        for r in readings:
            if r.value is not None:
                self.metrics.metric_value.labels(request.namespace, request.name,
                                                 r.name).set(r.value)
            with contextlib.suppress(ValueError, ArithmeticError):
                self.metrics.metric_target.labels(request.namespace, request.name,
                                                  r.name).set(float(quantity_value(r.target)))

    def _requeue(self, config: Config, now: float, *,
                 cooldown_until: float | None = None) -> Result:
        after = self.interval
        change = schedules.next_change(config.windows, now) if config.windows else None
        for t in (change, cooldown_until):
            if t is not None:
                after = min(after, max(0.05, t - now + 0.01))
        return Result(requeue_after=after)


__all__ = ["DEFAULT_INTERVAL", "FAILED_METRIC", "FAILED_SCALE", "SCALED", "Config",
           "ScalerReconciler", "parse", "rfc3339"]
