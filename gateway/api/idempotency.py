"""``Idempotency-Key`` on POST endpoints: a retried request gets the first response.

The key is scoped to the partner, method and path, and bound to a SHA-256 of
the body: the same key with another body is refused (422). While a first
request is in flight, a second one with the key gets 409. A decision's key is
stored in the same atomic write as the decision and its audit record, so a
retry after a lost reply never makes a second decision; other endpoints store
their 2xx response once it is ready.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import FieldError, InvalidRequest, ProblemError
from gateway.runtime import Gateway
from gateway.settings import Partner
from gateway.store.admission import IdempotencyClaim
from gateway.store.base import IDEMPOTENCY_TTL_S, IdempotencyRecord

__all__ = [
    "HEADER",
    "Idempotency",
    "abandon",
    "begin",
    "claim",
    "replayed",
    "requested",
    "run_idempotent",
    "settle",
]

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Long enough for any request to finish; short enough that a crashed one frees the key.
_IN_FLIGHT_S = 10


class Idempotency:
    """One request's key: its stored record if a first request finished, else a claim."""

    def __init__(self, key: str, fingerprint: str, record: IdempotencyRecord | None) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.record = record

    @property
    def pair(self) -> tuple[str, str]:
        return (self.key, self.fingerprint)


async def begin(gw: Gateway, request: web.Request, partner: Partner) -> Idempotency | None:
    """None without the header; otherwise the replayable record, or a fresh claim."""
    idem = await requested(request, partner)
    if idem is None:
        return None
    record = await gw.store.get_idempotency(idem.key)
    claimed = record is None and await gw.store.claim_once(_lock(idem.key), _IN_FLIGHT_S)
    return settle(idem, record, claimed)


async def requested(request: web.Request, partner: Partner) -> Idempotency | None:
    """The request's key (400 if malformed) and body fingerprint, not yet looked up."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise InvalidRequest(
            f"{HEADER} must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
            status=400,
            errors=[FieldError("", f"invalid {HEADER} header")],
        )
    key = f"{partner.id}:{request.method}:{request.path}:{raw}"
    fingerprint = hashlib.sha256(await request.read()).hexdigest()
    return Idempotency(key, fingerprint, None)


def claim(idem: Idempotency) -> IdempotencyClaim:
    """What ``Store.admit`` reads and claims for this key."""
    return IdempotencyClaim(idem.key, _lock(idem.key), _IN_FLIGHT_S)


def settle(idem: Idempotency, record: IdempotencyRecord | None, claimed: bool) -> Idempotency:
    """The key's state as the store found it: another body (422), still in flight
    (409), a first request's record to replay, or this request's own claim."""
    if record is not None:
        if record.fingerprint != idem.fingerprint:
            raise InvalidRequest(
                f"this {HEADER} was used for a request with another body",
                code="idempotency_key_reused",
                errors=[FieldError("", f"{HEADER} reused with a different body")],
            )
        idem.record = record
        return idem
    if not claimed:
        raise ProblemError(
            f"a request with this {HEADER} is still in progress",
            code="idempotency_in_progress",
            status=409,
            headers={"Retry-After": "1"},
        )
    return idem


def _lock(key: str) -> str:
    return f"idem-lock:{key}"


async def abandon(gw: Gateway, idem: Idempotency | None) -> None:
    """A request that held the key failed: a retry may run at once."""
    if idem is not None and idem.record is None:
        await gw.store.release(_lock(idem.key))


def replayed(response: web.Response) -> web.Response:
    response.headers["Idempotent-Replayed"] = "true"
    return response


async def run_idempotent(
    gw: Gateway,
    request: web.Request,
    partner: Partner,
    handler: Callable[[], Awaitable[web.Response]],
) -> web.Response:
    """Run a non-decision POST once per key, replaying its stored 2xx response."""
    idem = await begin(gw, request, partner)
    if idem is not None and idem.record is not None and idem.record.status is not None:
        return replayed(
            web.Response(
                text=idem.record.body or "",
                status=idem.record.status,
                content_type="application/json",
            )
        )
    try:
        response = await handler()
    except BaseException:
        await abandon(gw, idem)
        raise
    if idem is not None and 200 <= response.status < 300:
        body = response.body if isinstance(response.body, bytes) else b""
        await gw.store.put_idempotency(
            idem.key,
            IdempotencyRecord(idem.fingerprint, status=response.status, body=body.decode()),
            IDEMPOTENCY_TTL_S,
        )
    return response
