"""Panel: the latest signed audit checkpoint, and whether the records after it hold.

Like ``xinyi-gateway audit verify``, but bounded so a page stays cheap: the
checkpoint's signature against the key ring, its root against the record it
ends at (an inclusion proof from the tree), and the hash chain of at most
``TAIL`` records from there to the head.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.audit.chain import canonical, chain_hash
from gateway.audit.merkle import node_hash, record_leaf
from gateway.audit.notes import NoteError, verify_checkpoint
from gateway.ui.panels import Panel

__all__ = ["PANEL", "TAIL", "root_from_inclusion"]

TAIL = 2000


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2); None if malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, root = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = node_hash(root, sibling)
        fn, sn = fn >> 1, sn >> 1
    return root if sn == 0 else None


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    audit = gw.audit
    latest = await audit.tree.latest_checkpoint()
    if latest is None:
        return {"size": 0}
    size, note = latest
    problems: list[str] = []
    try:
        checkpoint = verify_checkpoint(note, audit.origin, audit.public_keys())
    except NoteError as exc:
        return {"size": size, "signed": False, "problems": [str(exc)], "time": None}
    records = await audit.records(size - 1, TAIL + 1)
    signed_time = None
    if not records or records[0].seq != size:
        problems.append(f"record {size} is missing")
    else:
        first = records[0]
        signed_time = dt.datetime.fromisoformat(first.entry["time"]).astimezone(gw.tz)
        proof = await audit.inclusion(size, size)
        if root_from_inclusion(size - 1, size, record_leaf(first.hash), proof) != checkpoint.root:
            problems.append(f"record {size} is not what the checkpoint signed")
        prev = first.prev_hash
        for record in records:
            if (
                record.prev_hash != prev
                or chain_hash(prev, record.seq, canonical(record.entry)) != record.hash
            ):
                problems.append(f"record {record.seq} does not link to the one before it")
                break
            prev = record.hash
    return {
        "size": size,
        "signed": True,
        "origin": checkpoint.origin,
        "time": signed_time.strftime("%Y-%m-%d %H:%M:%S") if signed_time else None,
        "tail": max(0, len(records) - 1),
        "tail_cut": len(records) > TAIL,
        "problems": problems,
    }


PANEL = Panel("checkpoint", "dashboard.checkpoint", "panels/checkpoint.html", _load)
