"""PinScaler: autoscaling PinApps on resource, custom and scheduled metrics.

The package, bottom up (each module's docstring has its theory):

* :mod:`.replicas` — what one metric proposes (Kubernetes HPA's replica
  calculator on aggregates: tolerance, missing and unready pods);
* :mod:`.decision` — from the largest proposal to the size to set:
  stabilization windows, rate policies, bounds, cooldown;
* :mod:`.schedules` — cron windows in time zones, as replica floors;
* :mod:`.usageindex` — per-app usage sums folded from every member cluster's
  node usage records (the metrics store, :mod:`pincompute.model.usage`);
* :mod:`.prometheus` — custom metrics from a Prometheus server;
* :mod:`.readings` — one scaler's metrics read from those sources;
* :mod:`.controller` — the reconciler: status, conditions, Events, scaling the
  host PinApp; :mod:`.metrics` — its Prometheus metrics;
* :mod:`.setup` — :func:`add_scaler_controller`, the one call the controller
  table makes.

The rules users see are in ``docs/scaling.md``.
"""

from .setup import add_scaler_controller

__all__ = ["add_scaler_controller"]
