"""The loan workflow's tables in the embedded store's SQLite file.

Writes run on the embedded store's single writer thread, each in one
transaction; reads use its reader connection on the loop. Demands keep the
columns a recommendation filters by beside their JSON, so the query for "open
demands authorising this bank" is answered by indexes.
"""

from __future__ import annotations

import sqlite3

from gateway.loans.models import ALL_BANKS, LoanDemand, LoanProduct, LoanResponse
from gateway.loans.store import LoanStore
from gateway.store.embedded.core import EmbeddedStore

__all__ = ["EmbeddedLoanStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loan_products (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE IF NOT EXISTS loan_product_heads (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    bank TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loan_product_heads_by_bank ON loan_product_heads (bank, id);
-- Bumped by every product write, in the same transaction: a reader whose list
-- was built at this generation knows nothing changed since.
CREATE TABLE IF NOT EXISTS loan_product_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO loan_product_generation VALUES (1, 0);
CREATE TABLE IF NOT EXISTS loan_demands (
    id TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loan_demands_by_created ON loan_demands (created);
CREATE TABLE IF NOT EXISTS loan_demand_banks (
    bank TEXT NOT NULL,
    demand_id TEXT NOT NULL,
    expires INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (bank, demand_id)
);
CREATE INDEX IF NOT EXISTS loan_demand_banks_by_expiry ON loan_demand_banks (bank, expires);
CREATE TABLE IF NOT EXISTS loan_responses (
    seq INTEGER PRIMARY KEY,
    demand_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loan_responses_by_demand ON loan_responses (demand_id, seq);
"""


class EmbeddedLoanStore(LoanStore):
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self._heads: dict[tuple[str, int, str], LoanProduct] = {}
        self._open: dict[str, LoanDemand] = {}
        self._lists: dict[str | None, tuple[int, tuple[LoanProduct, ...]]] = {}

    async def open(self) -> None:
        await self._store.ensure_schema(_SCHEMA)

    # -- products ----------------------------------------------------------------------
    async def create_product(self, product: LoanProduct) -> bool:
        body = product.to_json().decode()

        def create(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO loan_product_heads VALUES (?, ?, ?, ?, ?)",
                (product.id, product.version, product.bank, product.status, body),
            )
            if cur.rowcount != 1:
                return False
            conn.execute(
                "INSERT INTO loan_products VALUES (?, ?, ?)", (product.id, product.version, body)
            )
            conn.execute("UPDATE loan_product_generation SET generation = generation + 1")
            return True

        created: bool = await self._store.in_writer(create)
        return created

    async def save_product(self, product: LoanProduct, expected_version: int) -> bool:
        body = product.to_json().decode()

        def save(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE loan_product_heads SET version = ?, status = ?, body = ?"
                " WHERE id = ? AND version = ?",
                (product.version, product.status, body, product.id, expected_version),
            )
            if cur.rowcount != 1:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO loan_products VALUES (?, ?, ?)",
                (product.id, product.version, body),
            )
            conn.execute("UPDATE loan_product_generation SET generation = generation + 1")
            return True

        saved: bool = await self._store.in_writer(save)
        return saved

    async def get_product(self, product_id: str, version: int | None = None) -> LoanProduct | None:
        if version is None:
            row = self._store.reader.execute(
                "SELECT body FROM loan_product_heads WHERE id = ?", (product_id,)
            ).fetchone()
        else:
            row = self._store.reader.execute(
                "SELECT body FROM loan_products WHERE id = ? AND version = ?",
                (product_id, version),
            ).fetchone()
        return LoanProduct.from_json(row[0]) if row else None

    async def list_products(self, bank: str | None = None) -> list[LoanProduct]:
        # A match lists every product: while the generation stands, the last list
        # for this bank (or all banks) is still exact; otherwise (id, version,
        # status) names a head's content, so only heads not seen before are parsed.
        reader = self._store.reader
        (generation,) = reader.execute(
            "SELECT generation FROM loan_product_generation WHERE id = 1"
        ).fetchone()
        listed = self._lists.get(bank)
        if listed is not None and listed[0] == generation:
            return list(listed[1])
        if bank is None:
            rows = reader.execute(
                "SELECT id, version, status FROM loan_product_heads ORDER BY id"
            ).fetchall()
        else:
            rows = reader.execute(
                "SELECT id, version, status FROM loan_product_heads WHERE bank = ? ORDER BY id",
                (bank,),
            ).fetchall()
        out = []
        for row in rows:
            key = (row[0], row[1], row[2])
            product = self._heads.get(key)
            if product is None:
                found = await self.get_product(row[0])
                if found is None or (found.version, found.status) != (row[1], row[2]):
                    continue  # changed between the two reads; the next list shows it
                product = found
                if len(self._heads) > 50_000:
                    self._heads.clear()
                self._heads[key] = product
            out.append(product)
        if len(self._lists) > 1_000:
            self._lists.clear()
        self._lists[bank] = (generation, tuple(out))
        return out

    # -- demands -------------------------------------------------------------------------
    async def put_demand(self, demand: LoanDemand) -> None:
        statements: list[tuple[str, tuple[object, ...]]] = [
            (
                "INSERT INTO loan_demands VALUES (?, ?, ?, ?)",
                (demand.id, demand.created_at, demand.status, demand.to_json().decode()),
            )
        ]
        statements += [
            (
                "INSERT INTO loan_demand_banks VALUES (?, ?, ?, ?)",
                (bank, demand.id, demand.expires_at, demand.created_at),
            )
            for bank in dict.fromkeys(demand.banks)
        ]
        await self._store.write(statements)

    async def get_demand(self, demand_id: str) -> LoanDemand | None:
        row = self._store.reader.execute(
            "SELECT body FROM loan_demands WHERE id = ?", (demand_id,)
        ).fetchone()
        return LoanDemand.from_json(row[0]) if row else None

    async def close_demand(self, demand_id: str, at: int) -> LoanDemand | None:
        def close(conn: sqlite3.Connection) -> LoanDemand | None:
            row = conn.execute(
                "SELECT body FROM loan_demands WHERE id = ?", (demand_id,)
            ).fetchone()
            if row is None:
                return None
            demand = LoanDemand.from_json(row[0])
            if demand.status != "open":
                return demand
            demand = demand.closed(at)
            conn.execute(
                "UPDATE loan_demands SET status = ?, body = ? WHERE id = ?",
                (demand.status, demand.to_json().decode(), demand_id),
            )
            return demand

        closed: LoanDemand | None = await self._store.in_writer(close)
        return closed

    async def open_demands(self, bank: str, now: int) -> list[LoanDemand]:
        # A 名单推荐 asks for up to 100,000 open demands. A demand's content never
        # changes while it is open (closing changes its status, which the query
        # checks), so each is read and parsed once; later calls read ids only.
        reader = self._store.reader
        ids = [
            row[0]
            for row in reader.execute(
                "SELECT DISTINCT b.demand_id FROM loan_demand_banks b"
                " JOIN loan_demands d ON d.id = b.demand_id"
                " WHERE b.bank IN (?, ?) AND b.expires > ? AND d.status = 'open'",
                (bank, ALL_BANKS, now),
            )
        ]
        known = self._open
        missing = [i for i in ids if i not in known]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for (raw,) in reader.execute(
                f"SELECT body FROM loan_demands WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            ):
                demand = LoanDemand.from_json(raw)
                if demand.status == "open":
                    known[demand.id] = demand
        if len(known) > 2 * len(ids) + 100_000:  # forget demands no longer open
            wanted = set(ids)
            self._open = known = {k: v for k, v in known.items() if k in wanted}
        return [known[i] for i in ids if i in known]

    async def demands_created(
        self, since: int, until: int, bank: str | None = None
    ) -> list[LoanDemand]:
        if bank is None:
            rows = self._store.reader.execute(
                "SELECT body FROM loan_demands WHERE created >= ? AND created < ? ORDER BY id",
                (since, until),
            ).fetchall()
        else:
            rows = self._store.reader.execute(
                "SELECT DISTINCT d.body, d.id FROM loan_demand_banks b"
                " JOIN loan_demands d ON d.id = b.demand_id"
                " WHERE b.bank IN (?, ?) AND b.created >= ? AND b.created < ? ORDER BY d.id",
                (bank, ALL_BANKS, since, until),
            ).fetchall()
        return [LoanDemand.from_json(row[0]) for row in rows]

    # -- responses -----------------------------------------------------------------------
    async def add_response(self, response: LoanResponse) -> bool:
        body = response.to_json().decode()

        def add(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT status FROM loan_demands WHERE id = ?", (response.demand_id,)
            ).fetchone()
            if row is None or row[0] != "open":
                return False
            conn.execute(
                "INSERT INTO loan_responses (demand_id, body) VALUES (?, ?)",
                (response.demand_id, body),
            )
            return True

        added: bool = await self._store.in_writer(add)
        return added

    async def responses(self, demand_ids: list[str]) -> dict[str, list[LoanResponse]]:
        found: dict[str, list[LoanResponse]] = {d: [] for d in demand_ids}
        reader = self._store.reader
        for start in range(0, len(demand_ids), 500):
            chunk = demand_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = reader.execute(
                f"SELECT demand_id, body FROM loan_responses WHERE demand_id IN ({marks})"  # noqa: S608 - placeholders only
                " ORDER BY seq",
                chunk,
            ).fetchall()
            for demand_id, raw in rows:
                found[demand_id].append(LoanResponse.from_json(raw))
        return found
