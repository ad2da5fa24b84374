"""Request and response plumbing shared by the resource modules."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import FieldError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["MAX_BODY_BYTES", "json_response", "raw_json_response", "read_json"]

MAX_BODY_BYTES = 1024 * 1024


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return raw_json_response(orjson.dumps(data), status, headers)


def raw_json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """An answer whose JSON is already serialised."""
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def check_size(request: web.Request, limit: int = MAX_BODY_BYTES) -> None:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body may have at most {limit} bytes")


async def read_json(
    request: web.Request, *, form_fields: tuple[str, ...] = (), limit: int = MAX_BODY_BYTES
) -> Any:
    """The JSON body, checked in API.md's order: size (413), media type (415), JSON (400).

    With ``form_fields``, a form-encoded body is accepted too and those fields are read.
    ``limit`` lowers the size limit for an endpoint whose bodies are small by nature.
    """
    check_size(request, limit)
    ctype = request.content_type
    if form_fields and ctype == "application/x-www-form-urlencoded":
        form = await _read(request)
        from urllib.parse import parse_qs

        parsed = parse_qs(form.decode("utf-8", "replace"))
        return {name: parsed[name][0] for name in form_fields if name in parsed}
    if ctype != "application/json" and not (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raise UnsupportedMediaType("send the body as application/json")
    raw = await _read(request)
    if len(raw) > limit:  # sent without a Content-Length
        raise PayloadTooLarge(f"the body may have at most {limit} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "the body is not valid JSON", status=400, errors=[FieldError("", "not valid JSON")]
        ) from None
    _refuse_duplicate_names(raw, data)
    return data


def _refuse_duplicate_names(raw: bytes, data: Any) -> None:
    """422 for an object that names a member twice (JSON parsers keep the last one,
    so the sender and the gateway could read different bodies).

    orjson cannot report duplicates, and the decision path is benchmarked, so
    the common case is settled by counting quotes: orjson's compact
    re-serialisation of what it parsed has the body's strings, minus those of
    any member a repeated name overwrote (its name at least: two quotes). Only
    ``\\u`` escapes (``\\u0022`` is a quote the body does not show) or a
    difference in the counts send the body to a second parse with the
    standard library's hook, which sees every name.
    """
    try:
        if b"\\u" not in raw and raw.count(b'"') == orjson.dumps(data).count(b'"'):
            return
    except orjson.JSONEncodeError:
        pass  # nested deeper than orjson writes (255): the second parse decides
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except RecursionError:
        raise InvalidRequest(
            "the body is nested too deeply", errors=[FieldError("", "nested too deeply")]
        ) from None
    except _DuplicateName as exc:
        raise InvalidRequest(
            "the body names a member twice",
            errors=[FieldError("", f"the member name {exc.name!r} appears twice in one object")],
        ) from None


class _DuplicateName(Exception):
    def __init__(self, name: str) -> None:
        self.name = name[:64]


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _DuplicateName(name)
        seen[name] = value
    return seen


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body may have at most {MAX_BODY_BYTES} bytes") from None


def require_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequest(
            "the body must be a JSON object", errors=[FieldError("", "must be an object")]
        )
    return data
