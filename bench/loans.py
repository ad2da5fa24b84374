"""信易贷 at scale: 100,000 enterprises with credit records and open demands,
1,000 products; times 名单推荐 for one product and matching one enterprise.

    .venv/bin/python bench/loans.py [--enterprises 100000] [--products 1000] [--rounds 5]

Everything runs in process on the embedded store (SQLite state, SQLite credit
dataset) through ``LoanService``, the code behind the HTTP handlers (the HTTP
layer adds its fixed per-request cost, measured by bench/run.py). Data are
synthetic and generated with a fixed seed into a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.credit.base import CreditRecord, RecordStatus
from adapters.credit.sqlite import SQLiteCreditSource, write_dataset
from gateway.identifiers import synthetic_uscc
from gateway.loans.matching import DemandTerms
from gateway.loans.models import ALL_BANKS, LoanDemand, LoanProduct
from gateway.loans.sealing import Sealer
from gateway.loans.service import LoanService
from gateway.loans.store import loan_store_for
from gateway.policy.loader import load_policy_dir
from gateway.resources import shipped
from gateway.settings import Partner
from gateway.store.embedded import EmbeddedStore
from gateway.trust.pseudonyms import Pseudonyms

REGIONS = ["210102", "210103", "210202", "210302", "220102"]
GRADES = ["A", "B", "M", "C"]


def _rules(i: int) -> tuple[dict[str, object], ...]:
    """Product i's rules: one template, thresholds and discounts varying by product."""
    return (
        {"id": "red", "when": {"fact": "enterprise.red_listed", "op": "==", "value": True},
         "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 5_000_000}}},
        {"id": "red-bp", "when": {"fact": "enterprise.red_listed", "op": "==", "value": True},
         "grant": {"benefit": "loan_rate_discount", "params": {"bp": 30 + (i % 5) * 10}}},
        {"id": "tax", "when": {"all": [
            {"fact": "enterprise.tax_credit_grade", "op": "in", "value": ["A", "B"]},
            {"fact": "enterprise.clean_record_years", "op": ">=", "value": 1 + i % 4}]},
         "grant": {"benefit": "credit_loan_access", "params": {"max_amount_cny": 2_000_000}}},
        {"id": "tax-bp", "when": {"fact": "enterprise.tax_credit_grade", "op": "==",
                                  "value": "A"},
         "grant": {"benefit": "loan_rate_discount", "params": {"bp": 10 + (i % 3) * 10}}},
        {"id": "listed", "when": {"fact": "enterprise.serious_dishonesty_listed", "op": "==",
                                  "value": True},
         "constrain": {"measure": "loan.restrict_credit"}},
    )  # fmt: skip


def _records(rng: random.Random, n: int, today: dt.date) -> list[CreditRecord]:
    recs = [
        CreditRecord(f"r{n}-reg", "registration", "market_registration", False, False,
                     dt.date(rng.randrange(2005, 2024), 3, 1), None, RecordStatus.ACTIVE),
        CreditRecord(f"r{n}-tax", "tax_credit_grade", "taxation", False, False,
                     today - dt.timedelta(days=200), None, RecordStatus.ACTIVE,
                     value=rng.choice(GRADES)),
    ]  # fmt: skip
    if rng.random() < 0.1:
        recs.append(
            CreditRecord(f"r{n}-red", "red_listed", "red_list", False, False,
                         today - dt.timedelta(days=100), today + dt.timedelta(days=500),
                         RecordStatus.ACTIVE)
        )  # fmt: skip
    if rng.random() < 0.03:
        recs.append(
            CreditRecord(f"r{n}-sd", "serious_dishonesty_listed", "serious_dishonesty_list",
                         True, True, today - dt.timedelta(days=50),
                         today + dt.timedelta(days=900), RecordStatus.ACTIVE)
        )  # fmt: skip
    return recs


def _product(i: int, bank: str, now: int) -> LoanProduct:
    return LoanProduct(
        id=f"p{i:04d}", version=1, bank=bank, title=f"product {i}",
        amount_min=100_000, amount_max=5_000_000 + i * 1000, term_min=6, term_max=36,
        rate_min=3.2, rate_max=4.4 + (i % 7) / 10, regions=("210000",) if i % 2 else ("220000",),
        subject_kinds=("enterprise",), valid_from=dt.date(2025, 1, 1), valid_until=None,
        legal_basis=("《加强信用信息共享应用促进中小微企业融资实施方案》",),
        rules=_rules(i), created_at=now,
    )  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enterprises", type=int, default=100_000)
    ap.add_argument("--products", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=["recommendations", "match"])
    ap.add_argument("--warmup", type=int, default=3000, help="matches before the steady state")
    args = ap.parse_args()
    rng = random.Random(20261204)
    tz = ZoneInfo("Asia/Shanghai")
    today = dt.datetime.now(tz).date()
    now = dt.datetime.now(dt.UTC)
    epoch = int(now.timestamp())
    work = Path(tempfile.mkdtemp(prefix="xinyi-loans-bench-"))
    t0 = time.perf_counter()
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < args.enterprises:
        uscc = synthetic_uscc(rng)
        if uscc not in seen:
            seen.add(uscc)
            ids.append(uscc)
    write_dataset(
        work / "credit.sqlite3",
        (("enterprise", sid, r) for n, sid in enumerate(ids) for r in _records(rng, n, today)),
    )
    policies = load_policy_dir(shipped("policies"))
    store = EmbeddedStore(work / "state.sqlite3")
    await store.open()
    credit = SQLiteCreditSource(work / "credit.sqlite3")
    pseudonyms = Pseudonyms(b"b" * 32)
    banks = [f"bank-{b:02d}" for b in range(20)]

    def service(ttl: float) -> LoanService:
        return LoanService(
            store=loan_store_for(store), audit=store, credit=credit, pseudonyms=pseudonyms,
            sealer=Sealer(b"s" * 32), tz=tz, banks=banks, facts_ttl_s=ttl,
        )  # fmt: skip

    loans = service(0)
    await loans.open()
    for i in range(args.products):
        assert await loans.store.create_product(_product(i, banks[i % len(banks)], epoch))
    sealer = Sealer(b"s" * 32)
    statements: list[tuple[str, tuple[object, ...]]] = []
    for n, sid in enumerate(ids):
        did = f"dem_{n:08d}"
        d = LoanDemand(
            id=did, platform="platform", subject_kind="enterprise",
            subject_key=pseudonyms.internal("enterprise", sid),
            sealed=sealer.seal(did, sid, None), amount=rng.randrange(200_000, 4_000_000),
            term_months=rng.choice([6, 12, 24, 36]), purpose="working_capital",
            region=rng.choice(REGIONS), created_at=epoch - rng.randrange(0, 86_400 * 5),
            expires_at=epoch + 86_400 * 60, banks=(ALL_BANKS,),
        )  # fmt: skip
        statements.append(
            ("INSERT INTO loan_demands VALUES (?, ?, ?, ?)",
             (d.id, d.created_at, d.status, d.to_json().decode()))
        )  # fmt: skip
        statements.append(
            ("INSERT INTO loan_demand_banks VALUES (?, ?, ?, ?)",
             (ALL_BANKS, d.id, d.expires_at, d.created_at))
        )  # fmt: skip
    await store.write(statements)
    print(f"data: {args.enterprises} enterprises, {args.products} products "
          f"in {time.perf_counter() - t0:.1f} s ({work})")  # fmt: skip

    product = await loans.store.get_product("p0001")
    assert product is not None
    bank = Partner(id=product.bank, kind="bank", scenes=["loan"],
                   purposes=["credit_loan_assessment"])  # fmt: skip

    async def page(svc: LoanService) -> tuple[float, float, int]:
        t, c = time.perf_counter(), time.process_time()
        body = await svc.recommend.recommendations(
            bank, product, policies, today, dt.datetime.now(dt.UTC), limit=20, cursor=None
        )
        return time.perf_counter() - t, time.process_time() - c, body["remaining"]

    def show(label: str, wall: list[float], cpu: list[float]) -> None:
        print(f"  {label}: wall median {statistics.median(wall):.3f} s (min {min(wall):.3f}),"
              f" CPU median {statistics.median(cpu):.3f} s")  # fmt: skip

    cold, cold_cpu, warm, warm_cpu = [], [], [], []
    listed = 0
    rounds = 0 if args.only == "match" else args.rounds
    for _ in range(rounds):
        fresh = service(3600)  # empty facts cache: every credit record read from SQLite
        elapsed, cpu, listed = await page(fresh)
        cold.append(elapsed)
        cold_cpu.append(cpu)
        elapsed, cpu, _ = await page(fresh)
        warm.append(elapsed)
        warm_cpu.append(cpu)
    # What a replica does: the background warm-up derives every open demand's facts, so
    # the request reads cached facts only (gateway/loans/warmer.py).
    prep, prep_cpu, warmed, warmed_cpu, wfull, wfull_cpu = [], [], [], [], [], []
    for _ in range(rounds):
        fresh = service(3600)
        t, c = time.perf_counter(), time.process_time()
        await fresh.warm_facts(policies, today, epoch)
        prep.append(time.perf_counter() - t)
        prep_cpu.append(time.process_time() - c)
        elapsed, cpu, _ = await page(fresh)
        warmed.append(elapsed)
        warmed_cpu.append(cpu)
        t, c = time.perf_counter(), time.process_time()
        await fresh.recommend.rank_demands(product, policies, today, epoch)
        wfull.append(time.perf_counter() - t)
        wfull_cpu.append(time.process_time() - c)
    full, full_cpu = [], []
    ranked = []
    for _ in range(rounds):
        fresh = service(0)
        t, c = time.perf_counter(), time.process_time()
        ranked = await fresh.recommend.rank_demands(product, policies, today, epoch)
        full.append(time.perf_counter() - t)
        full_cpu.append(time.process_time() - c)
    if rounds:
        print(f"名单推荐 p0001 over {args.enterprises} open demands: {listed} match")
        show("first page, cold (credit records read for every candidate)", cold, cold_cpu)
        show("first page, warm (record-derived facts cached)", warm, warm_cpu)
        show(f"full ranking ({len(ranked)} entries), cold", full, full_cpu)
        show("background warm-up pass (every open demand's facts)", prep, prep_cpu)
        show("first page after the warm-up", warmed, warmed_cpu)
        show("full ranking after the warm-up", wfull, wfull_cpu)
        print(f"load average: {os.getloadavg()}")

    if args.only == "recommendations":
        return
    matcher = service(0)  # no facts cache: every match fetches the credit records
    all_bank = Partner(id="platform", kind="platform")

    async def matches(count: int) -> tuple[list[float], list[float]]:
        wall, cpu = [], []
        for n in range(count):
            sid = ids[rng.randrange(len(ids))]
            terms = DemandTerms("enterprise", 1_000_000, 12, "210102")
            t, c = time.perf_counter(), time.process_time()
            await matcher.match(
                all_bank, sid, terms, policies, today, dt.datetime.now(dt.UTC),
                purpose="loan_matching", consent_id=None, staff_id=None, demand_id=f"d{n}",
            )  # fmt: skip
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        wall.sort()
        return wall, cpu

    def report(label: str, wall: list[float], cpu: list[float]) -> None:
        print(f"  {label}: wall median {statistics.median(wall) * 1000:.2f} ms, "
              f"p90 {wall[int(len(wall) * 0.9)] * 1000:.2f} ms, "
              f"CPU median {statistics.median(cpu) * 1000:.2f} ms")  # fmt: skip

    print(f"match one enterprise against {args.products} products (credit fetch included):")
    # The first requests compile every product and fill each product's outcome memo
    # (one entry per combination of the facts it reads); later ones mostly hit it.
    report("first 500 matches (products compiled, memos filling)", *await matches(500))
    await matches(args.warmup)
    report(f"500 matches after {args.warmup} more (steady state)", *await matches(500))
    print(f"load average during the run: {os.getloadavg()}")
    await store.close()
    await credit.close()


if __name__ == "__main__":
    asyncio.run(main())
