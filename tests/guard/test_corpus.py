"""The guard against a corpus of unlawful and lawful policy cases (tests/guard/corpus).

Each unlawful case must be refused with exactly its expected POLICY.md codes
(taint refusals print the path from the rule's fact down to the offending base
fact, joined by " ← "); each lawful case must be accepted, its own policy tests
passing. ``xinyi-gateway policy lint`` must agree with the loader.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main as cli_main
from gateway.policy.loader import PolicyLoadError, load_policy_dir
from tests.guard._corpus import TAINT_CODES, build_dir, case_paths, load_case

UNLAWFUL = case_paths("unlawful")
LAWFUL = case_paths("lawful")

# Every refusal code of POLICY.md's table, and the additions in docs/policies.md.
POLICY_CODES = frozenset(
    {
        "personal_score_to_constraint",
        "constraint_needs_effective_document",
        "constraint_in_basic_public_service",
        "prohibited_domain",
        "unknown_measure",
        "missing_legal_basis",
        "benefit_param_out_of_range",
        "unknown_fact",
        "unknown_derivation",
        "type_mismatch",
        "unreachable_rule",
        "overlapping_versions",
        "policy_test_failed",
        "invalid_policy",
        "measure_document_mismatch",
        "unknown_behaviour",
    }
)


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_corpus_is_large_enough_and_covers_every_code() -> None:
    assert len(UNLAWFUL) >= 30
    assert len(LAWFUL) >= 10
    covered = set()
    for path in UNLAWFUL:
        case = load_case(path)
        expected = case.get("expect_codes")
        assert expected, f"{path.name}: an unlawful case names the codes it expects"
        assert set(expected) <= POLICY_CODES, f"{path.name}: {expected}"
        covered.update(expected)
    assert covered == POLICY_CODES
    for path in LAWFUL:
        assert "expect_codes" not in load_case(path), f"{path.name}: lawful cases expect no code"


@pytest.mark.parametrize("path", UNLAWFUL, ids=_ids(UNLAWFUL))
def test_unlawful_case_is_refused(path: Path, tmp_path: Path) -> None:
    case = load_case(path)
    directory = build_dir(case, tmp_path / "policies")
    with pytest.raises(PolicyLoadError) as refused:
        load_policy_dir(directory)
    problems = refused.value.problems
    assert not refused.value.unreadable, problems
    got = {p.code for p in problems}
    assert got == set(case["expect_codes"]), "\n".join(map(str, problems))

    # Taint refusals show the path to the offending fact; a constraint that can fire
    # with no document behind it (same code) says so instead, checked by expect_messages.
    shown = [
        p.message
        for p in problems
        if p.code in TAINT_CODES and p.message.startswith("constrain reads")
    ]
    if shown:
        want = case.get("expect_path")
        assert want, f"{path.name}: a taint case names the path its message must show"
        assert any(f"constrain reads {want} (" in m for m in shown), shown
        if len(want.split(" ← ")) > 1:
            assert all(" ← " in m for m in shown if want.split(" ← ")[0] in m)
    for text in case.get("expect_messages", []):
        assert any(text in p.message or text in p.rule for p in problems), (text, problems)


@pytest.mark.parametrize("path", LAWFUL, ids=_ids(LAWFUL))
def test_lawful_case_is_accepted(path: Path, tmp_path: Path) -> None:
    case = load_case(path)
    directory = build_dir(case, tmp_path / "policies")
    try:
        policies = load_policy_dir(directory)
    except PolicyLoadError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{path.name} refused:\n{exc}")
    scenes = {p["scene"] for p in case["policies"]}
    assert scenes <= set(policies.by_scene)
    tested = sum(len(c.policy.tests) for ps in policies.by_scene.values() for c in ps)
    assert tested >= 1, f"{path.name}: a lawful case carries policy tests"
    for want in case.get("expect_active", []):
        active = policies.active(want["scene"], want["day"])
        got: Any = active.policy.version if active else None
        assert got == want["version"], (want, got)


@pytest.mark.parametrize(
    ("path", "status"),
    [(p, 1) for p in UNLAWFUL[::5]] + [(p, 0) for p in LAWFUL],
    ids=[f"unlawful-{p.stem}" for p in UNLAWFUL[::5]] + [f"lawful-{p.stem}" for p in LAWFUL],
)
def test_lint_agrees_with_the_loader(
    path: Path, status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = load_case(path)
    directory = build_dir(case, tmp_path / "policies")
    assert cli_main(["policy", "lint", "--dir", str(directory)]) == status
    out = capsys.readouterr().out
    for code in case.get("expect_codes", []):
        assert f": {code}: " in out, out


def test_lint_prints_the_taint_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = next(p for p in UNLAWFUL if p.stem == "u08_score_three_derived_levels_enterprise")
    directory = build_dir(load_case(path), tmp_path / "policies")
    assert cli_main(["policy", "lint", "--dir", str(directory)]) == 1
    line = next(
        ln for ln in capsys.readouterr().out.splitlines() if "personal_score_to_constraint" in ln
    )
    assert line.startswith("policy_0.yaml:risk-index-restricts: personal_score_to_constraint: ")
    assert "enterprise.risk_index ← enterprise.owner_risk ← " in line


def test_a_new_scene_is_data(tmp_path: Path) -> None:
    """信易游 from the lawful corpus: its own benefit, merged to the best of each parameter."""
    path = next(p for p in LAWFUL if p.stem == "l07_new_scene_tourism")
    policies = load_policy_dir(build_dir(load_case(path), tmp_path / "policies"))
    assert policies.active("tourism", dt.date(2025, 4, 30)) is None
    active = policies.active("tourism", dt.date(2025, 8, 1))
    assert active is not None
    result = active.evaluate({"person.credit_score": 700, "person.clean_record_years": 6})
    assert result.outcome == "granted"
    assert result.benefits == [("scenic_ticket_discount", {"discount_pct": 50, "max_visits": 4})]
    assert [r.rule for r in result.reasons] == ["good-score", "long-clean-record"]
