"""The audit log for partners and auditors (API.md "Audit"): checkpoints, proofs, records.

Checkpoints are C2SP signed notes (text/plain). Proof hashes are base64, as
in the checkpoint. A partner gets inclusion proofs only for its own decisions;
to any other caller another partner's decision does not exist.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from gateway.api.http import json_response
from gateway.api.keys import GATEWAY
from gateway.api.spec import AUTH_ERRORS, BEARER, ApiPart, json_content, problem, query_param
from gateway.audit.chain import canonical
from gateway.audit.merkle import record_leaf
from gateway.audit.report import build_report, parse_month
from gateway.errors import FieldError, InvalidRequest, NotFound, ProblemError
from gateway.runtime import Gateway

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()

MAX_PAGE = 1_000
# Kinds that may read any record and any decision's proof.
_OVERSEERS = ("auditor", "operator")


def _int_param(request: web.Request, name: str, *, default: int | None = None, low: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise InvalidRequest(f"{name} is required", errors=[FieldError(f"/{name}", "required")])
        return default
    if not raw.isdigit() or int(raw) < low:
        raise InvalidRequest(
            f"{name} must be an integer of at least {low}",
            errors=[FieldError(f"/{name}", f"an integer >= {low}")],
        )
    return int(raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _note(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _checkpoint_or_404(gw: Gateway, size: int) -> str:
    note = await gw.audit.tree.checkpoint(size)
    if note is None:
        raise NotFound(f"no checkpoint was signed at tree size {size}")
    return note


@routes.get("/v1/audit/checkpoints/latest")
async def latest_checkpoint(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    await gw.authenticate(request)
    latest = await gw.audit.tree.latest_checkpoint()
    if latest is None:
        raise NotFound("no checkpoint has been signed yet")
    return _note(latest[1])


@routes.get("/v1/audit/checkpoints/{tree_size}")
async def checkpoint(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    await gw.authenticate(request)
    raw = request.match_info["tree_size"]
    if not raw.isdigit():
        raise InvalidRequest(
            "tree_size is a number", errors=[FieldError("/tree_size", "an integer >= 1")]
        )
    return _note(await _checkpoint_or_404(gw, int(raw)))


@routes.get("/v1/audit/proofs/inclusion")
async def inclusion(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    decision_id = request.query.get("decision_id", "")
    if not decision_id or len(decision_id) > 128:
        raise InvalidRequest(
            "decision_id is required", errors=[FieldError("/decision_id", "a decision id")]
        )
    found = await gw.store.get_decision(decision_id)
    # Another partner's decision is indistinguishable from none at all.
    if found is None or (found[0] != caller.id and caller.kind not in _OVERSEERS):
        raise NotFound("no such decision")
    latest = await gw.audit.tree.latest_checkpoint()
    tree_size = _int_param(request, "tree_size", default=latest[0] if latest else 0, low=1)
    await _checkpoint_or_404(gw, tree_size)
    seq = await gw.audit.tree.decision_seq(decision_id)
    if seq is None or seq > tree_size:
        raise ProblemError(
            f"the decision is not in the tree of size {tree_size} yet; ask again after the "
            "next checkpoint",
            code="not_checkpointed",
            status=409,
        )
    record = (await gw.audit.records(seq - 1, 1))[0]
    hashes = await gw.audit.inclusion(seq, tree_size)
    entry = canonical(record.entry)
    # The leaf is the record's chain hash: SHA-256(prev_hash || "\n" seq "\n" || record).
    return json_response(
        {
            "leaf_index": seq - 1,
            "tree_size": tree_size,
            "leaf_hash": _b64(record_leaf(record.hash)),
            "hashes": [_b64(h) for h in hashes],
            # What the leaf covers, so the caller can check it is its decision's record.
            "record": entry.decode(),
            "seq": record.seq,
            "prev_hash": record.prev_hash,
            "record_hash": record.hash,
        }
    )


@routes.get("/v1/audit/proofs/consistency")
async def consistency(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    await gw.authenticate(request)
    old = _int_param(request, "from", low=1)
    new = _int_param(request, "to", low=1)
    if old > new:
        raise InvalidRequest(
            "from must not exceed to", errors=[FieldError("/from", "at most the value of to")]
        )
    await _checkpoint_or_404(gw, old)
    await _checkpoint_or_404(gw, new)
    hashes = await gw.audit.consistency(old, new)
    return json_response({"from": old, "to": new, "hashes": [_b64(h) for h in hashes]})


def _record_view(seq: int, entry: dict[str, Any], prev_hash: str, digest: str) -> dict[str, Any]:
    return {"seq": seq, "entry": entry, "prev_hash": prev_hash, "hash": digest}


@routes.get("/v1/audit/records")
async def records(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "auditor")
    after = _int_param(request, "after_seq", default=0)
    limit = _int_param(request, "limit", default=100, low=1)
    if limit > MAX_PAGE:
        raise InvalidRequest(
            f"limit may be at most {MAX_PAGE}", errors=[FieldError("/limit", f"<= {MAX_PAGE}")]
        )
    page = await gw.audit.records(after, limit)
    return json_response(
        {
            "records": [_record_view(r.seq, r.entry, r.prev_hash, r.hash) for r in page],
            "next_after_seq": page[-1].seq if len(page) == limit else None,
        }
    )


# -- OpenAPI -----------------------------------------------------------------------------------
_NOTE = {
    "description": "a C2SP signed-note checkpoint (origin, tree size, base64 root hash)",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
_HASHES = {"type": "array", "items": {"type": "string", "format": "byte"}}
_SIZE = {"type": "integer", "minimum": 1}

openapi.add(
    "/v1/audit/checkpoints/latest",
    "get",
    {
        "summary": "The latest signed checkpoint of the audit log",
        "security": BEARER,
        "responses": {"200": _NOTE, "404": problem("nothing signed yet"), **AUTH_ERRORS},
    },
)
openapi.add(
    "/v1/audit/checkpoints/{tree_size}",
    "get",
    {
        "summary": "The signed checkpoint of a tree size",
        "security": BEARER,
        "parameters": [{"name": "tree_size", "in": "path", "required": True, "schema": _SIZE}],
        "responses": {
            "200": _NOTE,
            "404": problem("no checkpoint of that size"),
            "422": problem("tree_size is not a whole number of at least 1"),
            **AUTH_ERRORS,
        },
    },
)
openapi.add(
    "/v1/audit/proofs/inclusion",
    "get",
    {
        "summary": "RFC 9162 inclusion proof of one of the caller's decisions",
        "security": BEARER,
        "parameters": [
            query_param("decision_id", {"type": "string"}, required=True),
            query_param("tree_size", _SIZE, "a checkpointed size (default: the latest)"),
        ],
        "responses": {
            "200": json_content(
                {
                    "type": "object",
                    "properties": {
                        "leaf_index": {"type": "integer"},
                        "tree_size": {"type": "integer"},
                        "leaf_hash": {"type": "string", "format": "byte"},
                        "hashes": _HASHES,
                        "record": {"type": "string", "description": "canonical entry"},
                        "seq": {"type": "integer"},
                        "prev_hash": {"type": "string"},
                        "record_hash": {
                            "type": "string",
                            "description": "the leaf's input: SHA-256(prev_hash, seq, record)",
                        },
                    },
                }
            ),
            "404": problem("no such decision (or another partner's), or no such checkpoint"),
            "409": problem("the decision is not in a checkpoint yet (not_checkpointed)"),
            "422": problem("a parameter is invalid"),
            **AUTH_ERRORS,
        },
    },
)
openapi.add(
    "/v1/audit/proofs/consistency",
    "get",
    {
        "summary": "RFC 9162 consistency proof between two checkpoints",
        "security": BEARER,
        "parameters": [
            query_param("from", _SIZE, required=True),
            query_param("to", _SIZE, required=True),
        ],
        "responses": {
            "200": json_content(
                {
                    "type": "object",
                    "properties": {
                        "from": {"type": "integer"},
                        "to": {"type": "integer"},
                        "hashes": _HASHES,
                    },
                }
            ),
            "404": problem("no checkpoint of one of the sizes"),
            "422": problem("a parameter is invalid"),
            **AUTH_ERRORS,
        },
    },
)
openapi.add(
    "/v1/audit/records",
    "get",
    {
        "summary": "Audit records in sequence order (partners of kind auditor)",
        "security": BEARER,
        "parameters": [
            query_param("after_seq", {"type": "integer", "minimum": 0}, "cursor (default 0)"),
            query_param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ],
        "responses": {
            "200": json_content({"type": "object"}),
            "403": problem("not an auditor (forbidden_kind)"),
            "422": problem("a parameter is invalid"),
            **AUTH_ERRORS,
        },
    },
)


@routes.get("/v1/audit/report")
async def report(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, *_OVERSEERS)
    month = request.query.get("month", "")
    try:
        parse_month(month)
    except ValueError as exc:
        raise InvalidRequest(str(exc), errors=[FieldError("/month", "YYYY-MM")]) from None
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise InvalidRequest("format is csv or xlsx", errors=[FieldError("/format", "csv|xlsx")])
    built = await build_report(
        gw.audit.records,
        gw.partners.by_id,
        gw.tz,
        month,
        "auditor" if caller.kind == "auditor" else "operator",
    )
    if fmt == "xlsx":
        return web.Response(
            body=built.xlsx(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="beian-{month}.xlsx"'},
        )
    return web.Response(
        body=built.csv(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="beian-{month}.csv"'},
    )


openapi.add(
    "/v1/audit/report",
    "get",
    {
        "summary": "The monthly 备案 report (partners of kind operator or auditor)",
        "description": "One row per use with the 备案表's columns, then per-partner, per-scene "
        "and per-kind counts and guard events. An operator sees pseudonyms and staff ids "
        "masked.",
        "security": BEARER,
        "parameters": [
            query_param("month", {"type": "string", "pattern": r"^\d{4}-\d{2}$"}, required=True),
            query_param("format", {"type": "string", "enum": ["csv", "xlsx"]}),
        ],
        "responses": {
            "200": {
                "description": "the report",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                },
            },
            "403": problem("not an operator or auditor (forbidden_kind)"),
            "422": problem("month or format is invalid"),
            **AUTH_ERRORS,
        },
    },
)
