"""Demo 信易贷 data: a product from each demo bank and two open demands.

Seeded by ``serve --demo`` after the consents, through the same service the
HTTP API uses (so the guard checks the demo products too), and listed in
demo.json under ``loans``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gateway.loans.bodies import DemandBody, ProductBody

if TYPE_CHECKING:
    from gateway.demo import DemoSetup
    from gateway.runtime import Gateway

__all__ = ["DEMO_PRODUCTS", "seed_loans"]

_LEGAL = ["《加强信用信息共享应用促进中小微企业融资实施方案》（国办发〔2021〕52号）"]
_RED = {"fact": "enterprise.red_listed", "op": "==", "value": True}
_TAX_A = {"fact": "enterprise.tax_credit_grade", "op": "==", "value": "A"}
_LISTED = {"fact": "enterprise.serious_dishonesty_listed", "op": "==", "value": True}

DEMO_PRODUCTS: dict[str, dict[str, Any]] = {
    "demo-bank": {
        "id": "demo-bank.quick",
        "title": "信易贷·快贷（纯信用）",
        "amount": {"min": 100_000, "max": 5_000_000},
        "term_months": {"min": 6, "max": 36},
        "annual_rate": {"min": 3.45, "max": 4.35},
        "regions": ["210000"],
        "valid_from": "2025-01-01",
        "legal_basis": _LEGAL,
        "rules": [
            {"id": "red-list", "when": _RED,
             "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 5_000_000}}},
            {"id": "red-list-discount", "when": _RED,
             "grant": {"benefit": "loan_rate_discount", "params": {"bp": 50}}},
            {"id": "tax-a", "when": _TAX_A,
             "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 2_000_000}}},
            {"id": "tax-a-discount", "when": _TAX_A,
             "grant": {"benefit": "loan_rate_discount", "params": {"bp": 30}}},
            {"id": "serious-dishonesty", "when": _LISTED,
             "constrain": {"measure": "loan.restrict_credit"}},
        ],
    },
    "demo-bank-2": {
        "id": "demo-bank-2.general",
        "title": "普惠经营贷",
        "amount": {"min": 50_000, "max": 3_000_000},
        "term_months": {"min": 3, "max": 24},
        "annual_rate": {"min": 3.6, "max": 4.8},
        "regions": ["210100", "210200"],
        "valid_from": "2025-01-01",
        "legal_basis": _LEGAL,
        "rules": [
            {"id": "tax-a-discount", "when": _TAX_A,
             "grant": {"benefit": "loan_rate_discount", "params": {"bp": 20}}},
            {"id": "serious-dishonesty", "when": _LISTED,
             "constrain": {"measure": "loan.restrict_credit"}},
        ],
    },
}  # fmt: skip


async def seed_loans(gw: Gateway, setup: DemoSetup, demo_json: Path) -> None:
    now = gw.now()
    epoch = int(now.timestamp())
    products = []
    for bank_id, data in DEMO_PRODUCTS.items():
        bank = gw.partners.by_id[bank_id]
        if await gw.loans.store.get_product(data["id"]) is None:
            await gw.loans.publish(bank, ProductBody.model_validate(data), gw.policies, epoch)
        products.append(data["id"])
    platform = gw.partners.by_id["demo-platform"]
    enterprises = [s for s in setup.subjects if s.kind == "enterprise"]
    demands = []
    for subject, banks, disclose in (
        (enterprises[0], ["demo-bank"], []),
        (enterprises[1], ["*"], ["demo-bank"]),
    ):
        body = DemandBody.model_validate(
            {
                "subject": {"kind": "enterprise", "id": subject.id},
                "name": subject.label,
                "amount": 1_500_000,
                "term_months": 12,
                "purpose": "working_capital",
                "region": "210102",
                "expires_at": (now + dt.timedelta(days=60)).isoformat(),
                "authorised_banks": banks,
                "disclose_to": disclose,
            }
        )
        demand = await gw.loans.create_demand(platform, body, subject.id, now)
        demands.append({"demand_id": demand.id, "subject": subject.label, "banks": banks})
    _record(demo_json, {"products": products, "demands": demands})


def _record(demo_json: Path, loans: dict[str, Any]) -> None:
    data = orjson.loads(demo_json.read_bytes())
    data["loans"] = loans
    demo_json.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
