"""Credit events from the upstream platform (API.md "Credit events")."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from adapters.credit.base import (
    CreditEvent,
    CreditRecord,
    CreditSourceError,
    RecordStatus,
    UnknownRecord,
)
from gateway.api.components import idempotent
from gateway.api.http import json_response, read_json, require_object
from gateway.api.idempotency import run_idempotent
from gateway.api.keys import GATEWAY
from gateway.api.schemas import CreditEventBody, EventRecord, field_errors
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    WRITE_ERRORS,
    ApiPart,
    json_content,
    model_ref,
    problem,
)
from gateway.audit.events import audit_event
from gateway.errors import DependencyUnavailable, FieldError, InvalidRequest
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.restorations.store import RESTORING_EVENTS
from gateway.runtime import Gateway
from gateway.settings import Partner
from gateway.store.base import StoreUnavailable
from gateway.store.changes import Topic

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()
log = logging.getLogger("xinyi.events")


def _full_record(r: EventRecord) -> CreditRecord:
    if r.type is None or r.domain is None or r.decided_on is None:
        missing = [name for name in ("type", "domain", "decided_on") if getattr(r, name) is None]
        raise InvalidRequest(
            "a new record needs its type, domain and decision date",
            errors=[FieldError(f"/record/{name}", "required for this event") for name in missing],
        )
    return CreditRecord(
        record_id=r.record_id,
        type=r.type,
        domain=r.domain,
        effective_document=r.effective_document,
        adverse=r.adverse,
        decided_on=r.decided_on,
        publication_until=r.publication_until,
        status=RecordStatus(r.status),
        value=r.value,
        title=r.title,
    )


@routes.post("/v1/events/credit")
async def credit_event(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request, scope="events")
    gw.partners.require_kind(caller, "platform")
    data = require_object(await read_json(request))
    return await run_idempotent(gw, request, caller, lambda: _apply_event(gw, caller, data))


async def _apply_event(gw: Gateway, caller: Partner, data: dict[str, Any]) -> web.Response:
    try:
        body = CreditEventBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the event does not match the schema", errors=field_errors(exc, body=data)
        ) from None
    try:
        subject_id = validate_subject_id(body.subject.kind, body.subject.id)
    except InvalidIdentifier as exc:
        raise InvalidRequest(
            "invalid subject", errors=[FieldError("/subject/id", str(exc))]
        ) from None
    event = CreditEvent(body.event)
    adds = event in (CreditEvent.LISTED, CreditEvent.RECORD_ADDED)
    record = _full_record(body.record) if adds else None
    if event is CreditEvent.OBJECTION_CLOSED:
        record = CreditRecord(
            record_id=body.record.record_id,
            type="",
            domain="",
            effective_document=False,
            adverse=True,
            decided_on=gw.today(),
            publication_until=None,
            status=RecordStatus(body.record.status),
        )
    try:
        await gw.credit.apply_event(
            body.subject.kind, subject_id, event, record, body.record.record_id
        )
    except UnknownRecord:
        raise InvalidRequest(
            "no such record",
            errors=[FieldError("/record/record_id", "the source holds no such record")],
        ) from None
    except CreditSourceError as exc:
        raise DependencyUnavailable(f"the credit source did not take the event: {exc}") from exc
    subject_key = gw.pseudonyms.internal(body.subject.kind, subject_id)
    restored = await _restore(gw, body, subject_key, event)
    gw.loans.forget(subject_key)  # 名单推荐 reads the changed records from now on
    checked, revoked = await gw.recheck(
        body.subject.kind, subject_id, gw.policies, gw.today(), gw.partners.by_id
    )
    # Every replica drops its cached records of the subject (and its signed
    # status lists when a token was revoked), not only this one.
    await gw.announce(Topic.RECORDS, subject_key)
    if revoked:
        gw.status_cache.clear()  # publish the new bits now, not after the re-sign interval
        await gw.announce(Topic.STATUS)
    await gw.store.append_audit(
        audit_event(
            "credit_event_received",
            caller.id,
            gw.now(),
            subject=gw.pseudonyms.internal(body.subject.kind, subject_id),
            outcome=event.value,
            record_id=body.record.record_id,
            tokens_checked=checked,
            tokens_revoked=revoked,
        )
    )
    log.info("credit event applied", extra={"event": event.value, "revoked": revoked})
    return json_response(
        {
            "event": event.value,
            "tokens_checked": checked,
            "tokens_revoked": revoked,
            "decisions_restored": restored,
        },
        status=202,
    )


async def _restore(gw: Gateway, body: CreditEventBody, subject_key: str, event: CreditEvent) -> int:
    """A record no longer a basis: log the constrained decisions that rested on it.

    Repaired, delisted, or an objection closed with the record repaired or
    expired (upheld: the record was wrong). The constraint itself ends because
    the record stops counting; this tells the credit office whom to restore.
    """
    if event is CreditEvent.OBJECTION_CLOSED:
        upheld = body.record.status in ("repaired", "expired")
        reason = "objection_upheld" if upheld else None
    else:
        reason = event.value if event.value in RESTORING_EVENTS else None
    if reason is None:
        return 0
    try:
        moved = await gw.restorations.restore(
            subject_key, body.record.record_id, reason, gw.now().isoformat(timespec="seconds")
        )
    except StoreUnavailable as exc:
        raise DependencyUnavailable("the restorations store is not writable") from exc
    if moved:
        log.info("constraints restored", extra={"event": reason, "decisions": len(moved)})
    return len(moved)


openapi.model(CreditEventBody)
openapi.add(
    "/v1/events/credit",
    "post",
    idempotent(
        {
            "summary": "A credit status change from the upstream platform (platform partners)",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": model_ref("CreditEventBody")}},
            },
            "responses": {
                "202": json_content({"type": "object"}, "applied; live tokens re-checked"),
                **AUTH_ERRORS,
                "403": problem(
                    "platform partners only (forbidden_kind), with the events scope "
                    "(insufficient_scope)"
                ),
                **WRITE_ERRORS,
                "503": problem("the credit source did not take the event"),
            },
        }
    ),
)
