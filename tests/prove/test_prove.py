"""policy prove: the shipped policies are proved; deliberately wrong ones are refuted with
counterexamples that the evaluator, replayed, shows doing what the report says."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.policy.loader import load_policy_dir
from gateway.policy.model import Policy, PolicyTest, Rule
from gateway.policy.prove import Example, Finding, PolicyProof, prove_policy, prove_rules, witness
from gateway.policy.prove_cmd import load_sources
from gateway.policy.smt import ProveError, evaluate, fired
from gateway.resources import shipped

SHIPPED = shipped("policies")
WRONG = Path(__file__).parent / "wrong"
CATALOGUE, BENEFITS, POLICIES = load_sources(SHIPPED)


def wrong(name: str) -> Policy:
    return load_sources(SHIPPED, [WRONG / f"{name}.yaml"])[2][0][1]


def refuted(proof: PolicyProof) -> dict[tuple[str, str | None], Finding]:
    return {(f.property, f.rule): f for f in proof.refuted}


def replay(rules: list[Rule], example: Example) -> Any:
    return evaluate(rules, CATALOGUE, BENEFITS, example.facts)


def test_every_shipped_policy_is_proved(capsys: pytest.CaptureFixture[str]) -> None:
    assert POLICIES
    for file, policy in POLICIES:
        proof = prove_policy(policy, CATALOGUE, BENEFITS, file)
        assert proof.refuted == [], proof.refuted
        for finding in proof.findings:
            # A proof that a rule fires and matters comes with a subject showing it.
            if finding.property in ("fires", "matters"):
                (example,) = finding.examples
                assert finding.rule in fired(policy.rules, CATALOGUE, example.facts)
    assert main(["policy", "prove"]) == 0
    out = capsys.readouterr().out
    assert "REFUTED" not in out
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith(f"policies proved: {len(POLICIES)}; every property proved")
    )


def test_shipped_conflicts_are_listed_and_forbid_wins() -> None:
    loan = dict(POLICIES)["loan.yaml"]
    proof = prove_policy(loan, CATALOGUE, BENEFITS)
    conflicts = [f for f in proof.findings if f.property == "conflicts"]
    assert {f.rule for f in conflicts} == {r.id for r in loan.rules if r.grant}
    for finding in conflicts:
        (example,) = finding.examples
        firing = fired(loan.rules, CATALOGUE, example.facts)
        assert finding.rule in firing
        assert "serious-dishonesty" in firing
        assert replay(loan.rules, example).outcome == "constrained"


def test_contradictory_rules_the_grant_never_matters() -> None:
    policy = wrong("contradictory")
    found = refuted(prove_policy(policy, CATALOGUE, BENEFITS))
    assert set(found) == {("matters", "green-for-executed")}
    (example,) = found["matters", "green-for-executed"].examples
    assert fired(policy.rules, CATALOGUE, example.facts) == [
        "green-for-executed",
        "restrict-executed",
    ]
    without = [r for r in policy.rules if r.id != "green-for-executed"]
    assert replay(policy.rules, example) == replay(without, example)
    assert replay(policy.rules, example).outcome == "constrained"


def test_a_shadowed_rule_is_refuted_with_the_rule_that_covers_it() -> None:
    policy = wrong("shadowed")
    found = refuted(prove_policy(policy, CATALOGUE, BENEFITS))
    assert set(found) == {("matters", "red-list-clean-discount")}
    finding = found["matters", "red-list-clean-discount"]
    assert "red-list-discount" in finding.message
    (example,) = finding.examples
    assert "red-list-clean-discount" in fired(policy.rules, CATALOGUE, example.facts)
    without = [r for r in policy.rules if r.id != "red-list-clean-discount"]
    assert replay(policy.rules, example).benefits == replay(without, example).benefits
    # The served evaluator (through the loader) agrees with the replay as written.
    served = load_policy_dir(SHIPPED, [WRONG / "shadowed.yaml"]).by_scene["wrong-shadowed"][0]
    assert served.evaluate(example.facts).benefits == replay(policy.rules, example).benefits


def test_a_dead_rule_lint_accepts_is_refuted() -> None:
    policy = wrong("dead")
    load_policy_dir(SHIPPED, [WRONG / "dead.yaml"])  # the per-rule reachability check passes it
    found = refuted(prove_policy(policy, CATALOGUE, BENEFITS))
    assert set(found) == {("fires", "scored-red-list"), ("matters", "scored-red-list")}
    assert "enterprise and person facts at once" in found["fires", "scored-red-list"].message
    # Replayed over every combination of the facts it reads, for both kinds of subject,
    # the rule never fires: a person's red-list fact is absent, so its default (false).
    served = load_policy_dir(SHIPPED, [WRONG / "dead.yaml"]).by_scene["wrong-dead"][0]
    for score, listed in itertools.product((None, 599, 600, 601), (None, True, False)):
        person = {} if score is None else {"person.credit_score": score}
        enterprise = {} if listed is None else {"enterprise.red_listed": listed}
        for facts in (person, enterprise):
            assert "scored-red-list" not in fired(policy.rules, CATALOGUE, facts)
            assert "deposit_waiver" not in dict(served.evaluate(facts).benefits)
    # Asked directly, the solver finds no subject of either kind for its condition.
    for kind in ("person", "enterprise"):
        assert witness(policy.rules[1].when, CATALOGUE, BENEFITS, [kind]) is None


def test_a_constraint_on_a_score_is_refuted_twice() -> None:
    policy = wrong("interference")
    found = refuted(prove_policy(policy, CATALOGUE, BENEFITS))
    assert set(found) == {("non_interference", None), ("basic_public_service", None)}
    a, b = found["non_interference", None].examples
    # The two subjects differ only in the personal-score fact ...
    strip = {"person.credit_score"}
    assert {k: v for k, v in a.facts.items() if k not in strip} == {
        k: v for k, v in b.facts.items() if k not in strip
    }
    # ... and get different constraints.
    assert replay(policy.rules, a).constraints != replay(policy.rules, b).constraints
    (c,) = found["basic_public_service", None].examples
    assert replay(policy.rules, c).outcome == "constrained"


def test_the_guard_refuses_what_the_solver_proves_harmless() -> None:
    # Recorded, not relaxed: the guard stays strict (docs/prove.md).
    policy = wrong("harmless_score")
    assert prove_policy(policy, CATALOGUE, BENEFITS).refuted == []
    with pytest.raises(Exception, match="personal_score_to_constraint"):
        load_policy_dir(SHIPPED, [WRONG / "harmless_score.yaml"])


def test_printed_counterexamples_paste_as_passing_policy_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["policy", "prove", "--dir", str(SHIPPED), str(WRONG / "shadowed.yaml")]) == 1
    out = capsys.readouterr().out
    assert "rule red-list-clean-discount matters: REFUTED" in out
    block = "\n".join(line for line in out.splitlines() if line.startswith("      "))
    cases = [PolicyTest.model_validate(c) for c in yaml.safe_load(block)]
    assert cases
    served = load_policy_dir(SHIPPED, [WRONG / "shadowed.yaml"]).by_scene["wrong-shadowed"][0]
    for case in cases:
        result = served.evaluate(case.facts)
        assert result.outcome == case.expect.outcome
        assert sorted(c for c, _ in result.benefits) == sorted(case.expect.benefits or [])


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "prove", "--dir", str(tmp_path / "nowhere")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n", encoding="utf-8")
    assert main(["policy", "prove", "--dir", str(SHIPPED), str(bad)]) == 2
    data = yaml.safe_load((WRONG / "shadowed.yaml").read_text(encoding="utf-8"))
    data["rules"][0]["when"] = {"fact": "enterprise.no_such_fact", "op": "==", "value": True}
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert main(["policy", "prove", "--dir", str(SHIPPED), str(unknown)]) == 2
    assert "no_such_fact" in capsys.readouterr().err
    # The other files are still proved and reported.
    files = [str(unknown), str(WRONG / "shadowed.yaml")]
    assert main(["policy", "prove", "--dir", str(SHIPPED), *files]) == 2
    out = capsys.readouterr().out
    assert "rule red-list-clean-discount matters: REFUTED" in out
    assert "1 could not be modelled" in out
    data["rules"][0] = data["rules"][1]
    unknown.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert main(["policy", "prove", "--dir", str(SHIPPED), str(unknown)]) == 2
    assert "used twice" in capsys.readouterr().err


def test_unknown_and_default_facts_are_modelled_three_valued() -> None:
    # not(score >= 600) is unknown without a score: the rule cannot fire on missing data,
    # so its witness must carry a score.
    cond = dict(POLICIES)["library.yaml"].rules[0].when
    example = witness(cond, CATALOGUE, BENEFITS, ["person"])
    assert example is not None
    assert "person.credit_score" in example.facts
    negated = Rule.model_validate(
        {
            "id": "x",
            "when": {"not": {"fact": "person.credit_score", "op": ">=", "value": 600}},
            "grant": {"benefit": "green_channel"},
        }
    )
    shown = witness(negated.when, CATALOGUE, BENEFITS, ["person"])
    assert shown is not None
    assert shown.facts["person.credit_score"] < 600
    with pytest.raises(ProveError):
        witness(
            Rule.model_validate(
                {
                    "id": "y",
                    "when": {"fact": "person.credit_score", "op": "==", "value": "high"},
                    "grant": {"benefit": "green_channel"},
                }
            ).when,
            CATALOGUE,
            BENEFITS,
            ["person"],
        )


def test_any_rule_list_is_one_call() -> None:
    # How a loan product's rules (condition trees, no policy around them) get proved.
    loan = dict(POLICIES)["loan.yaml"]
    product = [*loan.rules[:2], wrong("shadowed").rules[1]]
    proof = prove_rules(product, CATALOGUE, BENEFITS, subjects=["enterprise"], label="product")
    assert [(f.property, f.rule) for f in proof.refuted] == [("matters", "red-list-clean-discount")]


def test_the_gateway_runs_without_z3() -> None:
    # z3 is an optional extra: serving never imports it, and prove says what is missing.
    code = (
        "import sys; sys.modules['z3'] = None\n"
        "import gateway.app, gateway.runtime\n"
        "from gateway.cli import main\n"
        "assert main(['policy', 'lint']) == 0\n"
        "assert main(['policy', 'prove']) == 2\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert "pip install 'xinyi-gateway[prove]'" in done.stderr.decode()
