"""Structured logs that carry the controller and the object key.

Theory of operation
-------------------
Every log line a controller writes should say *which* controller and *which*
object, so that ``grep key=team-a/web`` follows one object through every
component.  Two mechanisms attach those fields, and both end in the same place, a
``fields`` dict on the :class:`logging.LogRecord`:

* a :class:`StructuredLogger` (a :class:`logging.LoggerAdapter`) binds fields to a
  logger (``get_logger(__name__, controller="pinapps")``) and accepts more per
  call through ``extra={"fields": {...}}`` or :meth:`StructuredLogger.bind`;
* :func:`log_context` sets fields in a :class:`contextvars.ContextVar` for a block of
  code.  The controller wraps each reconcile in it, so even a reconciler that logs
  through a plain ``logging.getLogger`` gets ``controller`` and ``key`` — asyncio
  copies the context into each task, so concurrent workers never see each other's
  fields.

The context is captured when the record is created (by the adapter, or by
:class:`ContextFilter` on the handler), not when it is formatted, so a queued or
threaded handler still prints the fields that were current at the call.

:class:`JsonFormatter` renders one JSON object per line (for log shippers);
:class:`KeyValueFormatter` renders ``ts level logger msg k=v ...`` (for humans and
``grep``).  :func:`configure_logging` installs either on the root logger.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import logging
import sys
import types
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Literal, TextIO

import orjson

FIELDS_ATTR = "fields"
_INSTALLED = "_pincompute_structured"

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "pincompute_log_context", default=types.MappingProxyType({}))


def current_context() -> Mapping[str, Any]:
    """The fields :func:`log_context` has set for the running code."""
    return _context.get()


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` to every record logged inside the block (nests; inner wins)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class StructuredLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger with bound fields; per-call fields go in ``extra={"fields": {...}}``."""

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(logger, {})
        self.fields: dict[str, Any] = dict(fields or {})

    def bind(self, **fields: Any) -> StructuredLogger:
        """A logger with ``fields`` added to the bound ones (this one is unchanged)."""
        return StructuredLogger(self.logger, {**self.fields, **fields})

    def process(self, msg: Any,
                kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        merged = {**_context.get(), **self.fields, **(extra.get(FIELDS_ATTR) or {})}
        extra[FIELDS_ATTR] = merged
        kwargs["extra"] = extra
        return msg, kwargs


def get_logger(name: str, **fields: Any) -> StructuredLogger:
    """``logging.getLogger(name)`` with ``fields`` bound."""
    return StructuredLogger(logging.getLogger(name), fields)


class ContextFilter(logging.Filter):
    """Adds :func:`log_context` fields to records from plain loggers (install on a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        own = getattr(record, FIELDS_ATTR, None)
        if own is None:
            setattr(record, FIELDS_ATTR, dict(ctx))
        elif ctx:
            # Fields given at the call win over the ambient context.
            setattr(record, FIELDS_ATTR, {**ctx, **own})
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record (empty when it has none)."""
    fields = getattr(record, FIELDS_ATTR, None)
    return dict(fields) if isinstance(fields, Mapping) else {}


def _timestamp(record: logging.LogRecord) -> str:
    return _dt.datetime.fromtimestamp(record.created, _dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, fields, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record_fields(record).items():
            out.setdefault(k, v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def _kv_value(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    # Quote only when needed, so keys and names stay grep-able as they are.
    if text == "" or any(c in text for c in ' ="\n\t'):
        return orjson.dumps(text).decode()
    return text


class KeyValueFormatter(logging.Formatter):
    """``ts level logger msg k=v ...`` with values quoted only when they need it."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname.lower(), record.name,
                 _kv_value(record.getMessage())]
        parts.extend(f"{k}={_kv_value(v)}" for k, v in record_fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(*, level: int | str = logging.INFO,
                      fmt: Literal["json", "kv"] = "kv",
                      stream: TextIO | None = None) -> logging.Handler:
    """Install a structured handler on the root logger and return it.

    Meant for entry points (``pincompute up``, component processes); libraries and
    tests leave logging configuration to their host.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(ContextFilter())
    setattr(handler, _INSTALLED, True)
    root = logging.getLogger()
    # Calling it again replaces our handler instead of printing every line twice.
    for old in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
