"""A pod's sandbox: set-up and teardown of what its containers share.

Theory of operation
-------------------
Before any container of a pod runs, the pod worker sets up its sandbox, in
order: the pod's network (an address of the node's block, host ports, dedicated
interfaces — :mod:`.network`), then the ConfigMaps and Secrets the pod refers to
(for volumes and environment, read from the API at that moment — on process
nodes from the config caches of :mod:`.configsync`, which then keeps the volumes
in step and adds the namespace's discovery ConfigMap), then the runtime's part
(directory, identity, cgroup parent, volumes —
:meth:`~.containerruntime.ContainerRuntime.create_sandbox`).  A network refusal
(no address, a host port taken) is final: the pod is rejected
(:class:`~.network.NetworkError`).  Anything else that fails (an API error, the
file system) undoes the network and is retried, after :func:`retry_delay`
(:class:`SandboxError`).  Teardown, once every container has terminated, is the
reverse: the runtime's part, then the network.

The environment a container starts with is the sandbox's too: the pod's identity
and address, the node's, the runtime's paths (:func:`base_env`), expanded with
the container's own ``env``/``envFrom`` against the config objects
(:func:`container_environment`, :mod:`.env`).

The worker keeps the per-pod state (the sandbox, the failure count, when to
retry); these functions hold none, so a node with many pods pays for no object
per pod here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, SECRETS
from pincompute.runtime.backoff import exponential_delay
from pincompute.runtime.logging import get_logger

from . import env as envmod
from .configsync import DISCOVERY_REF, ConfigSync
from .containerruntime import Sandbox, StartError
from .workercontext import WorkerContext

_log = get_logger(__name__)

ConfigObjects = dict[tuple[str, str], Mapping[str, Any] | None]
"""(kind, name) -> the ConfigMap or Secret, or None if it does not exist."""


class SandboxError(RuntimeError):
    """Setting up the sandbox failed in a way worth retrying (the network is undone)."""


def config_references(pod: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (kind, name) of a ConfigMap or Secret the pod's containers and volumes use."""
    wanted: set[tuple[str, str]] = set()
    spec = pod.get("spec") or {}
    for c in spec.get("containers") or ():
        wanted |= envmod.references(c)
    for v in spec.get("volumes") or ():
        if v.get("configMap"):
            wanted.add(("ConfigMap", v["configMap"].get("name", "")))
        if v.get("secret"):
            wanted.add(("Secret", v["secret"].get("secretName", "")))
    return wanted


async def fetch_configs(client: KubeClient, pod: Mapping[str, Any], *,
                        sync: ConfigSync | None = None) -> ConfigObjects:
    """The pod's config objects, as they are in the API now (or in ``sync``'s caches,
    which then also give the discovery ConfigMap every pod shows)."""
    namespace = (pod.get("metadata") or {}).get("namespace") or ""
    out: ConfigObjects = {}
    if sync is not None:
        for kind, name in config_references(pod):
            out[(kind, name)] = await sync.lookup(kind, namespace, name)
        if DISCOVERY_REF not in out:
            kind, name = DISCOVERY_REF
            out[DISCOVERY_REF] = await sync.lookup(kind, namespace, name, api=False)
        return out
    for kind, name in config_references(pod):
        resource = CONFIGMAPS if kind == "ConfigMap" else SECRETS
        try:
            out[(kind, name)] = await client.get(resource, name, namespace=namespace)
        except NotFound:
            out[(kind, name)] = None
    return out


async def set_up(ctx: WorkerContext, pod: Mapping[str, Any], *,
                 previous_ip: str | None) -> Sandbox:
    """The pod's sandbox.

    Raises :class:`~.network.NetworkError` if the network refuses the pod (final)
    and :class:`SandboxError` for a failure worth retrying.  ``previous_ip``: the
    address the pod had (an agent restart keeps it).
    """
    network = ctx.networking.setup(dict(pod), ip=previous_ip)
    try:
        configs = await fetch_configs(ctx.client, pod, sync=ctx.configs)
        sandbox = await ctx.runtime.create_sandbox(pod, network, configs=configs)
        if ctx.configs is not None:
            ctx.configs.track(sandbox, configs)
        return sandbox
    except (StartError, ApiError, OSError) as exc:
        ctx.networking.teardown(pod["metadata"]["uid"])
        raise SandboxError(str(exc)) from exc


def retry_delay(failures: int) -> float:
    """Seconds until the next attempt after ``failures`` failed ones (0.5 s doubling, 30 s)."""
    return exponential_delay(failures, initial=0.5, maximum=30.0)


async def tear_down(ctx: WorkerContext, pod_uid: str, sandbox: Sandbox | None) -> None:
    """Remove the runtime's part of the sandbox (if it was set up), then the network."""
    if ctx.configs is not None:
        ctx.configs.forget(pod_uid)
    if sandbox is not None:
        try:
            await ctx.runtime.destroy_sandbox(sandbox)
        except Exception:
            _log.bind(pod=f"{sandbox.namespace}/{sandbox.name}").exception(
                "destroying the sandbox failed")
    ctx.networking.teardown(pod_uid)


# --- a container's environment ---------------------------------------------------------------

def pod_for_env(ctx: WorkerContext, pod: Mapping[str, Any], sandbox: Sandbox) -> dict[str, Any]:
    """The pod as the downward API sees it: with its addresses even before the status says."""
    out = dict(pod)
    status = dict(out.get("status") or {})
    status.update(podIP=sandbox.ip, hostIP=ctx.node_ip, podIPs=[{"ip": sandbox.ip}])
    out["status"] = status
    return out


def base_env(ctx: WorkerContext, sandbox: Sandbox,
             container: Mapping[str, Any]) -> dict[str, str]:
    """What every container gets: the pod's and node's identity, the runtime's paths."""
    base = {
        "HOSTNAME": sandbox.name,
        "PINCOMPUTE_POD_NAME": sandbox.name,
        "PINCOMPUTE_POD_NAMESPACE": sandbox.namespace,
        "PINCOMPUTE_POD_UID": sandbox.pod_uid,
        "PINCOMPUTE_POD_IP": sandbox.ip,
        "PINCOMPUTE_NODE_NAME": ctx.node_name,
        "PINCOMPUTE_HOST_IP": ctx.node_ip,
        "PINCOMPUTE_CONTAINER_NAME": container["name"],
    }
    if ctx.metrics_url is not None:
        base["PINCOMPUTE_METRICS_URL"] = ctx.metrics_url(sandbox.pod_uid)
    base.update(ctx.runtime.container_env(sandbox, container))
    return base


async def container_environment(ctx: WorkerContext, pod: Mapping[str, Any], sandbox: Sandbox,
                                container: Mapping[str, Any]) -> dict[str, str]:
    """The environment of a container about to start (``pod`` from :func:`pod_for_env`).

    Raises :class:`~.env.ConfigError` or :class:`~pincompute.kube.errors.ApiError`
    when a referenced ConfigMap, Secret or key is missing or unreadable.
    """
    configs = await fetch_configs(ctx.client, pod) if envmod.references(container) else {}
    return envmod.build(pod, container, base=base_env(ctx, sandbox, container),
                        configs=configs, node_allocatable=ctx.allocatable)


__all__ = ["ConfigObjects", "SandboxError", "base_env", "config_references",
           "container_environment", "fetch_configs", "pod_for_env", "retry_delay", "set_up",
           "tear_down"]
