"""The lean auto-pipelined connection against real redis-servers (issue 17).

Every test here starts (or shares) a real redis-server on a free port; nothing
is mocked. What is checked: commands of one loop pass go out together, replies
come back in order with error replies in their places, large replies arrive
whole, credentials and database come from the URL, the connection recovers
from a restart and times out on a stopped server, back-pressure holds, and a
cluster's redirections are followed; ``rediss://`` speaks TLS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis import exceptions as rex
from redis.asyncio.cluster import RedisCluster

from gateway.store.base import StoreUnavailable
from gateway.store.redis.lean import LeanCluster, LeanConnection, Options, options_from_url
from gateway.store.redis.lean.cluster import command_slot
from tests.redis_servers import (
    RedisServer,
    redis_available,
    redis_cluster,
    redis_server,
)

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("lean")) as srv:
        yield srv


@pytest.fixture
async def conn(server: RedisServer) -> AsyncIterator[LeanConnection]:
    connection = LeanConnection(options_from_url(server.url))
    yield connection
    await connection.close()


def _reads(info: dict[str, int]) -> int:
    return int(info["total_reads_processed"])  # INFO is parsed as redis-py parses it


async def test_one_loop_pass_goes_out_in_one_write(conn: LeanConnection) -> None:
    await conn.execute("DEL", "lean:n")
    before = _reads(await conn.execute("INFO", "stats"))
    replies = await asyncio.gather(*(conn.execute("INCR", "lean:n") for _ in range(1000)))
    after = _reads(await conn.execute("INFO", "stats"))
    assert replies == list(range(1, 1001))  # and in the order they were issued
    # ~25 KB of commands: the server reads them in a handful of socket reads,
    # not one per command (the INFO calls themselves are two of them).
    assert after - before < 20, after - before


async def test_replies_in_order_with_errors_in_their_places(conn: LeanConnection) -> None:
    results = await asyncio.gather(
        conn.execute("SET", "lean:s", "text"),
        conn.execute("INCR", "lean:s"),
        conn.execute("GET", "lean:s"),
        conn.execute("HGETALL", "lean:s"),
        conn.execute("FCALL", "lean_no_such_function", 0),
        conn.execute("EVALSHA", "0" * 40, 0),
        conn.execute("HSET", "lean:h", "a", "1", "b", "2"),
        conn.execute("HGETALL", "lean:h"),
        conn.execute("DEL", "lean:h"),
        return_exceptions=True,
    )
    assert results[0] is True  # redis-py's reply shapes: SET → bool
    assert isinstance(results[1], rex.ResponseError)
    assert "not an integer" in str(results[1])
    assert results[2] == b"text"
    assert isinstance(results[3], rex.ResponseError)
    assert "WRONGTYPE" in str(results[3])
    assert isinstance(results[4], rex.ResponseError)
    assert "Function not found" in str(results[4])  # what RedisStore._fcall looks for
    assert isinstance(results[5], rex.NoScriptError)
    assert results[6] == 2
    assert results[7] == {b"a": b"1", b"b": b"2"}  # HGETALL → dict, as before
    assert results[8] == 1


async def test_large_replies_arrive_whole(conn: LeanConnection) -> None:
    big = os.urandom(3 << 20)
    await conn.execute("SET", "lean:big", big)
    replies = await asyncio.gather(
        conn.execute("GET", "lean:big"),
        conn.execute("STRLEN", "lean:big"),
        conn.execute("GET", "lean:big"),
    )
    assert replies == [big, len(big), big]
    await conn.execute("DEL", "lean:big")


async def test_a_cancelled_caller_does_not_shift_the_replies(conn: LeanConnection) -> None:
    await conn.execute("SET", "lean:a", "A")
    await conn.execute("SET", "lean:b", "B")
    first = asyncio.ensure_future(conn.execute("GET", "lean:a"))
    second = asyncio.ensure_future(conn.execute("GET", "lean:b"))
    await asyncio.sleep(0)  # both submitted
    first.cancel()
    assert await second == b"B"
    assert await conn.execute("GET", "lean:a") == b"A"


async def test_auth_and_select_from_the_url(tmp_path: Path) -> None:
    # The fixture's readiness PING has no password: require one once it is up.
    with redis_server(tmp_path) as srv:
        with redis.Redis(port=srv.port) as setup:
            setup.config_set("requirepass", "s3cret")
        # One connection, so SELECT sticks for the checks below.
        admin = redis.Redis(port=srv.port, password="s3cret", single_connection_client=True)
        admin.execute_command("ACL", "SETUSER", "alice", "on", ">alic3", "~*", "+@all")
        by_password = LeanConnection(options_from_url(f"redis://:s3cret@127.0.0.1:{srv.port}/3"))
        by_user = LeanConnection(options_from_url(f"redis://alice:alic3@127.0.0.1:{srv.port}/5"))
        wrong = LeanConnection(options_from_url(f"redis://:nope@127.0.0.1:{srv.port}/0"))
        try:
            await by_password.execute("SET", "where", "three")
            await by_user.execute("SET", "where", "five")
            admin.execute_command("SELECT", 3)
            assert admin.get("where") == b"three"
            admin.execute_command("SELECT", 5)
            assert admin.get("where") == b"five"
            admin.execute_command("SELECT", 0)
            assert admin.get("where") is None  # db 0 untouched
            assert await by_user.execute("ACL", "WHOAMI") == b"alice"
            with pytest.raises(StoreUnavailable, match="credentials"):
                await wrong.execute("PING")
        finally:
            await by_password.close()
            await by_user.close()
            await wrong.close()
            admin.close()


async def test_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    with redis_server(tmp_path, "--appendonly", "yes", "--appendfsync", "always") as srv:
        connection = LeanConnection(options_from_url(srv.url))
        try:
            await connection.execute("SET", "kept", "yes")
            pending = asyncio.ensure_future(connection.execute("BLPOP", "never", 0))
            await asyncio.sleep(0.05)
            srv.kill(signal.SIGKILL)
            with pytest.raises(StoreUnavailable):
                await pending  # owed when the connection died
            with pytest.raises(StoreUnavailable):
                await connection.execute("GET", "kept")  # down: refused, not hung
            srv.start()  # same port, same directory
            assert await connection.execute("GET", "kept") == b"yes"
        finally:
            await connection.close()


async def test_times_out_on_a_stopped_server_then_recovers(server: RedisServer) -> None:
    connection = LeanConnection(options_from_url(server.url, timeout_s=0.3))
    try:
        assert await connection.execute("PING") is True
        os.kill(server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailable, match="did not answer"):
                await connection.execute("GET", "lean:paused")
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert await connection.execute("PING") is True
    finally:
        await connection.close()


async def test_back_pressure_caps_the_replies_owed(server: RedisServer) -> None:
    connection = LeanConnection(options_from_url(server.url, max_in_flight=8))
    try:
        await connection.execute("DEL", "lean:bp")
        os.kill(server.pid, signal.SIGSTOP)
        try:
            calls = [
                asyncio.ensure_future(connection.execute("INCR", "lean:bp")) for _ in range(100)
            ]
            await asyncio.sleep(0.1)
            proto = connection._proto
            assert proto is not None
            assert len(proto.owed_futures()) == 8  # the rest wait for the backlog to halve
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert sorted(await asyncio.gather(*calls)) == list(range(1, 101))
    finally:
        await connection.close()


async def test_writers_held_back_by_a_full_buffer_fail_when_the_server_dies(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as srv:
        connection = LeanConnection(options_from_url(srv.url))
        try:
            await connection.execute("PING")
            os.kill(srv.pid, signal.SIGSTOP)
            big = b"x" * (1 << 20)
            # Far more than the socket buffers and the 1 MiB high-water mark take.
            first = [
                asyncio.ensure_future(connection.execute("SET", f"b{i}", big)) for i in range(16)
            ]
            await asyncio.sleep(0.2)
            proto = connection._proto
            assert proto is not None
            assert proto.gate is not None  # the transport asked us to stop writing
            held = [asyncio.ensure_future(connection.execute("GET", "b0")) for _ in range(4)]
            srv.kill(signal.SIGKILL)
            # Everyone hears of it (the guard only keeps a hang from stalling the suite).
            outcomes = await asyncio.wait_for(
                asyncio.gather(*first, *held, return_exceptions=True), timeout=30
            )
            assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes
        finally:
            await connection.close()


def test_options_from_url() -> None:
    plain = options_from_url("redis://u:p%40ss@example.test:6380/4")
    assert (plain.host, plain.port, plain.username, plain.password, plain.db) == (
        "example.test",
        6380,
        "u",
        "p@ss",
        4,
    )
    assert plain.ssl is None
    assert options_from_url("rediss://example.test:6380/0").ssl is not None
    assert options_from_url("unix:///tmp/redis.sock?db=2") == Options(path="/tmp/redis.sock", db=2)


def test_commands_route_by_their_first_key() -> None:
    assert command_slot(("GET", "{user}:x")) == command_slot(("SET", b"{user}:y", 1))
    assert command_slot(("FCALL", "f", 2, "{user}:a", "other")) == command_slot(("GET", "{user}"))
    assert command_slot(("FCALL", "f", 0)) is None


# -- Redis Cluster ----------------------------------------------------------------------------


def _cli(srv: RedisServer, *args: str | int) -> Any:
    with redis.Redis(port=srv.port) as client:
        return client.execute_command(*args)


def _owner(servers: list[RedisServer], slot: int) -> RedisServer:
    for start, end, primary, *_ in _cli(servers[0], "CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return next(s for s in servers if s.port == int(primary[1]))
    raise AssertionError(f"nobody owns slot {slot}")


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    # Slots are moved here: a cluster of its own, not the contract suite's.
    with redis_cluster(tmp_path_factory.mktemp("lean-cluster")) as servers:
        yield servers


async def test_cluster_follows_ask_and_moved_while_a_slot_migrates(
    own_cluster: list[RedisServer],
) -> None:
    client = RedisCluster(host="127.0.0.1", port=own_cluster[0].port)
    lean = LeanCluster(client, Options())
    key = "{lean-migrate}:k"
    slot = command_slot(("GET", key))
    assert slot is not None
    try:
        await lean.execute("SET", key, "v1")  # the map is read now; it goes stale below
        source = _owner(own_cluster, slot)
        target = next(s for s in own_cluster if s is not source)
        source_id = _cli(source, "CLUSTER", "MYID").decode()
        target_id = _cli(target, "CLUSTER", "MYID").decode()
        _cli(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        _cli(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        _cli(source, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", key)
        # Mid-migration the source answers ASK for the moved key: ASKING + GET on the target.
        assert await lean.execute("GET", key) == b"v1"
        for srv in own_cluster:
            _cli(srv, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        # Now the source answers MOVED: the map is refreshed through redis-py.
        assert await lean.execute("SET", key, "v2") is True
        assert await lean.execute("GET", key) == b"v2"
        assert _cli(target, "GET", key) == b"v2"
        owner = client.nodes_manager.get_node_from_slot(slot)
        assert int(owner.port) == target.port
    finally:
        await lean.close()
        await client.aclose()


async def test_cluster_one_write_per_shard_per_pass(own_cluster: list[RedisServer]) -> None:
    client = RedisCluster(host="127.0.0.1", port=own_cluster[0].port)
    lean = LeanCluster(client, Options())
    try:
        keys = [f"{{lean-spread-{i}}}" for i in range(300)]
        await asyncio.gather(*(lean.execute("SET", k, k) for k in keys))
        values = await asyncio.gather(*(lean.execute("GET", k) for k in keys))
        assert values == [k.encode() for k in keys]
        assert len(lean._nodes) == len(own_cluster)  # one connection per primary
    finally:
        await lean.close()
        await client.aclose()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the certificate is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_for_rediss_urls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls_port = _free_tcp_port()
    tls = ("--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    tls += ("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    with redis_server(tmp_path / "srv", *tls):
        trusted = LeanConnection(
            options_from_url(f"rediss://127.0.0.1:{tls_port}/2?ssl_ca_certs={cert}")
        )
        untrusted = LeanConnection(options_from_url(f"rediss://127.0.0.1:{tls_port}/0"))
        try:
            assert await trusted.execute("SET", "over", "tls") is True
            assert await trusted.execute("GET", "over") == b"tls"
            with pytest.raises(StoreUnavailable, match="cannot connect"):
                await untrusted.execute("PING")  # an unknown CA is refused, not ignored
        finally:
            await trusted.close()
            await untrusted.close()


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
