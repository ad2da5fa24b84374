"""The bank's loan desk (/ui/loans): its products, 名单推荐 with reasons, responses, stats.

Every read and write goes through the loans service the API uses
(gateway.loans.service), with the signed-in bank as the caller: a bank sees
only its own products, only demands whose 授权 names it, and only its own
statistics. A response is recorded with the officer's username as staff id.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.api.keys import GATEWAY
from gateway.api.schemas import field_errors
from gateway.errors import Conflict, InvalidRequest
from gateway.loans.bodies import ResponseBody
from gateway.loans.models import REFUSAL_REASONS, LoanProduct
from gateway.ui.auth import Signed, check_csrf, require
from gateway.ui.explain import fact_label
from gateway.ui.masking import mask_id
from gateway.ui.panels.loan_stats import DAYS, bank_rows
from gateway.ui.render import UiError, page, redirect, render, translator

__all__ = ["routes"]

routes = web.RouteTableDef()

SHOWN = 20  # recommendations on one page, best first (the API pages through the rest)
_FIELDS = ("status", "amount", "rate", "term_months", "reason_code", "reason_text")


async def _own_product(request: web.Request, signed: Signed) -> LoanProduct:
    product = await request.app[GATEWAY].loans.product(request.match_info["product_id"])
    if product is None or product.bank != signed.partner.id:
        raise UiError(404, "error.not_found", signed)  # another bank's is as if none
    return product


async def _desk(request: web.Request, signed: Signed, **extra: Any) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    products = await gw.loans.store.list_products(signed.partner.id)
    return {
        "signed": signed,
        "products": products,
        "stats": {"rows": await bank_rows(request, [signed.partner.id]), "days": DAYS},
        "product": None,
        "recommendations": [],
        "reasons": REFUSAL_REASONS,
        "errors": [],
        "failed": None,
        "form": {},
        "notice": None,
        **extra,
    }


def _facts(condition: Any) -> list[str]:
    """The facts a rule's condition reads (any nesting of all/any/not)."""
    if isinstance(condition, dict):
        if "fact" in condition:
            return [str(condition["fact"])]
        return [f for value in condition.values() for f in _facts(value)]
    if isinstance(condition, list):
        return [f for value in condition for f in _facts(value)]
    return []


def _entries(request: web.Request, product: LoanProduct, body: dict[str, Any]) -> list[Any]:
    """Recommendations as shown: each fired rule told in words, a disclosed id masked."""
    policies = request.app[GATEWAY].policies
    t = translator(request)
    rules = {str(r.get("id")): r for r in product.rules}
    for entry in body["recommendations"]:
        enterprise = entry["enterprise"]
        if "id" in enterprise:
            enterprise["masked"] = mask_id(enterprise.pop("id"))
        reasons = []
        for fired in entry["rules"]:
            rule = rules.get(fired["rule"], {})
            facts = "、".join(fact_label(policies, f, t) for f in _facts(rule.get("when")))
            code = str((rule.get("grant") or {}).get("benefit", ""))
            benefit = policies.benefits.benefits.get(code)
            text = t("loans.reason", benefit=benefit.title if benefit else code, facts=facts)
            reasons.append({"text": text, "legal_basis": fired["legal_basis"]})
        entry["reasons"] = reasons
    return list(body["recommendations"])


@routes.get("/ui/loans")
@page
async def desk(request: web.Request) -> web.StreamResponse:
    signed = await require(request, "loans")
    return render(request, "loans.html", await _desk(request, signed))


async def _product_page(
    request: web.Request, signed: Signed, product: LoanProduct, status: int = 200, **extra: Any
) -> web.Response:
    gw = request.app[GATEWAY]
    body = await gw.loans.recommend.recommendations(
        signed.partner, product, gw.policies, gw.today(), gw.now(), limit=SHOWN, cursor=None
    )
    context = await _desk(
        request,
        signed,
        product=product,
        recommendations=_entries(request, product, body),
        remaining=body["remaining"],
        **extra,
    )
    return render(request, "loans.html", context, status=status)


@routes.get("/ui/loans/products/{product_id}")
@page
async def product_page(request: web.Request) -> web.StreamResponse:
    signed = await require(request, "loans")
    product = await _own_product(request, signed)
    notice = "loans.responded" if "responded" in request.query else None
    return await _product_page(request, signed, product, notice=notice)


@routes.post("/ui/loans/products/{product_id}/demands/{demand_id}/responses")
@page
async def respond(request: web.Request) -> web.StreamResponse:
    signed = await require(request, "loans")
    form = await request.post()
    check_csrf(request, signed, form)
    product = await _own_product(request, signed)
    gw = request.app[GATEWAY]
    demand = await gw.loans.store.get_demand(request.match_info["demand_id"])
    if demand is None or not demand.authorises(signed.partner.id):
        raise UiError(404, "error.not_found", signed)
    values = {name: str(form.get(name, "")).strip() for name in _FIELDS}
    status = values["status"]
    data: dict[str, Any] = {
        "status": status,
        "product_id": product.id,
        "staff_id": signed.session.username,
    }
    # Only what the chosen answer states: a grant's terms, a refusal's reason.
    if status == "granted":
        for name, kind in (("amount", int), ("rate", float), ("term_months", int)):
            raw = values[name]
            try:
                data[name] = kind(raw) if raw else None
            except ValueError:
                data[name] = raw  # the schema names the field
    if status == "refused":
        data["reason_code"] = values["reason_code"] or None
        data["reason_text"] = values["reason_text"] or None
    try:
        body = ResponseBody.model_validate(data)
        await gw.loans.respond(signed.partner, demand, body, gw.now())
    except ValidationError as exc:
        errors = [
            {"field": e.pointer.lstrip("/").split("/")[0], "message": e.message}
            for e in field_errors(exc, body=data)
        ]
    except InvalidRequest as exc:
        errors = [
            {"field": e.pointer.lstrip("/").split("/")[0], "message": e.message} for e in exc.errors
        ] or [{"field": "", "message": exc.detail}]
    except Conflict:
        raise UiError(409, "loans.closed", signed) from None
    else:
        return redirect(f"/ui/loans/products/{product.id}?responded=1")
    return await _product_page(
        request, signed, product, status=422, errors=errors, failed=demand.id, form=values
    )
