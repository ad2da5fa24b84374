"""The service-hall counter (/ui/counter): look an applicant up, decide, print the slip.

The decision is made by the same code the API's POST /v1/scenes/approval/decisions
runs (request checks, then gateway.pipeline), with the signed-in clerk as the
staff id, so it is audited like any other decision.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from aiohttp import web

from gateway.api.decisions import _query as decision_query  # the API's own request checks
from gateway.api.keys import GATEWAY
from gateway.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidRequest,
    NotFound,
    ProblemError,
    RateLimited,
)
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.ui.auth import Signed, check_csrf, require
from gateway.ui.explain import explain_decision
from gateway.ui.masking import mask_id
from gateway.ui.panels import Panel
from gateway.ui.panels import commitments as commitments_panel
from gateway.ui.render import UiError, page, redirect, render, translator

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
    "materials": "commitments.materials",
    "due": "commitments.due",
}
# Form field for each pointer the commitment service may name.
_COMMIT_FIELDS = {"/missing_materials": "materials", "/due": "due"}

# Panels under the form.
PANELS: tuple[Panel, ...] = (commitments_panel.PANEL,)


def _context(signed: Signed, **extra: Any) -> dict[str, Any]:
    return {
        "signed": signed,
        "panels": [],
        "matter": None,
        "errors": [],
        "form": {"kind": "enterprise", "subject_id": "", "matter_code": "", "key_missing": "no"},
        "decision": None,
        "applicant": None,
        "commit": None,
        "notice": None,
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
    notice = "commitments.registered" if "registered" in request.query else None
    if "fulfilled" in request.query:
        notice = "commitments.fulfilled"
    return render(
        request, "counter.html", _context(signed, panels=await _panels(request), notice=notice)
    )


async def _panels(request: web.Request) -> list[tuple[Panel, dict[str, Any]]]:
    return [(panel, await panel.load(request)) for panel in PANELS]


def _commit_form(body: dict[str, Any], kind: str, subject_id: str) -> dict[str, Any] | None:
    """The 容缺 commitment form for a decision that granted it, bounded by its terms."""
    params = next(
        (
            b.get("params", {})
            for b in body.get("benefits", ())
            if b["code"] == "tolerant_acceptance"
        ),
        None,
    )
    if params is None:
        return None
    issued = dt.date.fromisoformat(str(body["issued_at"])[:10])
    days = params.get("commitment_days")
    latest = issued + dt.timedelta(days=days) if isinstance(days, int) else None
    most = params.get("max_missing_materials")
    return {
        "decision_id": body["decision_id"],
        "kind": kind,
        # Carried in a hidden field: the gateway stores no id with a decision, and the
        # commitment service checks the decision was made on this applicant.
        "subject_id": subject_id,
        "due": latest.isoformat() if latest else "",
        "due_max": latest.isoformat() if latest else "",
        "max_materials": most if isinstance(most, int) else None,
        "materials": "",
    }


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
        if exc.code in ("consent_required", "consent_revoked"):
            # The counter has no consent step of its own: say what is missing, in words.
            errors = [{"field": "kind", "message": translator(request)("counter.person_consent")}]
        context = _context(signed, errors=errors, form=values)
        return render(request, "counter.html", context, status=exc.status)
    body = orjson.loads(raw)
    body.pop("token", None)  # the applicant's token is for machines, not for the page
    view = explain_decision(body, policies, translator(request), gw.tz)
    applicant = {"masked": mask_id(query.subject_id), "full": query.subject_id}
    blank = _context(signed)["form"]
    context = _context(
        signed,
        decision=view,
        applicant=applicant,
        form=blank,
        matter=query.context,
        commit=_commit_form(body, values["kind"], query.subject_id),
        panels=await _panels(request),
    )
    return render(request, "counter.html", context)


@routes.post("/ui/counter/commitments")
@page
async def register_commitment(request: web.Request) -> web.StreamResponse:
    """Register a 容缺 commitment on a decision just made (the service the API uses)."""
    signed = await require(request, "counter")
    form = await request.post()
    check_csrf(request, signed, form)
    _scene_check(signed)
    gw = request.app[GATEWAY]
    decision_id = str(form.get("decision_id", ""))[:64]
    kind = "person" if form.get("kind") == "person" else "enterprise"
    raw_id = str(form.get("subject_id", "")).strip().upper()
    text = str(form.get("materials", ""))
    materials = [line.strip() for line in text.splitlines() if line.strip()]
    errors: list[dict[str, str]] = []
    due: dt.date | None = None
    try:
        due = dt.date.fromisoformat(str(form.get("due", "")))
    except ValueError:
        errors.append({"field": "due", "message": translator(request)("commitments.bad_due")})
    if any(len(m) > 200 for m in materials) or len(materials) > 20:
        errors.append(
            {"field": "materials", "message": translator(request)("commitments.bad_materials")}
        )
    try:
        subject_id = validate_subject_id(kind, raw_id)
    except InvalidIdentifier:
        raise UiError(422, "error.bad_form", signed) from None
    if not errors and due is not None:
        try:
            await gw.commitments.register(
                signed.partner,
                decision_id=decision_id,
                kind="tolerant_acceptance",
                subject_kind=kind,
                subject_id=subject_id,
                missing_materials=materials,
                due=due,
                now=gw.now(),
                today=gw.today(),
            )
        except InvalidRequest as exc:
            if any(e.pointer not in _COMMIT_FIELDS for e in exc.errors):
                raise UiError(422, "error.bad_form", signed) from None
            errors = [
                {"field": _COMMIT_FIELDS[e.pointer], "message": e.message} for e in exc.errors
            ]
        else:
            return redirect("/ui/counter?registered=1#panel-commitments")
    # Shown again with the decision it rests on and the clerk's entries.
    found = await gw.store.get_decision(decision_id)
    if found is None or found[0] != signed.partner.id:
        raise UiError(404, "error.not_found", signed)
    view = explain_decision(found[1], gw.policies, translator(request), gw.tz)
    commit = _commit_form(found[1], kind, subject_id)
    if commit is None:
        raise UiError(422, "error.bad_form", signed)
    commit |= {"materials": text, "due": str(form.get("due", ""))}
    context = _context(
        signed,
        decision=view,
        applicant={"masked": mask_id(subject_id), "full": subject_id},
        commit=commit,
        errors=errors,
        panels=await _panels(request),
    )
    return render(request, "counter.html", context, status=422)


@routes.post("/ui/counter/commitments/{commitment_id}/fulfil")
@page
async def fulfil_commitment(request: web.Request) -> web.StreamResponse:
    """The applicant brought what it committed to: one action closes the commitment."""
    signed = await require(request, "counter")
    check_csrf(request, signed, await request.post())
    _scene_check(signed)
    gw = request.app[GATEWAY]
    try:
        await gw.commitments.fulfil(signed.partner, request.match_info["commitment_id"], gw.now())
    except NotFound:
        raise UiError(404, "error.not_found", signed) from None
    except Conflict:
        raise UiError(409, "commitments.closed", signed) from None
    return redirect("/ui/counter?fulfilled=1#panel-commitments")


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
