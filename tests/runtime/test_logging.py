"""Structured logging: bound and contextual fields, JSON and key=value output."""

from __future__ import annotations

import asyncio
import io
import logging

import orjson
import pytest

from pincompute.runtime.logging import (
    ContextFilter,
    JsonFormatter,
    KeyValueFormatter,
    configure_logging,
    get_logger,
    log_context,
)


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.runtime.logging")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream, handler


def test_json_lines_carry_bound_context_and_call_fields(
        capture: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = capture
    handler.setFormatter(JsonFormatter())
    log = get_logger(logger.name, controller="pinapps")
    with log_context(key="team-a/web", controller="shadowed"):
        log.info("reconciled in %dms", 12, extra={"fields": {"generation": 3}})
    line = orjson.loads(stream.getvalue().splitlines()[0])
    assert line["msg"] == "reconciled in 12ms"
    assert line["level"] == "info"
    assert line["logger"] == logger.name
    # Bound fields win over the ambient context; per-call fields win over both.
    assert line["controller"] == "pinapps"
    assert line["key"] == "team-a/web"
    assert line["generation"] == 3
    assert line["ts"].endswith("Z")


def test_plain_loggers_get_context_through_the_filter(
        capture: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = capture
    handler.setFormatter(KeyValueFormatter())
    with log_context(controller="jobs", key="ns/my job"):
        logger.warning("failed: %s", "boom")
    logger.info("outside")
    first, second = stream.getvalue().splitlines()
    assert " warning tests.runtime.logging failed: " not in first  # message is quoted
    assert 'controller=jobs key="ns/my job"' in first
    assert '"failed: boom"' in first
    assert "key=" not in second


async def test_context_is_per_task() -> None:
    records: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(dict(getattr(record, "fields", {})))

    logger = logging.getLogger("tests.runtime.logging.tasks")
    logger.handlers[:] = [Collect()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    log = get_logger(logger.name)
    both_in = asyncio.Event()
    entered = 0

    async def worker(key: str) -> None:
        nonlocal entered
        with log_context(key=key):
            entered += 1
            if entered == 2:
                both_in.set()
            await both_in.wait()
            log.info("working")

    await asyncio.gather(worker("a"), worker("b"))
    assert sorted(r["key"] for r in records) == ["a", "b"]


def test_exceptions_are_rendered(
        capture: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = capture
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("bad value")
    except ValueError:
        get_logger(logger.name).exception("it failed")
    line = orjson.loads(stream.getvalue())
    assert "ValueError: bad value" in line["exc"]


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    stream = io.StringIO()
    try:
        configure_logging(fmt="json", stream=stream)
        handler = configure_logging(fmt="kv", stream=stream, level=logging.DEBUG)
        added = [h for h in root.handlers if h not in before]
        assert added == [handler]
        with log_context(key="a/b"):
            logging.getLogger("tests.runtime.configured").info("hello")
        assert stream.getvalue().rstrip().endswith("hello key=a/b")
    finally:
        for h in [h for h in root.handlers if h not in before]:
            root.removeHandler(h)
        root.setLevel(level)
