"""The node runtime API end to end: authenticated logs (tail, since, previous, follow), exec."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from pincompute.kube.resource import NODES, PODS
from pincompute.model.wellknown import RUNTIME_API_ANNOTATION
from pincompute.node.runtimeapi import STDOUT, LogOptions, NodeAPIError, NodeClient
from pincompute.node.runtimeapi.server import write_token_file
from tests.node.conftest import container_status, eventually, get_pod, make_pod, py
from tests.node.test_agent import ready


async def test_the_api_is_advertised_and_needs_the_token(cluster, make_agent):
    agent = await make_agent()
    node = await cluster.get(NODES, "n1")
    endpoint = node["metadata"]["annotations"][RUNTIME_API_ANNOTATION]
    assert endpoint == agent.api_endpoint
    assert endpoint.startswith(f"http://{agent.networking.node_ip}:")
    async with httpx.AsyncClient(trust_env=False) as http:
        assert (await http.get(endpoint + "/healthz")).status_code == 200
        assert (await http.get(endpoint + "/pods")).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert (await http.get(endpoint + "/pods", headers=bad)).status_code == 401
    assert await NodeClient(endpoint, agent.api_token).pods() == []
    with pytest.raises(NodeAPIError) as err:
        await NodeClient(endpoint, "wrong").exec("default", "x", "main", ["true"])
    assert err.value.code == 401


async def test_exec_streams_stdin_stdout_stderr_and_exit_code(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("box", [{
        "name": "main", "command": ["sleep", "60"],
        "env": [{"name": "SECRET_WORD", "value": "swordfish"}]}]), namespace="default")
    await eventually(ready(cluster, "box"))
    client = NodeClient(agent.api_endpoint, agent.api_token)
    result = await client.exec("default", "box", "main",
                               ["sh", "-c", "cat; echo $SECRET_WORD; pwd; echo oops >&2; exit 7"],
                               stdin=b"hello\n")
    assert result.exit_code == 7
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "hello"
    assert lines[1] == "swordfish"  # the container's environment
    assert lines[2].endswith("/containers/main")  # and its working directory
    assert result.stderr == b"oops\n"

    # Interactive: each line written comes back before stdin closes.
    session = await client.open_exec("default", "box", "main", ["cat"])
    frames = session.frames()
    for word in (b"one\n", b"two\n"):
        await session.write(word)
        channel, data = await anext(frames)
        assert (channel, data) == (1, word)
    await session.close_stdin()
    assert [f async for f in frames] == []
    assert session.exit_code == 0
    await session.close()

    with pytest.raises(NodeAPIError) as err:
        await client.exec("default", "box", "nope", ["true"])
    assert err.value.code == 404


async def test_logs_tail_since_previous_and_follow(cluster, make_agent):
    agent = await make_agent()
    script = ("import sys, time\n"
              "for i in range(5):\n"
              "    print('line', i, flush=True)\n"
              "    print('err', i, file=sys.stderr, flush=True)\n"
              "    time.sleep(0.1)\n"
              "sys.exit(1)")
    await cluster.create(PODS, make_pod("talker", [{"name": "main", "command": py(script)}],
                                        restartPolicy="OnFailure"), namespace="default")
    client = NodeClient(agent.api_endpoint, agent.api_token)

    async def started():
        pod = await get_pod(cluster, "talker")
        return container_status(pod, "main").get("started")

    await eventually(started)
    # Follow the first instance: lines arrive as written, the stream ends when it exits.
    body = b"".join([c async for c in client.logs("default", "talker", "main", follow=True)])
    text = body.decode()
    assert [ln for ln in text.splitlines() if ln.startswith("line")] == [
        f"line {i}" for i in range(5)]
    assert "err 4" in text

    async def restarted():
        pod = await get_pod(cluster, "talker")
        return container_status(pod, "main").get("restartCount", 0) >= 1

    await eventually(restarted)
    previous = b"".join([c async for c in client.logs("default", "talker", "main",
                                                      previous=True, tail=2)]).decode()
    assert previous.splitlines() == ["line 4", "err 4"]
    stamped = b"".join([c async for c in client.logs("default", "talker", "main",
                                                     previous=True, timestamps=True,
                                                     tail=1)]).decode()
    stamp, _, rest = stamped.strip().partition(" ")
    assert rest == "err 4" and stamp.endswith("Z")
    later = b"".join([c async for c in client.logs("default", "talker", "main",
                                                   previous=True, since=stamp)]).decode()
    assert later.splitlines() == ["err 4"]


async def test_follow_ends_when_the_client_hangs_up(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("quiet", [{
        "name": "main", "command": ["sh", "-c", "echo hi; exec sleep 60"]}]),
        namespace="default")
    await eventually(ready(cluster, "quiet"))
    client = NodeClient(agent.api_endpoint, agent.api_token)
    stream = client.logs("default", "quiet", "main", follow=True)
    assert await anext(stream) == b"hi\n"
    await stream.aclose()

    async def no_connections():
        await asyncio.sleep(0.05)
        return agent.api_server.open_connections == 0

    await eventually(no_connections)


def test_the_token_file_is_created_private_and_replaces_what_was_there(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    token = tmp_path / "api-token"
    token.symlink_to(target)  # a link planted where the token goes is replaced, not followed
    write_token_file(token, "s3cret")
    assert not token.is_symlink()
    assert token.read_text() == "s3cret" and token.stat().st_mode & 0o777 == 0o600
    assert target.read_text() == "keep"


async def test_files_of_a_logging_volume_are_listed_and_streamed(cluster, make_agent):
    agent = await make_agent()
    script = ("import os, time\n"
              "d = os.path.join(os.environ['PINCOMPUTE_ROOT'], 'logging')\n"
              "open(os.path.join(d, 'other.txt'), 'w').write('x\\n')\n"
              "with open(os.path.join(d, 'app.log'), 'a', buffering=1) as f:\n"
              "    for i in range(1000):\n"
              "        f.write('entry %d\\n' % i)\n"
              "        time.sleep(0.1)\n")
    await cluster.create(PODS, make_pod("writer", [{
        "name": "main", "command": py(script),
        "volumeMounts": [{"name": "logs", "mountPath": "/logging"}]}],
        volumes=[{"name": "logs", "logging": {}}]), namespace="default")
    await eventually(ready(cluster, "writer"))
    client = NodeClient(agent.api_endpoint, agent.api_token)

    async def listed():
        files = await client.log_files("default", "writer", "main")
        return files if {f["name"] for f in files} == {"app.log", "other.txt"} else None

    files = await eventually(listed)
    assert {f["volume"] for f in files} == {"logs"}
    whole = b"".join([c async for c in client.logs("default", "writer", "main",
                                                   file="app.log")]).decode()
    assert whole.startswith("entry 0\n")
    last = b"".join([c async for c in client.logs("default", "writer", "main",
                                                  file="app.log", tail=1)]).decode()
    assert last.count("\n") == 1 and last.startswith("entry ")
    # Follow: new entries arrive as the app writes them.
    stream = client.logs("default", "writer", "main", file="app.log", tail=0, follow=True)
    first = (await asyncio.wait_for(anext(stream), 5)).decode()
    assert first.startswith("entry ") and int(first.split()[1]) > int(last.split()[1])
    await stream.aclose()
    for bad, code in ((dict(file="nope.log"), 404), (dict(file="app.log", volume="x"), 404),
                      (dict(file="app.log", previous=True), 400)):
        with pytest.raises(NodeAPIError) as err:
            async for _ in client.logs("default", "writer", "main", **bad):
                pass
        assert err.value.code == code


async def test_exec_on_a_terminal_resizes_and_reports_the_exit_code(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("tty", [{"name": "main", "command": ["sleep", "60"]}]),
                         namespace="default")
    await eventually(ready(cluster, "tty"))
    client = NodeClient(agent.api_endpoint, agent.api_token)
    session = await client.open_exec(
        "default", "tty", "main",
        ["sh", "-c", "read x; stty size; test -t 0 && echo on-a-tty; echo got $x >&2; "
                     "echo owner=$(stat -c %u $(tty)) uid=$(id -u); exit 3"],
        tty=True)
    try:
        await session.resize(100, 30)
        await session.write(b"go\n")
        output = b"".join([data async for channel, data in session.frames()
                           if channel == STDOUT])
    finally:
        await session.close()
    text = output.decode().replace("\r\n", "\n")
    assert "go\n" in text  # the terminal echoes what is typed
    assert "30 100\n" in text  # rows, columns: the resize reached the terminal
    assert "on-a-tty\n" in text
    assert "got go\n" in text  # stderr is the terminal too
    assert session.exit_code == 3
    # The terminal is the pod's own (as a login's tty is its user's), the command the pod.
    uid = agent.find("default", "tty").sandbox.uid
    expected = os.getuid() if uid is None else uid
    assert f"owner={expected} uid={expected}\n" in text

    # Without a terminal a resize is ignored and stdout stays apart from stderr.
    plain = await client.open_exec("default", "tty", "main", ["sh", "-c", "test -t 0; echo $?"])
    await plain.resize(10, 10)
    await plain.close_stdin()
    assert [f async for f in plain.frames()] == [(STDOUT, b"1\n")]
    await plain.close()


async def test_a_refused_log_read_fails_before_any_byte(cluster, make_agent):
    agent = await make_agent()
    client = NodeClient(agent.api_endpoint, agent.api_token)
    with pytest.raises(NodeAPIError) as err:
        await client.open_logs("default", "missing", "main", LogOptions(follow=True))
    assert err.value.code == 404 and "missing" in err.value.message


def running_here(argv: list[str]) -> int:
    """How many processes of this machine run ``argv`` (pods of the process runtime are this
    machine's processes), rather than by a second exec into the pod."""
    want = [a.encode() for a in argv]
    n = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != argv[0]:
                continue
            n += (entry / "cmdline").read_bytes().split(b"\0")[:len(want)] == want
        except OSError:
            continue  # gone meanwhile
    return n


async def test_a_command_dies_with_its_session(cluster, make_agent):
    # Also when the agent ignores SIGHUP (as under nohup, which CI may use): an ignored
    # signal survives exec, and a terminal command dies of the hang-up only if its
    # container started with the default disposition.
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        await _dies_with_its_session(cluster, make_agent)
    finally:
        signal.signal(signal.SIGHUP, previous)


async def _dies_with_its_session(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("box2", [{"name": "main", "command": ["sleep", "60"]}]),
                         namespace="default")
    await eventually(ready(cluster, "box2"))
    client = NodeClient(agent.api_endpoint, agent.api_token)
    for tty in (False, True):
        session = await client.open_exec("default", "box2", "main", ["sleep", "987"], tty=tty)

        async def sleeping(want: int) -> bool:
            return running_here(["sleep", "987"]) == want

        await eventually(lambda: sleeping(1))
        await session.close()  # the client goes away
        await eventually(lambda: sleeping(0))


async def test_an_exec_handshake_that_fails_is_a_connection_error():
    async def hang_up(reader, writer):
        writer.close()

    async def say_nothing(reader, writer):
        await asyncio.sleep(5)
        writer.close()

    for handler in (hang_up, say_nothing):
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            client = NodeClient(f"http://127.0.0.1:{port}", "t", timeout=0.3)
            with pytest.raises(ConnectionError) as err:
                await client.open_exec("default", "p", "main", ["true"])
            assert handler is hang_up or "no exec handshake" in str(err.value)
        finally:
            server.close()
    with pytest.raises(ConnectionError):  # nothing listens there
        await NodeClient(f"http://127.0.0.1:{port}", "t").open_exec("d", "p", "c", ["true"])
