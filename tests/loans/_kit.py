"""Bodies the loan tests send."""

from __future__ import annotations

import datetime as dt
from typing import Any

LEGAL = ["《加强信用信息共享应用促进中小微企业融资实施方案》（国办发〔2021〕52号）"]

RED_LIST = {"fact": "enterprise.red_listed", "op": "==", "value": True}
TAX_A = {"fact": "enterprise.tax_credit_grade", "op": "==", "value": "A"}
LISTED = {"fact": "enterprise.serious_dishonesty_listed", "op": "==", "value": True}


def product(pid: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": pid,
        "title": "信易贷·快贷",
        "amount": {"min": 100_000, "max": 5_000_000},
        "term_months": {"min": 6, "max": 36},
        "annual_rate": {"min": 3.45, "max": 4.35},
        "regions": ["210000"],
        "subject_kinds": ["enterprise"],
        "valid_from": "2025-01-01",
        "legal_basis": LEGAL,
        "rules": [
            {
                "id": "red-list",
                "when": RED_LIST,
                "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 5_000_000}},
                "legal_basis": ["《辽宁省“十四五”社会信用体系建设规划》"],
            },
            {
                "id": "red-list-discount",
                "when": RED_LIST,
                "grant": {"benefit": "loan_rate_discount", "params": {"bp": 50}},
            },
            {
                "id": "tax-a",
                "when": TAX_A,
                "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 2_000_000}},
            },
            {
                "id": "tax-a-discount",
                "when": TAX_A,
                "grant": {"benefit": "loan_rate_discount", "params": {"bp": 30}},
            },
            {
                "id": "serious-dishonesty",
                "when": LISTED,
                "constrain": {"measure": "loan.restrict_credit"},
            },
        ],
    }
    return body | changes


def demand(
    subject: dict[str, Any],
    banks: list[str],
    *,
    disclose: list[str] | None = None,
    amount: int = 1_500_000,
    days: int = 60,
) -> dict[str, Any]:
    return {
        "subject": {"kind": "enterprise", "id": subject["id"]},
        "name": subject["label"],
        "amount": amount,
        "term_months": 12,
        "purpose": "working_capital",
        "region": "210102",
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(),
        "authorised_banks": banks,
        "disclose_to": disclose or [],
    }
