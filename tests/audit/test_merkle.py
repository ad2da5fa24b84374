"""The gateway's Merkle tree against RFC 9162's definitions and an independent verifier."""

from __future__ import annotations

import pytest

from gateway.audit.merkle import (
    STORED_LEVEL,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
)
from tests.audit import rfc9162

LEAVES = [f"record {i}".encode() for i in range(600)]


def _provider(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    async def perfect(level: int, index: int) -> bytes:
        lo = index << level
        return rfc9162.mth(leaves[lo : lo + (1 << level)])

    return perfect


def test_frontier_root_is_mth_at_every_size_and_stores_big_subtrees() -> None:
    frontier = Frontier()
    completed: list[tuple[int, int, bytes]] = []
    assert frontier.root() == rfc9162.mth([])
    for n, leaf in enumerate(LEAVES[:530], start=1):
        frontier.append(leaf_hash(leaf), completed)
        if n in (1, 2, 3, 7, 8, 255, 256, 257, 511, 512, 513, 530):
            assert frontier.root() == rfc9162.mth(LEAVES[:n]), n
    # Two subtrees of 256 and one of 512 were completed.
    assert [(lvl, idx) for lvl, idx, _ in completed] == [(8, 0), (8, 1), (9, 0)]
    assert completed[2][2] == rfc9162.mth(LEAVES[:512])
    assert all(lvl >= STORED_LEVEL for lvl, _, _ in completed)
    packed = Frontier.unpack(frontier.size, frontier.pack())
    assert packed.root() == frontier.root()
    with pytest.raises(ValueError, match="hashes"):
        Frontier.unpack(frontier.size + 1, frontier.pack())


def test_leaf_and_node_hashes_have_the_rfc_prefixes() -> None:
    assert leaf_hash(b"x") == rfc9162.sha256(b"\x00x")
    assert node_hash(b"a" * 32, b"b" * 32) == rfc9162.sha256(b"\x01" + b"a" * 32 + b"b" * 32)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100, 257, 600])
async def test_inclusion_proofs_verify_independently(size: int) -> None:
    leaves = LEAVES[:size]
    root = rfc9162.mth(leaves)
    for index in sorted(i for i in {0, 1, size // 2, size - 2, size - 1} if 0 <= i < size):
        proof = await inclusion_proof(index, size, _provider(leaves))
        assert rfc9162.verify_inclusion(index, size, leaf_hash(leaves[index]), proof, root)
        # a forged proof, or the right proof for another leaf, fails
        if proof:
            forged = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
            assert not rfc9162.verify_inclusion(index, size, leaf_hash(leaves[index]), forged, root)
        assert not rfc9162.verify_inclusion(index, size, leaf_hash(b"forged"), proof, root)


@pytest.mark.parametrize(("old", "new"), [(1, 2), (3, 7), (4, 8), (6, 8), (7, 600), (256, 600)])
async def test_consistency_proofs_verify_independently(old: int, new: int) -> None:
    proof = await consistency_proof(old, new, _provider(LEAVES[:new]))
    first, second = rfc9162.mth(LEAVES[:old]), rfc9162.mth(LEAVES[:new])
    assert rfc9162.verify_consistency(old, new, first, second, proof)
    assert not rfc9162.verify_consistency(old, new, rfc9162.sha256(b"other"), second, proof)
    if proof:
        assert not rfc9162.verify_consistency(old, new, first, second, proof[:-1])


async def test_a_proof_for_an_index_outside_the_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="below the tree size"):
        await inclusion_proof(5, 5, _provider(LEAVES))
    with pytest.raises(ValueError, match="0 < from"):
        await consistency_proof(0, 5, _provider(LEAVES))
