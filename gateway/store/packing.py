"""Redis connections whose commands are packed by hiredis.

redis-py packs commands with hiredis in its synchronous client, but
``redis.asyncio`` always packs them in Python: ~3.7 µs for a rate-limit call
and far more for a batch of audit appends, about a tenth of a worker's CPU
under load (BENCHMARKS.md). These connection classes send the same bytes,
packed by ``hiredis.pack_command`` (tests/store/test_packing.py compares the
two packers); everything else is redis-py's.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

__all__ = ["connection_class"]


class _HiredisPacking:
    """Packs with hiredis; put before the redis-py connection class it serves."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # redis-py sends a command name given as "CLIENT SETINFO" as two words; so do we.
        name = args[0].encode() if isinstance(args[0], str) else args[0]
        if isinstance(name, bytes) and b" " in name:
            args = (*name.split(), *args[1:])
        return [hiredis.pack_command(args)]


class PackedConnection(_HiredisPacking, Connection):
    pass


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


class PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


def connection_class(scheme: str) -> type[Connection] | type[UnixDomainSocketConnection]:
    """The packed counterpart of the class redis-py would pick for a URL scheme."""
    if scheme == "rediss":
        return PackedSSLConnection
    if scheme == "unix":
        return PackedUnixConnection
    return PackedConnection
