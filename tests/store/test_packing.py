"""Commands packed by hiredis are byte for byte what redis-py would send."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection

from gateway.store.packing import PackedConnection, PackedSSLConnection, connection_class

_NAMES = st.sampled_from(["GET", "SET", "FCALL", "HMGET", b"SADD", "CLIENT SETINFO", b"ZADD"])
_ARGS = st.one_of(
    st.text(),
    st.binary(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _joined(chunks: list[Any]) -> bytes:
    return b"".join(bytes(chunk) for chunk in chunks)


@given(name=_NAMES, args=st.lists(_ARGS, max_size=12))
def test_hiredis_packs_what_redis_py_packs(name: str | bytes, args: list[Any]) -> None:
    command = (name, *args)
    assert _joined(PackedConnection().pack_command(*command)) == _joined(
        Connection().pack_command(*command)
    )


def test_a_pipeline_of_commands_packs_the_same() -> None:
    commands = [("SET", "k", "中文", "PX", 1000), ("FCALL", "f", 1, "k{t}", 2.5), ("GET", b"\xff")]
    assert _joined(PackedConnection().pack_commands(commands)) == _joined(
        Connection().pack_commands(commands)
    )


def test_the_class_follows_the_url_scheme() -> None:
    assert connection_class("redis") is PackedConnection
    assert connection_class("rediss") is PackedSSLConnection
    assert connection_class("unix").__name__ == "PackedUnixConnection"
