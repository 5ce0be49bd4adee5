"""The node-level pod scheduler: a framework of plugins over a vectorized node table.

Theory of operation
-------------------
DESIGN §6: pods are bound to nodes by plugins behind fixed extension points
(QueueSort, PreEnqueue, PreFilter, Filter, PostFilter, Score, Reserve, Permit,
Bind), enabled and weighted by a profile.  What makes it fast is underneath the
plugins:

* :mod:`.nodetable` keeps every node as a row of numpy arrays (allocatable,
  requested incl. assumed pods, taint bitsets, label value columns), so Filter
  and Score plugins answer for all nodes in a few array operations;
* :mod:`.equivalence` caches, per equivalence class of pods (same requests,
  selectors, tolerations, constraints), which nodes are feasible and how they
  score, and re-evaluates only the rows that changed since — after a binding,
  one row;
* :mod:`.scheduler` assumes each decision in the table before writing it, and
  writes bindings concurrently behind the decision loop.

Modules: :mod:`.labels` (names and tiers), :mod:`.podinfo`, :mod:`.nodetable`,
:mod:`.nodematch`, :mod:`.equivalence`, :mod:`.framework`, :mod:`.plugins`,
:mod:`.queue`, :mod:`.binder`, :mod:`.recorder`, :mod:`.metrics`,
:mod:`.scheduler`, :mod:`.reference` (the node-by-node baseline).
"""

from .binder import Binder, BindingBinder, PatchBinder
from .framework import Framework, Profile, Registry
from .metrics import SchedulerMetrics
from .nodetable import NodeTable
from .plugins import in_tree
from .podinfo import PodInfo
from .resources import PodSpecError
from .scheduler import Scheduler

__all__ = [
    "Binder", "BindingBinder", "Framework", "NodeTable", "PatchBinder", "PodInfo",
    "PodSpecError", "Profile", "Registry", "Scheduler", "SchedulerMetrics", "in_tree",
]
