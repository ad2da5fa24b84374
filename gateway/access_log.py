"""The access log: one JSON line per request, written in batches.

Going through ``logging`` costs a ``LogRecord``, the handler lock, the
formatter and one ``write`` per line; at a thousand requests a second that
was ~80 µs of CPU per request (BENCHMARKS.md). Access lines are built here
directly with orjson in the shape ``JsonFormatter`` gives every other line,
gathered for up to ``FLUSH_AFTER_S`` (or ``_MAX_PENDING`` lines), and written
with one ``write`` through the root handler's stream under its lock, so lines
from other threads never interleave with ours. Waiting lines are written at
interpreter exit and whenever ``flush()`` is called; a crash loses at most
the last ``FLUSH_AFTER_S`` of access lines, never an application log line.

Only method, path, status, duration and request id are logged: never a body,
a query string or a header value.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from time import time as wall_clock
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.logs import utc_timestamp

__all__ = ["FLUSH_AFTER_S", "JsonAccessLogger", "flush"]

# How long a line may wait, and how many may wait, before they are written.
FLUSH_AFTER_S = 0.05
_MAX_PENDING = 512

_pending: list[bytes] = []
_scheduled = False


def flush() -> None:
    """Write every waiting line through the root handler's stream."""
    global _scheduled
    _scheduled = False
    if not _pending:
        return
    data = b"".join(_pending).decode()
    _pending.clear()
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if stream is None:
            continue
        handler.acquire()
        try:
            stream.write(data)
            stream.flush()
        finally:
            handler.release()
        return


atexit.register(flush)


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access logger hook, writing lines shaped like JsonFormatter's."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        global _scheduled
        line: dict[str, Any] = {
            "time": utc_timestamp(wall_clock()),
            "level": "info",
            "logger": self.logger.name,
            "message": "request",
            "request_id": response.headers.get("X-Request-Id"),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(time * 1000, 3),
        }
        _pending.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if len(_pending) >= _MAX_PENDING:
            flush()
        elif not _scheduled:
            _scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_AFTER_S, flush)
