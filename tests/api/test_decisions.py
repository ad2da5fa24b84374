"""Decisions over HTTP (API.md "Decisions"): every demo subject in every scene it is made for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Demo

# The four scenes API.md names, and the four added as data (docs/policies.md).
SCENES = {"loan", "approval", "library", "transit", "rental", "medical", "tax", "parking"}
REASON_KEYS = {"rule", "effect", "legal_basis", "facts"}


def _walk_values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _walk_values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _walk_values(item)]
    return [value]


async def test_every_demo_subject_gets_its_expected_outcome_in_every_scene(demo: Demo) -> None:
    seen: set[str] = set()
    for subject in demo.subjects:
        for scene, expected in subject["expected"].items():
            response = await demo.decide(subject, scene)
            assert response.status == 200, (subject["label"], scene, await response.text())
            assert response.content_type == "application/json"
            body = await response.json()
            assert (body["scene"], body["outcome"]) == (scene, expected), subject["label"]
            assert body["decision_id"]
            assert set(body["policy"]) == {"id", "version", "hash"}
            assert body["policy"]["hash"].startswith("sha256:")
            seen.add(scene)
    assert seen == SCENES


async def test_token_is_present_iff_the_outcome_is_granted(demo: Demo) -> None:
    outcomes: set[str] = set()
    for subject in demo.subjects:
        for scene in subject["expected"]:
            body = await (await demo.decide(subject, scene)).json()
            outcomes.add(body["outcome"])
            if body["outcome"] == "granted":
                assert isinstance(body.get("token"), str)
                assert body["token"].count(".") == 2  # compact JWS
                assert body["benefits"], "a grant names its benefits"
            else:
                assert "token" not in body, (subject["label"], scene)
                assert body["benefits"] == []
    assert outcomes == {"granted", "standard", "constrained"}


async def test_reasons_carry_rule_ids_legal_basis_and_fact_names_only(demo: Demo) -> None:
    gw = demo.gateway
    fact_names = set(gw.policies.catalogue.facts)
    reasons_seen = 0
    for subject in demo.subjects:
        for scene in subject["expected"]:
            body = await (await demo.decide(subject, scene)).json()
            rule_ids = {r.id for r in gw.policies.active(scene, gw.today()).rules}
            for reason in body["reasons"]:
                reasons_seen += 1
                assert set(reason) == REASON_KEYS
                assert reason["rule"] in rule_ids
                assert reason["effect"] in {"grant", "constrain"}
                assert reason["legal_basis"]
                assert all(isinstance(b, str) and b for b in reason["legal_basis"])
                assert reason["facts"]
                assert set(reason["facts"]) <= fact_names, reason["facts"]
            # a grant cites at least one granting rule; nothing else explains a standard outcome
            effects = {r["effect"] for r in body["reasons"]}
            if body["outcome"] == "granted":
                assert "grant" in effects
            if body["outcome"] == "constrained":
                assert "constrain" in effects
    assert reasons_seen > 0


async def test_responses_do_not_echo_scores_or_the_subject_id(demo: Demo) -> None:
    person = demo.subject("person", {"library": "granted"})
    body = await (await demo.decide(person, "library")).json()
    assert body["outcome"] == "granted"
    text = str(body)
    assert person["id"] not in text
    # the person's score is 650 or 640 in the demo data: reasons name the fact, not the value
    scores = {r.value for r in await demo.gateway.credit.records("person", person["id"])} - {None}
    assert scores, "the demo person has a credit score record"
    assert not scores & set(_walk_values(body["reasons"]))
    assert not scores & set(_walk_values(body["benefits"]))


async def test_constrained_appears_only_for_loan_and_tax(demo: Demo) -> None:
    scenes = await (await demo.client.get("/v1/scenes", headers=demo.auth("demo-bank"))).json()
    basic = {s["scene"] for s in scenes["scenes"] if s["basic_public_service"]}
    assert basic == {"library", "transit", "medical"}
    constrained = []
    for subject in demo.subjects:
        for scene in subject["expected"]:
            body = await (await demo.decide(subject, scene)).json()
            if body["outcome"] == "constrained":
                constrained.append(scene)
                assert body["constraints"]
                assert all(c["legal_basis"] for c in body["constraints"])
            else:
                assert body["constraints"] == []
    assert sorted(constrained) == ["loan", "tax"]


async def test_get_decision_returns_the_same_body_without_token_to_the_asker(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    created = await (await demo.decide(subject, "library")).json()
    assert "token" in created
    response = await demo.client.get(
        f"/v1/decisions/{created['decision_id']}", headers=demo.auth("demo-library")
    )
    assert response.status == 200
    fetched = await response.json()
    assert "token" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "token"}


async def test_get_decision_is_404_to_another_partner(demo: Demo) -> None:
    subject = demo.subject("enterprise", {"loan": "granted"})
    created = await (await demo.decide(subject, "loan")).json()
    path = f"/v1/decisions/{created['decision_id']}"
    for other in ("demo-library", "demo-service-hall", "demo-platform"):
        response = await demo.client.get(path, headers=demo.auth(other))
        assert response.status == 404, other
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "not_found"
    unknown = await demo.client.get("/v1/decisions/dec_nope", headers=demo.auth("demo-bank"))
    assert unknown.status == 404
    # and the asker still sees it
    assert (await demo.client.get(path, headers=demo.auth("demo-bank"))).status == 200


async def test_feedback_is_accepted_from_the_asker_only(demo: Demo) -> None:
    subject = demo.subject("enterprise", {"loan": "granted"})
    created = await (await demo.decide(subject, "loan")).json()
    path = f"/v1/decisions/{created['decision_id']}/feedback"
    feedback = {"applied": True, "detail": {"amount_yuan": 800_000, "term_months": 12}}
    response = await demo.client.post(path, json=feedback, headers=demo.auth("demo-bank"))
    assert response.status == 202
    assert (await response.json())["decision_id"] == created["decision_id"]
    other = await demo.client.post(path, json=feedback, headers=demo.auth("demo-transit"))
    assert other.status == 404
    assert (await other.json())["code"] == "not_found"
    bad = await demo.client.post(path, json={"applied": "yes"}, headers=demo.auth("demo-bank"))
    assert bad.status == 422
    assert [e["pointer"] for e in (await bad.json())["errors"]] == ["/applied"]


async def test_scenes_lists_every_scene(demo: Demo) -> None:
    response = await demo.client.get("/v1/scenes", headers=demo.auth("demo-library"))
    assert response.status == 200
    scenes = (await response.json())["scenes"]
    assert {s["scene"] for s in scenes} == SCENES
    assert len(scenes) == 8
    for scene in scenes:
        assert scene["title"]
        assert set(scene["policy"]) >= {"id", "version", "hash"}
        assert isinstance(scene["basic_public_service"], bool)
        assert scene["benefits"], scene["scene"]
        assert all("code" in b for b in scene["benefits"])
    unauthenticated = await demo.client.get("/v1/scenes")
    assert unauthenticated.status == 401


async def test_every_scene_has_a_demo_partner_and_subjects(demo: Demo) -> None:
    # Guards the tests above against a demo data set that silently lost a scene.
    for scene in SCENES:
        assert scene in demo.partner(demo.asker(scene))["scenes"]
        assert any(scene in s["expected"] for s in demo.subjects)


async def test_metrics_count_decisions_stages_and_tokens(demo: Demo) -> None:
    granted = 0
    decided = 0
    for subject in demo.subjects:
        for scene in subject["expected"]:
            body = await (await demo.decide(subject, scene)).json()
            decided += 1
            granted += body["outcome"] == "granted"
    text = await (await demo.client.get("/metrics")).text()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    for stage in ("fetch", "evaluate", "audit", "sign"):
        assert float(samples[f'xinyi_stage_seconds_count{{stage="{stage}"}}']) == decided
        assert float(samples[f'xinyi_stage_seconds_bucket{{le="+Inf",stage="{stage}"}}']) == decided
        assert float(samples[f'xinyi_stage_seconds_sum{{stage="{stage}"}}']) > 0
    issued = sum(float(v) for k, v in samples.items() if k.startswith("xinyi_tokens_issued_total"))
    assert issued == granted > 0
    total = sum(float(v) for k, v in samples.items() if k.startswith("xinyi_decisions_total"))
    assert total == decided
