"""Auto-pipelining: every Redis command issued in one event-loop pass goes out together.

Requests that run concurrently each await their own command; the commands are
queued and flushed as one pipeline on the next loop callback. A pipelined round
trip costs the client a few microseconds per command instead of a full
request/response cycle each (DESIGN §11), and the server answers them in one go.

Connection failures are translated here, at the boundary, into
:class:`StoreUnavailable`; any other Redis error is a bug and propagates.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from gateway.store.base import StoreUnavailable

__all__ = ["UNAVAILABLE", "AutoPipeline"]

# Errors that mean "Redis cannot answer now", as opposed to "we sent something wrong".
UNAVAILABLE: tuple[type[Exception], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.BusyLoadingError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.MasterDownError,
    rex.RedisClusterException,
    OSError,
)


class AutoPipeline:
    def __init__(self, client: Redis | RedisCluster, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def execute(self, *command: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self._max_batch):
            task = asyncio.get_running_loop().create_task(
                self._send(pending[start : start + self._max_batch])
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for command, _ in batch:
            pipe.execute_command(*command)
        try:
            results = await pipe.execute(raise_on_error=False)
        except UNAVAILABLE as exc:
            failure = StoreUnavailable(f"Redis is unavailable: {type(exc).__name__}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, UNAVAILABLE):
                future.set_exception(
                    StoreUnavailable(f"Redis is unavailable: {type(result).__name__}")
                )
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
