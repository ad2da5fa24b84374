"""The loan store contract, on every backend (embedded, Redis, Redis Cluster)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gateway.ids import ordered_id
from gateway.loans.models import ALL_BANKS, LoanDemand, LoanProduct, LoanResponse
from gateway.loans.store import LoanStore, loan_store_for
from gateway.store.base import Store

NOW = 1_780_000_000


@pytest.fixture
async def loans(store: Store) -> LoanStore:
    ls = loan_store_for(store)
    await ls.open()
    return ls


def _product(pid: str = "bank-a.quick", bank: str = "bank-a", version: int = 1) -> LoanProduct:
    return LoanProduct(
        id=pid,
        version=version,
        bank=bank,
        title=f"{pid} v{version}",
        amount_min=100_000,
        amount_max=3_000_000,
        term_min=6,
        term_max=36,
        rate_min=3.2,
        rate_max=4.5,
        regions=("210000",),
        subject_kinds=("enterprise",),
        valid_from=dt.date(2026, 1, 1),
        valid_until=None,
        legal_basis=("《加强信用信息共享应用促进中小微企业融资实施方案》",),
        rules=({"id": "r1", "when": {"fact": "enterprise.red_listed", "op": "==", "value": True},
                "grant": {"benefit": "credit_loan_access"}},),
        created_at=NOW,
    )  # fmt: skip


def _demand(
    banks: tuple[str, ...] = (ALL_BANKS,), created: int = NOW, expires: int = NOW + 86_400
) -> LoanDemand:
    return LoanDemand(
        id=ordered_id("dem_"),
        platform="platform-a",
        subject_kind="enterprise",
        subject_key="key-" + ordered_id(),
        sealed="sealed",
        amount=1_000_000,
        term_months=12,
        purpose="working_capital",
        region="210100",
        created_at=created,
        expires_at=expires,
        banks=banks,
    )


async def test_a_product_id_is_created_once(loans: LoanStore) -> None:
    assert await loans.create_product(_product())
    assert not await loans.create_product(_product(bank="bank-b"))
    head = await loans.get_product("bank-a.quick")
    assert head is not None
    assert head.bank == "bank-a"
    assert await loans.get_product("nope") is None


async def test_versions_stay_readable_and_the_head_moves_by_compare_and_set(
    loans: LoanStore,
) -> None:
    await loans.create_product(_product())
    assert await loans.save_product(_product(version=2), expected_version=1)
    # A writer that read version 1 loses: the head is at 2 now.
    assert not await loans.save_product(_product(version=2), expected_version=1)
    head = await loans.get_product("bank-a.quick")
    first = await loans.get_product("bank-a.quick", 1)
    assert head is not None
    assert first is not None
    assert (head.version, head.title) == (2, "bank-a.quick v2")
    assert first.title == "bank-a.quick v1"
    withdrawn = _product(version=2).withdrawn(NOW + 5)
    assert await loans.save_product(withdrawn, expected_version=2)
    head = await loans.get_product("bank-a.quick")
    assert head is not None
    assert (head.status, head.withdrawn_at) == ("withdrawn", NOW + 5)


async def test_concurrent_new_versions_only_one_wins(loans: LoanStore) -> None:
    await loans.create_product(_product())
    results = await asyncio.gather(
        *(loans.save_product(_product(version=2), expected_version=1) for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]


async def test_products_are_listed_by_id_and_bank(loans: LoanStore) -> None:
    for pid, bank in (("b.two", "bank-b"), ("a.one", "bank-a"), ("a.two", "bank-a")):
        await loans.create_product(_product(pid, bank))
    assert [p.id for p in await loans.list_products()] == ["a.one", "a.two", "b.two"]
    assert [p.id for p in await loans.list_products("bank-a")] == ["a.one", "a.two"]
    assert await loans.list_products("bank-c") == []


async def test_open_demands_follow_authorisation_expiry_and_closing(loans: LoanStore) -> None:
    everyone = _demand()
    named = _demand(("bank-a",))
    other = _demand(("bank-b",))
    expired = _demand(expires=NOW - 1)
    both = _demand(("bank-a", ALL_BANKS))
    for d in (everyone, named, other, expired, both):
        await loans.put_demand(d)
    ids = {d.id for d in await loans.open_demands("bank-a", NOW)}
    assert ids == {everyone.id, named.id, both.id}
    assert {d.id for d in await loans.open_demands("bank-b", NOW)} == {
        everyone.id,
        other.id,
        both.id,
    }
    closed = await loans.close_demand(named.id, NOW + 1)
    assert closed is not None
    assert (closed.status, closed.closed_at) == ("closed", NOW + 1)
    assert named.id not in {d.id for d in await loans.open_demands("bank-a", NOW)}
    again = await loans.close_demand(named.id, NOW + 9)
    assert again is not None
    assert again.closed_at == NOW + 1
    assert await loans.close_demand("dem_missing", NOW) is None
    got = await loans.get_demand(everyone.id)
    assert got == everyone


async def test_demands_created_in_a_window(loans: LoanStore) -> None:
    early = _demand(("bank-a",), created=NOW - 100)
    inside = _demand(("bank-a",), created=NOW)
    everyone = _demand(created=NOW + 10)
    elsewhere = _demand(("bank-b",), created=NOW + 20)
    late = _demand(("bank-a",), created=NOW + 1000)
    for d in (early, inside, everyone, elsewhere, late):
        await loans.put_demand(d)
    window = await loans.demands_created(NOW, NOW + 1000, "bank-a")
    assert {d.id for d in window} == {inside.id, everyone.id}
    assert {d.id for d in await loans.demands_created(NOW, NOW + 1000)} == {
        inside.id,
        everyone.id,
        elsewhere.id,
    }


async def test_responses_append_in_order_and_only_to_open_demands(loans: LoanStore) -> None:
    demand = _demand()
    await loans.put_demand(demand)

    def response(status: str, at: int) -> LoanResponse:
        return LoanResponse(ordered_id("rsp_"), demand.id, "bank-a", status, at)  # type: ignore[arg-type]

    assert await loans.add_response(response("accepted", NOW + 1))
    assert await loans.add_response(
        LoanResponse(
            ordered_id("rsp_"), demand.id, "bank-a", "granted", NOW + 2,
            amount=800_000, rate=3.6, term_months=12,
        )
    )  # fmt: skip
    missing = LoanResponse(ordered_id("rsp_"), "dem_missing", "bank-a", "accepted", NOW)
    assert not await loans.add_response(missing)
    await loans.close_demand(demand.id, NOW + 3)
    assert not await loans.add_response(response("withdrawn", NOW + 4))
    found = await loans.responses([demand.id, "dem_missing"])
    assert [r.status for r in found[demand.id]] == ["accepted", "granted"]
    assert found[demand.id][1].amount == 800_000
    assert found["dem_missing"] == []
