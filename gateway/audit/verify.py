"""Walk a store's audit records and check the hash chain end to end."""

from __future__ import annotations

from pathlib import Path

from gateway.audit.chain import GENESIS, verify_chain
from gateway.runtime import open_store

__all__ = ["verify_store"]

_PAGE = 5_000


def _missing_database(store_url: str) -> Path | None:
    """The SQLite file a store URL names, when it does not exist."""
    if not store_url.startswith("sqlite:///"):
        return None
    path = Path(store_url.removeprefix("sqlite://"))
    return None if path.is_file() else path


async def verify_store(store_url: str) -> tuple[bool, str]:
    # Opening a store creates it: a mistyped path would then verify as an empty, intact chain.
    missing = _missing_database(store_url)
    if missing is not None:
        return False, f"no state database at {missing}: nothing was verified"
    store = open_store(store_url, read_only=True)
    await store.open()
    try:
        prev, seq, total = GENESIS, 0, 0
        while True:
            page = await store.audit_records(seq, _PAGE)
            if not page:
                break
            problem = verify_chain(page, prev, seq)
            if problem:
                return False, f"audit chain broken: {problem}"
            prev, seq, total = page[-1].hash, page[-1].seq, total + len(page)
        return True, f"audit chain intact: {total} records, head {prev[:16]}…"
    finally:
        await store.close()
