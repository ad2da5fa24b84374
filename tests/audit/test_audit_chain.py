"""The audit hash chain, checked against an independent computation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import orjson

from gateway.audit.chain import (
    GENESIS,
    canonical,
    chain_hash,
    link,
    link_audit,
    link_hash,
    verify_chain,
)
from gateway.store.base import AuditEntry, AuditEvent, AuditRecord


def reference_hash(prev: str, seq: int, entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev}\n{seq}\n{body}".encode()).hexdigest()


def chain(n: int) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for seq in range(1, n + 1):
        entry = {"decision_id": f"d{seq}", "outcome": "granted", "subject": "假名"}
        digest = link_hash(prev, seq, entry)
        records.append(AuditRecord(seq, entry, prev, digest))
        prev = digest
    return records


def test_genesis_is_64_zeros() -> None:
    assert GENESIS == "0" * 64


def test_link_hash_matches_a_reference_computation() -> None:
    entry = {"b": 1, "a": "信用", "c": [1, 2]}
    assert link_hash(GENESIS, 1, entry) == reference_hash(GENESIS, 1, entry)
    assert canonical({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_link_hash_covers_prev_seq_and_entry() -> None:
    entry = {"a": 1}
    base = link_hash(GENESIS, 1, entry)
    assert link_hash("f" * 64, 1, entry) != base
    assert link_hash(GENESIS, 2, entry) != base
    assert link_hash(GENESIS, 1, {"a": 2}) != base


def test_intact_chain_verifies() -> None:
    records = chain(5)
    assert verify_chain(records) is None
    assert verify_chain([]) is None
    # a tail verifies from the record before it
    assert verify_chain(records[2:], records[1].hash, 2) is None


def test_edited_entry_is_found() -> None:
    records = chain(5)
    records[2] = replace(records[2], entry={**records[2].entry, "outcome": "constrained"})
    problem = verify_chain(records)
    assert problem is not None
    assert "record 3" in problem


def test_deleted_record_is_found() -> None:
    records = chain(5)
    del records[1]
    problem = verify_chain(records)
    assert problem is not None
    assert "record 2" in problem


def test_reordered_records_are_found() -> None:
    records = chain(5)
    records[1], records[2] = records[2], records[1]
    assert verify_chain(records) is not None


def test_rehashed_record_breaks_the_next_link() -> None:
    records = chain(5)
    entry = {**records[1].entry, "outcome": "standard"}
    records[1] = replace(records[1], entry=entry, hash=link_hash(records[1].prev_hash, 2, entry))
    problem = verify_chain(records)
    assert problem is not None
    assert "record 3" in problem


def test_wrong_start_hash_is_found() -> None:
    assert verify_chain(chain(3), "1" * 64) is not None


def test_the_stored_canonical_entry_verifies() -> None:
    # The stores hash and keep canonical(entry.as_dict()); verification reads
    # the row back as a dict and recomputes the hash from it.
    entry = AuditEntry(
        time="2026-12-02T10:00:00+00:00",
        partner="demo-bank",
        staff_id=None,
        scene="loan",
        purpose="credit_loan_assessment",
        subject="pseudonym",
        outcome="granted",
        policy="loan.credit_products@2025.1",
        policy_hash="sha256:" + "0" * 64,
        policy_set="sha256:" + "1" * 64,
        consent_id="cns_1",
        contract="demo-bank:contract",
        decision_id="dec_1",
        token_jti=None,
    )
    stored = canonical(entry.as_dict())
    digest = chain_hash(GENESIS, 1, stored)
    assert digest == link_hash(GENESIS, 1, entry.as_dict())
    record = AuditRecord(seq=1, entry=orjson.loads(stored), prev_hash=GENESIS, hash=digest)
    assert verify_chain([record]) is None


def _entry(**changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "time": "2026-12-02T10:00:00+00:00",
        "partner": "demo-bank",
        "staff_id": "柜员-7",
        "scene": "loan",
        "purpose": "credit_loan_assessment",
        "subject": "pseudonym",
        "outcome": "granted",
        "policy": "loan.credit_products@2025.1",
        "policy_hash": "sha256:" + "0" * 64,
        "policy_set": "sha256:" + "1" * 64,
        "consent_id": "cns_1",
        "contract": "demo-bank:contract",
        "decision_id": "dec_1",
        "token_jti": "jti_1",
    }
    return AuditEntry(**(fields | changes))


def test_a_decision_entry_is_appended_in_its_canonical_bytes() -> None:
    # link_audit serialises AuditEntry.as_dict() without sorting: it must list
    # every field, in sorted order, or the stored bytes and hash would change.
    entry = _entry()
    names = list(entry.as_dict())
    assert names == sorted(AuditEntry.__dataclass_fields__)
    assert [entry.as_dict()[n] for n in names] == [getattr(entry, n) for n in names]
    for each in (entry, _entry(staff_id=None, consent_id=None, token_jti=None)):
        assert link_audit(GENESIS, 7, each) == link(GENESIS, 7, each.as_dict())


def test_other_audit_records_are_appended_sorted() -> None:
    event = AuditEvent(
        kind="consent_recorded",
        time="2026-12-02T10:00:00+00:00",
        partner="demo-bank",
        record_id="evt_1",
        detail={"z": 1, "a": {"y": 2, "b": 3}},
    )
    raw, digest = link_audit(GENESIS, 3, event)
    assert raw == canonical(event.as_dict())
    assert digest == reference_hash(GENESIS, 3, event.as_dict())
