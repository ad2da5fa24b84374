"""A fake upstream credit platform: a real aiohttp server for tests and the demo.

It serves a dataset (the demo's, or any rows) the way the platform adapter
expects — ``POST /v1/records/query``, ``GET /v1/health``, and the bulk export
``GET /v1/export?format=jsonl|csv`` — and can be told to misbehave, from
Python (:meth:`FakePlatform.fail`) or over HTTP (``POST /_control/faults``):

* ``error``     answer 500
* ``slow``      answer correctly after ``delay`` seconds
* ``hang``      answer only when healed or stopped
* ``malformed`` a 200 whose body is not JSON
* ``partial``   a 200 that promises more bytes than it sends, then drops the connection
* ``invalid``   well-formed JSON whose record breaks the schema
* ``other_subject`` a valid answer about another subject

A fault lasts for ``times`` lookups, or until :meth:`heal` when ``times`` is None.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson
from aiohttp import web

from adapters.credit.base import CreditRecord, SubjectKind
from adapters.credit.wire import SubjectModel, record_json

__all__ = ["EXPORT_COLUMNS", "FakePlatform", "Fault", "export_bytes", "running_fake_platform"]

Fault = Literal["error", "slow", "hang", "malformed", "partial", "invalid", "other_subject"]
EXPORT_COLUMNS = (
    "subject_kind",
    "subject_id",
    "record_id",
    "type",
    "domain",
    "effective_document",
    "adverse",
    "decided_on",
    "publication_until",
    "status",
    "value",
    "title",
)


@dataclass
class _FaultPlan:
    fault: Fault
    times: int | None
    delay: float


@dataclass
class FakePlatform:
    """The platform's state: records per subject, the current fault, what it served."""

    token: str | None = None  # bearer token the platform expects, if any
    client: tuple[str, str] | None = None  # or the client id and secret it expects
    records: dict[tuple[str, str], list[CreditRecord]] = field(
        default_factory=lambda: defaultdict(list)
    )
    lookups: int = 0  # lookups received, faulty or not
    _plan: _FaultPlan | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def with_rows(
        cls, rows: Iterable[tuple[SubjectKind, str, CreditRecord]], token: str | None = None
    ) -> FakePlatform:
        platform = cls(token=token)
        for kind, subject_id, record in rows:
            platform.records[(kind, subject_id)].append(record)
        return platform

    def put(self, kind: SubjectKind, subject_id: str, records: list[CreditRecord]) -> None:
        """Replace a subject's records (the platform changed them)."""
        self.records[(kind, subject_id)] = list(records)

    def fail(self, fault: Fault, *, times: int | None = None, delay: float = 5.0) -> None:
        if fault not in get_args(Fault):
            raise ValueError(f"unknown fault {fault!r}")
        self._plan = _FaultPlan(fault, times, delay)

    def heal(self) -> None:
        """Answer correctly again; lookups held by ``hang`` or ``slow`` answer now."""
        self._plan = None
        self._release.set()
        self._release = asyncio.Event()

    def _take_fault(self) -> _FaultPlan | None:
        plan = self._plan
        if plan is None:
            return None
        if plan.times is not None:
            plan.times -= 1
            if plan.times <= 0:
                self._plan = None
        return plan

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/records/query", self._query)
        app.router.add_get("/v1/health", self._health)
        app.router.add_get("/v1/export", self._export)
        app.router.add_post("/_control/faults", self._control)
        app.router.add_post("/_control/heal", self._control_heal)
        return app

    def _authorised(self, request: web.Request) -> bool:
        ok = True
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            ok = hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())
        if self.client is not None:
            client_id = request.headers.get("X-Client-Id", "")
            secret = request.headers.get("X-Client-Secret", "")
            ok = ok and client_id == self.client[0]
            ok = ok and hmac.compare_digest(secret.encode(), self.client[1].encode())
        return ok

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"status": "ok"})

    async def _query(self, request: web.Request) -> web.StreamResponse:
        self.lookups += 1
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            data = await request.json()
            subject = SubjectModel.model_validate_json(orjson.dumps(data["subject"]))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad request"}, status=400)
        key = (subject.kind, subject.id)
        answer = orjson.dumps(
            {
                "subject": {"kind": subject.kind, "id": subject.id},
                "records": [record_json(r) for r in self.records.get(key, [])],
            }
        )
        plan = self._take_fault()
        if plan is None:
            return _json(answer)
        if plan.fault == "error":
            return web.json_response({"error": "internal"}, status=500)
        if plan.fault in ("slow", "hang"):
            wait = None if plan.fault == "hang" else plan.delay
            release = self._release
            with suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), wait)
            return _json(answer)
        if plan.fault == "malformed":
            return _json(b'{"subject": {"kind": ' + answer[:7] + b"<html>oops")
        if plan.fault == "other_subject":
            other = {
                "kind": subject.kind,
                "id": subject.id[:-1] + ("0" if subject.id[-1] != "0" else "1"),
            }
            return _json(orjson.dumps({"subject": other, "records": []}))
        if plan.fault == "invalid":
            broken = orjson.loads(answer)
            broken["records"].append({"record_id": "x", "status": "maybe", "extra": True})
            return _json(orjson.dumps(broken))
        # partial: promise the whole body, send half, drop the connection.
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.content_length = len(answer)
        await resp.prepare(request)
        await resp.write(answer[: len(answer) // 2])
        if request.transport is not None:
            request.transport.close()
        return resp

    async def _export(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        fmt = request.query.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            return web.json_response({"error": "format is jsonl or csv"}, status=400)
        resp = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson" if fmt == "jsonl" else "text/csv"}
        )
        await resp.prepare(request)
        await resp.write(export_bytes(self.rows(), fmt))
        await resp.write_eof()
        return resp

    def rows(self) -> list[tuple[str, str, CreditRecord]]:
        return [(k, s, r) for (k, s), records in self.records.items() for r in records]

    async def _control(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            data = await request.json()
            self.fail(data["fault"], times=data.get("times"), delay=float(data.get("delay", 5.0)))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"fault": data["fault"], "times": data.get("times")})

    async def _control_heal(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        self.heal()
        return web.json_response({"fault": None})


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def export_bytes(rows: Iterable[tuple[str, str, CreditRecord]], fmt: str) -> bytes:
    """The platform's bulk export of ``rows`` as JSON Lines or CSV."""
    flat = [{"subject_kind": k, "subject_id": s, **record_json(r)} for k, s, r in rows]
    if fmt == "jsonl":
        return b"".join(orjson.dumps(row) + b"\n" for row in flat)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow(_csv_cells(row))
    return out.getvalue().encode()


def _csv_cells(row: dict[str, Any]) -> dict[str, str]:
    cells: dict[str, str] = {}
    for name in EXPORT_COLUMNS:
        value = row[name]
        if name == "value":
            cells[name] = "" if value is None else orjson.dumps(value).decode()
        elif isinstance(value, bool):
            cells[name] = "true" if value else "false"
        else:
            cells[name] = "" if value is None else str(value)
    return cells


@asynccontextmanager
async def running_fake_platform(
    platform: FakePlatform, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``platform`` on a loopback port; yields its base URL."""
    runner = web.AppRunner(platform.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound = runner.addresses[0]
        yield f"http://{bound[0]}:{bound[1]}"
    finally:
        platform.heal()  # let held lookups answer so the server stops at once
        await runner.cleanup()
