"""The per-replica facts cache behind 名单推荐: warmed in the background, and still
changed by credit events (gateway/loans/warmer.py, LoanService.warm_facts)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.credit.base import AdapterContext, CreditRecord, CreditSource, RecordStatus
from gateway.loans.models import ALL_BANKS, LoanDemand, LoanProduct
from gateway.loans.sealing import Sealer
from gateway.loans.service import LoanService
from gateway.loans.store import loan_store_for
from gateway.loans.warmer import run_facts_warmer, warm_interval
from gateway.policy.loader import PolicySet
from gateway.store.embedded import EmbeddedStore
from gateway.trust.pseudonyms import Pseudonyms
from tests.loans.test_matching import _product

TODAY = dt.date(2026, 12, 4)
NOW = int(dt.datetime(2026, 12, 4, 8, tzinfo=dt.UTC).timestamp())
SUBJECTS = [f"91210102MA0{n:07d}" for n in range(6)]


def _red(subject: str) -> CreditRecord:
    return CreditRecord(
        f"{subject}-red", "red_listed", "red_list", False, False,
        TODAY - dt.timedelta(days=10), TODAY + dt.timedelta(days=300), RecordStatus.ACTIVE,
    )  # fmt: skip


class Ledger(CreditSource):
    """Records held in memory, counting the subjects each read asks for."""

    def __init__(self, records: dict[str, list[CreditRecord]]) -> None:
        self.held = records
        self.asked: list[str] = []
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: AdapterContext) -> CreditSource:
        return cls({})

    async def records(self, kind: str, subject_id: str) -> Sequence[CreditRecord]:  # type: ignore[override]
        return (await self.records_many(kind, [subject_id]))[subject_id]  # type: ignore[arg-type]

    async def records_many(  # type: ignore[override]
        self, kind: str, subject_ids: Sequence[str]
    ) -> dict[str, Sequence[CreditRecord]]:
        self.asked.extend(subject_ids)
        self.reading.set()
        found = {s: list(self.held.get(s, [])) for s in subject_ids}
        if self.gate is not None:
            await self.gate.wait()
        return found  # type: ignore[return-value]

    async def check(self) -> None:
        return None


@pytest.fixture
async def setup(
    tmp_path: Path, shipped_policies: PolicySet
) -> AsyncIterator[tuple[LoanService, Ledger, LoanProduct, Pseudonyms]]:
    store = EmbeddedStore(tmp_path / "state.sqlite3")
    await store.open()
    ledger = Ledger({s: [_red(s)] for s in SUBJECTS[:3]})
    pseudonyms = Pseudonyms(b"p" * 32)
    sealer = Sealer(b"s" * 32)
    loans = LoanService(
        store=loan_store_for(store), audit=store, credit=ledger, pseudonyms=pseudonyms,
        sealer=sealer, tz=ZoneInfo("Asia/Shanghai"), banks=["bank-a"], facts_ttl_s=3600,
    )  # fmt: skip
    await loans.open()
    for n, subject in enumerate(SUBJECTS):
        did = f"dem_{n:04d}"
        await loans.store.put_demand(
            LoanDemand(
                id=did, platform="platform", subject_kind="enterprise",
                subject_key=pseudonyms.internal("enterprise", subject),
                sealed=sealer.seal(did, subject, None), amount=1_000_000, term_months=12,
                purpose="working_capital", region="210102", created_at=NOW - 100 + n,
                expires_at=NOW + 86_400, banks=(ALL_BANKS,),
            )
        )  # fmt: skip
    product = _product()
    yield loans, ledger, product, pseudonyms
    await store.close()


async def _ranked(loans: LoanService, product: LoanProduct, policies: PolicySet) -> list[str]:
    return [r.demand.id for r in await loans.recommend.rank_demands(product, policies, TODAY, NOW)]


async def test_the_warm_up_fills_the_cache_so_a_ranking_reads_no_records(
    setup: tuple[LoanService, Ledger, LoanProduct, Pseudonyms], shipped_policies: PolicySet
) -> None:
    loans, ledger, product, _ = setup
    assert await loans.warm_facts(shipped_policies, TODAY, NOW) == len(SUBJECTS)
    assert sorted(ledger.asked) == SUBJECTS
    ledger.asked.clear()
    assert await _ranked(loans, product, shipped_policies) == ["dem_0000", "dem_0001", "dem_0002"]
    assert ledger.asked == []
    # A second pass derives nothing that is still fresh, but renews what expires soon.
    assert await loans.warm_facts(shipped_policies, TODAY, NOW) == 0
    assert await loans.warm_facts(shipped_policies, TODAY, NOW, within_s=7200) == len(SUBJECTS)
    # Another day: every fact is derived again (facts depend on the date).
    assert await loans.warm_facts(shipped_policies, TODAY + dt.timedelta(days=1), NOW) == 6


async def test_the_warm_up_builds_the_rule_keys_the_first_ranking_reads(
    setup: tuple[LoanService, Ledger, LoanProduct, Pseudonyms], shipped_policies: PolicySet
) -> None:
    loans, ledger, product, pseudonyms = setup
    assert await loans.store.create_product(product)
    await loans.warm_facts(shipped_policies, TODAY, NOW)
    # One read set (the product's), one key per enterprise, before any request.
    keys = loans.recommend._read_keys
    assert [len(by_subject) for by_subject in keys.values()] == [len(SUBJECTS)]
    built = dict(next(iter(keys.values())))
    assert await _ranked(loans, product, shipped_policies) == ["dem_0000", "dem_0001", "dem_0002"]
    # The ranking used them as they were: none was built again.
    assert all(next(iter(keys.values()))[k] is v for k, v in built.items())
    # A credit event replaces an enterprise's facts: the next pass builds its key anew.
    ledger.held[SUBJECTS[4]] = [_red(SUBJECTS[4])]
    loans.forget(pseudonyms.internal("enterprise", SUBJECTS[4]))
    assert await loans.warm_facts(shipped_policies, TODAY, NOW) == 1
    changed = pseudonyms.internal("enterprise", SUBJECTS[4])
    assert next(iter(keys.values()))[changed] is not built[changed]
    assert await _ranked(loans, product, shipped_policies) == [
        "dem_0000", "dem_0001", "dem_0002", "dem_0004"
    ]  # fmt: skip


async def test_a_credit_event_changes_the_next_ranking_and_the_warmer_rederives(
    setup: tuple[LoanService, Ledger, LoanProduct, Pseudonyms], shipped_policies: PolicySet
) -> None:
    loans, ledger, product, pseudonyms = setup
    await loans.warm_facts(shipped_policies, TODAY, NOW)
    ledger.held[SUBJECTS[4]] = [_red(SUBJECTS[4])]
    del ledger.held[SUBJECTS[0]]
    # Without an event the cached facts answer; the event drops them on this replica.
    assert await _ranked(loans, product, shipped_policies) == ["dem_0000", "dem_0001", "dem_0002"]
    loans.forget(pseudonyms.internal("enterprise", SUBJECTS[0]))
    loans.forget(pseudonyms.internal("enterprise", SUBJECTS[4]))
    ledger.asked.clear()
    assert await loans.warm_facts(shipped_policies, TODAY, NOW) == 2
    assert sorted(ledger.asked) == [SUBJECTS[0], SUBJECTS[4]]
    assert await _ranked(loans, product, shipped_policies) == ["dem_0001", "dem_0002", "dem_0004"]


async def test_facts_read_before_a_credit_event_are_not_cached(
    setup: tuple[LoanService, Ledger, LoanProduct, Pseudonyms], shipped_policies: PolicySet
) -> None:
    loans, ledger, product, pseudonyms = setup
    ledger.gate = asyncio.Event()
    warming = asyncio.create_task(loans.warm_facts(shipped_policies, TODAY, NOW))
    await ledger.reading.wait()
    # The records were read; the event arrives before the facts are stored.
    del ledger.held[SUBJECTS[1]]
    loans.forget(pseudonyms.internal("enterprise", SUBJECTS[1]))
    ledger.gate.set()
    await warming
    ledger.gate = None
    assert await _ranked(loans, product, shipped_policies) == ["dem_0000", "dem_0002"]
    # A cleared cache (an event naming no subject) likewise keeps nothing read before it.
    ledger.gate = asyncio.Event()
    ledger.reading.clear()
    warming = asyncio.create_task(loans.warm_facts(shipped_policies, TODAY, NOW, within_s=7200))
    await ledger.reading.wait()
    loans.forget()
    ledger.gate.set()
    await warming
    assert await loans.warm_facts(shipped_policies, TODAY, NOW, within_s=0) == len(SUBJECTS)


async def test_the_background_warmer_fills_the_cache_until_cancelled(
    setup: tuple[LoanService, Ledger, LoanProduct, Pseudonyms], shipped_policies: PolicySet
) -> None:
    loans, ledger, _, _ = setup
    task = asyncio.create_task(
        run_facts_warmer(loans, lambda: shipped_policies, lambda: TODAY, lambda: NOW, 3600)
    )
    for _ in range(500):
        if len(ledger.asked) >= len(SUBJECTS) or task.done():
            break
        await asyncio.sleep(0.01)
    assert not task.done(), task.exception()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await loans.warm_facts(shipped_policies, TODAY, NOW) == 0
    assert warm_interval(3600) == 60.0
    assert warm_interval(30) == 7.5
