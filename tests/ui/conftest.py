"""Helpers for driving the pages in-process: sign in, read a form's CSRF token."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientResponse

from tests.conftest import Demo

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def password_of(demo: Demo, username: str) -> str:
    return str(next(u["password"] for u in demo.data["ui_users"] if u["username"] == username))


async def sign_in(demo: Demo, username: str, password: str | None = None) -> ClientResponse:
    page = await demo.client.get("/ui/login")
    token = csrf_of(await page.text())
    return await demo.client.post(
        "/ui/login",
        data={
            "csrf": token,
            "username": username,
            "password": password if password is not None else password_of(demo, username),
        },
        allow_redirects=False,
    )


async def page_csrf(demo: Demo, path: str) -> str:
    response = await demo.client.get(path)
    assert response.status == 200, await response.text()
    return csrf_of(await response.text())


def form(**values: Any) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}
