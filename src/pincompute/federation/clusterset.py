"""The live set of member clusters the federation works on.

Theory of operation
-------------------
The host's MemberCluster objects say which member clusters the region has and how
to reach each (:mod:`.connection`).  A :class:`ClusterSet` keeps, for each of
them, a **member**: a client and that cluster's own shared informers — one
:class:`~pincompute.runtime.informer.InformerFactory` per member, so a member's
informers start and stop together — and follows the objects as they change, as
Karmada's generic informer manager follows its Cluster objects:

* a MemberCluster appears: resolve its connection, build a client, probe it,
  start the informers every controller declared (:meth:`ClusterSet.watch`) and
  wait until they have listed; only then is the member **ready**: :meth:`get`
  returns it, iteration yields it, and subscribers hear ``on_added``;
* its connection changes (the spec, the kubeconfig file, the Secret's contents —
  the connection's *fingerprint*): the member is let go and built again;
* it goes (deleted): subscribers hear ``on_removed``, its informers stop and its
  client closes.  Nothing of it stays running.

A member that cannot be reached is retried with per-member exponential back-off
(the work queue's rate limiter) and never stops the others or the manager.  Its
:class:`MemberState` — ``Connecting``, ``Ready`` or ``Failed`` with a reason — is
what :mod:`.connectionstatus` writes as the MemberCluster's ``Connected``
condition, and a warning is logged at each failure.

The set is driven by a work queue of member names fed by the MemberCluster
informer (only changes of the connection or of deletion matter) and by the
Secrets that hold kubeconfigs (:mod:`.secretwatch`); a few workers connect
members in parallel.  Handles and states are in :mod:`.member`.  It runs as a
manager *runnable* on every replica, leader or not, so a standby has warm member
caches, and it is cancelled after the controllers have stopped, so their last
reconciles still find their members.

Controllers use it thus:

* declare, before the manager starts, the member collections they need with
  :meth:`ClusterSet.watch` (a handler per member), and subscribe to members
  coming and going with :meth:`ClusterSet.subscribe`;
* in a reconcile, iterate the registered :meth:`names` and take each one's
  :meth:`get` (``None``: registered but not reachable now), using the handle's
  client and :meth:`MemberHandle.informer`.  A handle taken before the member was
  let go may meet a closed client: :meth:`is_current` tells the reconciler to skip
  it rather than fail.

:meth:`wait_synced` returns once every member registered when the set started has
had its first attempt, so controllers that report per-member state do not report
"unreachable" for members that are merely still connecting after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pincompute.kube import objects
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.runtime.informer import (
    FuncEventHandler,
    InformerFactory,
    ResourceEventHandler,
    SharedInformer,
)
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.metrics import RuntimeMetrics
from pincompute.runtime.workqueue import ItemExponentialFailureRateLimiter, ShutDown, WorkQueue

from .connection import ConnectError, Connector, EmbeddedResolver, secret_ref_of
from .member import MemberHandle, MemberState, Probe, list_namespaces
from .secretwatch import KubeconfigSecrets

HandlerFactory = Callable[[str], ResourceEventHandler]
"""Given a member's name, the handler to attach to that member's informer."""

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Interest:
    """A collection every member watches, with the handler each member's informer gets."""

    resource: Resource
    handler_for: HandlerFactory
    namespace: str | None
    label_selector: str | None
    field_selector: str | None

    def attach(self, handle: MemberHandle) -> None:
        handle.informer(self.resource, namespace=self.namespace,
                        label_selector=self.label_selector,
                        field_selector=self.field_selector).add_event_handler(
            self.handler_for(handle.name))


@dataclass(eq=False, slots=True)
class Subscription:
    """A subscriber's callbacks; :meth:`remove` unsubscribes."""

    owner: ClusterSet
    on_added: Callable[[MemberHandle], None] | None = None
    on_removed: Callable[[MemberHandle], None] | None = None
    on_state: Callable[[str], None] | None = None

    def remove(self) -> None:
        with contextlib.suppress(ValueError):
            self.owner._subscriptions.remove(self)


class ClusterSet:
    """Member clients and informers that follow the host's MemberCluster objects."""

    def __init__(self, *, memberclusters: SharedInformer, connector: Connector,
                 metrics: RuntimeMetrics | None = None, probe: Probe = list_namespaces,
                 workers: int = 4, connect_timeout: float = 30.0, retry_base: float = 1.0,
                 retry_max: float = 120.0) -> None:
        self.memberclusters = memberclusters
        self.connector = connector
        self.metrics = metrics
        self.probe = probe
        self.workers = workers
        self.connect_timeout = connect_timeout
        self._members: dict[str, MemberHandle] = {}
        self._states: dict[str, MemberState] = {}
        self._interests: list[_Interest] = []
        self._subscriptions: list[Subscription] = []
        self._queue: WorkQueue[str] = WorkQueue(
            name="clusterset", rate_limiter=ItemExponentialFailureRateLimiter(
                base_delay=retry_base, max_delay=retry_max),
            metrics=metrics.queue("clusterset") if metrics is not None else None)
        self._secrets = KubeconfigSecrets(connector.host, on_change=self._queue.add,
                                          metrics=metrics)
        self._initial: set[str] | None = None
        self._synced = asyncio.Event()
        memberclusters.add_event_handler(FuncEventHandler(
            add=self._enqueue, update=self._on_update, delete=self._enqueue))

    # -- reads --

    def get(self, name: str) -> MemberHandle | None:
        """The member of that name if it is ready, else ``None``."""
        return self._members.get(name)

    def __iter__(self) -> Iterator[MemberHandle]:
        """The ready members (a snapshot: members may come and go meanwhile)."""
        return iter(list(self._members.values()))

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def is_current(self, handle: MemberHandle) -> bool:
        """Whether ``handle`` is still the member of its name (not let go or rebuilt)."""
        return self._members.get(handle.name) is handle

    def names(self) -> list[str]:
        """Every registered member (ready or not), sorted; deleted ones excluded."""
        return sorted(objects.name_of(mc) for mc in self.memberclusters.list()
                      if not objects.is_deleting(mc))

    def state(self, name: str) -> MemberState | None:
        """Where a member stands, ``None`` before its first attempt (or once it is gone)."""
        return self._states.get(name)

    def informer(self, name: str, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """A ready member's started shared informer; :class:`LookupError` if not ready."""
        handle = self._members.get(name)
        if handle is None:
            raise LookupError(f"member cluster {name} is not ready")
        return handle.informer(resource, namespace=namespace, label_selector=label_selector,
                               field_selector=field_selector)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait until every member registered at start has had its first attempt."""
        await self._synced.wait()

    # -- extending --

    def watch(self, resource: Resource, handler_for: HandlerFactory, *,
              namespace: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None) -> None:
        """Have every member (now and later) watch a collection, calling a handler.

        ``handler_for(member_name)`` makes the handler attached to that member's
        informer; like every informer handler it must be quick.  Declared before the
        manager starts, the collection has listed before a member is ready.
        """
        interest = _Interest(resource, handler_for, namespace, label_selector, field_selector)
        self._interests.append(interest)
        for handle in self:
            interest.attach(handle)

    def subscribe(self, *, on_added: Callable[[MemberHandle], None] | None = None,
                  on_removed: Callable[[MemberHandle], None] | None = None,
                  on_state: Callable[[str], None] | None = None) -> Subscription:
        """Hear of members becoming ready (``on_added``), being let go (``on_removed``,
        also before a rebuild), and of any change of a member's :meth:`state`.

        Callbacks run in the set's task and must be quick (enqueue keys).
        """
        sub = Subscription(self, on_added, on_removed, on_state)
        self._subscriptions.append(sub)
        return sub

    # -- running --

    async def run(self) -> None:
        """Connect and follow members until cancelled; then let every member go."""
        try:
            if not await self.memberclusters.wait_synced():
                raise RuntimeError("the MemberCluster informer stopped before syncing")
            self._initial_pending()
            workers = [asyncio.create_task(self._worker(), name=f"clusterset worker {i}")
                       for i in range(self.workers)]
            try:
                await asyncio.gather(*workers)
            finally:
                self._queue.shutdown()
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        finally:
            # Shutting down: controllers have stopped, so nobody needs to hear of it.
            members, self._members = list(self._members.values()), {}
            await asyncio.gather(*(m.close() for m in members), return_exceptions=True)
            await self._secrets.stop()

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            try:
                name = await queue.get()
            except ShutDown:
                return
            try:
                retry = await self._sync(name)
            except asyncio.CancelledError:
                queue.done(name)
                raise
            except Exception as exc:  # a bug, not a connection failure: keep the set alive
                _log.exception("member cluster %s: sync failed", name)
                self._set_state(name, MemberState("Failed", "InternalError", str(exc)))
                retry = True
            if retry:
                queue.add_rate_limited(name)
            else:
                queue.forget(name)
            queue.done(name)
            self._attempted(name)

    async def _sync(self, name: str) -> bool:
        """Make the member of ``name`` match its MemberCluster; whether to retry later."""
        mc = self.memberclusters.get(name)
        current = self._members.get(name)
        if mc is None or objects.is_deleting(mc):
            await self._secrets.track(name, None)
            if current is not None:
                await self._let_go(current)
                _log.info("member cluster %s removed: informers stopped", name)
            if self._states.pop(name, None) is not None:
                self._notify_state(name)
            return False
        await self._secrets.track(name, secret_ref_of(mc))
        try:
            credentials = await self.connector.resolve(mc)
        except ConnectError as exc:
            if current is not None:
                await self._let_go(current)
            return self._failed(name, exc)
        if current is not None:
            if current.fingerprint == credentials.fingerprint:
                return False  # connected as the MemberCluster says
            await self._let_go(current)
            _log.info("member cluster %s: connection changed, reconnecting", name)
        if (previous := self._states.get(name)) is None or previous.phase != "Failed":
            # Retries stay Failed until they succeed: the condition must not flap.
            self._set_state(name, MemberState("Connecting", "Connecting",
                                              "connecting to the cluster's API"))
        try:
            handle = await self._connect(name, credentials.client(),
                                         fingerprint=credentials.fingerprint,
                                         owned=credentials.owned)
        except ConnectError as exc:
            return self._failed(name, exc)
        self._members[name] = handle
        self._set_state(name, MemberState("Ready", "Connected",
                                          f"connected to {_server(handle.client)}"))
        _log.info("member cluster %s ready (%s)", name, _server(handle.client))
        for sub in tuple(self._subscriptions):
            if sub.on_added is not None:
                _call(sub.on_added, handle)
        return False

    async def _connect(self, name: str, client: KubeClient, *, fingerprint: str,
                       owned: bool) -> MemberHandle:
        """Probe, start the declared informers, wait until they have listed."""
        handle = MemberHandle(name, client, fingerprint=fingerprint, owned=owned,
                              informers=InformerFactory(metrics=self.metrics))
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.probe(client)
                for interest in self._interests:
                    interest.attach(handle)
                handle.informers.start()
                if not await handle.informers.wait_synced():
                    raise ConnectError("an informer stopped before listing")
        except BaseException as exc:
            await handle.close()
            if isinstance(exc, TimeoutError):
                raise ConnectError(f"{_server(client)} did not answer within "
                                   f"{self.connect_timeout:g}s", reason="Timeout") from None
            if isinstance(exc, ConnectError | asyncio.CancelledError):
                raise
            if isinstance(exc, Exception):
                raise ConnectError(f"{_server(client)}: {getattr(exc, 'message', exc)}",
                                   reason="Unreachable") from None
            raise
        return handle

    async def _let_go(self, handle: MemberHandle) -> None:
        if self._members.get(handle.name) is handle:
            del self._members[handle.name]
        for sub in tuple(self._subscriptions):
            if sub.on_removed is not None:
                _call(sub.on_removed, handle)
        await handle.close()

    def _failed(self, name: str, exc: ConnectError) -> bool:
        previous = self._states.get(name)
        attempts = (previous.attempts if previous is not None else 0) + 1
        self._set_state(name, MemberState("Failed", exc.reason, str(exc), attempts))
        _log.warning("member cluster %s: cannot connect (attempt %d, retrying with "
                     "back-off): %s", name, attempts, exc)
        return True

    def _set_state(self, name: str, state: MemberState) -> None:
        if self._states.get(name) != state:
            self._states[name] = state
            self._notify_state(name)

    def _notify_state(self, name: str) -> None:
        for sub in tuple(self._subscriptions):
            if sub.on_state is not None:
                _call(sub.on_state, name)

    # -- what puts a member in the queue --

    def _enqueue(self, mc: dict[str, Any]) -> None:
        self._queue.add(objects.name_of(mc))

    def _on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        # Only the connection and deletion matter here; status writes (ours included)
        # and other spec changes must not cut a member's back-off short.
        if ((old.get("spec") or {}).get("connection") != (new.get("spec") or {}).get(
                "connection") or objects.is_deleting(old) != objects.is_deleting(new)):
            self._enqueue(new)

    # -- the start-up gate --

    def _initial_pending(self) -> set[str]:
        if self._initial is None:
            self._initial = set(self.names())
            if not self._initial:
                self._synced.set()
        return self._initial

    def _attempted(self, name: str) -> None:
        pending = self._initial_pending()
        if name in pending:
            pending.discard(name)
            if not pending:
                self._synced.set()


def add_cluster_set(manager: Manager, *, host: KubeClient,
                    embedded: EmbeddedResolver | None = None, probe: Probe = list_namespaces,
                    connect_timeout: float = 30.0, retry_base: float = 1.0,
                    retry_max: float = 120.0, client_options: Mapping[str, Any] | None = None
                    ) -> ClusterSet:
    """A cluster set following ``host``'s MemberClusters, run by ``manager`` on every replica.

    ``embedded`` finds the region's in-process clusters by name (``pincompute up``);
    without it only ``Kubeconfig`` connections work.  ``probe`` checks a new client
    before its informers start (raise to refuse the member).  Pair it with
    :func:`~.connectionstatus.add_connection_status_controller` to have each member's
    state written on its MemberCluster.
    """
    clusters = ClusterSet(memberclusters=manager.informer(host, MEMBERCLUSTERS),
                          connector=Connector(host=host, embedded=embedded,
                                              client_options=client_options),
                          metrics=manager.metrics, probe=probe,
                          connect_timeout=connect_timeout, retry_base=retry_base,
                          retry_max=retry_max)
    manager.add_runnable(clusters.run, name="clusterset", needs_leader=False)
    return clusters


def _server(client: KubeClient) -> str:
    info = getattr(client, "info", None)
    return (info.server or info.backend) if info is not None else "the cluster"


def _call(fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except Exception:
        _log.exception("cluster set subscriber %r failed", fn)
