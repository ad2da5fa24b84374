"""The whole 信易贷 loop over HTTP: publish, guard, demand, 名单推荐, match, respond,
statistics and overdue, with the clock under the test's control."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import Demo
from tests.loans._kit import demand, product

BANK, BANK2, PLATFORM = "demo-bank", "demo-bank-2", "demo-platform"


async def _post(demo: Demo, path: str, body: dict[str, Any], who: str) -> Any:
    return await demo.client.post(path, json=body, headers=demo.auth(who))


async def _get(demo: Demo, path: str, who: str) -> Any:
    return await demo.client.get(path, headers=demo.auth(who))


async def _published(demo: Demo) -> None:
    r = await _post(demo, "/v1/loan-products", product("demo-bank.quick"), BANK)
    assert r.status == 201, await r.text()
    other = product(
        "demo-bank-2.general",
        rules=[
            {
                "id": "tax-a-discount",
                "when": {"fact": "enterprise.tax_credit_grade", "op": "==", "value": "A"},
                "grant": {"benefit": "loan_rate_discount", "params": {"bp": 20}},
            }
        ],
    )
    r = await _post(demo, "/v1/loan-products", other, BANK2)
    assert r.status == 201, await r.text()


async def test_the_whole_loop(loan_demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = loan_demo
    await _published(demo)
    red = demo.subject("enterprise")  # the red-listed one comes first
    assert red["label"].startswith("red-list")
    tax_a = next(s for s in demo.subjects if s["label"].startswith("tax grade A"))
    listed = next(s for s in demo.subjects if "effective document" in s["label"]
                  and s["label"].startswith("on the"))  # fmt: skip

    # Demands: the red-listed enterprise authorises only demo-bank, pseudonymously;
    # the tax-A one authorises every bank and lets demo-bank see its name.
    r = await _post(demo, "/v1/loan-demands", demand(red, [BANK]), PLATFORM)
    assert r.status == 201, await r.text()
    d_red = (await r.json())["demand_id"]
    r = await _post(demo, "/v1/loan-demands", demand(tax_a, ["*"], disclose=[BANK]), PLATFORM)
    d_tax = (await r.json())["demand_id"]
    r = await _post(demo, "/v1/loan-demands", demand(listed, ["*"]), PLATFORM)
    d_listed = (await r.json())["demand_id"]

    # 名单推荐 for demo-bank's product: both creditworthy enterprises, best first;
    # the listed enterprise is constrained and does not appear.
    r = await _get(demo, "/v1/loan-products/demo-bank.quick/recommendations", BANK)
    assert r.status == 200, await r.text()
    recs = (await r.json())["recommendations"]
    assert [e["demand_id"] for e in recs] == [d_red, d_tax]
    assert set(recs[0]["enterprise"]) == {"pseudonym"}
    assert recs[0]["rate"] == pytest.approx(3.85)
    assert recs[0]["eligible_amount"] == 1_500_000
    assert recs[1]["enterprise"] == {"id": tax_a["id"], "name": tax_a["label"]}
    assert recs[1]["rate"] == pytest.approx(4.05)
    assert d_listed not in {e["demand_id"] for e in recs}
    # One page at a time.
    r = await _get(demo, "/v1/loan-products/demo-bank.quick/recommendations?limit=1", BANK)
    first = await r.json()
    assert [e["demand_id"] for e in first["recommendations"]] == [d_red]
    r = await _get(
        demo,
        "/v1/loan-products/demo-bank.quick/recommendations?limit=1&cursor=" + first["next_cursor"],
        BANK,
    )
    second = await r.json()
    assert [e["demand_id"] for e in second["recommendations"]] == [d_tax]
    assert "next_cursor" not in second

    # The other bank's list: the all-banks demand, never the one naming demo-bank only,
    # and with a pseudonym (the name was disclosed to demo-bank alone).
    r = await _get(demo, "/v1/loan-products/demo-bank-2.general/recommendations", BANK2)
    recs2 = (await r.json())["recommendations"]
    assert d_red not in {e["demand_id"] for e in recs2}
    tax_entry = next(e for e in recs2 if e["demand_id"] == d_tax)
    assert set(tax_entry["enterprise"]) == {"pseudonym"}
    assert tax_entry["enterprise"]["pseudonym"] != recs[1]["enterprise"].get("pseudonym")

    # Match: demo-bank sees its own products only, ranked, with reasons.
    body = {
        "subject": {"kind": "enterprise", "id": listed["id"]},
        "consent_id": listed["consents"][BANK]["consent_id"],
        "demand": {"amount": 9_000_000, "term_months": 12, "region": "210102"},
    }
    r = await _post(demo, "/v1/loans/match", body, BANK)
    assert r.status == 200, await r.text()
    products = (await r.json())["products"]
    assert [p["product"]["id"] for p in products] == ["demo-bank.quick"]
    assert products[0]["matched"] is False
    assert products[0]["reasons"] == ["amount_out_of_range", "rule:serious-dishonesty"]
    body = {
        "subject": {"kind": "enterprise", "id": red["id"]},
        "consent_id": red["consents"][BANK]["consent_id"],
        "demand": {"amount": 1_000_000, "term_months": 12, "region": "210102"},
    }
    r = await _post(demo, "/v1/loans/match", body, BANK)
    matched = (await r.json())["products"][0]
    assert matched["matched"] is True
    assert matched["product"]["version"] == 1
    assert {x["rule"] for x in matched["rules"]} == {"red-list", "red-list-discount"}
    assert matched["rules"][0]["legal_basis"]
    # The platform matches the enterprise's own demand against every bank's products.
    body = {"subject": {"kind": "enterprise", "id": tax_a["id"]}, "demand_id": d_tax}
    r = await _post(demo, "/v1/loans/match", body, PLATFORM)
    ranked = [p["product"]["id"] for p in (await r.json())["products"]]
    assert ranked == ["demo-bank.quick", "demo-bank-2.general"]
    # Without the enterprise's 授权 a bank learns nothing.
    no_consent = {k: v for k, v in body.items() if k != "demand_id"} | {
        "demand": {"amount": 1_000_000, "term_months": 12, "region": "210102"}
    }
    r = await _post(demo, "/v1/loans/match", no_consent, BANK)
    assert (r.status, (await r.json())["code"]) == (403, "consent_required")

    # Feedback: demo-bank grants the red-listed enterprise's demand.
    grant = {"status": "granted", "amount": 1_200_000, "rate": 3.85, "term_months": 12,
             "product_id": "demo-bank.quick"}  # fmt: skip
    r = await _post(demo, f"/v1/loan-demands/{d_red}/responses", grant, BANK)
    assert r.status == 201, await r.text()
    assert (await r.json())["product_version"] == 1
    refuse = {"status": "refused", "reason_code": "credit_record", "reason_text": "严重失信"}
    r = await _post(demo, f"/v1/loan-demands/{d_listed}/responses", refuse, BANK)
    assert r.status == 201
    bad = {"status": "refused", "reason_code": "no-such-reason"}
    r = await _post(demo, f"/v1/loan-demands/{d_listed}/responses", bad, BANK)
    assert r.status == 422
    assert (await r.json())["errors"][0]["pointer"] == "/reason_code"

    r = await _get(demo, "/v1/loans/stats", BANK)
    assert r.status == 200
    (mine,) = (await r.json())["banks"]
    assert mine["bank"] == BANK
    assert mine["demands_received"] == 3
    assert mine["granted"] == {"count": 1, "amount": 1_200_000}
    assert mine["refused_by_reason"] == {"credit_record": 1}
    assert mine["responded_within_deadline"] == 2
    assert (mine["overdue"], mine["pending"]) == (0, 1)

    # Thirty days on, nobody answered the tax-A demand: overdue for both banks.
    later = demo.gateway.now() + dt.timedelta(days=30)
    monkeypatch.setattr(demo.gateway, "now", lambda: later)
    r = await _get(demo, f"/v1/loan-demands/{d_tax}", BANK)
    view = await r.json()
    assert view["state"] == "overdue"
    assert view["enterprise"]["id"] == tax_a["id"]
    r = await _get(demo, f"/v1/loan-demands/{d_tax}", PLATFORM)
    states = {b["bank"]: b["state"] for b in (await r.json())["banks"]}
    assert states == {BANK: "overdue", BANK2: "overdue"}
    r = await _get(demo, "/v1/loans/stats?bank=demo-bank", "demo-operator")
    (mine,) = (await r.json())["banks"]
    assert (mine["overdue"], mine["pending"]) == (1, 0)
    pairs = await demo.gateway.loans.overdue(int(later.timestamp()))
    assert {(p.demand_id, p.bank) for p in pairs} == {
        (d_tax, BANK),
        (d_tax, BANK2),
        (d_listed, BANK2),
    }
    # Asked again with the time of the last ask, nothing is newly overdue.
    at = int(later.timestamp())
    assert await demo.gateway.loans.overdue(at, since=at) == []

    # Every use of credit data is on the audit chain, under pseudonyms only.
    entries = [rec.entry for rec in await demo.gateway.store.audit_records(0, 1000)]
    kinds = [e.get("kind") for e in entries]
    assert kinds.count("loan_recommendation") == 2 + 2 + len(recs2)
    assert kinds.count("loan_match") == 3
    assert kinds.count("loan_response") == 2
    raw = str(entries)
    for subject in (red, tax_a, listed):
        assert subject["id"] not in raw

    metrics = await (await demo.client.get("/metrics")).text()
    assert 'xinyi_loans_total{operation="response_granted"} 1.0' in metrics
    assert 'xinyi_loans_total{operation="demand_recorded"} 3.0' in metrics


async def test_the_guard_refuses_a_product_that_excludes_by_a_personal_score(
    demo: Demo,
) -> None:
    unlawful = product(
        "demo-bank.scored",
        subject_kinds=["enterprise", "person"],
        rules=[
            {
                "id": "low-score-out",
                "when": {"fact": "person.credit_score", "op": "<", "value": 600},
                "constrain": {"measure": "loan.restrict_credit"},
            }
        ],
    )
    r = await _post(demo, "/v1/loan-products", unlawful, BANK)
    assert r.status == 422
    problem = await r.json()
    assert problem["code"] == "personal_score_to_constraint"
    assert problem["errors"][0]["pointer"] == "/rules/0"
    assert problem["problems"][0]["rule"] == "low-score-out"
    r = await _get(demo, "/v1/loan-products/demo-bank.scored", BANK)
    assert r.status == 404
    # A grant of a benefit that is not a loan's is refused too.
    odd = product(
        "demo-bank.odd",
        rules=[{"id": "waive", "when": {"fact": "enterprise.red_listed", "op": "==",
                "value": True}, "grant": {"benefit": "deposit_waiver"}}],
    )  # fmt: skip
    r = await _post(demo, "/v1/loan-products", odd, BANK)
    assert (r.status, (await r.json())["code"]) == (422, "benefit_param_out_of_range")


async def test_versions_and_withdrawal(demo: Demo) -> None:
    await _published(demo)
    changed = product("demo-bank.quick", title="信易贷·快贷 2026")
    r = await demo.client.put(
        "/v1/loan-products/demo-bank.quick", json=changed, headers=demo.auth(BANK)
    )
    assert (r.status, (await r.json())["version"]) == (200, 2)
    r = await _get(demo, "/v1/loan-products/demo-bank.quick?version=1", BANK)
    assert (await r.json())["title"] == "信易贷·快贷"
    r = await demo.client.delete("/v1/loan-products/demo-bank.quick", headers=demo.auth(BANK))
    assert (await r.json())["status"] == "withdrawn"
    r = await _get(demo, "/v1/loan-products/demo-bank.quick?version=1", BANK)
    assert (await r.json())["status"] == "withdrawn"
    r = await _get(demo, "/v1/loan-products?status=active", BANK)
    assert (await r.json())["products"] == []
    r = await _get(demo, "/v1/loan-products?status=withdrawn", "demo-platform")
    assert [p["id"] for p in (await r.json())["products"]] == ["demo-bank.quick"]
    r = await demo.client.put(
        "/v1/loan-products/demo-bank.quick", json=changed, headers=demo.auth(BANK)
    )
    assert r.status == 409


async def test_cross_partner_access_is_refused_everywhere(loan_demo: Demo) -> None:
    demo = loan_demo
    await _published(demo)
    red = demo.subject("enterprise")
    r = await _post(demo, "/v1/loan-demands", demand(red, [BANK]), PLATFORM)
    d_red = (await r.json())["demand_id"]
    theirs = "/v1/loan-products/demo-bank.quick"
    assert (await _get(demo, theirs, BANK2)).status == 404
    assert (await _get(demo, theirs + "?version=1", BANK2)).status == 404
    r = await demo.client.put(theirs, json=product("demo-bank.quick"), headers=demo.auth(BANK2))
    assert r.status == 404
    assert (await demo.client.delete(theirs, headers=demo.auth(BANK2))).status == 404
    assert (await _get(demo, theirs + "/recommendations", BANK2)).status == 404
    r = await _get(demo, "/v1/loan-products?bank=demo-bank", BANK2)
    assert (r.status, (await r.json())["code"]) == (403, "forbidden_partner")
    r = await _get(demo, "/v1/loan-products", BANK2)
    assert [p["id"] for p in (await r.json())["products"]] == ["demo-bank-2.general"]
    # A demand that did not authorise demo-bank-2 does not exist for it.
    assert (await _get(demo, f"/v1/loan-demands/{d_red}", BANK2)).status == 404
    r = await _post(demo, f"/v1/loan-demands/{d_red}/responses", {"status": "accepted"}, BANK2)
    assert r.status == 404
    r = await _get(demo, "/v1/loans/stats?bank=demo-bank", BANK2)
    assert (r.status, (await r.json())["code"]) == (403, "forbidden_partner")
    # On a demand both banks may answer, each sees its own responses only.
    r = await _post(demo, "/v1/loan-demands", demand(red, ["*"]), PLATFORM)
    d_all = (await r.json())["demand_id"]
    refuse = {"status": "refused", "reason_code": "other", "reason_text": "内部政策"}
    r = await _post(demo, f"/v1/loan-demands/{d_all}/responses", refuse, BANK)
    assert r.status == 201
    r = await _get(demo, f"/v1/loan-demands/{d_all}", BANK2)
    seen = await r.json()
    assert (seen["responses"], seen["state"]) == ([], "pending")
    r = await _get(demo, "/v1/loans/stats", BANK2)
    (theirs_stats,) = (await r.json())["banks"]
    assert theirs_stats["bank"] == BANK2
    assert theirs_stats["refused_by_reason"] == {}
    # Kinds: only banks publish and respond, only platforms record demands.
    r = await _post(demo, "/v1/loan-products", product("x.y"), PLATFORM)
    assert (r.status, (await r.json())["code"]) == (403, "forbidden_kind")
    r = await _post(demo, "/v1/loan-demands", demand(red, [BANK]), BANK)
    assert (r.status, (await r.json())["code"]) == (403, "forbidden_kind")
    r = await _get(demo, "/v1/loans/stats", PLATFORM)
    assert r.status == 403
    # Another platform's demand is not this bank's to close; the bank cannot close it.
    r = await _post(demo, f"/v1/loan-demands/{d_red}/close", {}, BANK)
    assert r.status == 403


async def test_closing_a_demand_ends_responses_and_recommendations(demo: Demo) -> None:
    await _published(demo)
    red = demo.subject("enterprise")
    r = await _post(demo, "/v1/loan-demands", demand(red, [BANK]), PLATFORM)
    d_red = (await r.json())["demand_id"]
    r = await _post(demo, f"/v1/loan-demands/{d_red}/close", {}, PLATFORM)
    assert (await r.json())["status"] == "closed"
    r = await _get(demo, "/v1/loan-products/demo-bank.quick/recommendations", BANK)
    assert (await r.json())["recommendations"] == []
    r = await _post(demo, f"/v1/loan-demands/{d_red}/responses", {"status": "accepted"}, BANK)
    assert (r.status, (await r.json())["code"]) == (409, "conflict")


async def test_bad_input_names_the_field(demo: Demo) -> None:
    bad = product("demo-bank.bad", amount={"min": 5, "max": 1})
    r = await _post(demo, "/v1/loan-products", bad, BANK)
    assert r.status == 422
    assert (await r.json())["errors"][0]["pointer"].startswith("/amount")
    red = demo.subject("enterprise")
    r = await _post(demo, "/v1/loan-demands", demand(red, ["no-such-bank"]), PLATFORM)
    assert (await r.json())["errors"][0]["pointer"] == "/authorised_banks/0"
    r = await _post(demo, "/v1/loan-demands", demand(red, [BANK]) | {"region": "21"}, PLATFORM)
    assert (await r.json())["errors"][0]["pointer"] == "/region"
    r = await _post(demo, f"/v1/loan-demands/{'dem_x'}/responses", {"status": "granted"}, BANK)
    assert r.status == 404


async def test_a_retried_demand_or_response_is_recorded_once(demo: Demo) -> None:
    await _published(demo)
    red = demo.subject("enterprise")
    headers = demo.auth(PLATFORM) | {"Idempotency-Key": "demand-0001"}
    body = demand(red, [BANK])
    first = await demo.client.post("/v1/loan-demands", json=body, headers=headers)
    again = await demo.client.post("/v1/loan-demands", json=body, headers=headers)
    assert first.status == again.status == 201
    d_red = (await first.json())["demand_id"]
    assert (await again.json())["demand_id"] == d_red
    headers = demo.auth(BANK) | {"Idempotency-Key": "response-0001"}
    path = f"/v1/loan-demands/{d_red}/responses"
    for _ in range(2):
        r = await demo.client.post(path, json={"status": "accepted"}, headers=headers)
        assert r.status == 201
    view = await (await _get(demo, f"/v1/loan-demands/{d_red}", PLATFORM)).json()
    assert len(view["responses"]) == 1


async def test_credit_data_is_read_once_per_request(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _published(demo)
    for n in range(5):
        more = product(f"demo-bank.extra-{n}")
        assert (await _post(demo, "/v1/loan-products", more, BANK)).status == 201
    source = demo.gateway.credit
    calls: list[int] = []
    original = source.records_many

    async def counted(kind: Any, ids: Any) -> Any:
        calls.append(len(ids))
        return await original(kind, ids)

    monkeypatch.setattr(source, "records_many", counted)
    red = demo.subject("enterprise")
    body = {
        "subject": {"kind": "enterprise", "id": red["id"]},
        "consent_id": red["consents"][BANK]["consent_id"],
        "demand": {"amount": 1_000_000, "term_months": 12, "region": "210102"},
    }
    r = await _post(demo, "/v1/loans/match", body, BANK)
    assert len((await r.json())["products"]) == 6
    assert calls == [1]
