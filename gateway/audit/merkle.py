"""RFC 9162 Merkle tree hashing over the audit log, and its proofs.

Leaf ``i`` is the record of sequence number ``i + 1``; its input is the
record's 32-byte chain hash, which covers the record's canonical entry, its
sequence number and the previous hash (``record_leaf``). Hashes follow
RFC 9162 §2.1.1: ``SHA-256(0x00 || leaf)`` and ``SHA-256(0x01 || left || right)``.

The tree grows by its *frontier* (the roots of the perfect subtrees that make
up the current size, largest first), so extending it costs about one node
hash per record. Proofs (§2.1.3 inclusion, §2.1.4 consistency) are computed
top-down from the hashes of perfect, aligned subtrees, which a caller supplies:
stored nodes for large ones, leaves for small ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.hashing import sha256

__all__ = [
    "EMPTY_ROOT",
    "KEPT_LEVEL",
    "STORED_LEVEL",
    "Frontier",
    "PerfectHash",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "record_leaf",
    "subtree_hash",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
# Nodes covering at least 2**STORED_LEVEL leaves are stored as the tree grows
# (like the tiles of C2SP tlog-tiles, height 8); smaller subtrees are recomputed
# from at most 256 leaves.
STORED_LEVEL = 8
# Stored nodes below this level inside archived ranges are dropped with the records
# (recomputed from archive segments if a proof needs them); higher ones, one per
# 65,536 records, stay.
KEPT_LEVEL = 16

# hash of the perfect subtree at (level, index): leaves [index << level, (index + 1) << level)
PerfectHash = Callable[[int, int], Awaitable[bytes]]


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def record_leaf(chain_hash_hex: str) -> bytes:
    """The leaf hash of an audit record, from its chain hash."""
    return leaf_hash(bytes.fromhex(chain_hash_hex))


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass(slots=True)
class Frontier:
    """The compact range [0, size): one perfect subtree root per set bit of ``size``."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes, completed: list[tuple[int, int, bytes]] | None = None) -> None:
        """Add a leaf hash; perfect subtrees of level >= STORED_LEVEL it completes go to
        ``completed`` as (level, index, hash)."""
        index, h, level = self.size, leaf, 0
        # Each trailing one bit of the old size is a subtree the new leaf completes.
        while index >> level & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            if completed is not None and level >= STORED_LEVEL:
                completed.append((level, index >> level, h))
        self.hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root

    def pack(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def unpack(cls, size: int, packed: bytes) -> Frontier:
        hashes = [packed[i : i + 32] for i in range(0, len(packed), 32)]
        if len(hashes) != bin(size).count("1"):
            raise ValueError(f"a frontier of size {size} has {bin(size).count('1')} hashes")
        return cls(size, hashes)


async def subtree_hash(lo: int, hi: int, perfect: PerfectHash) -> bytes:
    """MTH(D[lo:hi]) for the ranges RFC 9162's recursion visits (``lo`` aligned)."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        return await perfect(n.bit_length() - 1, lo // n)
    k = _split(n)
    return node_hash(
        await subtree_hash(lo, lo + k, perfect), await subtree_hash(lo + k, hi, perfect)
    )


async def inclusion_proof(index: int, size: int, perfect: PerfectHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf to root."""
    if not 0 <= index < size:
        raise ValueError("the leaf index must be below the tree size")
    path: list[bytes] = []
    lo, hi = 0, size
    # Walk down, then return siblings bottom-up.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(await subtree_hash(lo + k, hi, perfect))
            hi = lo + k
        else:
            path.append(await subtree_hash(lo, lo + k, perfect))
            lo = lo + k
    path.reverse()
    return path


async def consistency_proof(old: int, new: int, perfect: PerfectHash) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1."""
    if not 0 < old <= new:
        raise ValueError("a consistency proof needs 0 < from <= to")
    if old == new:
        return []
    proof: list[bytes] = []
    m, lo, hi, complete = old, 0, new, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(await subtree_hash(lo + k, hi, perfect))
            hi = lo + k
        else:
            proof.append(await subtree_hash(lo, lo + k, perfect))
            m, lo, complete = m - k, lo + k, False
    if not complete:
        proof.append(await subtree_hash(lo, hi, perfect))
    proof.reverse()
    return proof
