"""Issue 16 for loan products: the prover's findings come back with a published product."""

from __future__ import annotations

from typing import Any

from tests.conftest import Demo
from tests.loans._kit import RED_LIST, product

BANK = "demo-bank"


async def _publish(demo: Demo, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = await demo.client.post("/v1/loan-products", json=body, headers=demo.auth(BANK))
    return answer.status, await answer.json()


def _holds(proof: dict[str, Any], prop: str, rule: str | None = None) -> bool:
    return next(
        f["holds"] for f in proof["findings"] if f["property"] == prop and f["rule"] == rule
    )


async def test_a_lawful_product_is_published_with_its_proof(demo: Demo) -> None:
    status, body = await _publish(demo, product("proof.lawful"))
    assert status == 201, body
    proof = body["proof"]
    assert proof["status"] == "proved"
    assert _holds(proof, "non_interference")
    for rule in ("red-list", "tax-a", "serious-dishonesty"):
        assert _holds(proof, "fires", rule)


async def test_a_shadowed_rule_is_named_but_the_product_stands(demo: Demo) -> None:
    body = product("proof.shadowed")
    # The same grant again, on a narrower condition: it can fire, but never changes the outcome.
    body["rules"].append(
        {
            "id": "red-list-again",
            "when": {"all": [RED_LIST, {"fact": "enterprise.tax_credit_grade", "op": "==",
                                       "value": "B"}]},
            "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 1_000_000}},
        }
    )  # fmt: skip
    status, answer = await _publish(demo, body)
    assert status == 201, answer
    proof = answer["proof"]
    assert proof["status"] == "refuted"
    assert _holds(proof, "fires", "red-list-again")
    assert not _holds(proof, "matters", "red-list-again")
    assert _holds(proof, "non_interference")
