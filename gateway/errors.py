"""Errors the gateway answers with, as RFC 9457 problem+json.

Every error a handler may raise is a :class:`ProblemError`; the middleware in
``gateway.api.middleware`` turns it into one JSON envelope built by
:func:`problem_body`. Anything else that escapes a handler is a bug: it is
logged and answered with a bare 500.

    ProblemError                      status  code
    ├── InvalidRequest                400/422 invalid_request (with errors[])
    ├── Unauthenticated               401     unauthenticated
    ├── Forbidden                     403     forbidden_scene | forbidden_purpose |
    │                                         forbidden_kind | consent_required |
    │                                         consent_revoked | insufficient_scope
    ├── NotFound                      404     not_found
    ├── PolicyRefused                 409     policy_refused (reasons[])
    ├── PayloadTooLarge               413     payload_too_large
    ├── UnsupportedMediaType          415     unsupported_media_type
    ├── RateLimited                   429     rate_limited (Retry-After)
    └── DependencyUnavailable         503     dependency_unavailable (Retry-After)

Messages never carry a subject id, a score or a token: callers may log them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Conflict",
    "DependencyUnavailable",
    "FieldError",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "PolicyRefused",
    "ProblemError",
    "RateLimited",
    "Unauthenticated",
    "UnsupportedMediaType",
    "problem_body",
]

PROBLEM_BASE = "https://xinyi-gateway.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field that failed validation: a JSON pointer into the request body."""

    pointer: str
    message: str


class ProblemError(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.errors = errors or []
        self.headers = headers or {}
        # RFC 9457 extension members, e.g. the reasons a policy set was refused.
        self.extra = extra or {}


class InvalidRequest(ProblemError):
    """400 for a body that is not JSON at all, 422 for JSON that fails a check."""

    status = 422
    code = "invalid_request"
    title = "Invalid request"


class Unauthenticated(ProblemError):
    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="xinyi-gateway"'})


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(ProblemError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ProblemError):
    """The resource's state does not allow the change (e.g. a closed commitment)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class PolicyRefused(ProblemError):
    status = 409
    code = "policy_refused"
    title = "Policy set refused"


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class RateLimited(ProblemError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after_s: float) -> None:
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(
            f"rate limit exceeded; retry after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class DependencyUnavailable(ProblemError):
    status = 503
    code = "dependency_unavailable"
    title = "Dependency unavailable"

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one problem+json envelope every error response uses."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = [{"pointer": e.pointer, "message": e.message} for e in errors]
    if instance is not None:
        body["instance"] = instance
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return body
