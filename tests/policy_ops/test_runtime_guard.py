"""The runtime guard: a constraint the static guard would refuse is dropped at evaluation.

Lint makes these policies unloadable, so each test bypasses it on purpose
(``check_policy`` patched to find nothing) and checks that the evaluator still
never applies the constraint, counts it and logs the rule.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.policy.evaluator import CompiledRule, Reason, evaluate_rules
from gateway.policy.loader import PolicyLoadError, load_policy_dir
from tests.policy_ops._kit import copy_policies, replace_once, sample
from tests.policy_ops.conftest import Serve

SCORE_560 = "person, credit score 560"
SCORE_650 = "person, credit score 650"
COURT_LISTED = "person, score 680 but on the dishonest-executed list (失信被执行人)"

SCORE_CONSTRAINT = """  - id: low-score-no-credit
    when: {fact: person.credit_score, op: "<", value: 600}
    constrain: {measure: loan.restrict_credit}
tests:"""
COURT_CONSTRAINT = """  - id: court-listed-no-credit
    when: {fact: person.dishonest_executed, op: "==", value: true}
    constrain: {measure: loan.restrict_credit}
tests:"""


def bypass_lint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.policy.loader.check_policy", lambda *_a, **_k: [])


@pytest.fixture
def unlawful_dir(tmp_path: Path) -> Path:
    """Transit made a non-basic scene that constrains on a personal score; library
    (a basic public service) constrains on a court list."""
    directory = copy_policies(tmp_path / "policies")
    transit = directory / "transit.yaml"
    replace_once(transit, "basic_public_service: true", "basic_public_service: false")
    replace_once(transit, "tests:", SCORE_CONSTRAINT)
    replace_once(directory / "library.yaml", "tests:", COURT_CONSTRAINT)
    return directory


def test_lint_refuses_the_unlawful_directory(unlawful_dir: Path) -> None:
    """Without the bypass neither policy loads: the runtime guard is the second line."""
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_dir(unlawful_dir)
    found = {(p.file, p.rule, p.code) for p in caught.value.problems}
    assert ("transit.yaml", "low-score-no-credit", "personal_score_to_constraint") in found
    assert (
        "library.yaml",
        "court-listed-no-credit",
        "constraint_in_basic_public_service",
    ) in found


def test_the_compiled_rule_records_the_classes_it_reads(
    unlawful_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bypass_lint(monkeypatch)
    policies = load_policy_dir(unlawful_dir)
    transit = {r.id: r for r in policies.by_scene["transit"][0].rules}
    assert transit["low-score-no-credit"].classes == frozenset({"personal_score"})
    # a derived fact carries its input's class
    assert transit["bike-deposit-waiver"].classes == frozenset({"personal_score", "public_record"})
    library = {r.id: r for r in policies.by_scene["library"][0].rules}
    assert library["court-listed-no-credit"].classes == frozenset({"effective_document"})


async def test_a_score_driven_constraint_is_dropped_counted_and_logged(
    serve: Serve,
    unlawful_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bypass_lint(monkeypatch)
    served = await serve(policy_dir=unlawful_dir)
    with caplog.at_level(logging.ERROR, logger="xinyi.decisions"):
        response = await served.decide("transit", served.subject(SCORE_560))
    assert response.status == 200
    decision = await response.json()
    assert decision["outcome"] == "standard"
    assert decision["constraints"] == []
    assert all(r["effect"] != "constrain" for r in decision["reasons"])

    text = await served.metrics()
    assert sample(text, "xinyi_guard_violations_total", scene="transit") == 1.0
    dropped = [r for r in caplog.records if r.getMessage() == "runtime guard dropped constraints"]
    assert len(dropped) == 1
    assert dropped[0].levelno == logging.ERROR
    assert dropped[0].__dict__["rules"] == ["low-score-no-credit"]
    assert dropped[0].__dict__["scene"] == "transit"
    assert dropped[0].__dict__["policy"] == "transit.deposit_waiver"

    # A subject the rule does not fire for leaves the counter alone.
    response = await served.decide("transit", served.subject(SCORE_650))
    assert (await response.json())["outcome"] == "granted"
    text = await served.metrics()
    assert sample(text, "xinyi_guard_violations_total", scene="transit") == 1.0


async def test_a_basic_public_service_never_constrains(
    serve: Serve, unlawful_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even on an effective document: the library scene only grants or stays standard."""
    bypass_lint(monkeypatch)
    served = await serve(policy_dir=unlawful_dir)
    outcomes = {}
    for subject in served.setup.subjects:
        if subject.kind != "person":
            continue
        response = await served.decide("library", subject)
        assert response.status == 200
        outcomes[subject.label] = (await response.json())["outcome"]
    assert set(outcomes.values()) <= {"granted", "standard"}
    assert outcomes[COURT_LISTED] == "standard"
    text = await served.metrics()
    assert sample(text, "xinyi_guard_violations_total", scene="library") == 1.0


def test_explain_shows_what_the_runtime_guard_dropped(
    unlawful_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bypass_lint(monkeypatch)
    facts = tmp_path / "facts.json"
    facts.write_text('{"person.credit_score": 420}', encoding="utf-8")
    argv = ["policy", "explain", "transit", "--facts", str(facts), "--dir", str(unlawful_dir)]
    assert main([*argv, "--as-of", "2025-06-01"]) == 0
    out = capsys.readouterr().out
    assert "rule low-score-no-credit: constrain loan.restrict_credit — FIRES" in out
    assert "outcome: standard; benefits: none; constraints: none" in out
    assert "runtime guard dropped: low-score-no-credit" in out


# --- the evaluator on hand-built rules ----------------------------------------


def rule(rule_id: str, classes: set[str], **effect: Any) -> CompiledRule:
    return CompiledRule(
        id=rule_id,
        predicate=lambda _facts: True,
        reason=Reason(rule_id, "constrain" if "measure" in effect else "grant", ("basis",), ()),
        classes=frozenset(classes),
        **effect,
    )


@pytest.mark.parametrize(
    ("classes", "basic", "kept"),
    [
        ({"effective_document"}, False, True),
        ({"effective_document", "context"}, False, True),
        ({"context"}, False, True),
        ({"personal_score"}, False, False),
        ({"effective_document", "personal_score"}, False, False),
        ({"public_record"}, False, False),
        ({"effective_document", "public_record"}, False, False),
        ({"effective_document"}, True, False),
    ],
)
def test_evaluate_rules_keeps_only_lawful_constraints(
    classes: set[str], basic: bool, kept: bool
) -> None:
    from gateway.policy.model import BenefitCatalogue

    benefits = BenefitCatalogue.model_validate({"benefits": {"green_channel": {"title": "t"}}})
    rules = (
        rule("c", classes, measure="loan.restrict_credit"),
        rule("g", {"public_record"}, benefit="green_channel"),
    )
    result = evaluate_rules(rules, {}, benefits, basic)
    if kept:
        assert result.outcome == "constrained"
        assert result.constraints == ["loan.restrict_credit"]
        assert result.dropped == []
    else:
        # forbid would have won; with the constraint dropped the grant stands
        assert result.outcome == "granted"
        assert result.constraints == []
        assert result.dropped == ["c"]
