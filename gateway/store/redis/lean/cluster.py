"""Redis Cluster on lean connections: one per primary, commands routed by hash slot.

The slot map is redis-py's (``RedisCluster.nodes_manager``, refreshed through
it); only the commands travel on lean connections, so each shard still gets
one write per loop pass. A command goes to the primary owning the slot of its
first key (for ``FCALL name numkeys k1 …`` that is ``k1``). Redirections are
followed as a cluster client must: MOVED refreshes the map and retries, ASK
sends ``ASKING`` and the command to the importing node, TRYAGAIN and
CLUSTERDOWN retry after a pause; after a few attempts the command fails with
:class:`StoreUnavailable`. A lost connection is not retried (the command may
have run) but makes the next command refresh the map, in case of a failover.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from redis import exceptions as rex
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from gateway.store.base import StoreUnavailable
from gateway.store.redis.lean.connection import LeanConnection, Options

__all__ = ["LeanCluster"]

_ATTEMPTS = 5
_PAUSE_S = 0.05
_FUNCTION_CALLS = frozenset({"FCALL", "FCALL_RO", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})


def _key(command: tuple[Any, ...]) -> Any:
    """The key that decides where a command goes (every store command names one)."""
    name = command[0]
    if name in _FUNCTION_CALLS:
        return command[3] if int(command[2]) > 0 else None
    return command[1] if len(command) > 1 else None


def command_slot(command: tuple[Any, ...]) -> int | None:
    key = _key(command)
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    elif not isinstance(key, bytes):
        key = str(key).encode()
    return key_slot(key)


class LeanCluster:
    def __init__(self, client: RedisCluster, options: Options) -> None:
        self._client = client
        self._options = options  # credentials and timeouts; host and port come from the map
        self._nodes: dict[tuple[str, int], LeanConnection] = {}
        self._ready = False
        self._stale = False

    def _connection(self, host: str, port: int) -> LeanConnection:
        conn = self._nodes.get((host, port))
        if conn is None:
            options = dataclasses.replace(self._options, host=host, port=port, path="")
            conn = self._nodes[(host, port)] = LeanConnection(options, translate=False)
        return conn

    async def _refresh(self) -> None:
        try:
            await self._client.nodes_manager.initialize()
        except (rex.RedisError, rex.RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"the cluster map cannot be read: {type(exc).__name__}") from exc
        self._stale = False

    async def _prepare(self) -> None:
        try:
            await self._client.initialize()
        except (rex.RedisError, rex.RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"the cluster map cannot be read: {type(exc).__name__}") from exc
        self._ready = True
        self._stale = False

    def _route(self, slot: int | None) -> LeanConnection:
        manager = self._client.nodes_manager
        if slot is None:
            node = manager.default_node or next(iter(manager.nodes_cache.values()))
        else:
            node = manager.get_node_from_slot(slot)
        return self._connection(node.host, int(node.port))

    async def execute(self, *command: Any) -> Any:
        if not self._ready:
            await self._prepare()
        elif self._stale:
            await self._refresh()
        slot = command_slot(command)
        asking: tuple[str, int] | None = None
        for attempt in range(_ATTEMPTS):
            try:
                if asking is not None:
                    return await self._connection(*asking).execute_asking(*command)
                return await self._route(slot).execute(*command)
            except rex.MovedError:
                asking = None
                await self._refresh()
            except rex.AskError as exc:
                asking = (exc.host, exc.port)
            except (rex.TryAgainError, rex.ClusterDownError, rex.MasterDownError) as exc:
                asking = None
                if attempt == _ATTEMPTS - 1:
                    raise StoreUnavailable(f"Redis is unavailable: {type(exc).__name__}") from exc
                await asyncio.sleep(_PAUSE_S * (attempt + 1))
                if not isinstance(exc, rex.TryAgainError):
                    await self._refresh()
            except rex.BusyLoadingError as exc:
                raise StoreUnavailable(f"Redis is unavailable: {type(exc).__name__}") from exc
            except rex.SlotNotCoveredError as exc:
                self._stale = True
                raise StoreUnavailable("a hash slot has no primary in the map") from exc
            except StoreUnavailable:
                self._stale = True
                raise
        raise StoreUnavailable("Redis Cluster kept redirecting the command")

    async def close(self) -> None:
        nodes, self._nodes = list(self._nodes.values()), {}
        await asyncio.gather(*(conn.close() for conn in nodes))
