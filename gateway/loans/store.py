"""The loan workflow's store contract, implemented by every backend.

``gateway/store/embedded/loans.py`` (SQLite, through the embedded store's
writer) and ``gateway/store/redis/loans.py`` (Redis and Redis Cluster)
implement it; ``tests/contract/test_loans_contract.py`` runs the same tests
on each. Every change is made where every replica reads it: nothing here is
held only in one process's memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from gateway.loans.models import LoanDemand, LoanProduct, LoanResponse
from gateway.store.base import Store

__all__ = ["LoanStore", "loan_store_for"]


class LoanStore(ABC):
    @abstractmethod
    async def open(self) -> None:
        """Create tables or load server-side functions (idempotent)."""

    # -- products ----------------------------------------------------------------------
    @abstractmethod
    async def create_product(self, product: LoanProduct) -> bool:
        """Store version 1 of a new product; False when the id is taken."""

    @abstractmethod
    async def save_product(self, product: LoanProduct, expected_version: int) -> bool:
        """Store ``product`` as the product's head if the head is still
        ``expected_version`` (compare and set); False otherwise.

        A new version (``product.version == expected_version + 1``) is added
        beside the old ones; the same version (a withdrawal) replaces its record.
        """

    @abstractmethod
    async def get_product(self, product_id: str, version: int | None = None) -> LoanProduct | None:
        """The head (latest version) or the named version."""

    @abstractmethod
    async def list_products(self, bank: str | None = None) -> list[LoanProduct]:
        """Every product's head (of one bank, if given), by id."""

    # -- demands -------------------------------------------------------------------------
    @abstractmethod
    async def put_demand(self, demand: LoanDemand) -> None: ...

    @abstractmethod
    async def get_demand(self, demand_id: str) -> LoanDemand | None: ...

    @abstractmethod
    async def close_demand(self, demand_id: str, at: int) -> LoanDemand | None:
        """Close an open demand (a closed one stays as it was); None if there is none."""

    @abstractmethod
    async def open_demands(self, bank: str, now: int) -> list[LoanDemand]:
        """Open, unexpired demands that authorise ``bank`` (by name or all banks)."""

    @abstractmethod
    async def demands_created(
        self, since: int, until: int, bank: str | None = None
    ) -> list[LoanDemand]:
        """Demands created in [since, until) (that authorise ``bank``, if given)."""

    # -- responses -----------------------------------------------------------------------
    @abstractmethod
    async def add_response(self, response: LoanResponse) -> bool:
        """Append a bank's response; False (nothing written) unless the demand is open."""

    @abstractmethod
    async def responses(self, demand_ids: list[str]) -> dict[str, list[LoanResponse]]:
        """Each demand's responses in the order they were given."""


def loan_store_for(store: Store) -> LoanStore:
    """The loan store that shares ``store``'s backend (and its connection)."""
    from gateway.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        from gateway.store.embedded.loans import EmbeddedLoanStore

        return EmbeddedLoanStore(store)
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis.loans import RedisLoanStore

        return RedisLoanStore(store)
    raise TypeError(f"no loan store for {type(store).__name__}")
