"""A reload logs who gains and who loses (policy diff), and with
``refuse_benefit_removal`` refuses a version that takes benefits away without
declaring a ``change_reason``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from tests.policy_ops._kit import copy_policies, replace_once
from tests.policy_ops.conftest import Serve

V2026 = Path(__file__).parents[1] / "prove" / "versions" / "loan_2026.yaml"
REASON_LINE = next(
    line for line in V2026.read_text(encoding="utf-8").splitlines() if line.startswith("change_")
)


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return copy_policies(tmp_path / "policies")


def impacts(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "policy change impact"]


async def test_a_reload_logs_gains_and_losses(
    serve: Serve, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(policy_dir=policy_dir)
    (policy_dir / "loan.yaml").write_text(V2026.read_text(encoding="utf-8"), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="xinyi"):
        response = await served.reload()
    assert response.status == 200
    (record,) = impacts(caplog)
    assert record.scene == "loan"  # type: ignore[attr-defined]
    assert record.new_version == "2026.1"  # type: ignore[attr-defined]
    assert record.equivalent is False  # type: ignore[attr-defined]
    assert "benefit_removed:credit_loan_access" in record.losses  # type: ignore[attr-defined]
    assert record.gains == ["benefit_added:credit_loan_access"]  # type: ignore[attr-defined]
    # Kinds of change only: no example subject's facts reach the log.
    assert "enterprise.red_listed" not in str(record.__dict__)


async def test_benefit_removal_without_a_reason_is_refused(serve: Serve, policy_dir: Path) -> None:
    served = await serve(policy_dir=policy_dir, refuse_benefit_removal=True)
    old = served.gateway.policies.hash
    text = V2026.read_text(encoding="utf-8").replace(REASON_LINE + "\n", "")
    (policy_dir / "loan.yaml").write_text(text, encoding="utf-8")
    response = await served.reload()
    assert response.status == 409
    problem = await response.json()
    (reason,) = problem["reasons"]
    assert reason.startswith("loan.yaml: loan.credit_products 2026.1 takes benefits away")
    assert "benefit_removed:credit_loan_access" in reason
    assert "change_reason" in reason
    assert served.gateway.policies.hash == old

    # Declaring why lets it through.
    (policy_dir / "loan.yaml").write_text(V2026.read_text(encoding="utf-8"), encoding="utf-8")
    response = await served.reload()
    assert response.status == 200
    assert served.gateway.policies.hash != old


async def test_a_version_that_only_adds_passes_without_a_reason(
    serve: Serve, policy_dir: Path
) -> None:
    served = await serve(policy_dir=policy_dir, refuse_benefit_removal=True)
    loan = policy_dir / "loan.yaml"
    replace_once(loan, 'version: "2025.1"', 'version: "2025.2"')
    replace_once(loan, "params: {bp: 30}", "params: {bp: 35}")
    response = await served.reload()
    assert response.status == 200


async def test_without_z3_a_checked_reload_is_refused(
    serve: Serve, policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await serve(policy_dir=policy_dir, refuse_benefit_removal=True)
    for name in ("z3", "gateway.policy.impact", "gateway.policy.smt", "gateway.policy.diff"):
        monkeypatch.setitem(sys.modules, name, None)  # as if the `prove` extra were missing
    replace_once(policy_dir / "loan.yaml", 'version: "2025.1"', 'version: "2025.2"')
    response = await served.reload()
    assert response.status == 409
    (reason,) = (await response.json())["reasons"]
    assert "needs z3" in reason
