"""Request ids and the one place errors become problem+json."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.errors import DependencyUnavailable, FieldError, ProblemError, problem_body
from gateway.logs import REQUEST_ID
from gateway.metrics import Metrics
from gateway.store.base import StoreUnavailable

__all__ = ["error_middleware", "problem_response"]

log = logging.getLogger("xinyi.http")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class _RequestIds:
    """Request ids unique across processes and restarts: a random prefix, then a counter.

    They only correlate log lines and answers, so they need not be
    unguessable; a counter spares a getrandom call per request. A forked
    worker draws a prefix of its own.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(5)
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):06x}"


_request_ids = _RequestIds()


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    return web.Response(
        body=orjson.dumps(problem_body(status, code, title, detail, errors, extra=extra)),
        status=status,
        content_type="application/problem+json",
        headers=headers,
    )


def error_middleware(
    metrics: Metrics,
) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _SAFE_ID.match(incoming) else _request_ids.next()
        REQUEST_ID.set(request_id)
        try:
            response = await handler(request)
        except ProblemError as exc:
            metrics.errors.labels(exc.code).inc()
            response = problem_response(
                exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers, exc.extra
            )
        except StoreUnavailable as exc:
            # The shared store (e.g. Redis) is not answering: 503, which the caller may
            # retry, from any handler. The store's own message stays in the log.
            log.warning("store unavailable", extra={"error": str(exc)})
            down = DependencyUnavailable("the gateway's state store is not answering; try again")
            metrics.errors.labels(down.code).inc()
            response = problem_response(
                down.status, down.code, down.title, down.detail, headers=down.headers
            )
        except web.HTTPException as exc:
            # aiohttp's own refusals (no route, wrong method) get the same envelope.
            code = _HTTP_CODES.get(exc.status, "http_error")
            metrics.errors.labels(code).inc()
            response = problem_response(exc.status, code, exc.reason, exc.reason)
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        except Exception:
            # A 500 is a bug: answer plainly, keep the traceback in the log.
            log.exception("unhandled error")
            metrics.errors.labels("internal_error").inc()
            response = problem_response(
                500, "internal_error", "Internal error", "an internal error occurred"
            )
        response.headers["X-Request-Id"] = request_id
        return response

    return middleware
