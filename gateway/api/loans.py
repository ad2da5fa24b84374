"""Loans (API.md "Loans", issue 11): products, demands, matching, 名单推荐, responses, stats.

Thin handlers: authenticate, check the caller's kind and ownership, validate
the body, then ask ``gateway.loans.service``. Another partner's product or
demand is answered as if it did not exist (404), never with its content.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.api.http import json_response, read_json, require_object
from gateway.api.idempotency import run_idempotent
from gateway.api.keys import GATEWAY
from gateway.api.loans_spec import openapi
from gateway.api.schemas import field_errors
from gateway.errors import FieldError, Forbidden, InvalidRequest, NotFound
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.loans.bodies import DemandBody, MatchBody, ProductBody, ResponseBody
from gateway.loans.matching import DemandTerms
from gateway.loans.models import LoanDemand, LoanProduct
from gateway.loans.rules.compile import ProductRefused
from gateway.runtime import Gateway
from gateway.settings import Partner

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
B = TypeVar("B", bound=BaseModel)

_MAX_PAGE = 500


def _parse(model: type[B], data: dict[str, Any], what: str) -> B:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            f"the {what} does not match the schema", errors=field_errors(exc, body=data)
        ) from None


def _epoch(gw: Gateway) -> int:
    return int(gw.now().timestamp())


def _refused(exc: ProductRefused, body: ProductBody) -> InvalidRequest:
    """The guard's refusal as problem+json: its code, each rule named by pointer."""
    index = {rule.get("id"): i for i, rule in enumerate(body.rules)}
    errors = []
    for p in exc.problems:
        if p.rule in index:
            pointer = f"/rules/{index[p.rule]}"
        else:
            pointer = "/legal_basis" if p.code == "missing_legal_basis" else "/rules"
        errors.append(FieldError(pointer, f"{p.code}: {p.message}"))
    return InvalidRequest(
        f"the guard refused the product: {exc.problems[0].message}",
        code=exc.code,
        errors=errors,
        extra={
            "problems": [{"rule": p.rule, "code": p.code, "message": p.message}
                         for p in exc.problems]
        },
    )  # fmt: skip


def _limit(request: web.Request, default: int = 50) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise InvalidRequest(
            "limit is a whole number from 1 to 500",
            errors=[FieldError("/limit", "1..500")],
        )
    return int(raw)


# -- products --------------------------------------------------------------------------
async def _own_product(request: web.Request, partner: Partner) -> LoanProduct:
    gw = request.app[GATEWAY]
    version = None
    raw = request.query.get("version")
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidRequest(
                "version is a positive whole number", errors=[FieldError("/version", "invalid")]
            )
        version = int(raw)
    product = await gw.loans.product(request.match_info["product_id"], version)
    # A bank sees only its own products; others are not there for it.
    if product is None or (partner.kind == "bank" and product.bank != partner.id):
        raise NotFound("no such loan product")
    return product


@routes.post("/v1/loan-products")
async def create_product(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    bank = await gw.authenticate(request)
    gw.partners.require_kind(bank, "bank")
    data = require_object(await read_json(request))
    return await run_idempotent(gw, request, bank, lambda: _publish(gw, bank, data))


async def _publish(gw: Gateway, bank: Partner, data: dict[str, Any]) -> web.Response:
    body = _parse(ProductBody, data, "loan product")
    errors = []
    if body.id is None:
        errors.append(FieldError("/id", "a new product needs an id"))
    if body.bank not in (None, bank.id):
        errors.append(FieldError("/bank", "a bank publishes its own products only"))
    if errors:
        raise InvalidRequest("the loan product has invalid fields", errors=errors)
    try:
        product = await gw.loans.publish(bank, body, gw.policies, _epoch(gw))
    except ProductRefused as exc:
        gw.metrics.guard_rejections.labels(exc.code).inc()
        raise _refused(exc, body) from None
    proof = gw.loans.rules.prove(product, gw.policies)
    return json_response({**product.as_json(), "proof": proof}, status=201)


@routes.get("/v1/loan-products")
async def list_products(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    q = request.query
    bank = q.get("bank")
    if partner.kind == "bank":
        if bank not in (None, partner.id):
            raise Forbidden("a bank lists its own products only", code="forbidden_partner")
        bank = partner.id
    status = q.get("status")
    if status not in (None, "active", "withdrawn"):
        raise InvalidRequest("status is active or withdrawn", errors=[FieldError("/status", "")])
    amount = q.get("amount")
    if amount is not None and not amount.isdigit():
        raise InvalidRequest("amount is in whole CNY", errors=[FieldError("/amount", "invalid")])
    region = q.get("region")
    limit = _limit(request)
    after = q.get("cursor", "")
    products = [
        p
        for p in await gw.loans.store.list_products(bank)
        if p.id > after
        and (status is None or p.status == status)
        and (amount is None or p.amount_min <= int(amount) <= p.amount_max)
        and (region is None or p.covers_region(region))
    ]
    page = products[:limit]
    body: dict[str, Any] = {"products": [p.as_json() for p in page]}
    if len(products) > limit:
        body["next_cursor"] = page[-1].id
    return json_response(body)


@routes.get("/v1/loan-products/{product_id}")
async def get_product(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    return json_response((await _own_product(request, partner)).as_json())


@routes.put("/v1/loan-products/{product_id}")
async def revise_product(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    bank = await gw.authenticate(request)
    gw.partners.require_kind(bank, "bank")
    current = await _own_product(request, bank)
    data = require_object(await read_json(request))
    body = _parse(ProductBody, data, "loan product")
    if body.id not in (None, current.id) or body.bank not in (None, bank.id):
        raise InvalidRequest(
            "a new version keeps the product's id and bank",
            errors=[FieldError("/id" if body.id not in (None, current.id) else "/bank", "")],
        )
    try:
        product = await gw.loans.revise(current, body, gw.policies, _epoch(gw))
    except ProductRefused as exc:
        gw.metrics.guard_rejections.labels(exc.code).inc()
        raise _refused(exc, body) from None
    proof = gw.loans.rules.prove(product, gw.policies)
    return json_response({**product.as_json(), "proof": proof})


@routes.delete("/v1/loan-products/{product_id}")
async def withdraw_product(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    bank = await gw.authenticate(request)
    gw.partners.require_kind(bank, "bank")
    current = await _own_product(request, bank)
    product = await gw.loans.withdraw(current, _epoch(gw))
    return json_response(product.as_json())


@routes.get("/v1/loan-products/{product_id}/recommendations")
async def recommendations(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    bank = await gw.authenticate(request)
    gw.partners.require_kind(bank, "bank")
    product = await _own_product(request, bank)
    body = await gw.loans.recommend.recommendations(
        bank,
        product,
        gw.policies,
        gw.today(),
        gw.now(),
        limit=_limit(request, 20),
        cursor=request.query.get("cursor"),
    )
    return json_response(body)


# -- demands ---------------------------------------------------------------------------
def _subject_id(raw: str, today: dt.date) -> str:
    try:
        return validate_subject_id("enterprise", raw, today)
    except InvalidIdentifier as exc:
        raise InvalidRequest(
            "the subject id is not valid", errors=[FieldError("/subject/id", str(exc))]
        ) from None


@routes.post("/v1/loan-demands")
async def create_demand(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    platform = await gw.authenticate(request)
    gw.partners.require_kind(platform, "platform")
    data = require_object(await read_json(request))

    async def record() -> web.Response:
        body = _parse(DemandBody, data, "financing demand")
        subject_id = _subject_id(body.subject.id, gw.today())
        now = gw.now()
        demand = await gw.loans.create_demand(platform, body, subject_id, now)
        return json_response(
            await gw.loans.demand_view(demand, platform, int(now.timestamp())), status=201
        )

    return await run_idempotent(gw, request, platform, record)


async def _visible_demand(request: web.Request, partner: Partner) -> LoanDemand:
    gw = request.app[GATEWAY]
    demand = await gw.loans.store.get_demand(request.match_info["demand_id"])
    visible = demand is not None and (
        (partner.kind == "platform" and demand.platform == partner.id)
        or (partner.kind == "bank" and demand.authorises(partner.id))
    )
    if demand is None or not visible:
        raise NotFound("no such financing demand")
    return demand


@routes.get("/v1/loan-demands/{demand_id}")
async def get_demand(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    gw.partners.require_kind(partner, "platform", "bank")
    demand = await _visible_demand(request, partner)
    return json_response(await gw.loans.demand_view(demand, partner, _epoch(gw)))


@routes.post("/v1/loan-demands/{demand_id}/close")
async def close_demand(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    platform = await gw.authenticate(request)
    gw.partners.require_kind(platform, "platform")
    demand = await _visible_demand(request, platform)
    closed = await gw.loans.store.close_demand(demand.id, _epoch(gw))
    assert closed is not None
    return json_response(await gw.loans.demand_view(closed, platform, _epoch(gw)))


@routes.post("/v1/loan-demands/{demand_id}/responses")
async def respond(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    bank = await gw.authenticate(request)
    gw.partners.require_kind(bank, "bank")
    demand = await _visible_demand(request, bank)
    data = require_object(await read_json(request))

    async def record() -> web.Response:
        body = _parse(ResponseBody, data, "response")
        response = await gw.loans.respond(bank, demand, body, gw.now())
        return json_response(response.as_json(), status=201)

    return await run_idempotent(gw, request, bank, record)


# -- matching and statistics -------------------------------------------------------------
@routes.post("/v1/loans/match")
async def match(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "bank", "platform")
    data = require_object(await read_json(request))
    body = _parse(MatchBody, data, "match request")
    today = gw.today()
    now = gw.now()
    subject_id = _subject_id(body.subject.id, today)
    subject_key = gw.pseudonyms.internal("enterprise", subject_id)
    demand = None
    if body.demand_id is not None:
        demand = await gw.loans.store.get_demand(body.demand_id)
        mine = demand is not None and (
            demand.platform == caller.id
            if caller.kind == "platform"
            else demand.authorises(caller.id)
        )
        if demand is None or not mine or demand.subject_key != subject_key:
            raise InvalidRequest(
                "no such demand of this enterprise",
                errors=[FieldError("/demand_id", "not found for this enterprise")],
            )
        terms = DemandTerms("enterprise", demand.amount, demand.term_months, demand.region)
    else:
        assert body.demand is not None
        terms = DemandTerms(
            "enterprise", body.demand.amount, body.demand.term_months, body.demand.region
        )
    purpose = body.purpose or (caller.purposes[0] if caller.purposes else "loan_matching")
    consent_id = None
    if caller.kind == "bank":
        # A bank reads an enterprise's credit data only on its 授权 (a consent).
        if purpose not in caller.purposes:
            raise Forbidden(
                f"your contract does not cover the purpose {purpose!r}", code="forbidden_purpose"
            )
        consent = await gw.consents.require(
            body.consent_id,
            kind="enterprise",
            subject_key=subject_key,
            partner=caller.id,
            scene="loan",
            purpose=purpose,
            now=now,
        )
        consent_id = consent.consent_id
    elif demand is None:
        # The platform matches for the enterprise that asked through it: its demand
        # (with the enterprise's 授权) is the authority.
        raise InvalidRequest(
            "a platform matches an enterprise's recorded demand: send demand_id",
            errors=[FieldError("/demand_id", "required for a platform")],
        )
    ranked = await gw.loans.match(
        caller,
        subject_id,
        terms,
        gw.policies,
        today,
        now,
        purpose=purpose,
        consent_id=consent_id,
        staff_id=body.staff_id,
        demand_id=body.demand_id,
    )
    return json_response(
        {
            "demand": {
                "amount": terms.amount,
                "term_months": terms.term_months,
                "region": terms.region,
            },
            "products": [m.as_json() for m in ranked],
        }
    )


def _instant(raw: str | None, field: str, default: dt.datetime) -> int:
    if raw is None:
        return int(default.timestamp())
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidRequest(
            f"{field} is an ISO 8601 time with its offset",
            errors=[FieldError(f"/{field}", "e.g. 2026-12-01T00:00:00+08:00")],
        )
    return int(parsed.timestamp())


@routes.get("/v1/loans/stats")
async def stats(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    gw.partners.require_kind(partner, "bank", "operator", "auditor")
    now = gw.now()
    bank = request.query.get("bank")
    if partner.kind == "bank":
        if bank not in (None, partner.id):
            raise Forbidden("a bank sees its own statistics only", code="forbidden_partner")
        bank = partner.id
    banks = sorted(p.id for p in gw.partners.by_id.values() if p.kind == "bank")
    if bank is not None:
        if bank not in banks:
            raise InvalidRequest("no such bank", errors=[FieldError("/bank", "unknown bank")])
        banks = [bank]
    since = _instant(request.query.get("from"), "from", now - dt.timedelta(days=90))
    until = _instant(request.query.get("to"), "to", now + dt.timedelta(seconds=1))
    if until <= since:
        raise InvalidRequest("to is before from", errors=[FieldError("/to", "before from")])
    result = await gw.loans.stats(banks, since, until, int(now.timestamp()))
    return json_response(
        {
            "from": dt.datetime.fromtimestamp(since, dt.UTC).isoformat(),
            "to": dt.datetime.fromtimestamp(until, dt.UTC).isoformat(),
            "banks": result,
        }
    )
