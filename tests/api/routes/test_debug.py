"""Logs and exec through the gateway, against real processes (a process-runtime region).

A PinApp is submitted through the API like a user's; its pod runs as a real process
on a node agent of a member cluster, and the gateway reaches it through the node's
runtime API: a followed log while the container prints, a command's output and exit
code, a shell on a terminal that is resized, and the refusals (a viewer of another
project, a viewer asking for a shell, bad parameters).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws

from pincompute.api.context import ApiSettings
from pincompute.gateway import Gateway
from pincompute.kube.resource import PODS
from pincompute.region import Region
from tests.api.conftest import ApiEnv
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"
TALKER = "echo hello; i=0; while :; do sleep 0.2; echo tick $i; i=$((i+1)); done"


def app(name: str, command: list[str]) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{
                "name": "main", "image": "busybox", "command": command,
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}]}}}}


@dataclass
class Running:
    env: ApiEnv
    pod: str
    cluster: str


@contextlib.asynccontextmanager
async def process_region(region_dir: Path) -> AsyncIterator[ApiEnv]:
    """One zone, one process-runtime node, project ``demo``, the gateway in front."""
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=1, runtime="process",
                               lease_duration=3, health_port=None)
    try:
        await region.start()
        await region.ensure_project("demo")
        async with Gateway.start(region, settings=ApiSettings()) as gw, httpx.AsyncClient(
                base_url=gw.url, timeout=30,
                headers={"Authorization": f"Bearer {gw.admin_token}"}) as client:
            yield ApiEnv(region=region, gateway=gw, client=client)
    finally:
        await region.close()


async def running_pod(env: ApiEnv, name: str, command: list[str]) -> Running:
    r = await env.client.post(f"{BASE}/pinapps", json=app(name, command))
    assert r.status_code == 201, r.text

    async def started() -> Running | None:
        for member in env.region.members:
            for pod in (await member.client.list(PODS, namespace="demo")).items:
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                if (pod["metadata"]["name"].startswith(name)
                        and statuses and "running" in (statuses[0].get("state") or {})):
                    return Running(env, pod["metadata"]["name"], member.name)
        return None

    return await eventually(started, timeout=30, what=f"a running pod of {name}")


@pytest.fixture
async def talker(region_dir: Path) -> AsyncIterator[Running]:
    async with process_region(region_dir) as env:
        yield await running_pod(env, "talker", ["sh", "-c", TALKER])


async def test_logs_follow_tail_and_refusals(talker: Running) -> None:
    env, url = talker.env, f"{BASE}/pods/{talker.pod}/logs"
    pod = await env.region.member(talker.cluster).client.get(PODS, talker.pod,
                                                             namespace="demo")
    agent = env.region.provisioners[talker.cluster].agent(pod["spec"]["nodeName"])
    # Follow while the container prints: lines arrive as they are written.
    async with env.client.stream("GET", url, params={"follow": "true"}) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["x-pincompute-cluster"] == talker.cluster
        assert r.headers["x-pincompute-container"] == "main"
        seen = ""
        async for chunk in r.aiter_text():
            seen += chunk
            if seen.count("tick") >= 3:
                assert agent.api_server.open_connections == 1  # read from the node
                break
    lines = seen.splitlines()
    assert lines[0] == "hello" and lines[1:4] == ["tick 0", "tick 1", "tick 2"]
    # Hanging up on the gateway ends the read on the node too.
    async def node_idle() -> bool:
        return agent.api_server.open_connections == 0

    await eventually(node_idle, what="the node's log stream closed")

    # The last lines only; with timestamps; the named container and cluster.
    r = await env.client.get(url, params={"tailLines": 1, "timestamps": "true",
                                          "container": "main", "cluster": talker.cluster})
    assert r.status_code == 200
    stamp, _, text = r.text.strip().partition(" ")
    assert text.startswith("tick ") and stamp.endswith("Z")
    r = await env.client.get(url, params={"sinceSeconds": 3600})
    assert r.text.startswith("hello\n")

    # Refusals are Status bodies naming what is wrong.
    r = await env.client.get(url, params={"container": "nope"})
    assert r.status_code == 400 and r.json()["details"]["causes"][0]["field"] == "container"
    r = await env.client.get(f"{BASE}/pods/missing/logs")
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    r = await env.client.get(url, params={"previous": "true"})
    assert r.status_code == 404 and "previous" in r.json()["message"]
    r = await env.client.get(url, params={"tailLines": -1})
    assert r.status_code == 422
    r = await env.client.get(url, params={"cluster": "zone-z-9"})
    assert r.status_code == 404

    # A viewer of the project reads logs; a viewer of another project does not.
    await env.region.ensure_project("other")
    viewer = await env.token(user="vic", project="demo", role="viewer")
    outsider = await env.token(user="oscar", project="other", role="admin")
    async with env.as_token(viewer) as c:
        assert (await c.get(url, params={"tailLines": 1})).status_code == 200
    async with env.as_token(outsider) as c:
        r = await c.get(url)
        assert r.status_code == 403 and "demo" in r.json()["message"]

    # A followed log ends when the reader's token is revoked.
    async with env.as_token(viewer) as c, c.stream("GET", url, params={"follow": "true"}) as r:
        chunks = r.aiter_text()
        assert "hello" in await anext(chunks)
        revoked = await env.client.delete(f"/api/v1/tokens/{viewer.split('_')[1]}")
        assert revoked.status_code == 200, revoked.text
        async with asyncio.timeout(10):
            async for _ in chunks:
                pass  # the stream ends, though the container keeps printing


def ws_url(env: ApiEnv, pod: str, *command: str, **params: str) -> str:
    query = httpx.QueryParams([("command", c) for c in command] + list(params.items()))
    return f"{env.url.replace('http', 'ws', 1)}{BASE}/pods/{pod}/exec?{query}"


async def run(ws: Any) -> tuple[bytes, bytes, int | None]:
    """Read a session to its end: stdout, stderr, exit code."""
    out, err, code = bytearray(), bytearray(), None
    while True:
        try:
            message = await ws.receive_bytes()
        except WebSocketDisconnect:  # the server closed the websocket
            return bytes(out), bytes(err), code
        channel, payload = message[0], message[1:]
        if channel == 1:
            out += payload
        elif channel == 2:
            err += payload
        elif channel == 3:
            code = orjson.loads(payload)["exitCode"]


async def test_exec_a_command_a_terminal_and_refusals(talker: Running) -> None:
    env, pod = talker.env, talker.pod
    headers = {"Authorization": f"Bearer {env.admin_token}"}
    async with httpx.AsyncClient(timeout=30) as http:
        # A command with stdin: its output on stdout and stderr, then its exit code.
        url = ws_url(env, pod, "sh", "-c", "cat; echo $((6*7)); echo oops >&2; exit 3")
        async with aconnect_ws(url, http, headers=headers) as ws:
            await ws.send_bytes(b"\x00hello\n")
            await ws.send_bytes(b"\x00")  # end of stdin
            out, err, code = await run(ws)
        assert (out, err, code) == (b"hello\n42\n", b"oops\n", 3)

        # A shell on a terminal, resized, the token as a query parameter (as browsers do).
        url = ws_url(env, pod, "sh", tty="true", access_token=env.admin_token)
        async with aconnect_ws(url, http) as ws:
            await ws.send_bytes(b"\x04" + orjson.dumps({"width": 123, "height": 45}))
            await ws.send_bytes(b"\x00stty size; test -t 0 && echo TTY; exit 5\n")
            out, err, code = await run(ws)
        text = out.decode().replace("\r\n", "\n")
        assert "45 123\n" in text and "TTY\n" in text
        assert err == b"" and code == 5, text

        # A client that goes away takes its command with it.
        count = ("n=0; for p in /proc/[0-9]*; do case $(tr '\\0' ' ' < $p/cmdline "
                 "2>/dev/null) in 'sleep 654'*) n=$((n+1));; esac; done; echo $n")

        async def sleepers(want: bytes) -> bool:
            async with aconnect_ws(ws_url(env, pod, "sh", "-c", count), http,
                                   headers=headers) as ws:
                return (await run(ws))[0].strip() == want

        async with aconnect_ws(ws_url(env, pod, "sleep", "654"), http, headers=headers):
            await eventually(lambda: sleepers(b"1"), what="the command running")
        await eventually(lambda: sleepers(b"0"), what="the command gone with its client")

        # Refusals come as the handshake's HTTP answer, a Status body.
        async def refused(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
            # The handshake as any websocket client sends it; the refusal is its answer.
            with pytest.raises(WebSocketUpgradeError):
                async with aconnect_ws(url, http, headers=dict(headers or {})):
                    pass
            async with http.stream("GET", url.replace("ws", "http", 1), headers={
                    **(headers or {}), "Connection": "Upgrade", "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as response:
                await response.aread()
            return response

        r = await refused(ws_url(env, pod, "true"))
        assert r.status_code == 401
        r = await refused(ws_url(env, pod), headers)
        assert r.status_code == 400 and r.json()["details"]["causes"][0]["field"] == "command"
        r = await refused(ws_url(env, "missing", "true"), headers)
        assert r.status_code == 404
        await env.region.ensure_project("other")
        for user, project, role in (("vic", "demo", "viewer"), ("oscar", "other", "admin")):
            token = await env.token(user=user, project=project, role=role)
            r = await refused(ws_url(env, pod, "true"), {"Authorization": f"Bearer {token}"})
            assert r.status_code == 403 and "editor" in r.json()["message"]
        editor = await env.token(user="eve", project="demo", role="editor")
        async with aconnect_ws(ws_url(env, pod, "true"), http,
                               headers={"Authorization": f"Bearer {editor}"}) as ws:
            assert (await run(ws))[2] == 0

        # A session ends when its token is revoked (close 1008), its command with it.
        async with aconnect_ws(ws_url(env, pod, "sleep", "655"), http, headers={
                "Authorization": f"Bearer {editor}"}) as ws:
            r = await env.client.delete(f"/api/v1/tokens/{editor.split('_')[1]}")
            assert r.status_code == 200
            async with asyncio.timeout(10):
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive_bytes()
            assert closed.value.code == 1008

    # Every exec is audited, the refused ones too.
    records = env.gateway.ctx.audit.query(verb="EXEC")
    assert {r["result"] for r in records} == {"allowed", "denied", "failed"}
    assert any(r["user"] == "vic" and r["code"] == 403 for r in records)
