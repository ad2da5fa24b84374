"""One store contract, three backends: embedded, Redis, and a 3-master Redis Cluster."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.store.base import Store
from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore
from tests.redis_servers import (
    RedisServer,
    cluster_url,
    redis_available,
    redis_cluster,
    redis_server,
)

BACKENDS = ["embedded", "redis", "redis_cluster"]


@pytest.fixture(scope="session")
def single_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not redis_available():
        pytest.skip("redis-server is not installed")
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    if not redis_available():
        pytest.skip("redis-server is not installed")
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as servers:
        yield servers


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "embedded":
        backend = EmbeddedStore(tmp_path / "state.sqlite3")
    else:
        # A fresh key prefix per test keeps tests apart on a shared server.
        prefix = "t" + secrets.token_hex(4)
        if request.param == "redis":
            url = request.getfixturevalue("single_redis").url
        else:
            url = cluster_url(request.getfixturevalue("cluster"))
        backend = RedisStore(url, prefix=prefix, connect_timeout_s=5)
    await backend.open()
    yield backend
    await backend.close()
