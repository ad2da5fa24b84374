"""Requests aiohttp's parser refuses get the API's problem+json too (issue 14, item 4)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.conftest import Demo

SECRET = "xk_live_" + "s" * 40


async def _raw(demo: Demo, request: bytes) -> tuple[str, dict[str, str], bytes]:
    server = demo.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


@pytest.mark.parametrize("where", ["header", "request line"])
async def test_an_oversized_header_is_problem_json_and_quotes_nothing(
    demo: Demo, where: str
) -> None:
    padding = "a" * 9000
    if where == "header":
        request = f"GET /v1/scenes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}{padding}"
    else:
        request = f"GET /v1/scenes?q={SECRET}{padding} HTTP/1.1\r\nHost: x"
    status, headers, body = await _raw(demo, f"{request}\r\n\r\n".encode())
    assert status.split(" ")[1] == "431"
    assert headers["content-type"].startswith("application/problem+json")
    problem = orjson.loads(body)
    assert problem["code"] == "headers_too_large"
    assert problem["status"] == 431
    assert SECRET[:12] not in body.decode()


async def test_bytes_that_are_not_http_get_a_problem_400(demo: Demo) -> None:
    status, headers, body = await _raw(demo, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert status.split(" ")[1] == "400"
    assert headers["content-type"].startswith("application/problem+json")
    assert orjson.loads(body)["code"] == "bad_request"
