"""The audit hash chain: each record's hash covers its entry and the previous hash.

Deleting, reordering or editing any record breaks every hash after it, so
``verify`` finds tampering anywhere from the first record to the last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from gateway.hashing import sha256
from gateway.store.base import AuditEntry, AuditEvent, AuditRecord

__all__ = [
    "GENESIS",
    "canonical",
    "chain_hash",
    "link",
    "link_audit",
    "link_hash",
    "verify_chain",
]

GENESIS = "0" * 64


def canonical(entry: Mapping[str, Any]) -> bytes:
    # Not an AuditEntry itself: orjson writes a dataclass's fields unsorted.
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, seq: int, canonical_entry: bytes) -> str:
    digest = sha256(prev_hash.encode())
    digest.update(b"\n%d\n" % seq)
    digest.update(canonical_entry)
    return digest.hexdigest()


def link(prev_hash: str, seq: int, entry: Mapping[str, Any]) -> tuple[bytes, str]:
    """The entry's canonical bytes and its hash: a store keeps the one, chains the other."""
    raw = canonical(entry)
    return raw, chain_hash(prev_hash, seq, raw)


def link_audit(prev_hash: str, seq: int, audit: AuditEntry | AuditEvent) -> tuple[bytes, str]:
    """``link`` for a record being appended: a decision's entry (``AuditEntry``)
    lists its members in sorted order already, so orjson is spared the sort."""
    sorted_already = type(audit) is AuditEntry
    raw = orjson.dumps(audit.as_dict()) if sorted_already else canonical(audit.as_dict())
    return raw, chain_hash(prev_hash, seq, raw)


def link_hash(prev_hash: str, seq: int, entry: Mapping[str, Any]) -> str:
    return link(prev_hash, seq, entry)[1]


def verify_chain(
    records: Iterable[AuditRecord], start_hash: str = GENESIS, start_seq: int = 0
) -> str | None:
    """None when the chain is intact; otherwise what is wrong and where."""
    prev, expected_seq = start_hash, start_seq + 1
    for record in records:
        if record.seq != expected_seq:
            return f"record {expected_seq} is missing (found {record.seq})"
        if record.prev_hash != prev:
            return f"record {record.seq} does not follow the previous record's hash"
        if link_hash(prev, record.seq, record.entry) != record.hash:
            return f"record {record.seq} was altered: its hash does not match its content"
        prev, expected_seq = record.hash, expected_seq + 1
    return None
