"""A subject's own view of the record (PIPL art. 44-45): every use of its credit data.

Records hold pairwise pseudonyms, one per partner sector, plus the gateway's
internal one (consents, credit events); the subject's records are found
through the tree builder's subject index under each of them, so no record is
scanned and no personal id is stored.
"""

from __future__ import annotations

from typing import Any

from gateway.audit.log import AuditLog
from gateway.settings import Partner
from gateway.store.base import AuditRecord, Store
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["subject_uses"]


def _explanation(body: dict[str, Any]) -> dict[str, Any]:
    """Why a decision came out as it did: rules, legal bases, fact names (no values)."""
    return {
        "policy": body.get("policy"),
        "reasons": [
            {
                "rule": r.get("rule"),
                "effect": r.get("effect"),
                "legal_basis": r.get("legal_basis", []),
                "facts": r.get("facts", []),
            }
            for r in body.get("reasons", [])
        ],
        "constraints": [
            {
                "measure": c.get("measure"),
                "title": c.get("title"),
                "legal_basis": c.get("legal_basis"),
            }
            for c in body.get("constraints", [])
        ],
    }


async def subject_uses(
    audit: AuditLog,
    store: Store,
    pseudonyms: Pseudonyms,
    partners: list[Partner],
    kind: str,
    subject_id: str,
) -> list[dict[str, Any]]:
    await audit.sync()  # the index covers every acknowledged record
    names = {pseudonyms.internal(kind, subject_id)}
    names |= {pseudonyms.of(p.pseudonym_sector, kind, subject_id) for p in partners}
    found: list[AuditRecord] = []
    if audit.archive is not None:
        # Archived records have left the index: their segments are read instead.
        for segment in audit.archive.segments():
            _, records = audit.archive.read(segment)
            found += [r for r in records if r.entry.get("subject") in names]
    for seq in await audit.tree.subject_seqs(names):
        page = await audit.records(seq - 1, 1)
        if page and page[0].seq == seq and page[0].entry.get("subject") in names:
            found.append(page[0])
    uses = []
    for record in sorted({r.seq: r for r in found}.values(), key=lambda r: r.seq):
        seq, entry = record.seq, record.entry
        use: dict[str, Any] = {
            "seq": seq,
            "kind": entry.get("kind", "decision"),
            "partner": entry["partner"],
            "time": entry["time"],
            "purpose": entry.get("purpose"),
            "scene": entry.get("scene"),
            "outcome": entry.get("outcome"),
        }
        if "kind" not in entry:
            use["decision_id"] = entry["decision_id"]
            decision = await store.get_decision(entry["decision_id"])
            if decision is not None:  # a body past its retention has no explanation left
                use["explanation"] = _explanation(decision[1])
        uses.append(use)
    return uses
