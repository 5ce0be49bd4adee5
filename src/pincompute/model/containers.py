"""Containers and pod specs: what runs, with which resources, probes and volumes.

Theory
------
A PinCompute pod is a Kubernetes pod with one twist the node agent honours:
containers are typed ``main`` or ``sidecar``.  Sidecars start first (and must be
ready before main containers start) and stop last; they always restart.  Main
containers follow the pod's ``restartPolicy``.  Every pod has at least one main
container.

Resources follow Kubernetes: ``requests`` and ``limits`` are maps of quantities;
a limit without a request sets the request (the API server's defaulting), and
a limit below its request is an error.  Probes have exactly one handler (exec,
HTTP GET or TCP socket) and Kubernetes' default timings.

Paths a node turns into paths on the machine — ``mountPath`` (absolute, not the
root), ``subPath``, ``workingDir``, a config item's ``path`` — never hold a
``..`` component (:func:`~pincompute.kube.podvalidation.path_errors`, the rule
core Pods follow too), and names are RFC 1123 labels.

Volumes are the node layer's kinds (DESIGN §8): ``emptyDir`` (scratch),
``persistent`` (a disk that follows the pod when it fails over to another node),
``shared`` (a filesystem many pods mount, like EFS), ``logging`` (files the app
writes there are collected and streamable), plus ``configMap``/``secret`` for
configuration delivered as files.  Each volume has exactly one source, and
every mount must name a declared volume.

``restartPolicy`` has no schema default: the owner fills it (``Always`` for
PinPods, PinApps and PinDaemons, ``Never`` for job templates), so a pod
template means the same thing whether the embedded validator or a controller
reading a CRD-validated object applies the default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pincompute.kube.podvalidation import path_errors
from pincompute.kube.wellknown import GPU_RESOURCE

from .base import (
    CamelModel,
    DNSLabel,
    Labels,
    NonEmptyStr,
    NonNegInt,
    PortRef,
    PosInt,
    QualifiedName,
    Quantity,
    TemplateMeta,
    fail,
    port_name_errors,
    quantity_value,
)

ContainerType = Literal["main", "sidecar"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]

ResourceList = dict[QualifiedName, Quantity]
"""Quantities by resource name (``cpu``, ``memory``, ``nvidia.com/gpu``, ...)."""



# --- environment -------------------------------------------------------------------------------

class KeySelector(CamelModel):
    """A key of a configuration object (ConfigMap or Secret) in the pod's project."""

    name: NonEmptyStr
    """The configuration object's name."""
    key: NonEmptyStr
    """The key whose value is used."""
    optional: bool | None = None
    """Start the container even if the object or key does not exist."""


class FieldRef(CamelModel):
    """A field of the pod itself, e.g. ``metadata.name`` or ``status.podIP``."""

    field_path: NonEmptyStr
    """The pod field's path."""


class ResourceFieldRef(CamelModel):
    """A container's resource request or limit, e.g. ``limits.memory``."""

    resource: NonEmptyStr
    """``requests.cpu``, ``limits.memory``, ..."""
    container_name: DNSLabel | None = None
    """The container whose resources are read (default: this one)."""
    divisor: Quantity | None = None
    """The unit the value is expressed in (default 1)."""


class EnvVarSource(CamelModel):
    """Where an environment variable's value comes from (exactly one source)."""

    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None
    field_ref: FieldRef | None = None
    resource_field_ref: ResourceFieldRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        _exactly_one(self, ("config_map_key_ref", "secret_key_ref", "field_ref",
                            "resource_field_ref"))
        return self


class EnvVar(CamelModel):
    """An environment variable: a literal ``value`` or a ``valueFrom`` source."""

    name: NonEmptyStr
    """The variable's name (any printable characters except '=')."""
    value: str | None = None
    """The literal value."""
    value_from: EnvVarSource | None = None
    """A source for the value; not allowed together with ``value``."""

    @model_validator(mode="after")
    def _check(self) -> EnvVar:
        if "=" in self.name or not self.name.isprintable():
            raise fail(f"Invalid value: {self.name!r}: must consist of printable characters "
                       "other than '='", "name")
        if self.value is not None and self.value_from is not None:
            raise fail("may not be specified when `value` is not empty", "valueFrom",
                       reason="FieldValueForbidden")
        return self


# --- ports, resources --------------------------------------------------------------------------

class ContainerPort(CamelModel):
    """A port the container listens on."""

    container_port: int = Field(ge=1, le=65535)
    """The port number inside the pod's network namespace."""
    name: str | None = None
    """A name probes and services can refer to (IANA service name rules)."""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """The port's protocol."""
    host_port: int | None = Field(default=None, ge=1, le=65535)
    """Expose the port on the node's address (bridge networking)."""

    @model_validator(mode="after")
    def _check(self) -> ContainerPort:
        if self.name is not None:
            errors = port_name_errors(self.name)
            if errors:
                raise fail(f"Invalid value: {self.name!r}: {errors[0]}", "name")
        return self


class ResourceRequirements(CamelModel):
    """Requests (what the scheduler reserves) and limits (what the node enforces)."""

    requests: ResourceList | None = None
    """Minimum amounts reserved for the container. Missing requests default to the limits."""
    limits: ResourceList | None = None
    """Maximum amounts the container may use; each must be >= its request."""

    @model_validator(mode="after")
    def _check(self) -> ResourceRequirements:
        if self.limits:
            requests = dict(self.requests or {})
            for key, limit in self.limits.items():
                if key not in requests:
                    requests[key] = limit
                elif quantity_value(limit) < quantity_value(requests[key]):
                    raise fail(f"Invalid value: {limit!r}: must be greater than or equal to "
                               f"{key} request ({requests[key]!r})", "limits", key)
            self.requests = requests
        return self


# --- probes ------------------------------------------------------------------------------------

class ExecAction(CamelModel):
    """Run a command in the container; exit status 0 is success."""

    command: list[str] = Field(min_length=1)
    """The command and its arguments (not run through a shell)."""


class HTTPHeader(CamelModel):
    name: NonEmptyStr
    value: str


class HTTPGetAction(CamelModel):
    """GET a URL on the pod; a status from 200 to 399 is success."""

    port: PortRef
    """The port number or container port name."""
    path: str = "/"
    """The request path."""
    host: str | None = None
    """The host to connect to (default: the pod's address)."""
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    """The scheme."""
    http_headers: list[HTTPHeader] | None = None
    """Extra request headers."""


class TCPSocketAction(CamelModel):
    """Open a TCP connection; connecting is success."""

    port: PortRef
    """The port number or container port name."""
    host: str | None = None
    """The host to connect to (default: the pod's address)."""


class Probe(CamelModel):
    """A health check with exactly one handler, with Kubernetes' default timings."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: NonNegInt = 0
    """Seconds after the container started before the first probe."""
    period_seconds: PosInt = 10
    """Seconds between probes."""
    timeout_seconds: PosInt = 1
    """Seconds after which a probe counts as failed."""
    success_threshold: PosInt = 1
    """Consecutive successes to count as healthy after a failure."""
    failure_threshold: PosInt = 3
    """Consecutive failures to count as unhealthy."""

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        _exactly_one(self, ("exec", "http_get", "tcp_socket"), what="handler")
        return self


# --- volumes -----------------------------------------------------------------------------------

class VolumeMount(CamelModel):
    """Where a pod volume appears in a container."""

    name: DNSLabel
    """The volume's name (one of the pod's ``volumes``)."""
    mount_path: NonEmptyStr
    """The absolute path in the container."""
    read_only: bool = False
    """Mount read-only."""
    sub_path: str | None = None
    """Mount this relative path of the volume instead of its root."""

    @model_validator(mode="after")
    def _check(self) -> VolumeMount:
        errors = path_errors(self.mount_path, absolute=True)
        if errors:
            raise fail(f"Invalid value: {self.mount_path!r}: {errors[0]}", "mountPath")
        if self.sub_path is not None:
            errors = path_errors(self.sub_path, absolute=False)
            if errors:
                raise fail(f"Invalid value: {self.sub_path!r}: {errors[0]}", "subPath")
        return self


class EmptyDirSource(CamelModel):
    """Scratch space that lives as long as the pod."""

    medium: Literal["", "Memory"] | None = None
    """``Memory`` for a tmpfs; default the node's disk."""
    size_limit: Quantity | None = None
    """The most the volume may hold."""


class PersistentSource(CamelModel):
    """A disk that keeps its data across restarts and follows the pod to another node."""

    size: Quantity
    """The disk's size, e.g. ``10Gi``."""
    storage_class: str | None = None
    """The kind of disk (default: the cluster's)."""


class SharedSource(CamelModel):
    """A filesystem shared by many pods of the project (like EFS)."""

    share: DNSLabel
    """The share's name within the project; pods naming the same share see the same files."""
    read_only: bool = False
    """Mount the share read-only."""


class LoggingSource(CamelModel):
    """A directory whose files the platform collects as logs (streamable like stdout)."""

    size_limit: Quantity | None = None
    """The most the volume may hold before the oldest files are rotated away."""


class KeyToPath(CamelModel):
    key: NonEmptyStr
    """The configuration key."""
    path: NonEmptyStr
    """The relative file path it is written to."""

    @model_validator(mode="after")
    def _check(self) -> KeyToPath:
        errors = path_errors(self.path, absolute=False)
        if errors:
            raise fail(f"Invalid value: {self.path!r}: {errors[0]}", "path")
        return self


class ConfigMapSource(CamelModel):
    """A project configuration object delivered as files, updated in place."""

    name: NonEmptyStr
    """The configuration object's name."""
    items: list[KeyToPath] | None = None
    """Only these keys, at these paths (default: every key, as a file of its name)."""
    optional: bool | None = None
    """Start the pod even if the object does not exist."""


class SecretSource(CamelModel):
    """A secret delivered as files."""

    secret_name: NonEmptyStr
    """The secret's name."""
    items: list[KeyToPath] | None = None
    """Only these keys, at these paths."""
    optional: bool | None = None
    """Start the pod even if the secret does not exist."""


class Volume(CamelModel):
    """A named volume of the pod with exactly one source."""

    name: DNSLabel
    """The name mounts refer to."""
    empty_dir: EmptyDirSource | None = None
    persistent: PersistentSource | None = None
    shared: SharedSource | None = None
    logging: LoggingSource | None = None
    config_map: ConfigMapSource | None = None
    secret: SecretSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        _exactly_one(self, ("empty_dir", "persistent", "shared", "logging", "config_map",
                            "secret"), what="volume source")
        return self


# --- containers, pod spec ------------------------------------------------------------------------

class Container(CamelModel):
    """One container of a pod: a ``main`` container or a ``sidecar``."""

    name: DNSLabel
    """The container's name, unique in the pod (an RFC 1123 label)."""
    image: NonEmptyStr
    """The container image (the process runtime records it; Kubernetes pulls it)."""
    type: ContainerType = "main"
    """``main`` (follows the pod's restart policy) or ``sidecar`` (starts first, stops last,
    always restarts)."""
    command: list[str] | None = None
    """The entrypoint (default: the image's)."""
    args: list[str] | None = None
    """Arguments to the entrypoint."""
    working_dir: str | None = None
    """The working directory (default: the image's)."""
    env: list[EnvVar] | None = None
    """Environment variables."""
    ports: list[ContainerPort] | None = None
    """Ports the container listens on."""
    resources: ResourceRequirements | None = None
    """Resource requests and limits."""
    liveness_probe: Probe | None = None
    """Restart the container when this fails."""
    readiness_probe: Probe | None = None
    """Take the pod out of service discovery while this fails."""
    startup_probe: Probe | None = None
    """Hold off the other probes until this succeeds once."""
    volume_mounts: list[VolumeMount] | None = None
    """Volumes mounted into the container."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """When to pull the image (Kubernetes mode)."""

    @model_validator(mode="after")
    def _check(self) -> Container:
        if any(c.isspace() for c in self.image):
            raise fail(f"Invalid value: {self.image!r}: must not contain whitespace", "image")
        if self.working_dir is not None:
            errors = path_errors(self.working_dir,
                                 absolute=self.working_dir.startswith("/"))
            if errors:
                raise fail(f"Invalid value: {self.working_dir!r}: {errors[0]}", "workingDir")
        for probe_field in ("liveness_probe", "startup_probe"):
            probe = getattr(self, probe_field)
            if probe is not None and probe.success_threshold != 1:
                raise fail("must be 1", _camel(probe_field), "successThreshold")
        seen_ports: dict[tuple[int, str], int] = {}
        seen_names: set[str] = set()
        for i, port in enumerate(self.ports or ()):
            key = (port.container_port, port.protocol)
            if key in seen_ports:
                raise fail(f"Duplicate value: {port.container_port}/{port.protocol}", "ports", i,
                           "containerPort", reason="FieldValueDuplicate")
            seen_ports[key] = i
            if port.name is not None:
                if port.name in seen_names:
                    raise fail(f"Duplicate value: {port.name!r}", "ports", i, "name",
                               reason="FieldValueDuplicate")
                seen_names.add(port.name)
        paths: set[str] = set()
        for i, mount in enumerate(self.volume_mounts or ()):
            # Compared normalised: "/data" and "/data/" are one place.
            normal = "/".join(p for p in mount.mount_path.split("/") if p not in ("", "."))
            if normal in paths:
                raise fail(f"Duplicate value: {mount.mount_path!r}: must be unique",
                           "volumeMounts", i, "mountPath", reason="FieldValueDuplicate")
            paths.add(normal)
        return self


class PodSpec(CamelModel):
    """What a pod runs: containers (at least one main), volumes and lifecycle settings."""

    containers: list[Container] = Field(min_length=1)
    """The pod's containers; at least one must be a ``main`` container."""
    volumes: list[Volume] | None = None
    """Volumes the containers can mount."""
    restart_policy: RestartPolicy | None = None
    """What to do when a main container exits (filled by the owner: ``Always`` for pods and
    apps, ``Never`` for jobs)."""
    termination_grace_period_seconds: NonNegInt = 30
    """Seconds between SIGTERM and SIGKILL when the pod is stopped."""
    node_selector: Labels | None = None
    """Node labels a node must have to run the pod."""
    network_mode: Literal["routable", "bridge", "dedicated", "host"] = "routable"
    """``routable``: an IP from the cluster's pool; ``bridge``: a node-local address with
    host ports; ``dedicated``: a dedicated interface (limited per node); ``host``: the node's
    network (system pods only)."""
    active_deadline_seconds: PosInt | None = None
    """Stop the pod after this many seconds of running."""

    @model_validator(mode="after")
    def _check(self) -> PodSpec:
        names: set[str] = set()
        for i, c in enumerate(self.containers):
            if c.name in names:
                raise fail(f"Duplicate value: {c.name!r}", "containers", i, "name",
                           reason="FieldValueDuplicate")
            names.add(c.name)
        if not any(c.type == "main" for c in self.containers):
            raise fail("a pod needs at least one container of type main", "containers",
                       reason="FieldValueRequired")
        volumes: set[str] = set()
        for i, v in enumerate(self.volumes or ()):
            if v.name in volumes:
                raise fail(f"Duplicate value: {v.name!r}", "volumes", i, "name",
                           reason="FieldValueDuplicate")
            volumes.add(v.name)
        for i, c in enumerate(self.containers):
            for j, mount in enumerate(c.volume_mounts or ()):
                if mount.name not in volumes:
                    raise fail(f"Not found: {mount.name!r}: no volume of that name in "
                               "spec volumes", "containers", i, "volumeMounts", j, "name",
                               reason="FieldValueNotFound")
        return self

    def default_restart_policy(self, policy: RestartPolicy, *,
                               allowed: tuple[RestartPolicy, ...], where: tuple[str | int, ...]
                               ) -> None:
        """Fill ``restartPolicy`` for the owner, or fail if the one given is not allowed.

        ``where`` is the JSON path from the owner's model to this spec.
        """
        if self.restart_policy is None:
            self.restart_policy = policy
        elif self.restart_policy not in allowed:
            supported = ", ".join(f'"{p}"' for p in allowed)
            raise fail(f'Unsupported value: "{self.restart_policy}": supported values: '
                       f"{supported}", *where, "restartPolicy", reason="FieldValueNotSupported")


class PodTemplate(CamelModel):
    """A pod template: labels/annotations and the pod spec every created pod gets."""

    metadata: TemplateMeta | None = None
    """Labels and annotations for the pods."""
    spec: PodSpec
    """The pods' spec."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _exactly_one(model: CamelModel, fields: tuple[str, ...], *, what: str = "source") -> None:
    present = [f for f in fields if getattr(model, f) is not None]
    if len(present) == 1:
        return
    options = ", ".join(_camel(f) for f in fields)
    if not present:
        raise fail(f"must specify exactly one {what}: one of {options}",
                   reason="FieldValueRequired")
    raise fail(f"may not specify more than one {what}: {', '.join(_camel(f) for f in present)}",
               _camel(present[1]), reason="FieldValueForbidden")


__all__ = [
    "GPU_RESOURCE", "ConfigMapSource", "Container", "ContainerPort", "ContainerType",
    "EmptyDirSource", "EnvVar", "EnvVarSource", "ExecAction", "FieldRef", "HTTPGetAction",
    "HTTPHeader", "KeySelector", "KeyToPath", "LoggingSource", "PersistentSource", "PodSpec",
    "PodTemplate", "Probe", "ResourceFieldRef", "ResourceList", "ResourceRequirements",
    "RestartPolicy", "SecretSource", "SharedSource", "TCPSocketAction", "Volume",
    "VolumeMount",
]
