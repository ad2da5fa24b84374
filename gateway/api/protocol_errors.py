"""Requests aiohttp refuses before any handler runs, answered as problem+json.

A request line or header over aiohttp's limit (8190 bytes), or bytes that are
not HTTP at all, never reach the middleware: aiohttp's protocol answers them
itself, in text/plain, quoting the start of the offending line, which may be
an ``Authorization`` header. aiohttp has no hook for that answer (the error
handler is made per connection by ``RequestHandler``, which ``Server`` builds
directly), so :func:`install` replaces ``RequestHandler.handle_error`` with one
that answers the API's error envelope and never quotes the request.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

from gateway.errors import problem_body

__all__ = ["install", "protocol_problem"]

log = logging.getLogger("xinyi.http")


def protocol_problem(status: int, exc: BaseException | None) -> tuple[int, str, str, str]:
    """(status, code, title, detail) for a request aiohttp could not parse or serve."""
    if isinstance(exc, LineTooLong):
        return (
            431,
            "headers_too_large",
            "Request header fields too large",
            "the request line or a header is longer than 8190 bytes",
        )
    if isinstance(exc, BadHttpMessage) or status == 400:
        return 400, "bad_request", "Bad request", "the request is not valid HTTP/1.1"
    if status == 504:
        return 504, "timeout", "Gateway timeout", "the request took too long"
    return 500, "internal_error", "Internal error", "an internal error occurred"


def _handle_error(
    self: RequestHandler,
    request: Any,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    status, code, title, detail = protocol_problem(status, exc)
    if status == 500:
        log.error("unhandled protocol error", exc_info=exc)
    elif not isinstance(exc, BadHttpMethod):
        # The exception's text quotes the request: only its kind is logged.
        log.info("request refused by the HTTP parser", extra={"error": type(exc).__name__})
    if request.writer.output_size > 0:
        raise ConnectionError("the response has begun; no error response can follow")
    response = web.Response(
        body=orjson.dumps(problem_body(status, code, title, detail)),
        status=status,
        content_type="application/problem+json",
    )
    response.force_close()
    return response


def install() -> None:
    """Make every aiohttp server in this process answer protocol errors as problem+json."""
    RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
