"""Group commit: one flush serves every writer that arrived meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.batching import GroupCommit


class Recorder:
    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.gate: asyncio.Event | None = None

    async def flush(self, batch: list[int]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append(list(batch))
        if self.fail_on & set(batch):
            raise RuntimeError(f"flush of {batch} failed")


async def test_concurrent_submits_share_one_flush() -> None:
    rec = Recorder()
    commit = GroupCommit(rec.flush)
    try:
        await asyncio.gather(*(commit.submit(i) for i in range(50)))
    finally:
        await commit.close()
    assert rec.batches == [list(range(50))]


async def test_submits_during_a_flush_go_in_the_next_one() -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    commit = GroupCommit(rec.flush)
    try:
        first = asyncio.ensure_future(commit.submit(0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the flush of [0] is now waiting at the gate
        later = [asyncio.ensure_future(commit.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        rec.gate.set()
        await asyncio.gather(first, *later)
    finally:
        await commit.close()
    assert rec.batches == [[0], [1, 2, 3]]


async def test_max_batch_splits_flushes() -> None:
    rec = Recorder()
    commit = GroupCommit(rec.flush, max_batch=4)
    try:
        await asyncio.gather(*(commit.submit(i) for i in range(10)))
    finally:
        await commit.close()
    assert rec.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_failed_flush_fails_its_whole_batch_only() -> None:
    rec = Recorder(fail_on={5})
    commit = GroupCommit(rec.flush, max_batch=4)
    try:
        results = await asyncio.gather(
            *(commit.submit(i) for i in range(10)), return_exceptions=True
        )
        # the committer keeps working after a failure
        await commit.submit(99)
    finally:
        await commit.close()
    failed = [i for i, r in enumerate(results) if isinstance(r, RuntimeError)]
    assert failed == [4, 5, 6, 7]
    assert all(results[i] is None for i in (0, 1, 2, 3, 8, 9))
    assert rec.batches[-1] == [99]


async def test_flush_error_reaches_the_waiter() -> None:
    rec = Recorder(fail_on={1})
    commit = GroupCommit(rec.flush)
    try:
        with pytest.raises(RuntimeError, match="failed"):
            await commit.submit(1)
    finally:
        await commit.close()
