"""Notice and repair (issue 15): what an adverse answer tells the subject, and how a
repair, delisting or upheld objection ends the constraint and reaches the credit office."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Demo

LISTED = "on the serious-dishonesty list by an effective document"
TAX_LISTED = "on the major tax violation list (重大税收违法失信主体)"
COURT_PERSON = "person, score 680 but on the dishonest-executed list (失信被执行人)"
RESTORATIONS = "/v1/credit-office/restorations"


def _subject(demo: Demo, label: str) -> dict[str, Any]:
    return next(s for s in demo.subjects if s["label"] == label)


async def _decide(demo: Demo, subject: dict[str, Any], scene: str) -> dict[str, Any]:
    response = await demo.decide(subject, scene)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _event(
    demo: Demo, subject: dict[str, Any], event: str, record: dict[str, Any]
) -> dict[str, Any]:
    response = await demo.client.post(
        "/v1/events/credit",
        json={
            "subject": {"kind": subject["kind"], "id": subject["id"]},
            "event": event,
            "record": record,
        },
        headers=demo.auth("demo-platform"),
    )
    assert response.status == 202, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _restorations(demo: Demo, partner: str = "demo-operator", **query: str) -> Any:
    return await demo.client.get(RESTORATIONS, params=query, headers=demo.auth(partner))


async def test_a_constrained_answer_carries_the_measure_its_end_and_the_routes(demo: Demo) -> None:
    measures = demo.gateway.policies.measures
    body = await _decide(demo, _subject(demo, LISTED), "loan")
    assert body["outcome"] == "constrained"
    [notice] = body["constraints"]
    measure = measures.measures["loan.restrict_credit"]
    assert notice["measure"] == "loan.restrict_credit"
    assert notice["legal_basis"] == measure.legal_basis
    assert (notice["initiating"], notice["implementing"]) == (
        measure.initiating,
        measure.implementing,
    )
    assert notice["period"] == measure.period
    # the end date is the listing's publication end, which the record carries
    [record] = notice["records"]
    assert record["record_id"].startswith("rec-")
    assert notice["until"] == record["publication_until"]
    assert dt.date.fromisoformat(notice["until"]) > demo.gateway.today()
    # end conditions and routes are the measures list's words, not the code's
    assert notice["ends"] == [{"event": e.event, "text": e.text} for e in measure.ends]
    routes = {r["code"]: r for r in notice["remedies"]}
    assert list(routes) == measure.remedies
    assert routes["repair"]["working_days"] == 3
    assert routes["objection"]["working_days"] == 5
    assert routes["repair"]["route"] == measures.remedies["repair"].route
    assert routes["objection"]["deadline"] == measures.remedies["objection"].deadline


async def test_repair_ends_the_constraint_and_the_credit_office_sees_the_decision(
    demo: Demo,
) -> None:
    subject = _subject(demo, LISTED)
    first = await _decide(demo, subject, "loan")
    assert first["outcome"] == "constrained"
    record_id = first["constraints"][0]["records"][0]["record_id"]
    empty = await _restorations(demo)
    assert empty.status == 200
    assert (await empty.json())["restorations"] == []

    answer = await _event(demo, subject, "repaired", {"record_id": record_id})
    assert answer["decisions_restored"] == 1
    after = await _decide(demo, subject, "loan")
    assert after["outcome"] != "constrained"
    assert after["constraints"] == []

    listed = await _restorations(demo)
    assert listed.status == 200
    page = await listed.json()
    [entry] = page["restorations"]
    assert entry["decision_id"] == first["decision_id"]
    assert (entry["event"], entry["record_id"]) == ("repaired", record_id)
    assert (entry["partner"], entry["scene"], entry["measures"]) == (
        "demo-bank",
        "loan",
        ["loan.restrict_credit"],
    )
    assert entry["decided_at"] == first["issued_at"]
    dt.datetime.fromisoformat(entry["restored_at"])
    assert page["next"] == entry["cursor"]

    # the same event again finds nothing more; reading on from the cursor is empty
    assert (await _event(demo, subject, "repaired", {"record_id": record_id}))[
        "decisions_restored"
    ] == 0
    more = await _restorations(demo, "demo-auditor", after=entry["cursor"])
    assert (await more.json())["restorations"] == []


async def test_only_an_upheld_objection_restores(demo: Demo) -> None:
    subject = _subject(demo, TAX_LISTED)
    first = await _decide(demo, subject, "tax")
    assert first["outcome"] == "constrained"
    [notice] = first["constraints"]
    assert notice["measure"] == "tax.restrict_invoices"
    assert [r["code"] for r in notice["remedies"]] == ["tax_repair", "objection"]
    record = {"record_id": notice["records"][0]["record_id"]}

    opened = await _event(demo, subject, "objection_opened", record)
    assert opened["decisions_restored"] == 0
    # under objection the record carries a dispute mark and is no basis meanwhile
    assert (await _decide(demo, subject, "tax"))["outcome"] == "standard"
    rejected = await _event(demo, subject, "objection_closed", record | {"status": "active"})
    assert rejected["decisions_restored"] == 0
    second = await _decide(demo, subject, "tax")
    assert second["outcome"] == "constrained"

    upheld = await _event(demo, subject, "objection_closed", record | {"status": "expired"})
    assert upheld["decisions_restored"] == 2
    assert (await _decide(demo, subject, "tax"))["outcome"] == "standard"
    entries = (await (await _restorations(demo)).json())["restorations"]
    assert [e["decision_id"] for e in entries] == [first["decision_id"], second["decision_id"]]
    assert {e["event"] for e in entries} == {"objection_upheld"}


async def test_a_withheld_incentive_names_the_records_and_the_routes(demo: Demo) -> None:
    measures = demo.gateway.policies.measures
    body = await _decide(demo, _subject(demo, COURT_PERSON), "transit")
    assert body["outcome"] == "standard"
    assert body["constraints"] == []  # a basic public service: withheld, never punished
    notice = body["notice"]
    [record] = notice["records"]
    assert record["domain"] == "court_enforcement"
    routes = {r["code"]: r for r in notice["remedies"]}
    assert {"court_performance", "repair", "objection"} <= set(routes)
    assert routes["court_performance"]["route"] == measures.remedies["court_performance"].route
    # a subject with nothing adverse is told nothing of the kind
    clean = await _decide(demo, _subject(demo, "person, credit score 560"), "transit")
    assert clean["outcome"] == "standard"
    assert "notice" not in clean


async def test_only_operators_and_auditors_read_restorations(demo: Demo) -> None:
    for partner in ("demo-bank", "demo-platform", "demo-library"):
        response = await _restorations(demo, partner)
        assert response.status == 403, partner
        assert (await response.json())["code"] == "forbidden_kind"
    assert (await demo.client.get(RESTORATIONS)).status == 401
    for query in ({"after": "x"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "a"}):
        bad = await _restorations(demo, **query)
        assert bad.status == 422, query
        [error] = (await bad.json())["errors"]
        assert error["pointer"] == "/" + next(iter(query))
