"""Probe thresholds (pure) and the three handlers against real listeners."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pincompute.node.probes import Handlers, Prober, ProbeSpec, ProbeState, resolve_port


def spec(kind="readiness", **kw):
    return ProbeSpec(kind=kind, handler="exec", action={"command": ["true"]}, **kw)


def test_initial_results_are_kubernetes():
    assert ProbeState(spec("readiness")).result is False
    assert ProbeState(spec("liveness")).result is True
    assert ProbeState(spec("startup")).result is None


def test_thresholds_need_consecutive_outcomes():
    state = ProbeState(spec("liveness", failure_threshold=3))
    assert [state.record(False) for _ in range(2)] == [False, False]
    assert state.record(True) is False  # a success resets the failure count
    assert [state.record(False) for _ in range(3)] == [False, False, True]
    assert state.result is False
    ready = ProbeState(spec("readiness", success_threshold=2))
    assert ready.record(True) is False
    assert ready.record(True) is True and ready.result is True


def test_probe_spec_from_container_scales_periods_not_timeouts():
    s = ProbeSpec.from_container({"readinessProbe": {"tcpSocket": {"port": 80},
                                                     "periodSeconds": 10,
                                                     "initialDelaySeconds": 5,
                                                     "timeoutSeconds": 2}},
                                 "readiness", scale=0.1)
    assert (s.handler, s.period, s.initial_delay, s.timeout) == ("tcpSocket", 1.0, 0.5, 2.0)
    assert ProbeSpec.from_container({}, "liveness") is None


def test_named_ports():
    assert resolve_port("http", {"http": 8080}) == 8080
    assert resolve_port(81, {}) == 81
    with pytest.raises(ValueError):
        resolve_port("nope", {})


async def _server(status: int) -> tuple[asyncio.Server, int]:
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                     .encode())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_http_and_tcp_handlers():
    ok, ok_port = await _server(204)
    bad, bad_port = await _server(503)
    try:
        h = Handlers(host="127.0.0.1", ports={"web": ok_port}, execute=None)
        http = ProbeSpec(kind="readiness", handler="httpGet", action={"port": "web"})
        assert (await h.run(http)).ok
        failing = ProbeSpec(kind="readiness", handler="httpGet", action={"port": bad_port})
        outcome = await h.run(failing)
        assert not outcome.ok and "503" in outcome.message
        tcp = ProbeSpec(kind="liveness", handler="tcpSocket", action={"port": ok_port})
        assert (await h.run(tcp)).ok
        await h.close()
    finally:
        ok.close()
        bad.close()
    closed = ProbeSpec(kind="liveness", handler="tcpSocket", action={"port": ok_port})
    assert not (await Handlers(host="127.0.0.1", ports={}, execute=None).run(closed)).ok


async def test_prober_reports_started_then_unhealthy():
    outcomes = iter([1, 0, 0, 1, 1, 1])  # startup fails once then passes; liveness fails

    async def execute(argv, timeout):
        return (next(outcomes, 1), "")

    started = asyncio.Event()
    unhealthy: list[str] = []
    done = asyncio.Event()
    specs = {"startup": ProbeSpec(kind="startup", handler="exec", action={"command": ["x"]},
                                  period=0.01, failure_threshold=3),
             "liveness": ProbeSpec(kind="liveness", handler="exec", action={"command": ["x"]},
                                   period=0.01, failure_threshold=2)}

    def on_unhealthy(message: str) -> None:
        unhealthy.append(message)
        done.set()

    prober = Prober(specs, Handlers(host="", ports={}, execute=execute),
                    on_started=started.set, on_unhealthy=on_unhealthy,
                    on_ready=lambda ok, msg: None)
    prober.start()
    async with asyncio.timeout(5):
        await done.wait()
    await prober.stop()
    assert started.is_set()
    assert unhealthy and unhealthy[0].startswith("Liveness probe failed")


async def test_an_http_probe_never_reads_the_body():
    sent = 0

    async def endless(reader, writer):
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(2000):  # bounded: 128 MiB at most, were it all read
                writer.write(b"x" * 65536)
                await writer.drain()
                sent += 65536
        writer.close()

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        h = Handlers(host="127.0.0.1", ports={}, execute=None)
        probe = ProbeSpec(kind="readiness", handler="httpGet", action={"port": port},
                          timeout=5)
        assert (await h.run(probe)).ok
        await h.close()
        assert sent < 64 << 20
    finally:
        server.close()
