"""A new scene is data: 信易游 (tourism) served from a policy file and a benefit entry.

The test writes only YAML — a policy, a benefit, a partner — and the gateway
serves the scene: listed in /v1/scenes, consented through /v1/consents,
decided with a token.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.policy.loader import PolicyLoadError, load_policy_dir
from tests.policy_ops._kit import copy_policies, replace_once
from tests.policy_ops.conftest import Serve, Served

TOURISM_KEY = "xk_dev_tourism-test-key-0000000000000000000000"
TOURISM_POLICY = """\
id: tourism.scenic_discount
version: "2025.1"
scene: tourism
title: 信易游 景区门票优惠
basic_public_service: false
subjects: [person]
consent_required_for: [person]
departments: {initiating: 市文化和旅游局, implementing: 合作A级景区}
legal_basis:
  - 《辽宁省“十四五”社会信用体系建设规划》（辽政办发〔2022〕5号）信易游
effective: {from: 2025-01-01, until: null}
token_days: 3
benefit_days: 14
rules:
  - id: score-600-discount
    when:
      all:
        - {fact: person.credit_score, op: ">=", value: 600}
        - {not: {fact: person.dishonest_executed, op: "==", value: true}}
    grant: {benefit: scenic_spot_discount, params: {percent: 20}}
  - id: score-640-discount
    when: {fact: person.credit_score, op: ">=", value: 640}
    grant: {benefit: scenic_spot_discount, params: {percent: 30}}
tests:
  - name: a visitor with 650 gets the larger discount
    subject: person
    facts: {person.credit_score: 650}
    expect: {outcome: granted, benefits: [scenic_spot_discount]}
  - name: a visitor with no score pays the usual price
    subject: person
    facts: {}
    expect: {outcome: standard}
"""
SCENIC_BENEFIT = """\
  scenic_spot_discount:
    title: 景区门票折扣
    vct: scenic_spot_discount
    params:
      percent: {type: integer, min: 0, max: 100}
"""
TOURISM_PARTNER = {
    "id": "scenic-spot-1",
    "kind": "transit",  # the nearest existing kind of scene caller
    "title": "示例景区",
    "scenes": ["tourism"],
    "purposes": ["scenic_discount"],
}


@pytest.fixture
def tourism_dir(tmp_path: Path) -> Path:
    directory = copy_policies(tmp_path / "policies")
    (directory / "tourism.yaml").write_text(TOURISM_POLICY, encoding="utf-8")
    benefits = directory / "benefits.yaml"
    benefits.write_text(benefits.read_text(encoding="utf-8") + SCENIC_BENEFIT, encoding="utf-8")
    return directory


@pytest.fixture
async def served(serve: Serve, tourism_dir: Path) -> Served:
    return await serve(policy_dir=tourism_dir, extra_partners={TOURISM_KEY: TOURISM_PARTNER})


def test_the_tourism_directory_passes_lint_and_its_tests(
    tourism_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "lint", "--dir", str(tourism_dir)]) == 0
    assert "ok: 5 policies accepted" in capsys.readouterr().out
    assert main(["policy", "test", "--dir", str(tourism_dir)]) == 0
    policies = load_policy_dir(tourism_dir)
    assert "tourism" in policies.by_scene


def test_the_benefit_range_still_guards_the_new_scene(tourism_dir: Path) -> None:
    replace_once(tourism_dir / "tourism.yaml", "percent: 30", "percent: 130")
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_dir(tourism_dir)
    found = {(p.file, p.rule, p.code) for p in caught.value.problems}
    assert found == {("tourism.yaml", "score-640-discount", "benefit_param_out_of_range")}


async def test_tourism_is_listed_with_its_benefit(served: Served) -> None:
    response = await served.client.get("/v1/scenes", headers=served.auth("scenic-spot-1"))
    assert response.status == 200
    scenes = {s["scene"]: s for s in (await response.json())["scenes"]}
    assert set(scenes) == {"approval", "library", "loan", "tourism", "transit"}
    tourism = scenes["tourism"]
    assert tourism["title"] == "信易游 景区门票优惠"
    assert tourism["policy"]["id"] == "tourism.scenic_discount"
    assert tourism["basic_public_service"] is False
    assert tourism["subjects"] == ["person"]
    assert tourism["benefits"] == [{"code": "scenic_spot_discount", "title": "景区门票折扣"}]


async def consent(served: Served, subject_id: str) -> str:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    response = await served.client.post(
        "/v1/consents",
        json={
            "subject": {"kind": "person", "id": subject_id},
            "partner": "scenic-spot-1",
            "scenes": ["tourism"],
            "purpose": "scenic_discount",
            "expires_at": expires,
        },
        headers=served.auth("demo-platform"),
    )
    assert response.status == 201, await response.text()
    consent_id: str = (await response.json())["consent_id"]
    return consent_id


async def test_tourism_decisions_grant_the_new_benefit_with_a_token(served: Served) -> None:
    visitor = served.subject("person, credit score 650")
    consent_id = await consent(served, visitor.id)
    response = await served.decide(
        "tourism",
        visitor,
        partner="scenic-spot-1",
        purpose="scenic_discount",
        consent_id=consent_id,
    )
    assert response.status == 200, await response.text()
    decision = await response.json()
    assert decision["scene"] == "tourism"
    assert decision["outcome"] == "granted"
    # two rules grant the same benefit: the most favourable percent wins
    assert decision["benefits"] == [{"code": "scenic_spot_discount", "params": {"percent": 30}}]
    assert [r["rule"] for r in decision["reasons"]] == ["score-600-discount", "score-640-discount"]
    assert decision["policy"]["id"] == "tourism.scenic_discount"
    assert decision["policy_set"] == served.gateway.policies.hash

    claims = await served.token_claims(decision["token"], "scenic-spot-1")
    assert claims["scene"] == "tourism"
    assert claims["vct"] == "tourism.scenic_discount"
    assert claims["benefits"] == decision["benefits"]
    assert claims["exp"] - claims["iat"] == 3 * 86_400
    assert decision["benefit_until"] == (served.gateway.today() + dt.timedelta(14)).isoformat()

    records = await served.gateway.store.audit_records(0, 1000)
    entry = next(r.entry for r in records if r.entry.get("decision_id") == decision["decision_id"])
    assert entry["scene"] == "tourism"
    assert entry["partner"] == "scenic-spot-1"
    assert entry["consent_id"] == consent_id


async def test_tourism_without_consent_or_with_a_low_score(served: Served) -> None:
    visitor = served.subject("person, credit score 560")
    response = await served.decide(
        "tourism", visitor, partner="scenic-spot-1", purpose="scenic_discount"
    )
    assert response.status == 403
    assert (await response.json())["code"] == "consent_required"

    consent_id = await consent(served, visitor.id)
    response = await served.decide(
        "tourism",
        visitor,
        partner="scenic-spot-1",
        purpose="scenic_discount",
        consent_id=consent_id,
    )
    decision = await response.json()
    assert decision["outcome"] == "standard"
    assert "token" not in decision


async def test_other_partners_may_not_ask_for_tourism(served: Served) -> None:
    visitor = served.subject("person, credit score 650")
    response = await served.decide(
        "tourism", visitor, partner="demo-library", purpose="scenic_discount"
    )
    assert response.status == 403
    assert (await response.json())["code"] == "forbidden_scene"
