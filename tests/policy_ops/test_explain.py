"""``xinyi-gateway policy explain SCENE --facts FILE.json``: the rule-by-rule trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from tests.policy_ops._kit import copy_policies

AS_OF = ["--as-of", "2025-06-01"]


def explain(tmp_path: Path, scene: str, facts: str, *extra: str) -> int:
    path = tmp_path / "facts.json"
    path.write_text(facts, encoding="utf-8")
    return main(["policy", "explain", scene, "--facts", str(path), *AS_OF, *extra])


def test_a_granting_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert explain(tmp_path, "library", '{"person.credit_score": 650}') == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "as of 2025-06-01"
    assert lines[1].startswith("policy library.deposit_waiver 2025.1 (sha256:")
    assert lines[1].endswith("), scene library")
    assert lines[2] == (
        "rule score-600: grant deposit_waiver {'max_items': 12, 'max_value_cny': 100} — FIRES"
    )
    assert lines[3:] == [
        "    all → true",
        "        person.credit_score >= 600 → true (value 650)",
        "        not → true",
        "            person.dishonest_executed == True → false (no value, default False)",
        "outcome: granted; benefits: deposit_waiver "
        "{'max_items': 12, 'max_value_cny': 100}; constraints: none",
    ]


def test_missing_data_is_unknown_and_fires_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert explain(tmp_path, "transit", "{}") == 0
    out = capsys.readouterr().out
    assert "rule bike-deposit-waiver: grant deposit_waiver" in out
    assert "— does not fire" in out
    assert "FIRES" not in out
    assert "person.credit_score >= 600 → unknown (no value)" in out
    assert out.rstrip().endswith("outcome: standard; benefits: none; constraints: none")


def test_a_constraining_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = (
        '{"enterprise.serious_dishonesty_listed": true, "enterprise.red_listed": true,'
        ' "context.loan_amount": 1}'
    )
    assert explain(tmp_path, "loan", facts) == 0
    out = capsys.readouterr().out
    assert "rule red-list-credit-loan: grant credit_loan_access" in out
    assert "rule serious-dishonesty: constrain loan.restrict_credit — FIRES" in out
    assert "outcome: constrained; benefits: none; constraints: loan.restrict_credit" in out


def test_the_trace_reads_the_directory_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = copy_policies(tmp_path / "policies")
    library = directory / "library.yaml"
    library.write_text(
        library.read_text(encoding="utf-8").replace('version: "2025.1"', 'version: "9.9"'),
        encoding="utf-8",
    )
    assert explain(tmp_path, "library", "{}", "--dir", str(directory)) == 0
    assert "policy library.deposit_waiver 9.9 " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("scene", "facts", "code", "message"),
    [
        ("tourism", "{}", 1, "no policy for scene 'tourism' is in effect on 2025-06-01"),
        ("library", "{not json", 2, "cannot read facts as JSON"),
        ("library", "[650]", 2, "facts must be a JSON object"),
    ],
)
def test_refusals(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scene: str,
    facts: str,
    code: int,
    message: str,
) -> None:
    assert explain(tmp_path, scene, facts) == code
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_a_date_before_any_policy_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "facts.json"
    path.write_text("{}", encoding="utf-8")
    argv = ["policy", "explain", "library", "--facts", str(path), "--as-of", "2024-12-31"]
    assert main(argv) == 1
    assert "is in effect on 2024-12-31" in capsys.readouterr().err


def test_a_missing_facts_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "explain", "library", "--facts", str(tmp_path / "none.json")]
    assert main(argv) == 2
    assert "cannot read facts as JSON" in capsys.readouterr().err
