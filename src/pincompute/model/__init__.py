"""PinCompute's kinds: validated schemas, defaults, and the CRDs generated from them.

Objects travel as plain dicts everywhere (``{apiVersion, kind, metadata, spec,
status}``); the pydantic models here are the *schema* of those dicts, used at
the edges - on every write (the embedded store's validators, the gateway), to
fill defaults, and to generate the ``CustomResourceDefinition`` manifests the
real API server validates with.  Controllers keep the dicts and read them
through typed views (:mod:`.views`: ``spec_view(NodePoolSpec, pool).min_size``).

Modules, one concept each:

- :mod:`.wellknown` - PinCompute's labels, annotations, tiers, pod-group names and
  system namespace (plain constants; Kubernetes' own are in ``kube.wellknown``);
- :mod:`.base` - the camelCase base models and shared field types (quantities,
  int-or-percent, labels, label selectors, conditions, field errors);
- :mod:`.containers` - containers, probes, env, ports, resources, volumes, pod specs
  and templates;
- :mod:`.placement` - placement (zones, cluster selection, tolerations,
  spread, replica division) and the placement part of workload status;
- :mod:`.pod`, :mod:`.app`, :mod:`.jobs`, :mod:`.training`, :mod:`.cron`,
  :mod:`.scaler` - the user workloads;
- :mod:`.infra` - PinDaemon and PinSidecar (shared infrastructure agents);
- :mod:`.platform` - Project, MemberCluster, NodePool, NodeImage, Rotation;
- :mod:`.validation` - turning pydantic errors into Kubernetes ``Invalid`` causes;
- :mod:`.kinds` - the kinds table: every fact about a kind in one entry (names,
  scope, models, name rule, immutable fields, printer columns, description);
- :mod:`.views` - typed read-only views of stored specs and statuses;
- :mod:`.registry` - the Resource descriptors, kind lookup, validators, ``install``;
- :mod:`.crd` - CRD generation (``python -m pincompute.model.crd [--check]``).

Nothing is imported here, so ``import pincompute.model.registry`` pays only for
what it uses.
"""
