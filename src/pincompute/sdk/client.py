"""The synchronous client: every API of the gateway as a method.

Theory of operation
-------------------
Each method resolves its kind and project (:class:`~.base.ClientBase`), builds a
:class:`~.transport.Call` (:mod:`.routes`) and sends it through :meth:`Client._run`,
which retries transient failures (:class:`~.transport.RetryPolicy`) and raises
the SDK's exceptions (:mod:`.errors`).  Streams — watches, followed logs — open with
the same retries and are then read line by line; closing the returned iterator
(or leaving its ``with`` block) closes the connection.  :class:`~.aio.AsyncClient`
has the same methods, awaited.

    with Client.from_config() as pc:
        pc.apply(yaml.safe_load(open("app.yaml")))
        pc.scale("hello-web", 5)
        for event in pc.watch("app", name="hello-web"):
            ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import stamina

from . import routes
from .base import (
    APPLY_ATTEMPTS,
    ApplyResult,
    ClientBase,
    KindArg,
    Objects,
    applied_result,
    conflict_pause,
    for_update,
    make_settings,
)
from .config import Config
from .errors import AlreadyExists, Conflict, NotFound
from .routes import ObjectList
from .transport import (
    Call,
    Hooks,
    RetryPolicy,
    announce,
    check,
    record,
    transport_error,
)
from .watch import WatchEvent, parse_event

if TYPE_CHECKING:  # exec loads websockets on first use: other calls start faster
    from .exec import ExecResult, ExecSession

T = TypeVar("T")


class Client(ClientBase):
    """A synchronous PinCompute client (thread-safe, like the httpx client under it)."""

    def __init__(self, server: str | None = None, *, token: str | None = None,
                 project: str | None = None, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, hooks: Hooks | None = None,
                 verify: bool | str = True, config: Config | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = make_settings(server, token=token, project=project, timeout=timeout,
                                      retry=retry, hooks=hooks, verify=verify, config=config)
        self._http = httpx.Client(base_url=self.settings.server,
                                  headers=self.settings.headers(),
                                  timeout=self.settings.httpx_timeout(),
                                  verify=self.settings.verify, transport=transport,
                                  event_hooks={"response": [_read_refusal]})

    @classmethod
    def from_config(cls, config: Config | None = None, **options: Any) -> Client:
        """A client for the config file and environment (``~/.pincompute/config.yaml``)."""
        return cls(config=config, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------------

    def _attempts(self, call: Call[Any]) -> Any:
        policy = self.settings.retry
        return stamina.retry_context(
            on=policy.backoff(call), attempts=policy.attempts, timeout=policy.timeout,
            wait_initial=policy.wait_initial, wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter)

    def _send(self, call: Call[Any], attempt: int, *, stream: bool = False
              ) -> httpx.Response:
        hooks = self.settings.hooks
        started = announce(call, attempt=attempt, hooks=hooks)
        # A stream waits as long as it takes for its next line (a quiet watch, a quiet log).
        timeout = self.settings.stream_timeout() if stream else self.settings.httpx_timeout()
        request = self._http.build_request(call.method, call.path, params=call.query(),
                                           json=call.json, headers=call.headers,
                                           timeout=timeout)
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as e:
            error = transport_error(e, server=self.server)
            record(call, attempt=attempt, started=started, hooks=hooks, error=error)
            raise error from None
        if stream and not response.is_success:
            response.read()
            response.close()
        record(call, attempt=attempt, started=started, hooks=hooks,
               status_code=response.status_code)
        return check(response)

    def _run(self, call: Call[T]) -> T:
        for attempt in self._attempts(call):
            with attempt:
                response = self._send(call, attempt.num)
        return call.parse(response)

    @contextmanager
    def _stream(self, call: Call[Any]) -> Iterator[httpx.Response]:
        for attempt in self._attempts(call):
            with attempt:
                response = self._send(call, attempt.num, stream=True)
        try:
            yield response
        except httpx.TransportError as e:
            raise transport_error(e, server=self.server) from None
        finally:
            response.close()

    # -- objects --------------------------------------------------------------------------------

    def get(self, kind: KindArg, name: str, *, project: str | None = None,
            cluster: str | None = None) -> dict[str, Any]:
        """One object (``cluster``: a node's member cluster)."""
        return self._run(routes.get(self._kind(kind), name, project=self._project(project),
                                    cluster=cluster))

    def list(self, kind: KindArg, *, project: str | None = None, cluster: str | None = None,
             label_selector: str | None = None, limit: int | None = None,
             continue_: str | None = None) -> ObjectList:
        """One page of objects (all of them without ``limit``)."""
        return self._run(routes.list_(self._kind(kind), project=self._project(project),
                                      cluster=cluster, label_selector=label_selector,
                                      limit=limit, continue_=continue_))

    def list_all(self, kind: KindArg, *, project: str | None = None,
                 cluster: str | None = None, label_selector: str | None = None,
                 page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every object, fetched page by page."""
        token: str | None = None
        while True:
            page = self.list(kind, project=project, cluster=cluster,
                             label_selector=label_selector, limit=page_size, continue_=token)
            yield from page.items
            token = page.continue_
            if not token:
                return

    def create(self, obj: Mapping[str, Any], *, project: str | None = None) -> dict[str, Any]:
        """Create ``obj`` (its ``kind`` says where; its namespace, if any, is its project)."""
        return self._run(routes.create(obj, project=self._project(project)))

    def update(self, obj: Mapping[str, Any], *, project: str | None = None) -> dict[str, Any]:
        """Replace ``obj``; a stale ``metadata.resourceVersion`` raises :class:`Conflict`."""
        return self._run(routes.update(obj, project=self._project(project)))

    def patch(self, kind: KindArg, name: str, patch: Mapping[str, Any], *,
              project: str | None = None) -> dict[str, Any]:
        """Merge-patch (RFC 7386) an object."""
        return self._run(routes.patch(self._kind(kind), name, patch,
                                      project=self._project(project)))

    def delete(self, kind: KindArg, name: str, *, project: str | None = None
               ) -> dict[str, Any]:
        return self._run(routes.delete(self._kind(kind), name, project=self._project(project)))

    def apply(self, obj: Mapping[str, Any], *, project: str | None = None
              ) -> tuple[ApplyResult, dict[str, Any]]:
        """Create ``obj``, or update the object of its name (``unchanged``: same generation)."""
        ref, name = routes.ref_of(obj)
        target = routes.object_project(obj, self._project(project))
        for attempt in range(APPLY_ATTEMPTS):
            if attempt:  # reads come from the gateway's cache: give it time to catch up
                time.sleep(conflict_pause(attempt))
            try:
                current = self.get(ref, name, project=target)
            except NotFound:
                try:
                    return "created", self.create(obj, project=target)
                except AlreadyExists:
                    continue
            try:
                done = self.update(for_update(current, obj), project=target)
            except Conflict:
                continue  # changed between our read and write: read again
            return applied_result(current, done), done
        raise Conflict(f"{ref.kind} {name} kept changing while being applied; try again")

    def watch(self, kind: KindArg, *, project: str | None = None, cluster: str | None = None,
              name: str | None = None, label_selector: str | None = None,
              resource_version: str | None = None, timeout_seconds: int | None = None
              ) -> Iterator[WatchEvent]:
        """Events of a collection (or of the object ``name``) until closed.

        Without ``resource_version`` the stream starts with an ADDED per existing
        object.  A too-old one raises :class:`~.errors.Gone`: list and watch again.
        ``timeout_seconds``: the server ends the stream after that long.
        """
        call = routes.watch(self._kind(kind), project=self._project(project), cluster=cluster,
                            label_selector=label_selector, resource_version=resource_version,
                            timeout_seconds=timeout_seconds)
        with self._stream(call) as response:
            for line in response.iter_lines():
                event = parse_event(line)
                if event is not None and (name is None or event.name == name):
                    yield event

    # -- operations -----------------------------------------------------------------------------

    def operate(self, kind: KindArg, name: str, operation: str,
                body: Mapping[str, Any] | None = None, *, project: str | None = None
                ) -> dict[str, Any]:
        """``POST .../{plural}/{name}/{operation}``; answers the object after it."""
        return self._run(routes.operate(self._kind(kind), name, operation, body,
                                        project=self._project(project)))

    def pause(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        """Pause a PinApp's rollout."""
        return self.operate("pinapp", name, "pause", project=project)

    def resume(self, name: str, *, kind: KindArg = "pinapp", project: str | None = None
               ) -> dict[str, Any]:
        """Resume a paused PinApp (or, ``kind="pinjob"``, a suspended PinJob)."""
        return self.operate(kind, name, "resume", project=project)

    def stop(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        """Stop a PinApp: no replicas, its spec kept."""
        return self.operate("pinapp", name, "stop", project=project)

    def start(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        return self.operate("pinapp", name, "start", project=project)

    def restart(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        """Replace a PinApp's replicas by a rolling restart."""
        return self.operate("pinapp", name, "restart", project=project)

    def scale(self, name: str, replicas: int, *, project: str | None = None
              ) -> dict[str, Any]:
        return self.operate("pinapp", name, "scale", {"replicas": replicas}, project=project)

    def rollback(self, name: str, *, revision: int | str | None = None,
                 kind: KindArg = "pinapp", project: str | None = None) -> dict[str, Any]:
        """Roll back to ``revision``, a number or hash (default: the one before the current)."""
        body = {} if revision is None else {"revision": str(revision)}
        return self.operate(kind, name, "rollback", body, project=project)

    def revisions(self, name: str, *, kind: KindArg = "pinapp", project: str | None = None
                  ) -> Objects:
        """A PinApp's revisions, oldest first: ``number``, ``revision`` (the template hash),
        ``images``, ``change`` (from the one before), ``created`` and ``current``."""
        return self._run(routes.revisions(self._kind(kind), name,
                                          project=self._project(project)))

    def restart_container(self, name: str, container: str, *, kind: KindArg = "pinpod",
                          pod: str | None = None, project: str | None = None
                          ) -> dict[str, Any]:
        """Restart one container of a PinPod, or (``kind="pinapp"``) of its replica ``pod``."""
        body: dict[str, Any] = {"container": container}
        if pod:
            body["pod"] = pod
        return self.operate(kind, name, "restart-container", body, project=project)

    def suspend(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        """Suspend a PinJob (resume it with ``resume(name, kind="pinjob")``)."""
        return self.operate("pinjob", name, "suspend", project=project)

    def trigger(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        """Run a PinCronJob now."""
        return self.operate("pincronjob", name, "trigger", project=project)

    # -- debugging ------------------------------------------------------------------------------

    def pods(self, kind: KindArg, name: str, *, project: str | None = None
             ) -> Objects:
        """A workload's pods across all member clusters."""
        return self._run(routes.pods(self._kind(kind), name, project=self._project(project)))

    def logs(self, pod: str, *, container: str | None = None, follow: bool = False,
             tail_lines: int | None = None, since_seconds: int | None = None,
             previous: bool = False, project: str | None = None) -> Iterator[str]:
        """A pod's log lines (``follow``: and every later one, until closed)."""
        call = routes.logs(pod, project=self._project(project), container=container,
                           follow=follow, tail_lines=tail_lines, since_seconds=since_seconds,
                           previous=previous)
        with self._stream(call) as response:
            yield from response.iter_lines()

    def exec(self, pod: str, command: Sequence[str], *, container: str | None = None,
             tty: bool = False, stdin: bool = False, project: str | None = None
             ) -> ExecSession:
        """Open a command in a pod's container (a websocket); use as a context manager."""
        from .exec import ExecSession, exec_url

        url = exec_url(self.server, pod, project=self._project(project), command=command,
                       container=container, tty=tty, stdin=stdin)
        return ExecSession.open(self._http, url)

    def run(self, pod: str, command: Sequence[str], *, container: str | None = None,
            input: bytes | None = None, project: str | None = None) -> ExecResult:
        """Run a command in a pod's container to its end: exit code and output."""
        with self.exec(pod, command, container=container, stdin=input is not None,
                       project=project) as session:
            if input is not None:
                session.send(input)
                session.close_stdin()
            return session.collect()

    # -- insight --------------------------------------------------------------------------------

    def events(self, kind: KindArg | None = None, name: str | None = None, *,
               project: str | None = None, type: str | None = None, reason: str | None = None,
               since: str | None = None, since_seconds: int | None = None,
               limit: int | None = None) -> Objects:
        """A project's events, or one object's (``kind`` and ``name``), oldest first.

        ``type``: Normal or Warning; ``reason``: comma-separated reasons; ``since``: an
        RFC 3339 time, or ``since_seconds`` ago; ``limit``: the newest N."""
        return self._run(routes.events(
            project=self._project(project), ref=self._kind(kind) if kind else None, name=name,
            type_=type, reason=reason, since=since, since_seconds=since_seconds, limit=limit))

    def history(self, kind: KindArg, name: str, *, project: str | None = None
                ) -> Objects:
        """An object's state transitions (admitted, queued, placed, rolled out, ...)."""
        return self._run(routes.history(self._kind(kind), name,
                                        project=self._project(project)))

    # -- projects -------------------------------------------------------------------------------

    def create_project(self, name: str, *, display_name: str | None = None,
                       quota: Mapping[str, Any] | None = None,
                       members: Sequence[Mapping[str, str]] | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if display_name:
            spec["displayName"] = display_name
        if quota:
            spec["quota"] = dict(quota)
        if members:
            spec["members"] = [dict(m) for m in members]
        return self.create({"apiVersion": "pincompute.io/v1alpha1", "kind": "Project",
                            "metadata": {"name": name}, "spec": spec})

    def members(self, project: str | None = None) -> Objects:
        """A project's members: ``[{"user", "role"}]``."""
        return self._run(routes.members(self._require_project(project)))

    def set_member(self, project: str, user: str, role: str | None) -> Objects:
        """Give ``user`` ``role`` in ``project`` (``None``: remove them); answers the members.
        Needs admin in the project."""
        if role is None:
            return self._run(routes.remove_member(project, user))
        return self._run(routes.add_member(project, user, role))

    def quota(self, project: str | None = None) -> dict[str, Any]:
        """A project's quota: ``{tier: {cpu, memory, gpu, pods}}``."""
        return self._run(routes.quota(self._require_project(project)))

    def set_quota(self, project: str, quota: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a project's quota per tier (platform admins); answers it."""
        return self._run(routes.set_quota(project, quota))

    def usage(self, project: str | None = None) -> dict[str, Any]:
        """What a project is charged per tier, and what runs."""
        return self._run(routes.usage(self._require_project(project)))

    # -- usage (``top``) ------------------------------------------------------------------------

    def top_pods(self, project: str | None = None, *, app: str | None = None) -> Objects:
        """What a project's pods use (of one app with ``app``), sampled by their nodes:
        ``[{"name", "app", "node", "cluster", "cpuMillicores", "memoryBytes",
        "cpuRequestMillicores", "memoryRequestBytes", "containers", "custom", ...}]``;
        ``cpuMillicores``/``memoryBytes`` are ``None`` until the first sample."""
        return self._run(routes.top_pods(self._require_project(project), app=app))

    def top_apps(self, project: str | None = None) -> Objects:
        """What a project's apps use: ``[{"name", "kind", "pods", "readyPods",
        "cpuMillicores", "memoryBytes", "cpuRequestMillicores", "memoryRequestBytes"}]``."""
        return self._run(routes.top_apps(self._require_project(project)))

    def top_nodes(self, cluster: str | None = None) -> Objects:
        """What each node's pods use together, ``[{"name", "cluster", "cpuMillicores",
        "memoryBytes", "pods", "sampledAt"}]``: one member cluster's nodes, or (``None``)
        every member cluster's (a cluster removed meanwhile is left out)."""
        if cluster:
            return self._run(routes.top_nodes(cluster))
        rows: Objects = []
        for name in sorted(c["metadata"]["name"] for c in self.list_all("cluster")):
            try:
                found: Objects = self._run(routes.top_nodes(name))
            except NotFound:
                continue
            rows += found
        return rows

    # -- clusters and nodes ---------------------------------------------------------------------

    def add_cluster(self, zone: str, *, name: str | None = None, nodes: int | None = None
                    ) -> dict[str, Any]:
        """Add a member cluster to ``zone`` of a running embedded region (platform admin)."""
        return self._run(routes.add_cluster(zone, name=name, nodes=nodes))

    def remove_cluster(self, name: str, *, drain: bool = True,
                       timeout_seconds: int | None = None) -> dict[str, Any]:
        """Drain a member cluster and take it out of the region (platform admin); with
        ``drain`` its workloads move away first (within ``timeout_seconds``)."""
        return self._run(routes.remove_cluster(name, drain=drain,
                                                   timeout_seconds=timeout_seconds))

    def nodes(self, cluster: str, *, label_selector: str | None = None
              ) -> Objects:
        return self.list("node", cluster=cluster, label_selector=label_selector).items

    def cordon(self, cluster: str, node: str) -> dict[str, Any]:
        return self._run(routes.node_operation(cluster, node, "cordon"))

    def uncordon(self, cluster: str, node: str) -> dict[str, Any]:
        return self._run(routes.node_operation(cluster, node, "uncordon"))

    def drain(self, cluster: str, node: str, *, timeout_seconds: int | None = None
              ) -> dict[str, Any]:
        """Cordon a node and evict its pods (within their disruption budgets), for up to
        ``timeout_seconds``; answers what was evicted and what is left."""
        return self._run(routes.node_operation(cluster, node, "drain",
                                                   timeout_seconds=timeout_seconds))

    # -- audit, tokens, health ------------------------------------------------------------------

    def audit(self, *, user: str | None = None, project: str | None = None,
              resource: str | None = None, verb: str | None = None, result: str | None = None,
              since: str | None = None, limit: int | None = None) -> Objects:
        """The audit log (platform admins): mutating calls and denials, newest first."""
        return self._run(routes.audit(user=user, project=project, resource=resource,
                                         verb=verb, result=result, since=since, limit=limit))

    def create_token(self, user: str, *, project: str | None = None, role: str | None = None,
                     admin: bool = False, expires_in_seconds: int | None = None,
                     description: str = "") -> dict[str, Any]:
        """A new token (the token is in ``["token"]``, shown this once; ``["id"]`` names
        it for :meth:`revoke_token`)."""
        return self._run(routes.create_token(user, project=project, role=role, admin=admin,
                                             expires_in_seconds=expires_in_seconds,
                                             description=description))

    def tokens(self) -> Objects:
        return self._run(routes.list_tokens())

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._run(routes.revoke_token(token_id))

    def whoami(self) -> dict[str, Any]:
        """Who the token belongs to and what they may do."""
        return self._run(routes.whoami())

    def healthz(self) -> str:
        return self._run(routes.health("healthz"))

    def readyz(self) -> str:
        return self._run(routes.health("readyz"))


__all__ = ["ApplyResult", "Client"]


def _read_refusal(response: httpx.Response) -> None:
    """Keep a refused exec handshake's Status readable (see :func:`.exec.read_refusal`)."""
    if response.status_code != 101 and "upgrade" in response.request.headers:
        from .exec import read_refusal

        read_refusal(response)
