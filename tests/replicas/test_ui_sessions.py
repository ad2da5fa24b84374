"""A staff session made on one replica is honoured, and ended, on the other (one Redis).

Replica A (``serve --demo``) and replica B (``serve --config`` on A's state) share
a Redis; a browser behind a load balancer may reach either. The cookie is carried
by hand here, so nothing but the shared store can make B know the session.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.replicas.conftest import (
    DemoData,
    Replica,
    config_replica,
    demo_replica,
    free_port,
)

pytestmark = pytest.mark.slow

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Pair:
    a: Replica
    b: Replica
    demo: DemoData

    def password(self, username: str) -> str:
        return str(
            next(u["password"] for u in self.demo.raw["ui_users"] if u["username"] == username)
        )


@pytest.fixture(scope="module")
def pair(replica_redis: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    store_url = replica_redis.url  # type: ignore[attr-defined]
    state_dir = tmp_path_factory.mktemp("ui-pair")
    port_a = free_port()
    base_url = f"http://127.0.0.1:{port_a}"
    with (
        demo_replica(state_dir, store_url, rate=50, port=port_a, base_url=base_url) as a,
        config_replica(state_dir, store_url, base_url) as b,
    ):
        yield Pair(a, b, DemoData.load(state_dir))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.DummyCookieJar()  # cookies go only where a test sends them
    async with aiohttp.ClientSession(
        cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=20)
    ) as client:
        yield client


async def _sign_in(http: aiohttp.ClientSession, replica: Replica, pair: Pair, user: str) -> str:
    async with http.get(replica.base + "/ui/login") as page:
        token = _CSRF.search(await page.text())
        login_cookie = page.cookies["xinyi_login_csrf"].value
    assert token
    async with http.post(
        replica.base + "/ui/login",
        data={"csrf": token.group(1), "username": user, "password": pair.password(user)},
        headers={"Cookie": f"xinyi_login_csrf={login_cookie}"},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303, await answer.text()
        return answer.cookies["xinyi_session"].value


async def _get(
    http: aiohttp.ClientSession, replica: Replica, path: str, session: str
) -> tuple[int, str]:
    async with http.get(
        replica.base + path, headers={"Cookie": f"xinyi_session={session}"}, allow_redirects=False
    ) as answer:
        return answer.status, await answer.text()


async def test_a_session_from_one_replica_works_on_the_other_until_signed_out(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    session = await _sign_in(http, pair.a, pair, "hall-clerk")
    status, html = await _get(http, pair.b, "/ui/counter", session)
    assert status == 200
    token = _CSRF.search(html)
    assert token
    # B decides for the clerk (CSRF token made on A), and A's operator sees it on the dashboard
    subject = pair.demo.subject("red-list")
    async with http.post(
        pair.b.base + "/ui/counter",
        data={
            "csrf": token.group(1),
            "kind": "enterprise",
            "subject_id": subject["id"],
            "matter_code": "LN-210100-0001",
            "key_missing": "no",
        },
        headers={"Cookie": f"xinyi_session={session}"},
    ) as answer:
        assert answer.status == 200
        assert "可走绿色通道" in await answer.text()
    operator = await _sign_in(http, pair.b, pair, "operator")
    status, html = await _get(http, pair.a, "/ui/dashboard", operator)
    assert status == 200
    assert "信易批：最近 60 分钟共 1 个决定" in html
    # signing out on A ends the session on B at once
    async with http.post(
        pair.a.base + "/ui/logout",
        data={"csrf": token.group(1)},
        headers={"Cookie": f"xinyi_session={session}"},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303
    status, _ = await _get(http, pair.b, "/ui/counter", session)
    assert status == 303
