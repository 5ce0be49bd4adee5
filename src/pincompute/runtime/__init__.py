"""The controller runtime: informers, work queue, reconcilers, manager, leader election.

What PinCompute's controllers are built from, in the spirit of client-go and
controller-runtime, on asyncio.  It knows nothing of PinCompute's kinds; it speaks
only :mod:`pincompute.kube`.

A typical component::

    mgr = Manager(name="member-operators")
    apps = mgr.informer(client, PINAPPS)
    pods = mgr.informer(client, PINPODS)
    pods.add_indexer("owner", index_by_controller_uid)

    class AppReconciler:
        async def reconcile(self, request: Request) -> Result | None:
            app = apps.get_by_key(request.key)      # shared: copy before changing
            if app is None:
                return None                         # deleted; owned objects are GC'd
            ...
            return Result(requeue_after=30)

    mgr.controller("pinapps", AppReconciler(), workers=4).for_(apps).owns(pods, owner=PINAPPS)
    await mgr.run()

Modules: :mod:`.workqueue`, :mod:`.cache`, :mod:`.reflector` (the list/watch
loop), :mod:`.informer`, :mod:`.reconciler`, :mod:`.controller`, :mod:`.manager`,
:mod:`.leaderelection`, :mod:`.backoff`, :mod:`.metrics`, :mod:`.logging`.
"""

from .backoff import Backoff, BackoffPolicy, exponential_delay
from .cache import (
    NAMESPACE_INDEX,
    Cache,
    CacheMutationError,
    index_by_controller_uid,
    index_by_field,
    index_by_label,
    index_by_namespace,
    index_by_owner_uid,
)
from .controller import (
    Controller,
    Event,
    all_of,
    any_of,
    generation_changed,
    labels_changed,
    owner_mapper,
)
from .informer import (
    FuncEventHandler,
    HandlerRegistration,
    InformerFactory,
    ResourceEventHandler,
    SharedInformer,
)
from .leaderelection import LeaderElectionConfig, LeaderElector, default_identity
from .logging import (
    JsonFormatter,
    KeyValueFormatter,
    configure_logging,
    get_logger,
    log_context,
)
from .manager import LeadershipLost, Manager
from .metrics import RuntimeMetrics
from .reconciler import (
    DONE,
    FuncReconciler,
    Reconciler,
    Request,
    Result,
    TerminalError,
    as_reconciler,
)
from .reflector import Reflector, ReflectorSink
from .workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    ShutDown,
    WorkQueue,
    default_rate_limiter,
)

__all__ = [
    "DONE", "NAMESPACE_INDEX", "Backoff", "BackoffPolicy", "BucketRateLimiter", "Cache",
    "CacheMutationError", "Controller", "Event", "FuncEventHandler", "FuncReconciler",
    "HandlerRegistration", "InformerFactory", "ItemExponentialFailureRateLimiter", "JsonFormatter",
    "KeyValueFormatter", "LeaderElectionConfig", "LeaderElector", "LeadershipLost", "Manager",
    "MaxOfRateLimiter", "RateLimiter", "Reconciler", "Reflector", "ReflectorSink", "Request",
    "ResourceEventHandler", "Result", "RuntimeMetrics", "SharedInformer", "ShutDown",
    "TerminalError", "WorkQueue", "all_of", "any_of", "as_reconciler", "configure_logging",
    "default_identity", "default_rate_limiter", "exponential_delay", "generation_changed",
    "get_logger", "index_by_controller_uid", "index_by_field", "index_by_label",
    "index_by_namespace", "index_by_owner_uid", "labels_changed", "log_context", "owner_mapper",
]
