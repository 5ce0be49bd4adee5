"""Resource descriptors: how the protocol addresses a kind without knowing it.

A :class:`Resource` names a collection on an API server the way Kubernetes does
(group, version, plural) and carries the few facts a client or store needs to
treat it correctly: its kind, whether it is namespaced, and whether it has a
status subresource.  PinCompute's kinds are described in ``pincompute.model``;
this module knows none of them, only the handful of core kinds every cluster has.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = True
    short_names: tuple[str, ...] = ()
    # Pods (and only pods, in Kubernetes) are deleted in two steps: the API marks
    # them with a deletionTimestamp and the node finishes the deletion once the
    # containers are stopped.  The flag lets the store honour that without
    # knowing what a pod is.
    graceful_delete: bool = False
    # Fields beyond metadata.name/namespace that field selectors may use.
    selectable_fields: tuple[str, ...] = ()

    # Derived once: stores look these up on every write.
    api_version: str = field(init=False, repr=False, compare=False)
    key: str = field(init=False, repr=False, compare=False)
    """A stable string naming the collection, e.g. ``apps/v1/deployments``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_version",
                           f"{self.group}/{self.version}" if self.group else self.version)
        object.__setattr__(self, "key", f"{self.group or 'core'}/{self.version}/{self.plural}")

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


# The core kinds every cluster has and PinCompute's own controllers rely on.
PODS = Resource("", "v1", "pods", "Pod", short_names=("po",), graceful_delete=True,
                selectable_fields=("spec.nodeName", "status.phase"))
NODES = Resource("", "v1", "nodes", "Node", namespaced=False, short_names=("no",))
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",))
EVENTS = Resource("", "v1", "events", "Event", status_subresource=False, short_names=("ev",))
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", status_subresource=False,
                      short_names=("cm",))
SECRETS = Resource("", "v1", "secrets", "Secret", status_subresource=False)
SERVICES = Resource("", "v1", "services", "Service", short_names=("svc",))
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", status_subresource=False)
PERSISTENT_VOLUME_CLAIMS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim",
                                    short_names=("pvc",))
"""Real clusters only (embedded node agents keep persistent volumes themselves)."""

#: RBAC grants on real clusters (the embedded store has no authorization and does not serve it).
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                         status_subresource=False)

CORE_RESOURCES: tuple[Resource, ...] = (
    PODS, NODES, NAMESPACES, EVENTS, CONFIGMAPS, SECRETS, SERVICES, LEASES,
)
