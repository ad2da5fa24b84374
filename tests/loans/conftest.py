"""The loan HTTP tests run on the embedded store and on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.redis import RedisStore
from tests.conftest import Demo, MakeDemo
from tests.redis_servers import redis_available, redis_server


@pytest.fixture(params=["embedded", "redis"])
async def loan_demo(
    request: pytest.FixtureRequest,
    make_demo: MakeDemo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Demo]:
    if request.param == "embedded":
        yield await make_demo()
        return
    if not redis_available():
        pytest.skip("redis-server is not installed")
    with redis_server(tmp_path / "redis") as server:
        monkeypatch.setenv("XINYI_STORE", server.url)
        demo = await make_demo()
        assert isinstance(demo.gateway.store, RedisStore)
        yield demo
        await demo.client.close()
