"""OpenAPI description of the loan endpoints (``gateway.api.loans``)."""

from __future__ import annotations

from typing import Any

from gateway.api.components import idempotent
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    WRITE_ERRORS,
    ApiPart,
    json_content,
    model_ref,
    path_param,
    problem,
    query_param,
)
from gateway.loans.bodies import DemandBody, MatchBody, ProductBody, ResponseBody

__all__ = ["openapi"]

openapi = ApiPart()
openapi.model(ProductBody, DemandBody, MatchBody, ResponseBody)

_OBJ: dict[str, Any] = {"type": "object"}
_NOT_FOUND = {"404": problem("no such item, or not yours")}
_KIND = {"403": problem("your partner kind may not call this (forbidden_kind)")}
_QUERY = {"422": problem("a query parameter is not valid; errors[] names it")}
_PAGE = [
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
    query_param("cursor", {"type": "string"}, "next_cursor of the previous page"),
]


def _body(model: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": model_ref(model)}}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": ["loans"],
        "security": BEARER,
        "responses": {**responses, **AUTH_ERRORS},
        **extra,
    }


openapi.add(
    "/v1/loan-products",
    "post",
    idempotent(
        _op(
            "Publish a loan product (banks); its rules pass the guard or 422 with the guard's "
            "code; the answer carries the SMT prover's findings (docs/prove.md)",
            {"201": json_content(_OBJ, "the product, version 1"), **WRITE_ERRORS, **_KIND},
            requestBody=_body("ProductBody"),
        ),
        conflict="the id is taken",
    ),
)  # fmt: skip
openapi.add(
    "/v1/loan-products",
    "get",
    _op(
        "List loan products (a bank: its own), by id",
        {"200": json_content(_OBJ), **_KIND, **_QUERY},
        parameters=[
            query_param("bank", {"type": "string"}),
            query_param("region", {"type": "string"}, "6-digit division code"),
            query_param("amount", {"type": "integer"}, "CNY the product must cover"),
            query_param("status", {"type": "string", "enum": ["active", "withdrawn"]}),
            *_PAGE,
        ],
    ),
)
_PRODUCT = [path_param("product_id")]
openapi.add(
    "/v1/loan-products/{product_id}",
    "get",
    _op(
        "A loan product (latest version, or ?version=N)",
        {"200": json_content(_OBJ), **_NOT_FOUND, **_QUERY},
        parameters=[*_PRODUCT, query_param("version", {"type": "integer", "minimum": 1})],
    ),
)
openapi.add(
    "/v1/loan-products/{product_id}",
    "put",
    _op(
        "A new version of the bank's product (the old version stays readable)",
        {"200": json_content(_OBJ), "409": problem("withdrawn, or changed meanwhile"),
         **WRITE_ERRORS, **_NOT_FOUND, **_KIND},
        parameters=_PRODUCT,
        requestBody=_body("ProductBody"),
    ),
)  # fmt: skip
openapi.add(
    "/v1/loan-products/{product_id}",
    "delete",
    _op(
        "Withdraw the bank's product (status withdrawn; never erased)",
        {"200": json_content(_OBJ), **_NOT_FOUND, **_KIND},
        parameters=_PRODUCT,
    ),
)
openapi.add(
    "/v1/loan-products/{product_id}/recommendations",
    "get",
    _op(
        "名单推荐: open demands that authorised this bank and match the product, ranked",
        {"200": json_content(_OBJ), **_NOT_FOUND, **_KIND, **_QUERY},
        parameters=[*_PRODUCT, *_PAGE],
    ),
)
openapi.add(
    "/v1/loan-demands",
    "post",
    idempotent(
        _op(
            "Record an enterprise's financing demand and 授权 (platforms)",
            {"201": json_content(_OBJ), **WRITE_ERRORS, **_KIND},
            requestBody=_body("DemandBody"),
        )
    ),
)
_DEMAND = [path_param("demand_id")]
openapi.add(
    "/v1/loan-demands/{demand_id}",
    "get",
    _op(
        "A demand: the platform sees every bank's state, a bank its own",
        {"200": json_content(_OBJ), **_NOT_FOUND, **_KIND},
        parameters=_DEMAND,
    ),
)
openapi.add(
    "/v1/loan-demands/{demand_id}/close",
    "post",
    _op(
        "The enterprise closes its demand (through its platform)",
        {"200": json_content(_OBJ), **_NOT_FOUND, **_KIND},
        parameters=_DEMAND,
    ),
)
openapi.add(
    "/v1/loan-demands/{demand_id}/responses",
    "post",
    idempotent(
        _op(
            "A bank's response: accepted, granted (amount, rate, term), refused (reason), "
            "withdrawn",
            {"201": json_content(_OBJ), **WRITE_ERRORS, **_NOT_FOUND, **_KIND},
            parameters=_DEMAND,
            requestBody=_body("ResponseBody"),
        ),
        conflict="the demand is closed or expired",
    ),
)  # fmt: skip
openapi.add(
    "/v1/loans/match",
    "post",
    _op(
        "Match an enterprise's demand against products, ranked, with reasons",
        {"200": json_content(_OBJ), "403": problem("consent_required, forbidden_kind …"),
         **WRITE_ERRORS},
        requestBody=_body("MatchBody"),
    ),
)  # fmt: skip
openapi.add(
    "/v1/loans/stats",
    "get",
    _op(
        "Per-bank response statistics (a bank: its own; operators and auditors: all)",
        {"200": json_content(_OBJ), "403": problem("another bank's statistics"), **_QUERY},
        parameters=[
            query_param("bank", {"type": "string"}),
            query_param("from", {"type": "string", "format": "date-time"}),
            query_param("to", {"type": "string", "format": "date-time"}),
        ],
    ),
)
