"""The audit tree beside the Redis log (gateway.audit.store).

Keys, all in the ``{P:audit}`` slot with the log:

    {P:audit}:tree          size, frontier (concatenated 32-byte hashes)
    {P:audit}:nodes         "level:index" → stored subtree hash
    {P:audit}:cps / :cpz    size → signed checkpoint; the sizes as a ZSET
    {P:audit}:ix            decision id → seq
    {P:audit}:sx:<subject>  seqs of a subject pseudonym's records (a list)
    {P:audit}:builder       the tree builder's lease: its holder, with a TTL

Every replica may extend the tree: ``xinyi_tree_extend`` applies a step only
if the tree still has the size the step started from. The background builder
of only one replica runs at a time, the holder of the lease (``xinyi_lease``,
taken, renewed and given up in one call; docs/audit.md).
"""

from __future__ import annotations

from typing import Any

from gateway.audit.merkle import KEPT_LEVEL, STORED_LEVEL, Frontier
from gateway.audit.store import AuditTreeStore, TreeExtension
from gateway.store.base import AuditRecord
from gateway.store.redis.core import RedisStore

__all__ = ["RedisAuditTree"]


class RedisAuditTree(AuditTreeStore):
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._tree = store.audit_key("tree")
        self._nodes = store.audit_key("nodes")
        self._cps = store.audit_key("cps")
        self._cpz = store.audit_key("cpz")
        self._ix = store.audit_key("ix")
        self._lease = store.audit_key("builder")

    async def open(self) -> None:
        return None

    async def tree_state(self) -> Frontier:
        size, packed = await self._store.run("HMGET", self._tree, "size", "frontier")
        return Frontier.unpack(int(size), packed or b"") if size else Frontier()

    async def extend_tree(self, step: TreeExtension) -> bool:
        keys = [self._tree, self._nodes, self._ix]
        args: list[Any] = [step.old_size, step.frontier.size, step.frontier.pack(), len(step.nodes)]
        for level, index, digest in step.nodes:
            args += [f"{level}:{index}", digest]
        args.append(len(step.decisions))
        for decision_id, seq in step.decisions:
            args += [decision_id, seq]
        for subject, seq in step.subjects:
            keys.append(self._store.audit_key("sx", subject))
            args.append(seq)
        return bool(await self._store.fcall("xinyi_tree_extend", keys, args))

    async def take_builder_lease(self, holder: str, ttl_ms: int) -> bool:
        return bool(await self._store.fcall("xinyi_lease", [self._lease], [holder, ttl_ms]))

    async def release_builder_lease(self, holder: str) -> None:
        await self._store.fcall("xinyi_lease", [self._lease], [holder, 0])

    async def node(self, level: int, index: int) -> bytes | None:
        raw = await self._store.run("HGET", self._nodes, f"{level}:{index}")
        return bytes(raw) if raw else None

    async def put_checkpoint(self, size: int, note: str) -> bool:
        added = await self._store.run("HSETNX", self._cps, size, note)
        await self._store.run("ZADD", self._cpz, size, size)
        return bool(added)

    async def checkpoint(self, size: int) -> str | None:
        raw = await self._store.run("HGET", self._cps, size)
        return raw.decode() if raw else None

    async def latest_checkpoint(self) -> tuple[int, str] | None:
        sizes = await self._store.run("ZRANGE", self._cpz, 0, 0, "REV")
        if not sizes:
            return None
        note = await self.checkpoint(int(sizes[0]))
        return (int(sizes[0]), note) if note else None

    async def checkpoints(self, after_size: int, limit: int) -> list[tuple[int, str]]:
        sizes = await self._store.run(
            "ZRANGEBYSCORE", self._cpz, f"({after_size}", "+inf", "LIMIT", 0, limit
        )
        if not sizes:
            return []
        notes = await self._store.run("HMGET", self._cps, *sizes)
        return [(int(s), n.decode()) for s, n in zip(sizes, notes, strict=True) if n]

    async def scan(self, cursor: int, limit: int) -> tuple[list[AuditRecord], int]:
        # The log is a list: the cursor is a position, whatever seq a record claims.
        page = await self._store.audit_records(cursor, limit)
        return page, cursor + len(page)

    async def archived_size(self) -> int:
        raw = await self._store.run("GET", self._store.audit_key("base"))
        return int(raw) if raw else 0

    async def drop_archived(self, upto: int, records: list[AuditRecord]) -> None:
        base = await self.archived_size()
        decisions = [r.entry["decision_id"] for r in records if "kind" not in r.entry]
        subjects = sorted({r.entry["subject"] for r in records if r.entry.get("subject")})
        nodes = [
            f"{level}:{index}"
            for level in range(STORED_LEVEL, KEPT_LEVEL)
            for index in range(base >> level, upto >> level)
        ]
        keys = [
            self._store.audit_key("log"),
            self._store.audit_key("base"),
            self._ix,
            self._nodes,
            self._cps,
            self._cpz,
            *[self._store.audit_key("d", d) for d in decisions],
            *[self._store.audit_key("sx", s) for s in subjects],
        ]
        args: list[Any] = [upto, len(decisions), *decisions, len(nodes), *nodes]
        await self._store.fcall("xinyi_audit_drop", keys, args)

    async def purge_expired(self, now: float, token_grace_s: float, feedback_before: str) -> int:
        # Idempotency keys, replay entries, token records and each decision's
        # feedback list carry Redis TTLs: nothing is left to sweep here.
        return 0

    async def decision_seq(self, decision_id: str) -> int | None:
        raw = await self._store.run("HGET", self._ix, decision_id)
        return int(raw) if raw else None

    async def subject_seqs(self, subjects: set[str]) -> list[int]:
        seqs: set[int] = set()
        for subject in subjects:
            raws = await self._store.run("LRANGE", self._store.audit_key("sx", subject), 0, -1)
            seqs.update(int(r) for r in raws)
        return sorted(seqs)
