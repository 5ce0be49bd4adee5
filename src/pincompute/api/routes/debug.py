"""Debugging: a pod's logs (streamed) and a shell in it (websocket) — DESIGN §10.

Theory of operation
-------------------
``GET /api/v1/projects/{project}/pods/{pod}/logs``
    ``?container=&follow=&tailLines=&sinceSeconds=&previous=&timestamps=&cluster=``.
    The pod is found in the member clusters' caches and its log opened where it
    lives (:mod:`pincompute.api.podaccess`: the node's runtime API in embedded
    clusters, the Kubernetes API's ``pods/log`` on real ones) *before* the answer
    starts, so a refusal is a Status with its code.  Then ``200 text/plain``,
    chunked, as the node sends it; with ``follow`` the stream lasts until the
    container instance exits or the client hangs up (which closes the upstream
    read at once).  Needs ``viewer`` in the project.

``WS /api/v1/projects/{project}/pods/{pod}/exec``
    ``?command=ARG&command=ARG...&container=&tty=&cluster=`` (``command`` repeated,
    one argument each, as Kubernetes'), the token as ``Authorization: Bearer`` or
    ``?access_token=`` (browsers cannot set headers on websockets).  Needs
    ``editor`` in the project: a shell in a container reads its secrets and can
    change what it serves, which is more than viewing.  Every exec, allowed or
    denied, is audited (verb ``EXEC``).

    Everything is checked before the upgrade: a refusal is the HTTP answer to the
    handshake, a Status body with its code (401, 403, 404, 400 naming the field,
    409 container not running, 501 exec on a Kubernetes node), so clients see it
    like any other error.  (A server without websocket denial responses closes the
    handshake with code ``4000 + status`` and the message as reason instead.)

    After the upgrade every message is **binary**, its first byte a channel, the
    rest the payload (a text message is taken as its UTF-8 bytes)::

        client -> server   0  stdin bytes; an empty payload ends stdin (on a tty: ^D)
                           4  resize: JSON {"width": columns, "height": rows} (tty)
        server -> client   1  stdout bytes (with tty: the terminal's output, all of it)
                           2  stderr bytes (never with tty)
                           3  status: JSON {"exitCode": n} — the last message

    After the status message the server closes with ``1000``.  If the node goes away
    mid-session the server closes with ``1011`` and a reason, without a status; when
    the caller's token is revoked or its role taken away, with ``1008`` (rechecked
    every :data:`~pincompute.api.watch.RECHECK` seconds, as watches are; a followed
    log ends the same way).  When
    the client closes or disconnects, the command is killed.  Stdin messages are
    forwarded in pieces of at most :data:`STDIN_CHUNK` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import orjson
from fastapi import APIRouter, Query, WebSocket
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from pincompute.api.auth import (
    Ctx,
    Principal,
    ProjectViewer,
    has_role,
    principal_for,
    still_allowed,
)
from pincompute.api.context import ApiContext
from pincompute.api.errors import status_response
from pincompute.api.podaccess import LogQuery, choose_container, find_pod, open_exec, open_log
from pincompute.api.watch import RECHECK
from pincompute.kube.errors import ApiError, BadRequest, Cause, Forbidden, Unauthorized
from pincompute.node.runtimeapi.client import ExecSession

router = APIRouter(prefix="/api/v1/projects/{project}")
_log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
"""Exec message channels (the first byte of every websocket message)."""
STDIN_CHUNK = 64 * 1024
"""Stdin is forwarded to the node in pieces of at most this many bytes."""
EXEC_ROUTE = "/api/v1/projects/{project}/pods/{pod}/exec"

ContainerQ = Annotated[str | None, Query(max_length=253,
                                         description="The container (default: the pod's "
                                                     "only main container)")]
ClusterQ = Annotated[str | None, Query(max_length=253,
                                       description="The member cluster, when the pod name "
                                                   "is in several")]


@router.get("/pods/{pod}/logs", name="pod_logs", tags=["Pod"],
            summary="A container's log, streamed (follow=true keeps it open)",
            description="The pod is found in whichever member cluster runs it and its log "
                        "opened on its node before the answer starts, so a refusal is a "
                        "Status with its code; then `200 text/plain`, chunked. With "
                        "`follow` the stream lasts until the container exits or the client "
                        "hangs up. Needs `viewer`. The exec websocket beside it is described "
                        "in docs/debugging.md.",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/plain": {}}}})
async def pod_logs(project: str, pod: str, ctx: Ctx, principal: ProjectViewer,
                   container: ContainerQ = None, cluster: ClusterQ = None,
                   follow: Annotated[bool, Query(description="Keep streaming")] = False,
                   tail_lines: Annotated[int | None, Query(
                       alias="tailLines", ge=0, le=1_000_000,
                       description="Only the last N lines")] = None,
                   since_seconds: Annotated[int | None, Query(
                       alias="sinceSeconds", ge=1, le=10 * 365 * 86400,
                       description="Only lines of the last N seconds")] = None,
                   previous: Annotated[bool, Query(
                       description="The previous instance's log")] = False,
                   timestamps: Annotated[bool, Query(
                       description="Prefix each line with its time")] = False) -> Response:
    place = await find_pod(ctx, project, pod, cluster=cluster)
    name = choose_container(place.pod, container)
    stream = await open_log(ctx, place, name, LogQuery(
        follow=follow, tail_lines=tail_lines, since_seconds=since_seconds, previous=previous,
        timestamps=timestamps))

    allowed = still_allowed(ctx, principal, project=project)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in _while_allowed(stream, allowed):
                yield chunk
        except (OSError, httpx.HTTPError, ApiError) as exc:
            # The node or API server went away mid-stream (a node stopped): the log ends.
            _log.warning("log of pod %s/%s ended early: %s", project, pod, exc)
        finally:
            # Also when the client hangs up: the upstream read ends with it.
            await stream.aclose()

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8",
                             headers={"X-Pincompute-Cluster": place.cluster,
                                      "X-Pincompute-Container": name})


_END = object()


async def _while_allowed(stream: AsyncGenerator[bytes, None],
                         allowed: Callable[[], bool]) -> AsyncIterator[bytes]:
    """The stream's chunks while the caller may still read them (checked at each chunk and
    every :data:`~pincompute.api.watch.RECHECK` seconds of a quiet stream)."""
    while True:
        step: asyncio.Future[Any] = asyncio.ensure_future(anext(stream, _END))
        try:
            while not (await asyncio.wait({step}, timeout=RECHECK))[0]:
                if not allowed():
                    return
        finally:
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await step
        chunk = step.result()
        if chunk is _END or not allowed():
            return
        yield chunk


async def _until_disallowed(allowed: Callable[[], bool]) -> None:
    # Polled: nothing signals a revoked token or a changed Project to this session.
    while True:
        await asyncio.sleep(RECHECK)
        if not allowed():
            return


# -- exec ------------------------------------------------------------------------------------


def _token(ws: WebSocket) -> str | None:
    scheme, _, token = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return ws.query_params.get("access_token") or None


def _authorize(ctx: ApiContext, ws: WebSocket, principal: Principal | None,
               project: str) -> None:
    if principal is None:
        ctx.limiter.hit_anonymous(ws.client.host if ws.client else "unknown")
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer <token> "
                           "or ?access_token=)")
    ctx.limiter.hit_identity(principal.identity)
    if not has_role(ctx, principal, project, "editor"):
        raise Forbidden(f'user "{principal.user}" is not allowed to exec in project '
                        f'"{project}": needs role editor in the project')
    ctx.limiter.hit_project(project)


async def _refuse(ws: WebSocket, error: ApiError) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(status_response(error))
    else:
        await ws.close(code=4000 + error.code, reason=error.message[:120])


async def _client_to_node(ws: WebSocket, session: ExecSession) -> None:
    """Forward stdin and resizes until the client closes."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        data: bytes | None = message.get("bytes")
        if data is None and message.get("text") is not None:
            data = message["text"].encode()
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN:
            if not payload:
                await session.close_stdin()
            for i in range(0, len(payload), STDIN_CHUNK):
                await session.write(payload[i:i + STDIN_CHUNK])
        elif channel == RESIZE:
            size = _size(payload)
            if size is None:
                await ws.send_bytes(bytes([STDERR]) + b'resize: expected {"width": n, '
                                    b'"height": n} with 1..10000 each\r\n')
            else:
                await session.resize(*size)


def _size(payload: bytes) -> tuple[int, int] | None:
    try:
        size = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(size, dict):
        return None
    width, height = size.get("width"), size.get("height")
    if type(width) is not int or type(height) is not int:
        return None
    if not (0 < width <= 10_000 and 0 < height <= 10_000):
        return None
    return width, height


async def _node_to_client(ws: WebSocket, session: ExecSession) -> None:
    async for channel, data in session.frames():
        await ws.send_bytes(bytes([channel]) + data)
    if session.exit_code is None:
        await ws.close(code=1011, reason="the node ended the session without an exit code")
        return
    await ws.send_bytes(bytes([STATUS]) + orjson.dumps({"exitCode": session.exit_code}))
    await ws.close(code=1000)


@router.websocket("/pods/{pod}/exec", name="pod_exec")
async def pod_exec(ws: WebSocket, project: str, pod: str,
                   command: Annotated[list[str] | None, Query(max_length=4096)] = None,
                   container: ContainerQ = None, cluster: ClusterQ = None,
                   tty: bool = False) -> None:
    ctx: ApiContext = ws.app.state.ctx
    principal = principal_for(ctx, _token(ws))
    user = principal.user if principal is not None else "-"
    try:
        _authorize(ctx, ws, principal, project)
        if not command:
            raise BadRequest("exec needs a command: one ?command= per argument",
                             causes=[Cause("command", "Required value", "FieldValueRequired")])
        place = await find_pod(ctx, project, pod, cluster=cluster)
        name = choose_container(place.pod, container)
        session = await open_exec(ctx, place, name, command, tty=tty)
    except ApiError as error:
        ctx.audit.record(user=user, verb="EXEC", route=EXEC_ROUTE, path=ws.url.path,
                         project=project, resource="pods", name=pod, code=error.code,
                         result="denied" if error.code in (401, 403) else "failed",
                         reason=error.message)
        await _refuse(ws, error)
        return
    ctx.audit.record(user=user, verb="EXEC", route=EXEC_ROUTE, path=ws.url.path,
                     project=project, resource="pods", name=pod, code=101, result="allowed",
                     reason=f"{name}: {' '.join(command)}"[:500])
    try:
        await ws.accept()
        assert principal is not None
        await _bridge(ws, session, still_allowed(ctx, principal, project=project,
                                                 role="editor"))
    finally:
        await session.close()


async def _bridge(ws: WebSocket, session: ExecSession, allowed: Callable[[], bool]) -> None:
    inbound = asyncio.ensure_future(_client_to_node(ws, session))
    outbound = asyncio.ensure_future(_node_to_client(ws, session))
    revoked = asyncio.ensure_future(_until_disallowed(allowed))
    try:
        done, _ = await asyncio.wait((inbound, outbound, revoked),
                                     return_when=asyncio.FIRST_COMPLETED)
        if revoked in done:
            # The token was revoked or the role taken away: the session ends with it.
            with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError):
                await ws.close(code=1008, reason="the token was revoked or lost its role")
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError):
                task.result()
    finally:
        for task in (inbound, outbound, revoked):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
