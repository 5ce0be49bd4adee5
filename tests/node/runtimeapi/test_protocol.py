"""The runtime API's wire protocol: what server and client agree on, without a node."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs

import pytest

import pincompute
from pincompute.node.runtimeapi.protocol import (
    EXEC,
    LOGS,
    STATUS,
    STDOUT,
    LogOptions,
    bearer,
    bearer_token,
    container_path,
    encode_frame,
    exec_command,
    exec_query,
    exit_code,
    exit_frame,
    read_frame,
)
from pincompute.node.runtimeapi.server import HTTPError, read_request


def test_paths_quote_each_part():
    assert container_path(LOGS, "default", "web-1", "main") == "/logs/default/web-1/main"
    assert container_path(EXEC, "a b", "p", "c") == "/exec/a%20b/p/c"


def test_bearer_token_round_trip_and_other_schemes():
    assert bearer_token(bearer("s3cret")) == "s3cret"
    assert bearer_token("bearer  s3cret ") == "s3cret"
    assert bearer_token("Basic abc") is None
    assert bearer_token("") is None


def test_log_options_round_trip_through_the_query():
    options = LogOptions(follow=True, tail=5, since="2026-01-01T00:00:00Z",
                         since_seconds=2.5, previous=True, timestamps=True,
                         file="app.log", volume="logs")
    query = {k: [v] for k, v in options.params().items()}
    assert LogOptions.from_query(query) == options
    assert LogOptions().params() == {}
    assert LogOptions.from_query({}) == LogOptions()
    assert LogOptions.from_query({"follow": ["true"], "previous": ["0"]}) == \
        LogOptions(follow=True)
    with pytest.raises(ValueError):
        LogOptions.from_query({"tail": ["many"]})


def test_exec_query_carries_argv_in_order():
    query = parse_qs(exec_query(["sh", "-c", "echo a&b"], stdin=True))
    assert exec_command(query) == (["sh", "-c", "echo a&b"], True)
    assert exec_command(parse_qs(exec_query(["true"], stdin=False))) == (["true"], False)


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_round_trip_and_end():
    reader = reader_of(encode_frame(STDOUT, b"hello") + encode_frame(0, b"") + exit_frame(-9))
    assert await read_frame(reader, limit=None) == (STDOUT, b"hello")
    assert await read_frame(reader, limit=None) == (0, b"")
    channel, payload = await read_frame(reader, limit=None)
    assert channel == STATUS and exit_code(payload) == 137  # 128 + SIGKILL
    assert await read_frame(reader, limit=None) is None


async def test_an_oversized_frame_is_refused_before_it_is_read():
    with pytest.raises(ValueError):
        await read_frame(reader_of(encode_frame(STDOUT, b"x" * 11)), limit=10)


async def test_request_heads_are_parsed_and_malformed_ones_refused():
    request = await read_request(reader_of(
        b"GET /logs/default/p%20q/main?tail=3&follow=1 HTTP/1.1\r\n"
        b"Host: x\r\nAuthorization: Bearer t\r\n\r\n"))
    assert request is not None
    assert (request.method, request.path) == ("GET", "/logs/default/p q/main")
    assert request.query == {"tail": ["3"], "follow": ["1"]}
    assert request.headers["authorization"] == "Bearer t"
    assert await read_request(reader_of(b"")) is None
    for bad in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n"):
        with pytest.raises(HTTPError) as err:
            await read_request(reader_of(bad))
        assert err.value.code == 400


def test_the_client_loads_nothing_of_the_node_agent():
    # The API gateway imports the client: it must not drag the node's machinery in.
    code = ("import sys, pincompute.node.runtimeapi as api\n"
            "assert api.NodeClient\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('pincompute.'))\n"
            "print(' '.join(loaded))\n")
    src = str(Path(pincompute.__file__).resolve().parents[1])  # these sources, not another copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    assert set(out) == {"pincompute.node", "pincompute.node.runtimeapi",
                        "pincompute.node.runtimeapi.client",
                        "pincompute.node.runtimeapi.protocol"}
