"""The loan workflow's keys in Redis and Redis Cluster.

Layout (``P`` is the store's key prefix):

    P:lp:{id}           product hash: v (head version), head (its JSON), <n> (version n)
    P:lp:index          every product id (SET)
    P:ld:{id}           demand hash: body (JSON), status, closed_at
    P:lr:{id}           the demand's responses (LIST of JSON), same slot as the demand
    P:ldx:{bank}        demands authorising a bank, or {*} all banks (ZSET by expiry)
    P:ldc:{bank}        the same demands by creation time; P:ldc:{#all} every demand

A product's and a demand's own keys share a hash tag, so the compare-and-set
and respond-if-open steps run as functions of the ``xinyi_loans`` library in
one slot. Index entries are written after the item and tolerated when they
name an item that is gone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.loans.models import ALL_BANKS, LoanDemand, LoanProduct, LoanResponse
from gateway.loans.store import LoanStore
from gateway.store.redis.core import RedisStore

__all__ = ["RedisLoanStore"]

_ALL = "#all"


class RedisLoanStore(LoanStore):
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._index = f"{store.prefix}:lp:index"

    async def open(self) -> None:
        # The loans library (loans.lua) is one of the store's FUNCTION_LIBRARIES.
        return None

    async def _fcall(self, name: str, keys: list[str], args: list[Any]) -> Any:
        # The store reloads every library when Redis has lost them.
        return await self._store.fcall(name, keys, args)

    def _by_bank(self, kind: str, bank: str) -> str:
        return f"{self._store.prefix}:{kind}:{{{bank}}}"

    # -- products ----------------------------------------------------------------------
    async def create_product(self, product: LoanProduct) -> bool:
        done = await self._fcall(
            "xinyi_loans_product_create",
            [self._store.key("lp", product.id)],
            [product.version, product.to_json()],
        )
        if done:
            await self._store.run("SADD", self._index, product.id)
        return bool(done)

    async def save_product(self, product: LoanProduct, expected_version: int) -> bool:
        done = await self._fcall(
            "xinyi_loans_product_save",
            [self._store.key("lp", product.id)],
            [expected_version, product.version, product.to_json()],
        )
        return bool(done)

    async def get_product(self, product_id: str, version: int | None = None) -> LoanProduct | None:
        field = "head" if version is None else str(version)
        raw = await self._store.run("HGET", self._store.key("lp", product_id), field)
        return LoanProduct.from_json(raw) if raw else None

    async def list_products(self, bank: str | None = None) -> list[LoanProduct]:
        ids = sorted(m.decode() for m in await self._store.run("SMEMBERS", self._index))
        raws = await asyncio.gather(
            *(self._store.run("HGET", self._store.key("lp", i), "head") for i in ids)
        )
        products = [LoanProduct.from_json(raw) for raw in raws if raw]
        return [p for p in products if bank is None or p.bank == bank]

    # -- demands -------------------------------------------------------------------------
    async def put_demand(self, demand: LoanDemand) -> None:
        await self._store.run(
            "HSET",
            self._store.key("ld", demand.id),
            "body",
            demand.to_json(),
            "status",
            demand.status,
        )
        writes = []
        for bank in dict.fromkeys(demand.banks):
            writes.append(
                self._store.run("ZADD", self._by_bank("ldx", bank), demand.expires_at, demand.id)
            )
            writes.append(
                self._store.run("ZADD", self._by_bank("ldc", bank), demand.created_at, demand.id)
            )
        writes.append(
            self._store.run("ZADD", self._by_bank("ldc", _ALL), demand.created_at, demand.id)
        )
        await asyncio.gather(*writes)

    @staticmethod
    def _demand(fields: list[Any]) -> LoanDemand | None:
        body, status, closed_at = fields
        if not body:
            return None
        demand = LoanDemand.from_json(body)
        if status == b"closed" and demand.status == "open":
            demand = demand.closed(int(closed_at))
        return demand

    async def _demands(self, ids: list[str]) -> list[LoanDemand]:
        rows = await asyncio.gather(
            *(
                self._store.run("HMGET", self._store.key("ld", i), "body", "status", "closed_at")
                for i in ids
            )
        )
        return [d for row in rows if (d := self._demand(row)) is not None]

    async def get_demand(self, demand_id: str) -> LoanDemand | None:
        found = await self._demands([demand_id])
        return found[0] if found else None

    async def close_demand(self, demand_id: str, at: int) -> LoanDemand | None:
        status = await self._fcall(
            "xinyi_loans_demand_close", [self._store.key("ld", demand_id)], [at]
        )
        if status is None:
            return None
        return await self.get_demand(demand_id)

    async def open_demands(self, bank: str, now: int) -> list[LoanDemand]:
        named, everyone = await asyncio.gather(
            self._store.run("ZRANGEBYSCORE", self._by_bank("ldx", bank), f"({now}", "+inf"),
            self._store.run("ZRANGEBYSCORE", self._by_bank("ldx", ALL_BANKS), f"({now}", "+inf"),
        )
        ids = list(dict.fromkeys(m.decode() for m in (*named, *everyone)))
        return [d for d in await self._demands(ids) if d.status == "open"]

    async def demands_created(
        self, since: int, until: int, bank: str | None = None
    ) -> list[LoanDemand]:
        indexes = [_ALL] if bank is None else [bank, ALL_BANKS]
        found = await asyncio.gather(
            *(
                self._store.run("ZRANGEBYSCORE", self._by_bank("ldc", i), since, f"({until}")
                for i in indexes
            )
        )
        ids = sorted({m.decode() for members in found for m in members})
        return await self._demands(ids)

    # -- responses -----------------------------------------------------------------------
    async def add_response(self, response: LoanResponse) -> bool:
        done = await self._fcall(
            "xinyi_loans_respond",
            [self._store.key("ld", response.demand_id), self._store.key("lr", response.demand_id)],
            [response.to_json()],
        )
        return bool(done)

    async def responses(self, demand_ids: list[str]) -> dict[str, list[LoanResponse]]:
        lists = await asyncio.gather(
            *(self._store.run("LRANGE", self._store.key("lr", d), 0, -1) for d in demand_ids)
        )
        return {
            d: [LoanResponse.from_json(raw) for raw in raws]
            for d, raws in zip(demand_ids, lists, strict=True)
        }
