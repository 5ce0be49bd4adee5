"""Reaching a pod wherever it runs: its member cluster, its node, its logs and its shell.

Theory of operation
-------------------
A project's pods live in the member clusters its workloads are placed on, in the
namespace named for the project.  :func:`find_pod` looks the pod up in each ready
member's pod informer cache (no store request; a cache first asked for waits for
its list), optionally in one named cluster (``?cluster=``, the label
``pincompute.io/cluster`` the pods listing shows).  A name found in two clusters
is ambiguous and asks for ``cluster``.

Where a pod's logs and exec come from depends on its node:

* an embedded node agent advertises its runtime API on the Node
  (``pincompute.io/runtime-api``, see :mod:`pincompute.node.runtimeapi`): logs and
  exec go there, with the region's runtime-API token (``ctx.extras``, key
  :data:`NODE_API_TOKEN`, handed in by the assembly), never through a store;
* any other node is a kubelet's (a real cluster): logs are the Kubernetes API's
  ``pods/<name>/log`` subresource (:meth:`~pincompute.kube.protocol.KubeClient.read_subresource`).
  Exec there would need the API server's SPDY/websocket exec, which this gateway
  does not speak: it answers 501 saying so (and kwok's nodes run nothing anyway).

Both log sources are *opened* before the first byte is sent to the caller, so a
refusal (no such container, a node that serves no logs) is still an HTTP status
with a Status body, not a broken stream.  The node's or the API server's own
failures become ``502 Bad Gateway`` naming the pod and node: the gateway worked,
what it stands in front of did not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from pincompute.kube import objects
from pincompute.kube.errors import (
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    MethodNotAllowed,
    NotFound,
)
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.model.wellknown import NODE_RUNTIME_LABEL, RUNTIME_API_ANNOTATION
from pincompute.node.runtimeapi.client import ExecSession, LogOptions, NodeAPIError, NodeClient

from .context import ApiContext

NODE_API_TOKEN = "node_api_token"
"""``ApiContext.extras`` key: the bearer token of the region's node runtime APIs."""
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
"""As kubectl: the container logs and exec use when none is named."""
SIDECAR_TYPE = "sidecar"
"""A PinCompute container's ``type`` for sidecars (not chosen by default)."""
CACHE_WAIT = 5.0
"""Longest wait for a member's pod cache that was first asked for now."""


class BadGateway(ApiError):
    """What the gateway stands in front of (a node, an API server) failed."""

    code: ClassVar[int] = 502
    reason: ClassVar[str] = "BadGateway"


class NotImplementedHere(ApiError):
    code: ClassVar[int] = 501
    reason: ClassVar[str] = "NotImplemented"


@dataclass(frozen=True, slots=True)
class PodPlace:
    """Where a pod runs."""

    cluster: str
    client: KubeClient
    """The member cluster's client."""
    pod: dict[str, Any]
    endpoint: str | None
    """The node's runtime API, when its node advertises one (embedded clusters)."""
    runtime: str | None = None
    """An embedded node's runtime (``process``, ``sim``); None on a kubelet's node."""

    @property
    def node(self) -> str:
        return str((self.pod.get("spec") or {}).get("nodeName") or "")

    @property
    def label(self) -> str:
        return f'pod "{objects.namespace_of(self.pod)}/{objects.name_of(self.pod)}"'


async def _cached(ctx: ApiContext, cluster: str, resource: Any) -> Any:
    informer = ctx.member_informer(cluster, resource)
    if informer is None:
        return None
    if not informer.has_synced:
        if not informer.running:
            informer.start()
        try:
            async with asyncio.timeout(CACHE_WAIT):
                await informer.wait_synced()
        except TimeoutError:
            return None
    return informer


async def find_pod(ctx: ApiContext, namespace: str, name: str, *,
                   cluster: str | None = None) -> PodPlace:
    """The pod ``namespace/name`` in the member clusters (NotFound if none has it)."""
    names = [cluster] if cluster else ctx.members.names()
    found: list[tuple[str, dict[str, Any]]] = []
    for member in names:
        pods = await _cached(ctx, member, PODS)
        pod = pods.get(name, namespace=namespace) if pods is not None else None
        if pod is not None:
            found.append((member, pod))
    if not found:
        where = f"cluster {cluster}" if cluster else "any member cluster"
        raise NotFound(f'pod "{name}" not found in {where}', kind="pods", name=name)
    if len(found) > 1:
        raise BadRequest(f'pod "{name}" is in several clusters '
                         f"({', '.join(c for c, _ in found)}): name one with ?cluster=",
                         causes=[Cause("cluster", "required: the pod name is ambiguous",
                                       "FieldValueRequired")])
    member, pod = found[0]
    handle = ctx.members.get(member)
    if handle is None:
        raise NotFound(f"member cluster {member} is not ready", kind="clusters", name=member)
    endpoint = runtime = None
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        nodes = await _cached(ctx, member, NODES)
        node = nodes.get(node_name) if nodes is not None else None
        if node is not None:
            endpoint = (objects.meta(node).get("annotations") or {}).get(RUNTIME_API_ANNOTATION)
            runtime = (objects.meta(node).get("labels") or {}).get(NODE_RUNTIME_LABEL)
    return PodPlace(cluster=member, client=handle.client, pod=objects.deepcopy(pod),
                    endpoint=endpoint, runtime=runtime)


def container_names(pod: Mapping[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for c in (*(spec.get("containers") or ()),
                                         *(spec.get("initContainers") or ()))]


def choose_container(pod: Mapping[str, Any], container: str | None) -> str:
    """The container a request means: the one named (it must exist), else the pod's
    default (annotation, or its only main container)."""
    names = container_names(pod)
    if container:
        if container not in names:
            raise BadRequest(f'container "{container}" is not in pod '
                             f'"{objects.name_of(pod)}" (it has: {", ".join(names)})',
                             causes=[Cause("container", "no such container in the pod")])
        return container
    default = (objects.meta(pod).get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if default in names:
        return str(default)
    mains = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ()
             if c.get("type") != SIDECAR_TYPE]
    if len(mains) == 1:
        return mains[0]
    raise BadRequest(f'pod "{objects.name_of(pod)}" has several containers '
                     f"({', '.join(names)}): name one with ?container=",
                     causes=[Cause("container", "required: the pod has several containers",
                                   "FieldValueRequired")])


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """A logs request's options (``kubectl logs`` flags)."""

    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    previous: bool = False
    timestamps: bool = False

    def kube_params(self, container: str) -> dict[str, str]:
        params = {"container": container}
        if self.follow:
            params["follow"] = "true"
        if self.tail_lines is not None:
            params["tailLines"] = str(self.tail_lines)
        if self.since_seconds is not None:
            params["sinceSeconds"] = str(self.since_seconds)
        if self.previous:
            params["previous"] = "true"
        if self.timestamps:
            params["timestamps"] = "true"
        return params

    def node_options(self) -> LogOptions:
        return LogOptions(follow=self.follow, tail=self.tail_lines,
                          since_seconds=self.since_seconds, previous=self.previous,
                          timestamps=self.timestamps)


def _not_simulated(place: PodPlace, what: str) -> None:
    if place.runtime == "sim":
        raise MethodNotAllowed(f"{place.label} runs on node {place.node}, a sim node: its "
                               f"containers are simulated and {what}")


def _node_client(ctx: ApiContext, place: PodPlace) -> NodeClient:
    token = ctx.extras.get(NODE_API_TOKEN)
    if not token or place.endpoint is None:
        raise NotImplementedHere(f"{place.label} runs on node {place.node}, whose runtime API "
                                 "this gateway was given no token for")
    return NodeClient(place.endpoint, str(token))


def _from_node(place: PodPlace, exc: NodeAPIError | OSError | httpx.HTTPError) -> ApiError:
    if isinstance(exc, NodeAPIError):
        message = f"{place.label} on node {place.node}: {exc.message}"
        if exc.code == 404:
            return NotFound(message)
        if exc.code == 400:
            return BadRequest(message)
        if exc.code == 409:
            return Conflict(message)
        return BadGateway(f"{message} (the node answered {exc.code})")
    return BadGateway(f"{place.label}: cannot reach node {place.node}'s runtime API: {exc}")


async def open_log(ctx: ApiContext, place: PodPlace, container: str,
                   query: LogQuery) -> AsyncGenerator[bytes, None]:
    """Open the container's log; raises the refusal as an ApiError, else returns chunks."""
    _not_simulated(place, "have no logs")
    if place.endpoint is not None:
        client = _node_client(ctx, place)
        try:
            return await client.open_logs(objects.namespace_of(place.pod),
                                          objects.name_of(place.pod), container,
                                          query.node_options())
        except (NodeAPIError, OSError, httpx.HTTPError) as exc:
            raise _from_node(place, exc) from None
    try:
        return await place.client.read_subresource(
            PODS, objects.name_of(place.pod), "log", namespace=objects.namespace_of(place.pod),
            params=query.kube_params(container), stream=query.follow)
    except MethodNotAllowed as exc:
        raise MethodNotAllowed(f"{place.label} runs on node {place.node or '(none yet)'}, "
                               f"which serves no logs: {exc.message}") from None
    except (BadRequest, NotFound):
        raise
    except ApiError as exc:
        # The API server's own failure reaching the node (kwok nodes have no kubelet).
        raise BadGateway(f"{place.label} on node {place.node or '(none)'} in cluster "
                         f"{place.cluster}: the API server could not read its log: "
                         f"{exc.message}") from None


async def open_exec(ctx: ApiContext, place: PodPlace, container: str,
                    command: Sequence[str], *, tty: bool) -> ExecSession:
    """Start ``command`` in the container; raises the refusal as an ApiError."""
    _not_simulated(place, "run no processes to exec in")
    if place.endpoint is None:
        raise NotImplementedHere(
            f"{place.label} runs on node {place.node or '(none yet)'} in cluster "
            f"{place.cluster}, a Kubernetes node: exec is served for pods on PinCompute's "
            "own nodes (embedded clusters) only")
    client = _node_client(ctx, place)
    try:
        return await client.open_exec(objects.namespace_of(place.pod),
                                      objects.name_of(place.pod), container, command,
                                      stdin=True, tty=tty)
    except (NodeAPIError, OSError, httpx.HTTPError) as exc:
        raise _from_node(place, exc) from None


__all__ = ["CACHE_WAIT", "NODE_API_TOKEN", "BadGateway", "LogQuery", "NotImplementedHere",
           "PodPlace", "choose_container", "container_names", "find_pod", "open_exec",
           "open_log"]
