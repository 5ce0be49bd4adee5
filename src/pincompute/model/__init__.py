"""PinCompute's kinds: validated schemas, defaults, and the CRDs generated from them.

Objects travel as plain dicts everywhere (``{apiVersion, kind, metadata, spec,
status}``); the pydantic models here are the *schema* of those dicts, used at
the edges - on every write (the embedded store's validators, the gateway), to
fill defaults, and to generate the ``CustomResourceDefinition`` manifests the
real API server validates with.  Controllers keep reading dicts.

Modules, one concept each:

- :mod:`.base` - the camelCase base models and shared field types (quantities,
  int-or-percent, labels, label selectors, conditions, field errors);
- :mod:`.containers` - containers, probes, env, ports, resources, volumes, pod specs
  and templates;
- :mod:`.placement` - tiers, placement (zones, cluster selection, tolerations,
  spread, replica division) and the placement part of workload status;
- :mod:`.pod`, :mod:`.app`, :mod:`.jobs`, :mod:`.training`, :mod:`.cron`,
  :mod:`.scaler` - the user workloads;
- :mod:`.infra` - PinDaemon and PinSidecar (shared infrastructure agents);
- :mod:`.platform` - Project, MemberCluster, NodePool, NodeImage, Rotation;
- :mod:`.validation` - turning pydantic errors into Kubernetes ``Invalid`` causes;
- :mod:`.registry` - the Resource descriptors, kind lookup, validators, ``install``;
- :mod:`.crd` - CRD generation (``python -m pincompute.model.crd [--check]``).

Nothing is imported here, so ``import pincompute.model.registry`` pays only for
what it uses.
"""
