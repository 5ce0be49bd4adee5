"""The framework's pipeline: a profile's plugins, run through the extension points for one pod.

Theory of operation
-------------------
:class:`Framework` instantiates the profile's plugins from a registry and sorts
them by the extension points they implement.  It is also the *handle* plugins
receive (it implements :class:`~.handle.FrameworkHandle`): the node table, the
waiting pods, the binder, and the *effects* sink through which plugins ask for
writes they cannot make inside a synchronous decision (nominate a node, evict a
victim).

:meth:`Framework.schedule` is one scheduling cycle, synchronous from start to
finish so that no other decision interleaves with it:

1. PreFilter — any rejection ends the cycle (the message covers all nodes).
2. Filter and Score through the equivalence-class cache: the plugins say
   whether they apply to this pod (:class:`~.interface.Deps`), the cache
   re-evaluates what changed and returns the best feasible row.
3. No feasible row: build the :class:`~.diagnosis.Diagnosis` (first failing
   filter per node, per-reason counts) and run PostFilter plugins in order until
   one succeeds (a preemption that nominates a node).
4. Assume the pod on the chosen node in the table, then Reserve; a failing
   Reserve unreserves what was reserved, in reverse, and forgets the pod.
5. Permit: a rejection undoes 4; *wait* hands back a pending decision whose
   :class:`~.waiting.WaitingPod` the scheduler completes later.

Binding (the Bind extension point) is asynchronous and belongs to the caller.
A pod with a nomination of its own is evaluated outside the class cache, since
its own nomination must not count against it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from pincompute.scheduler.binder import Binder
from pincompute.scheduler.equivalence import ActiveFilter, ActiveScore, ClassEntry, EquivalenceCache
from pincompute.scheduler.nodetable import NodeTable
from pincompute.scheduler.podinfo import PodInfo

from .diagnosis import Diagnosis
from .handle import Effects
from .interface import (
    ALL_EVENTS,
    SUCCESS,
    BindPlugin,
    ClassContext,
    ClusterEventListener,
    Code,
    CycleState,
    EnqueueExtensions,
    FilterPlugin,
    PermitPlugin,
    Plugin,
    PodObserver,
    PostFilterPlugin,
    PreemptionPolicyPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    QueuedPod,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
    Status,
)
from .profile import Profile
from .registry import Registry
from .waiting import CallLater, Cancellable, WaitingPod, WaitingPods

MAX_FILTERS = 31  # bit 31 of the class cache's fail mask marks rows without a node


class NoEffects:
    """Effects that only record what was asked (tests, what-if runs)."""

    def __init__(self) -> None:
        self.nominated: list[tuple[str, str]] = []
        self.evicted: list[tuple[str, str, str]] = []

    def nominate(self, pod: PodInfo, node: str) -> None:
        self.nominated.append((pod.key, node))

    def evict(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        self.evicted.append((victim.key, preemptor.key, node))


def _loop_call_later(delay: float, fn: Callable[[], None]) -> Cancellable:
    return asyncio.get_running_loop().call_later(delay, fn)


@dataclass(slots=True)
class Decision:
    """The outcome of one scheduling cycle."""

    pod: PodInfo
    state: CycleState
    status: Status
    node: str = ""
    row: int = -1
    diagnosis: Diagnosis | None = None
    nominated: str = ""
    waiting: dict[str, float] = field(default_factory=dict)  # plugin -> timeout

    @property
    def ok(self) -> bool:
        return self.status.ok or self.status.code == Code.WAIT


class Framework:
    """One profile's plugins and the extension points that run them."""

    def __init__(self, profile: Profile, registry: Registry, *, table: NodeTable,
                 effects: Effects | None = None, binder: Binder | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 call_later: CallLater = _loop_call_later, max_classes: int = 64) -> None:
        self.profile = profile
        self.table = table
        self.effects: Effects = effects if effects is not None else NoEffects()
        self.binder = binder
        self.clock = clock
        self.call_later = call_later
        self.waiting = WaitingPods()
        # The scheduling queue's move-request counter (set by the scheduler); plugins
        # compare against it to tell whether the cluster changed since they rejected.
        self.move_cycle: Callable[[], int] = lambda: 0
        # The framework is the plugins' handle (it implements FrameworkHandle).
        self.plugins: list[Plugin] = [registry.create(name, profile.args.get(name, {}), self)
                                      for name in profile.plugins]
        by_name = {p.name: p for p in self.plugins}
        if len(by_name) != len(self.plugins):
            raise ValueError("a profile names each plugin once")
        self.by_name: Mapping[str, Plugin] = by_name
        sorts = [p for p in self.plugins if isinstance(p, QueueSortPlugin)]
        if len(sorts) != 1:
            raise ValueError(f"a profile needs exactly one QueueSort plugin, got "
                             f"{[p.name for p in sorts]}")
        self.queue_sort: QueueSortPlugin = sorts[0]
        self.pre_enqueuers = [p for p in self.plugins if isinstance(p, PreEnqueuePlugin)]
        self.pre_filters = [p for p in self.plugins if isinstance(p, PreFilterPlugin)]
        self.filters: list[FilterPlugin] = [p for p in self.plugins
                                            if isinstance(p, FilterPlugin)]
        if len(self.filters) > MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} filter plugins")
        self.scorers: list[tuple[ScorePlugin, float]] = [
            (p, profile.weight(p.name)) for p in self.plugins if isinstance(p, ScorePlugin)]
        self.post_filters = [p for p in self.plugins if isinstance(p, PostFilterPlugin)]
        self.reservers = [p for p in self.plugins if isinstance(p, ReservePlugin)]
        self.permits = [p for p in self.plugins if isinstance(p, PermitPlugin)]
        self.policies: list[PreemptionPolicyPlugin] = [
            p for p in self.plugins if isinstance(p, PreemptionPolicyPlugin)]
        # Bind and the informer hooks are found by method name (not runtime-checkable).
        self.binders = cast(list[BindPlugin], [p for p in self.plugins if hasattr(p, "bind")])
        self._observers = cast(list[PodObserver],
                               [p for p in self.plugins if hasattr(p, "on_pod_seen")])
        self._listeners = cast(list[ClusterEventListener],
                               [p for p in self.plugins if hasattr(p, "on_cluster_event")])
        self._events: dict[str, frozenset[str]] = {
            p.name: (p.events() if isinstance(p, EnqueueExtensions) else ALL_EVENTS)
            for p in self.plugins}
        self.cache = EquivalenceCache(table, max_classes=max_classes)

    # -- queue -----------------------------------------------------------------------------------

    def sort_key(self, qp: QueuedPod) -> tuple[Any, ...]:
        return self.queue_sort.sort_key(qp)

    def pre_enqueue(self, pod: PodInfo) -> Status:
        for p in self.pre_enqueuers:
            st = p.pre_enqueue(pod)
            if not st.ok:
                return st.with_plugin(p.name)
        return SUCCESS

    def events_for(self, plugins: frozenset[str]) -> frozenset[str]:
        """Cluster events after which a pod rejected by ``plugins`` may fit."""
        if not plugins:
            return ALL_EVENTS
        out: set[str] = set()
        for name in plugins:
            out |= self._events.get(name, ALL_EVENTS)
        return frozenset(out)

    # -- what plugins are told about the cluster ------------------------------------------------

    def pod_seen(self, pod: PodInfo) -> None:
        """A pod exists (added or updated); plugins that track pods (Gang) take note."""
        for p in self._observers:
            p.on_pod_seen(pod)

    def pod_gone(self, pod: PodInfo) -> None:
        for p in self._observers:
            p.on_pod_gone(pod)

    def cluster_event(self, event: str) -> None:
        for p in self._listeners:
            p.on_cluster_event(event)

    # -- filter and score ----------------------------------------------------------------------

    def active(self, pod: PodInfo) -> tuple[list[ActiveFilter], list[ActiveScore]]:
        table = self.table
        filters: list[ActiveFilter] = []
        for bit, p in enumerate(self.filters):
            d = int(p.filter_deps(pod, table))
            if d:
                filters.append((p, d, bit))
        scorers: list[ActiveScore] = []
        for scorer, w in self.scorers:
            if w:
                d = int(scorer.score_deps(pod, table))
                if d:
                    scorers.append((scorer, d, w))
        return filters, scorers

    def find(self, pod: PodInfo) -> ClassEntry:
        """Evaluate filters and scores for the pod; the entry's ``best`` is the chosen row."""
        own_nomination = pod.uid in self.table.nominated
        return self.cache.evaluate(pod, self.active, cached=not own_nomination)

    def fits(self, pod: PodInfo, rows: np.ndarray) -> np.ndarray:
        """Whether the pod passes every applicable filter on ``rows`` now (uncached what-if)."""
        ok: np.ndarray = self.table.valid[rows].copy()
        ctx = ClassContext()
        for p, d, _bit in self.active(pod)[0]:
            if d and ok.any():
                ok &= p.filter(ctx, pod, self.table, rows)
        return ok

    def diagnose(self, pod: PodInfo, entry: ClassEntry) -> Diagnosis:
        table = self.table
        n = table.n
        diag = Diagnosis(total=table.count)
        fails = entry.fails[:n]
        present = (fails & np.uint32(1 << 31)) == 0
        fails = np.where(present, fails, 0)
        lowest = fails & (~fails + np.uint32(1))  # the first failing filter's bit per row
        unresolvable = np.uint32(0)
        for p, _d, bit in entry.filters:
            if p.unresolvable:
                unresolvable |= np.uint32(1 << bit)
        for p, _d, bit in entry.filters:
            rows = np.flatnonzero(lowest == np.uint32(1 << bit))
            if rows.shape[0]:
                diag.rejectors.add(p.name)
                for reason, count in p.explain(entry.ctx, pod, table, rows).items():
                    diag.add(reason, count)
        diag.resolvable_rows = np.flatnonzero(present & (fails != 0)
                                              & ((fails & unresolvable) == 0))
        return diag

    # -- one cycle -------------------------------------------------------------------------------

    def schedule(self, pod: PodInfo, state: CycleState | None = None) -> Decision:
        """One scheduling cycle (see module doc); the pod is assumed on success or wait."""
        state = state if state is not None else CycleState()
        for p in self.pre_filters:
            st = p.pre_filter(state, pod)
            if st is not SUCCESS and (st.rejected or st.code == Code.ERROR):
                st = st.with_plugin(p.name)
                diag = Diagnosis(total=self.table.count, prefilter=st, rejectors={p.name})
                return Decision(pod, state, st, diagnosis=diag)
        entry = self.find(pod)
        if entry.best < 0:
            diag = self.diagnose(pod, entry)
            nominated = ""
            for post in self.post_filters:
                res = post.post_filter(state, pod, diag)
                if res.status.ok:
                    nominated = res.nominated_node
                    break
            st = Status(Code.UNSCHEDULABLE, (diag.message(),), "")
            return Decision(pod, state, st, diagnosis=diag, nominated=nominated)
        row = entry.best
        node = self.table.names[row]
        return self.commit(pod, state, node, row)

    def commit(self, pod: PodInfo, state: CycleState, node: str, row: int) -> Decision:
        """Assume the pod on ``node`` and run Reserve and Permit."""
        self.table.add_pod(pod, node, assumed=True)
        done: list[ReservePlugin] = []
        for p in self.reservers:
            st = p.reserve(state, pod, node)
            if st is not SUCCESS and not st.ok:
                for q in reversed(done):
                    q.unreserve(state, pod, node)
                p.unreserve(state, pod, node)
                self.table.remove_pod(pod.uid)
                return Decision(pod, state, st.with_plugin(p.name), node=node, row=row)
            done.append(p)
        waits: dict[str, float] = {}
        for permit in self.permits:
            st = permit.permit(state, pod, node)
            if st is SUCCESS:
                continue
            if st.code == Code.WAIT:
                waits[permit.name] = st.timeout
            elif not st.ok:
                self.unreserve(state, pod, node)
                return Decision(pod, state, st.with_plugin(permit.name), node=node, row=row)
        if waits:
            return Decision(pod, state, Status(Code.WAIT), node=node, row=row, waiting=waits)
        return Decision(pod, state, SUCCESS, node=node, row=row)

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        """Undo Reserve (in reverse order) and forget the pod's assumption on ``node``.

        Only an *assumption* is forgotten: if the informer has meanwhile reported the
        pod bound (here or elsewhere), that is the truth and stays accounted.
        """
        entry = self.table.pods.get(pod.uid)
        if entry is not None and entry.assumed and entry.node_name == node:
            self.table.remove_pod(pod.uid)
        for p in reversed(self.reservers):
            p.unreserve(state, pod, node)

    def wait(self, decision: Decision,
             on_done: Callable[[WaitingPod, Status], None]) -> WaitingPod:
        """Park a pod that Permit asked to wait; ``on_done`` gets the final verdict."""
        def done(wp: WaitingPod, status: Status) -> None:
            self.waiting.remove(wp.info.uid)
            on_done(wp, status)

        pod = decision.pod

        def message(plugin: str) -> str:
            fn = getattr(self.by_name.get(plugin), "timeout_message", None)
            return fn(pod) if fn is not None else f"{plugin}: timed out waiting at permit"

        wp = WaitingPod(pod, decision.node, decision.state, dict(decision.waiting),
                        call_later=self.call_later, on_done=done, timeout_message=message)
        self.waiting.add(wp)
        return wp
