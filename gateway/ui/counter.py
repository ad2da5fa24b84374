"""The service-hall counter (/ui/counter): look an applicant up, decide, print the slip.

The decision is made by the same code the API's POST /v1/scenes/approval/decisions
runs (request checks, then gateway.pipeline), with the signed-in clerk as the
staff id, so it is audited like any other decision.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.api.decisions import _query as decision_query  # the API's own request checks
from gateway.api.keys import GATEWAY
from gateway.errors import DependencyUnavailable, ProblemError, RateLimited
from gateway.ui.auth import Signed, check_csrf, require
from gateway.ui.explain import explain_decision
from gateway.ui.masking import mask_id
from gateway.ui.panels import Panel
from gateway.ui.render import UiError, page, render, translator

__all__ = ["FIELD_LABELS", "PANELS", "routes"]

routes = web.RouteTableDef()

SCENE = "approval"
# Form field for each JSON pointer the API's checks may name.
_FIELDS = {
    "/subject/id": "subject_id",
    "/subject/kind": "kind",
    "/context/matter_code": "matter_code",
    "/context/missing_key_materials": "key_missing",
}
FIELD_LABELS = {
    "subject_id": "counter.id",
    "kind": "counter.kind",
    "matter_code": "counter.matter",
    "key_missing": "counter.materials",
}

# Panels under the form (the hall's open commitments, when that API exists).
PANELS: tuple[Panel, ...] = ()


def _context(signed: Signed, **extra: Any) -> dict[str, Any]:
    return {
        "signed": signed,
        "panels": [],
        "matter": None,
        "errors": [],
        "form": {"kind": "enterprise", "subject_id": "", "matter_code": "", "key_missing": "no"},
        "decision": None,
        "applicant": None,
        **extra,
    }


def _scene_check(signed: Signed) -> None:
    if SCENE not in signed.partner.scenes:
        raise UiError(403, "error.forbidden", signed)


@routes.get("/ui/counter")
@page
async def counter(request: web.Request) -> web.StreamResponse:
    signed = await require(request, "counter")
    _scene_check(signed)
    shown = [(panel, await panel.load(request)) for panel in PANELS]
    return render(request, "counter.html", _context(signed, panels=shown))


@routes.post("/ui/counter")
@page
async def decide(request: web.Request) -> web.StreamResponse:
    signed = await require(request, "counter")
    form = await request.post()
    check_csrf(request, signed, form)
    _scene_check(signed)
    gw = request.app[GATEWAY]
    values = {
        "kind": str(form.get("kind", "enterprise")),
        "subject_id": str(form.get("subject_id", "")).strip().upper(),
        "matter_code": str(form.get("matter_code", "")).strip(),
        "key_missing": "yes" if form.get("key_missing") == "yes" else "no",
    }
    data: dict[str, Any] = {
        "subject": {"kind": values["kind"], "id": values["subject_id"]},
        "purpose": signed.partner.purposes[0] if signed.partner.purposes else "",
        "staff_id": signed.session.username,
        "context": {
            "matter_code": values["matter_code"],
            "missing_key_materials": values["key_missing"] == "yes",
        },
    }
    policies = gw.policies
    today = gw.today()
    compiled = policies.active(SCENE, today)
    if compiled is None:
        raise UiError(404, "error.not_found")
    partner = signed.partner
    try:
        query = decision_query(data, compiled, partner, today)
        limit = partner.rate_limit
        wait = await gw.store.rate_limit(f"rl:{partner.id}", limit.per_second, limit.burst)
        if wait > 0:
            raise RateLimited(wait)
        raw = await gw.pipeline.decide(partner, policies, compiled, query, gw.now(), today)
    except DependencyUnavailable:
        raise
    except ProblemError as exc:
        errors = [
            {"field": _FIELDS.get(e.pointer, ""), "message": e.message} for e in exc.errors
        ] or [{"field": "", "message": exc.detail}]
        context = _context(signed, errors=errors, form=values)
        return render(request, "counter.html", context, status=exc.status)
    body = orjson.loads(raw)
    body.pop("token", None)  # the applicant's token is for machines, not for the page
    view = explain_decision(body, policies, translator(request), gw.tz)
    applicant = {"masked": mask_id(query.subject_id), "full": query.subject_id}
    blank = _context(signed)["form"]
    return render(
        request,
        "counter.html",
        _context(signed, decision=view, applicant=applicant, form=blank, matter=query.context),
    )


@routes.get("/ui/counter/decisions/{decision_id}")
@page
async def slip(request: web.Request) -> web.StreamResponse:
    """A decision slip again, from the stored decision (this hall's own only)."""
    signed = await require(request, "counter")
    gw = request.app[GATEWAY]
    found = await gw.store.get_decision(request.match_info["decision_id"])
    if found is None or found[0] != signed.partner.id:
        raise UiError(404, "error.not_found", signed)
    view = explain_decision(found[1], gw.policies, translator(request), gw.tz)
    return render(request, "slip.html", {"signed": signed, "decision": view, "applicant": None})
