"""Bytes of state per decision, and the store's size after many decisions.

    .venv/bin/python bench/audit_storage.py [--decisions 1000000] [--mode base|tree|archive]
                                            [--keep 100000]

Writes decisions straight through the embedded store (no HTTP, no policy
evaluation), shaped like the demo's: an audit entry, a decision body, and a
token record for half of them (granted). Modes:

- ``base``: the store alone, as before the Merkle tree (every record stays);
- ``tree``: plus the tree builder and a checkpoint every 1,000 records;
- ``archive``: plus retention, keeping the newest ``--keep`` records hot and
  moving older ones to archive segments as the run goes, and dropping token
  records once expired (the run's clock ticks one second per decision; a
  token lives a day).

Prints the state database's size (with its WAL), bytes per decision, the
archive's size and the time taken.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.audit.archive import Archive  # noqa: E402
from gateway.audit.log import AuditLog  # noqa: E402
from gateway.audit.store import audit_tree_store  # noqa: E402
from gateway.store.base import AuditEntry, DecisionWrite, IssuedToken, StatusRef  # noqa: E402
from gateway.store.embedded import EmbeddedStore  # noqa: E402
from gateway.tokens.keys import KeyRing  # noqa: E402

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _write(n: int, store: EmbeddedStore, ref: StatusRef | None) -> DecisionWrite:
    decision_id = f"dec_{n:012d}{secrets.token_hex(4)}"
    at = (START + dt.timedelta(seconds=n)).isoformat()
    granted = ref is not None
    subject = secrets.token_urlsafe(32)
    entry = AuditEntry(
        time=at,
        partner="demo-library",
        staff_id="staff-0001",
        scene="library",
        purpose="deposit_waiver",
        subject=subject,
        outcome="granted" if granted else "standard",
        policy="library.deposit_waiver@2025.1",
        policy_hash="sha256:" + secrets.token_hex(32),
        policy_set="sha256:" + "1" * 64,
        consent_id="cns_" + secrets.token_urlsafe(18),
        contract="demo-library:contract",
        decision_id=decision_id,
        token_jti=secrets.token_hex(16) if granted else None,
    )
    body = {
        "decision_id": decision_id,
        "scene": "library",
        "outcome": entry.outcome,
        "benefits": [{"code": "deposit_waiver", "params": {"max_items": 12}}] if granted else [],
        "constraints": [],
        "reasons": [
            {
                "rule": "good_standing",
                "effect": "grant" if granted else "standard",
                "legal_basis": ["国发〔2016〕33号"],
                "facts": ["person.credit_level", "person.dishonest_executed"],
            }
        ],
        "policy": {"id": "library.deposit_waiver", "version": "2025.1"},
        "policy_set": "sha256:" + "1" * 64,
        "issued_at": at,
        "expires_at": at,
    }
    token = None
    if granted and ref is not None and entry.token_jti is not None:
        token = IssuedToken(
            jti=entry.token_jti,
            decision_id=decision_id,
            partner="demo-library",
            scene="library",
            purpose="deposit_waiver",
            subject_key=secrets.token_urlsafe(32),
            kid=secrets.token_urlsafe(32),
            status=ref,
            # The run's clock is one decision a second; a library token lives a day.
            expires=int((START + dt.timedelta(seconds=n, days=1)).timestamp()),
            context={},
            benefits=("deposit_waiver",),
            claims={"iss": "https://gw.example", "sub": subject, "jti": entry.token_jti},
        )
    return DecisionWrite(decision_id, "demo-library", orjson.dumps(body), entry, ref, token)


def _size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*")) if path.is_dir() else 0


async def run(decisions: int, mode: str, keep: int, workdir: Path) -> None:
    db = workdir / "state.sqlite3"
    store = EmbeddedStore(db)
    await store.open()
    ring = KeyRing.load(workdir / "keys", create=True)
    archive = Archive(workdir / "archive")
    audit = AuditLog(
        store, audit_tree_store(store), lambda: ring, origin="bench/audit", archive=archive
    )
    await audit.open()
    started = time.perf_counter()
    batch = 1_000
    for first in range(0, decisions, batch):
        writes = []
        for n in range(first, min(first + batch, decisions)):
            ref = await store.allocate_status() if n % 2 == 0 else None
            writes.append(_write(n, store, ref))
        await asyncio.gather(*(store.record_decision(w) for w in writes))
        done = first + len(writes)
        if mode != "base":
            await audit.checkpoint_now()
        if mode == "archive" and done % 20_000 == 0 and done > keep:
            # Retention as the sweeper applies it, on the run's clock.
            now = START + dt.timedelta(seconds=done)
            await audit.archive_before(now - dt.timedelta(seconds=keep), 20_000)
            await audit.tree.purge_expired(now.timestamp(), 0, now.isoformat())
    elapsed = time.perf_counter() - started
    await store.close()
    size = _size(db)
    print(
        f"mode={mode} decisions={decisions:,} state={size / 1e6:.1f} MB "
        f"({size / decisions:.0f} B/decision) archive={_dir_size(archive.directory) / 1e6:.1f} MB "
        f"({_dir_size(archive.directory) / decisions:.0f} B/decision) time={elapsed:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=["base", "tree", "archive"], default="archive")
    parser.add_argument("--keep", type=int, default=100_000, help="records kept hot (archive)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="xinyi-storage-"))
    try:
        asyncio.run(run(args.decisions, args.mode, args.keep, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
