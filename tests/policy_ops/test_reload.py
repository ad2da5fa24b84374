"""POST /v1/admin/policies/reload: an operator swaps the policy set, or learns why not.

After a lawful edit the new set's hash is in the next decision, its token and
its audit record; after an unlawful edit the old set keeps serving, and the
refusal is answered (409 with reasons), counted and logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.policy.loader import load_policy_dir
from tests.policy_ops._kit import (
    LIBRARY_RULE_600,
    copy_policies,
    file_hash,
    replace_once,
    sample,
)
from tests.policy_ops.conftest import Serve, Served

SCORE_650 = "person, credit score 650"
SCORE_560 = "person, credit score 560"
UNLAWFUL = """  - id: punish-court-listed
    when: {fact: person.dishonest_executed, op: "==", value: true}
    constrain: {measure: loan.restrict_credit}
tests:"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return copy_policies(tmp_path / "policies")


@pytest.fixture
async def served(serve: Serve, policy_dir: Path) -> Served:
    return await serve(policy_dir=policy_dir)


def lawful_edit(policy_dir: Path) -> None:
    """Version 2025.2 of the library policy: a lower threshold, fewer items."""
    library = policy_dir / "library.yaml"
    replace_once(library, 'version: "2025.1"', 'version: "2025.2"')
    replace_once(library, LIBRARY_RULE_600, LIBRARY_RULE_600.replace("600", "550"))
    replace_once(library, "max_items: 12", "max_items: 10")
    replace_once(library, "person.credit_score: 599}", "person.credit_score: 549}")


async def audit_entry(served: Served, decision_id: str) -> dict[str, object]:
    records = await served.gateway.store.audit_records(0, 10_000)
    return next(r.entry for r in records if r.entry.get("decision_id") == decision_id)


async def test_a_lawful_edit_is_served_after_reload(served: Served, policy_dir: Path) -> None:
    old = served.gateway.policies.hash
    before = await (await served.decide("library", served.subject(SCORE_560))).json()
    assert before["outcome"] == "standard"
    assert before["policy_set"] == old

    lawful_edit(policy_dir)
    new = load_policy_dir(policy_dir).hash
    assert new != old
    response = await served.reload()
    assert response.status == 200
    body = await response.json()
    assert body["policy_set"] == new
    assert body["scenes"] == ["approval", "library", "loan", "transit"]
    assert served.gateway.policies.hash == new

    # 560 ≥ 550: the new threshold decides, and every trace names the new set.
    response = await served.decide("library", served.subject(SCORE_560))
    assert response.status == 200
    decision = await response.json()
    assert decision["outcome"] == "granted"
    assert decision["benefits"] == [
        {"code": "deposit_waiver", "params": {"max_items": 10, "max_value_cny": 100}}
    ]
    assert decision["policy_set"] == new
    assert decision["policy"] == {
        "id": "library.deposit_waiver",
        "version": "2025.2",
        "hash": file_hash(policy_dir / "library.yaml"),
    }
    claims = await served.token_claims(decision["token"], "demo-library")
    assert claims["policy_set"] == new
    assert claims["policy"] == decision["policy"]
    entry = await audit_entry(served, decision["decision_id"])
    assert entry["policy_set"] == new
    assert entry["policy"] == "library.deposit_waiver@2025.2"
    assert entry["policy_hash"] == decision["policy"]["hash"]
    old_entry = await audit_entry(served, before["decision_id"])
    assert old_entry["policy_set"] == old

    scenes = await served.scene_policies()
    assert scenes["library"] == decision["policy"]
    text = await served.metrics()
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 1.0
    assert sample(text, "xinyi_policy_reloads_total", result="refused") == 0.0


async def test_an_unlawful_edit_is_refused_and_the_old_set_keeps_serving(
    served: Served, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = served.gateway.policies.hash
    old_library = (await served.scene_policies())["library"]
    replace_once(policy_dir / "library.yaml", "tests:", UNLAWFUL)

    with caplog.at_level(logging.ERROR, logger="xinyi.gateway"):
        response = await served.reload()
    assert response.status == 409
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["code"] == "policy_refused"
    assert problem["status"] == 409
    assert problem["policy_set"] == old
    expected = "library.yaml:punish-court-listed: constraint_in_basic_public_service: "
    assert any(reason.startswith(expected) for reason in problem["reasons"]), problem

    # Nothing changed for callers: same set, same policy, same outcome.
    assert served.gateway.policies.hash == old
    assert (await served.scene_policies())["library"] == old_library
    response = await served.decide("library", served.subject(SCORE_650))
    decision = await response.json()
    assert decision["outcome"] == "granted"
    assert decision["policy_set"] == old
    assert decision["policy"] == old_library
    entry = await audit_entry(served, decision["decision_id"])
    assert entry["policy_set"] == old

    text = await served.metrics()
    assert sample(text, "xinyi_policy_reloads_total", result="refused") == 1.0
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 0.0
    assert (
        sample(text, "xinyi_guard_rejections_total", code="constraint_in_basic_public_service")
        == 1.0
    )

    refused = [
        r for r in caplog.records if r.name == "xinyi.gateway" and r.levelno == logging.ERROR
    ]
    assert len(refused) == 1
    assert "refused" in refused[0].getMessage()
    assert refused[0].__dict__["policy_set"] == old
    assert refused[0].__dict__["reasons"] == problem["reasons"]


async def test_a_fix_after_a_refusal_is_picked_up(served: Served, policy_dir: Path) -> None:
    library = policy_dir / "library.yaml"
    shipped_text = library.read_text(encoding="utf-8")
    replace_once(library, "tests:", UNLAWFUL)
    assert (await served.reload()).status == 409
    library.write_text(shipped_text, encoding="utf-8")
    lawful_edit(policy_dir)
    response = await served.reload()
    assert response.status == 200
    assert (await served.scene_policies())["library"]["version"] == "2025.2"
    text = await served.metrics()
    assert sample(text, "xinyi_policy_reloads_total", result="refused") == 1.0
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 1.0


async def test_an_unreadable_policy_file_is_refused_with_its_name(
    served: Served, policy_dir: Path
) -> None:
    old = served.gateway.policies.hash
    (policy_dir / "transit.yaml").write_text("rules: [unclosed\n", encoding="utf-8")
    response = await served.reload()
    assert response.status == 409
    reasons = (await response.json())["reasons"]
    assert reasons
    assert reasons[0].startswith("transit.yaml:-: unreadable")
    assert served.gateway.policies.hash == old


async def test_only_an_operator_may_reload(served: Served, policy_dir: Path) -> None:
    lawful_edit(policy_dir)
    old = served.gateway.policies.hash
    for partner in ("demo-library", "demo-bank", "demo-platform", "demo-auditor"):
        response = await served.reload(partner)
        assert response.status == 403, partner
        problem = await response.json()
        assert problem["code"] == "forbidden_kind"
        assert "allowed: operator" in problem["detail"]
    response = await served.client.post("/v1/admin/policies/reload")
    assert response.status == 401
    assert (await response.json())["code"] == "unauthenticated"
    assert served.gateway.policies.hash == old
    text = await served.metrics()
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 0.0
    assert sample(text, "xinyi_policy_reloads_total", result="refused") == 0.0
    # the same edit, asked for by the operator, is applied
    assert (await served.reload()).status == 200
    assert served.gateway.policies.hash != old
