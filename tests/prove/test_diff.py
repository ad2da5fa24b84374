"""policy diff: who gains and who loses between two versions, checked by replaying
each example subject through the evaluator under both versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.policy.diff import Change, diff_policies
from gateway.policy.model import Policy
from gateway.policy.prove_cmd import load_sources
from gateway.policy.smt import evaluate
from gateway.resources import shipped

SHIPPED = shipped("policies")
V2026 = Path(__file__).parent / "versions" / "loan_2026.yaml"
CATALOGUE, BENEFITS, ((_, OLD), (_, NEW)) = load_sources(SHIPPED, [SHIPPED / "loan.yaml", V2026])


def observed(change: Change, old: Policy, new: Policy) -> bool:
    """Whether replaying the change's example under both versions shows the change."""
    before = evaluate(old.rules, CATALOGUE, BENEFITS, change.example.facts)
    after = evaluate(new.rules, CATALOGUE, BENEFITS, change.example.facts)
    had, has = dict(before.benefits), dict(after.benefits)
    # Independent of Change.shown_by for the kinds these versions produce.
    if change.kind == "benefit_removed":
        shown = change.what in had and change.what not in has
    elif change.kind == "benefit_added":
        shown = change.what in has and change.what not in had
    elif change.kind in ("param_worse", "param_better"):
        code, name = change.what.split(".")
        assert BENEFITS.benefits[code].params[name].favourable == "higher"
        shown = (has[code][name] < had[code][name]) == (change.kind == "param_worse")
        shown = shown and has[code][name] != had[code][name]
    elif change.kind == "constraint_added":
        shown = change.what in after.constraints and change.what not in before.constraints
    else:
        raise AssertionError(f"unexpected change {change}")
    return shown and change.shown_by(before, after, BENEFITS)


def test_a_version_is_equivalent_to_itself(capsys: pytest.CaptureFixture[str]) -> None:
    assert diff_policies(OLD, OLD, CATALOGUE, BENEFITS).equivalent
    assert main(["policy", "diff", str(SHIPPED / "loan.yaml"), str(SHIPPED / "loan.yaml")]) == 0
    assert "equivalent" in capsys.readouterr().out


def test_reordering_rules_is_equivalent() -> None:
    reordered = OLD.model_copy(update={"rules": list(reversed(OLD.rules)), "version": "x"})
    assert diff_policies(OLD, reordered, CATALOGUE, BENEFITS).equivalent


def test_who_gains_and_who_loses_in_the_2026_loan_version() -> None:
    diff = diff_policies(OLD, NEW, CATALOGUE, BENEFITS)
    assert not diff.equivalent
    losses = {(c.kind, c.what) for c in diff.losses}
    gains = {(c.kind, c.what) for c in diff.gains}
    # Red-listed enterprises without a clean year lose the credit loan; every red-listed
    # one gets the smaller discount; tax-B enterprises with three clean years gain it.
    assert losses == {
        ("benefit_removed", "credit_loan_access"),
        ("param_worse", "loan_rate_discount.bp"),
    }
    assert gains == {("benefit_added", "credit_loan_access")}
    for change in diff.changes:
        assert observed(change, OLD, NEW), change
    removed = next(c for c in diff.losses if c.kind == "benefit_removed")
    assert removed.example.facts.get("enterprise.red_listed") is True
    assert removed.example.facts.get("enterprise.clean_record_years", 0) < 1
    assert "red-list-credit-loan" in removed.old_rules
    assert "red-list-credit-loan" not in removed.new_rules
    added = next(iter(diff.gains))
    assert added.example.facts["enterprise.tax_credit_grade"] == "B"
    # The other direction swaps gains and losses.
    back = diff_policies(NEW, OLD, CATALOGUE, BENEFITS)
    assert {(c.kind, c.what) for c in back.gains} == {
        ("benefit_added", "credit_loan_access"),
        ("param_better", "loan_rate_discount.bp"),
    }
    for change in back.changes:
        assert observed(change, NEW, OLD), change


def test_a_new_constraint_is_a_loss() -> None:
    data = NEW.model_dump(by_alias=True)
    data["rules"].append(
        {
            "id": "breached",
            "when": {"fact": "enterprise.breached_commitment", "op": "==", "value": True},
            "constrain": {"measure": "loan.restrict_credit"},
        }
    )
    stricter = Policy.model_validate(data)
    diff = diff_policies(NEW, stricter, CATALOGUE, BENEFITS)
    assert {(c.kind, c.what) for c in diff.losses} >= {
        ("constraint_added", "loan.restrict_credit"),
        ("benefit_removed", "credit_loan_access"),
        ("benefit_removed", "loan_rate_discount"),
    }
    assert diff.gains == []
    for change in diff.changes:
        assert observed(change, NEW, stricter), change
        assert "breached" in change.new_rules


def test_cli_names_gainers_and_losers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "diff", str(SHIPPED / "loan.yaml"), str(V2026)]) == 1
    out = capsys.readouterr().out
    assert "NOT equivalent" in out
    assert "who loses:" in out
    assert "who gains:" in out
    assert "loses benefit credit_loan_access" in out
    assert "gains benefit credit_loan_access" in out
    assert main(["policy", "diff", str(SHIPPED / "loan.yaml"), str(SHIPPED / "nope.yaml")]) == 2
