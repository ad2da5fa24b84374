"""Feedback is a bounded schema, not free storage (issue 14, item 3; docs/feedback.md)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from gateway.feedback import FEEDBACK_MAX_BYTES, FEEDBACK_PER_DECISION
from tests.conftest import Demo


async def _loan_decision(demo: Demo) -> str:
    subject = demo.subject("enterprise", {"loan": "granted"})
    answer = await demo.decide(subject, "loan")
    assert answer.status == 200
    decision_id: str = (await answer.json())["decision_id"]
    return decision_id


async def _post(demo: Demo, decision_id: str, body: Any, partner: str = "demo-bank") -> Any:
    return await demo.client.post(
        f"/v1/decisions/{decision_id}/feedback", json=body, headers=demo.auth(partner)
    )


async def test_a_loan_feedback_reports_its_terms_and_the_benefits_used(demo: Demo) -> None:
    subject = demo.subject("enterprise", {"loan": "granted"})
    decided = await (await demo.decide(subject, "loan")).json()
    used = [b["code"] for b in decided["benefits"]][:1]
    body = {
        "applied": True,
        "detail": {
            "amount_yuan": 800_000,
            "annual_rate_percent": 3.45,
            "term_months": 12,
            "benefits_used": used,
            "note": "granted at the branch counter",
        },
    }
    answer = await _post(demo, decided["decision_id"], body)
    assert answer.status == 202
    declined = {"applied": False, "detail": {"reason": "declined_by_applicant"}}
    assert (await _post(demo, decided["decision_id"], declined)).status == 202


@pytest.mark.parametrize(
    ("detail", "pointer"),
    [
        ({"resident_id": "110101199003074514"}, "/detail/resident_id"),
        ({"note": "call 138 0013 8000"}, "/detail/note"),
        ({"note": "subject 110101199003074514"}, "/detail/note"),
        ({"note": "USCC 91350100M000100Y43"}, "/detail/note"),
        ({"note": "x" * 201}, "/detail/note"),
        ({"amount_yuan": "800000"}, "/detail/amount_yuan"),
        ({"amount_yuan": -1}, "/detail/amount_yuan"),
        ({"term_months": 0}, "/detail/term_months"),
        ({"reason": "Not a code!"}, "/detail/reason"),
        ({"benefits_used": ["deposit_waiver", "deposit_waiver"]}, "/detail/benefits_used"),
        ({"amount_yuan": {"a": {"b": 1}}}, "/detail/amount_yuan"),
    ],
)
async def test_anything_outside_the_schema_is_refused_with_its_pointer(
    demo: Demo, detail: dict[str, Any], pointer: str
) -> None:
    decision_id = await _loan_decision(demo)
    answer = await _post(demo, decision_id, {"applied": True, "detail": detail})
    assert answer.status == 422
    problem = await answer.json()
    assert problem["code"] == "invalid_request"
    assert pointer in [e["pointer"] for e in problem["errors"]]


async def test_deeply_nested_detail_is_a_422_not_a_500(demo: Demo) -> None:
    decision_id = await _loan_decision(demo)
    nested: Any = 1
    for _ in range(260):
        nested = {"a": nested}
    answer = await _post(demo, decision_id, {"applied": True, "detail": nested})
    assert answer.status == 422
    assert [e["pointer"] for e in (await answer.json())["errors"]] == ["/detail/a"]


async def test_what_the_decision_did_not_give_cannot_be_reported(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    decided = await (await demo.decide(subject, "library")).json()
    body = {"applied": True, "detail": {"amount_yuan": 5, "benefits_used": ["green_channel"]}}
    answer = await _post(demo, decided["decision_id"], body, "demo-library")
    assert answer.status == 422
    pointers = [e["pointer"] for e in (await answer.json())["errors"]]
    assert pointers == ["/detail/amount_yuan", "/detail/benefits_used/0"]


async def test_a_large_feedback_is_refused_before_it_is_read(demo: Demo) -> None:
    decision_id = await _loan_decision(demo)
    body = {"applied": True, "detail": {"note": "x" * FEEDBACK_MAX_BYTES}}
    answer = await _post(demo, decision_id, body)
    assert answer.status == 413
    assert (await answer.json())["code"] == "payload_too_large"


async def test_a_decision_takes_a_bounded_number_of_feedbacks(demo: Demo) -> None:
    decision_id = await _loan_decision(demo)
    for _ in range(FEEDBACK_PER_DECISION):
        assert (await _post(demo, decision_id, {"applied": True})).status == 202
    answer = await _post(demo, decision_id, {"applied": True})
    assert answer.status == 409
    problem = await answer.json()
    assert problem["code"] == "feedback_limit"
    assert problem["title"] == "Conflict"
    db = demo.gateway.settings.state_dir / "state.sqlite3"
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM feedback WHERE decision_id = ?", (decision_id,)
        ).fetchone()
    assert count == FEEDBACK_PER_DECISION
