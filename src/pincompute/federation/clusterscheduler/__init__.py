"""The federation's cluster scheduler: where a workload's replicas go among member clusters.

Theory of operation
-------------------
DESIGN §5 step 3 and §6: a framework of small plugins behind fixed extension
points — Filter, Score, and replica division — registered by name and chosen by
a :class:`Profile`, like Karmada's scheduler framework and our node-level pod
scheduler.  The decision function only: the controllers around it (admission,
propagation, status) feed it MemberClusters and workloads and write its
:class:`Decision` into the workload's status (``placements``,
``excludedClusters``).

Modules, one concept each:

- :mod:`.resources` — amounts as integer vectors (cpu, memory, gpu, pods);
- :mod:`.workload` — a workload's :class:`Request`, cached per generation;
- :mod:`.clustertable` — member clusters as numpy rows (:class:`ClusterTable`);
- :mod:`.assume` — capacity promised to decisions not yet running
  (:class:`AssumeCache`), so concurrent decisions never overcommit;
- :mod:`.interface`, :mod:`.registry`, :mod:`.profile` — the framework;
- :mod:`.plugins` — the in-tree filters, scores and dividers;
- :mod:`.division` — the arithmetic of splitting replicas;
- :mod:`.scheduler` — one decision (:class:`ClusterScheduler`);
- :mod:`.reference` — the same plugins cluster by cluster (benchmark baseline,
  test oracle).

Use::

    scheduler = ClusterScheduler()
    for mc in memberclusters:            # and again on every change
        scheduler.update_cluster(mc)     # remove_cluster(name) when one goes
    decision = scheduler.schedule(pinapp)     # reserves what it places
    status.update(decision.status())          # or decision.message: why not
    scheduler.confirm(uid, cluster, replicas) # the member reports them
    scheduler.forget(uid)                     # the workload is deleted
"""

from .assume import AssumeCache
from .clustertable import ClusterTable
from .interface import Context, DividePlugin, FilterPlugin, ScorePlugin
from .profile import Profile
from .reference import ReferenceScheduler
from .registry import Registry
from .resources import RequestError
from .scheduler import ClusterPlacement, ClusterScheduler, Decision, Exclusion
from .workload import Request, RequestCache, parse_request

__all__ = [
    "AssumeCache", "ClusterPlacement", "ClusterScheduler", "ClusterTable", "Context",
    "Decision", "DividePlugin", "Exclusion", "FilterPlugin", "Profile", "ReferenceScheduler",
    "Registry", "Request", "RequestCache", "RequestError", "ScorePlugin", "parse_request",
]
