"""Operator tools and demo data of the loan workflow."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import orjson
import pytest
import yaml

from gateway.cli import main
from gateway.demo import prepare_demo
from gateway.ids import ordered_id
from gateway.loans.demo import seed_loans
from gateway.loans.models import ALL_BANKS, LoanDemand
from tests.conftest import Demo


async def test_demo_loans_are_seeded_and_recommended(demo: Demo, tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path / "again", dt.date.today())
    # The demo gateway's own subjects: the same fixed seed gives the same enterprises.
    demo_json = tmp_path / "demo.json"
    demo_json.write_bytes(orjson.dumps(demo.data))
    await seed_loans(demo.gateway, setup, demo_json)
    loans = orjson.loads(demo_json.read_bytes())["loans"]
    assert loans["products"] == ["demo-bank.quick", "demo-bank-2.general"]
    r = await demo.client.get(
        "/v1/loan-products/demo-bank.quick/recommendations", headers=demo.auth("demo-bank")
    )
    listed = {e["demand_id"] for e in (await r.json())["recommendations"]}
    assert listed == {d["demand_id"] for d in loans["demands"]}


async def test_loans_overdue_lists_unanswered_pairs_past_their_deadline(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = demo.gateway
    now = int(gw.now().timestamp())
    old = LoanDemand(
        id=ordered_id("dem_"), platform="demo-platform", subject_kind="enterprise",
        subject_key="k", sealed="s", amount=1_000_000, term_months=12, purpose="working_capital",
        region="210102", created_at=now - 40 * 86_400, expires_at=now + 86_400,
        banks=(ALL_BANKS,),
    )  # fmt: skip
    fresh = LoanDemand(
        id=ordered_id("dem_"), platform="demo-platform", subject_kind="enterprise",
        subject_key="k", sealed="s", amount=1_000_000, term_months=12, purpose="working_capital",
        region="210102", created_at=now, expires_at=now + 86_400, banks=("demo-bank",),
    )  # fmt: skip
    await gw.loans.store.put_demand(old)
    await gw.loans.store.put_demand(fresh)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(gw.settings.state_dir),
                "partners_file": str(gw.settings.partners_file),
            }
        )
    )
    # The command runs its own event loop, as it does from a shell.
    argv = ["loans", "overdue", "--config", str(config), "--json"]
    assert await asyncio.to_thread(main, argv) == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert {(r["demand_id"], r["bank"]) for r in rows} == {
        (old.id, "demo-bank"),
        (old.id, "demo-bank-2"),
    }
