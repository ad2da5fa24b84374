"""Where a decision's CPU goes, measured in process, without HTTP.

    .venv/bin/python bench/stages.py [--decisions 6400]

Builds the demo gateway exactly as ``serve --demo`` does (fresh temp state
directory, real SQLite store, real keys), then, on the request mix of
bench/run.py:

1. runs the decision handler (error middleware + ``create_decision``) on
   prebuilt requests at several concurrencies and reports CPU per decision:
   the whole process (event loop + SQLite writer thread) and the event-loop
   thread alone. Concurrency sets the group-commit batch size.
2. repeats at concurrency 64 with the audit append switched off, to price
   durability (group commit, hash chain, SQLite writer);
3. times each step of the hot path alone, per call and per decision of the mix.

The HTTP layer is not in these numbers: bench/bare.py prices it. Run it
pinned to one CPU (``taskset -c 0``) to compare with bench/run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import orjson
import uvloop
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import run as bench_run  # noqa: E402

from gateway import access_log  # noqa: E402
from gateway.access_log import JsonAccessLogger  # noqa: E402
from gateway.api.decisions import create_decision  # noqa: E402
from gateway.api.http import json_response, read_json  # noqa: E402
from gateway.api.keys import GATEWAY  # noqa: E402
from gateway.api.schemas import DecisionBody  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.demo import prepare_demo, seed_consents, write_demo_json  # noqa: E402
from gateway.identifiers import validate_subject_id  # noqa: E402
from gateway.logs import configure_logging  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.tokens.signer import BENEFIT_TYP  # noqa: E402


def mocked(app: web.Application, r: dict[str, Any]) -> web.Request:
    body = r["body"].encode()
    headers = CIMultiDict(
        {
            "Authorization": f"Bearer {r['key']}",
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        }
    )
    req = make_mocked_request(
        "POST", r["path"], headers=headers, match_info={"scene": r["path"].split("/")[3]}, app=app
    )
    req._read_bytes = body  # what request.read() returns once the body has arrived
    return req


def cpu_per_call(n: int, t0: tuple[float, float, float]) -> tuple[float, float, float]:
    p, t, w = time.process_time(), time.thread_time(), time.perf_counter()
    return 1e6 * (p - t0[0]) / n, 1e6 * (t - t0[1]) / n, 1e6 * (w - t0[2]) / n


def clocks() -> tuple[float, float, float]:
    return time.process_time(), time.thread_time(), time.perf_counter()


async def handler_cost(
    middleware: Any, pool: list[web.Request], n: int, concurrency: int
) -> tuple[float, float, float]:
    async def one(req: web.Request) -> None:
        resp = await middleware(req, create_decision)
        if resp.status != 200:
            raise RuntimeError(f"{req.path}: {resp.status} {resp.body!r}")

    start = clocks()
    for i in range(0, n, concurrency):
        await asyncio.gather(*(one(pool[(i + j) % len(pool)]) for j in range(concurrency)))
    return cpu_per_call(n, start)


REPEATS = 5


def timed(fn: Callable[[Any], Any], items: list[Any], loops: int) -> float:
    """µs per call of ``fn`` over ``items``: the best of a few repeats, as timeit does."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(loops):
            for item in items:
                fn(item)
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / (loops * len(items))


async def atimed(fn: Callable[[Any], Awaitable[Any]], items: list[Any], loops: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(loops):
            for item in items:
                await fn(item)
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / (loops * len(items))


def token_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def main() -> int:
    parser = argparse.ArgumentParser(description="per-stage CPU of a decision, in process")
    parser.add_argument("--decisions", type=int, default=6400, help="decisions per measurement")
    parser.add_argument("--loops", type=int, default=50, help="loops over the mix per step")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the access-log step below re-enables its own logger

    tmp = Path(tempfile.mkdtemp(prefix="xinyi-stages-"))
    setup = prepare_demo(tmp, dt.datetime.now(dt.UTC).date(), rate_per_second=1e9)
    settings = load_settings(None, setup.settings_overrides())
    app = await create_app(settings)
    gw = app[GATEWAY]
    try:
        await seed_consents(setup, gw.consents.create, gw.now())
        demo = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
        requests = bench_run.build_requests(demo)
        mix = len(requests)
        pool = [mocked(app, r) for r in requests for _ in range(3)]
        middleware = app.middlewares[0]

        # Warm caches (records, policies), and keep one response per request.
        responses = []
        for req in pool[::3]:
            resp = await middleware(req, create_decision)
            responses.append(orjson.loads(resp.body))
        await handler_cost(middleware, pool, 640, 64)

        n = args.decisions
        print(f"handler only (no HTTP), {n} decisions of a {mix}-request mix, µs per decision")
        print(f"{'':34}{'process':>9}{'loop':>9}{'wall':>9}")
        for concurrency in (1, 8, 64):
            cost = await handler_cost(
                middleware, pool, n if concurrency > 1 else n // 4, concurrency
            )
            label = f"concurrency {concurrency} (commit batch ~{concurrency})"
            print(f"  {label:32}{cost[0]:9.1f}{cost[1]:9.1f}{cost[2]:9.1f}")
        store = gw.store

        async def no_append(_write: Any) -> None:
            return None

        async def inline(fn: Any, *fn_args: Any) -> Any:
            return fn(*fn_args)

        async def skip(_fn: Any, *_args: Any) -> None:
            return None

        # Price the append, then split it: the same SQLite transactions run inline on
        # the loop thread (no executor hand-off, no second thread wanting the GIL).
        for label, attribute, replacement in (
            ("concurrency 64, no audit append", "record_decision", no_append),
            ("concurrency 64, SQLite on the loop", "_in_writer", inline),
            ("concurrency 64, SQLite skipped", "_in_writer", skip),
        ):
            with patch.object(store, attribute, replacement):
                cost = await handler_cost(middleware, pool, n, 64)
            print(f"  {label:32}{cost[0]:9.1f}{cost[1]:9.1f}{cost[2]:9.1f}")

        # -- single steps ---------------------------------------------------------------
        loops = args.loops
        today = gw.today()
        bodies = [orjson.loads(r["body"]) for r in requests]
        models = [DecisionBody.model_validate(b) for b in bodies]
        scenes = [r["path"].split("/")[3] for r in requests]
        compiled = [gw.policies.active(s, today) for s in scenes]
        records = [
            await gw.pipeline.records.fetch(
                m.subject.kind, m.subject.id, gw.pseudonyms.internal(m.subject.kind, m.subject.id)
            )
            for m in models
        ]
        partners = [await gw.authenticate(req) for req in pool[::3]]
        granted = [
            (partners[i], token_claims(resp["token"]))
            for i, resp in enumerate(responses)
            if resp.get("token")
        ]
        key = gw.signer.key_for("EdDSA")
        consent_cases = [
            (m, p, c)
            for m, p, c in zip(models, partners, compiled, strict=True)
            if m.subject.kind == "person" or m.subject.kind in c.policy.consent_required_for
        ]

        async def consent(case: tuple[Any, Any, Any]) -> None:
            m, p, c = case
            await gw.consents.require(
                m.consent_id,
                kind=m.subject.kind,
                subject_key=gw.pseudonyms.internal(m.subject.kind, m.subject.id),
                partner=p.id,
                scene=c.policy.scene,
                purpose=m.purpose,
                now=gw.now(),
            )

        metrics = gw.metrics
        # As the pipeline does: stage children resolved once, the decision counter per call.
        stage_children = [metrics.stage_seconds.labels(n) for n in ("fetch", "evaluate", "a", "s")]

        def observe(i: int) -> None:
            for child in stage_children:
                child.observe(0.0001)
            metrics.decisions.labels(scenes[i], "granted", partners[i].id).inc()

        log_file = tmp / "access.log"
        log_stream = log_file.open("w", encoding="utf-8")
        configure_logging("INFO", stream=log_stream)  # access lines go through the root handler
        logging.disable(logging.NOTSET)
        access_logger = JsonAccessLogger(logging.getLogger("xinyi.access"), "")
        sample_response = json_response(responses[0])
        sample_response.headers["X-Request-Id"] = "0123456789abcdef"

        steps: list[tuple[str, float, int]] = [
            (
                "authenticate (API key hash, rate limit)",
                await atimed(gw.authenticate, pool, 3),
                mix,
            ),
            ("read body + orjson.loads", await atimed(read_json, pool, 3), mix),
            ("DecisionBody.model_validate", timed(DecisionBody.model_validate, bodies, loops), mix),
            (
                "validate_subject_id (python-stdnum)",
                timed(lambda m: validate_subject_id(m.subject.kind, m.subject.id), models, loops),
                mix,
            ),
            (
                "context model validate + dump",
                timed(
                    lambda i: (
                        compiled[i]
                        .context_model.model_validate(bodies[i]["context"])
                        .model_dump(exclude_none=True)
                    ),
                    list(range(mix)),
                    loops,
                ),
                mix,
            ),
            ("consent check", await atimed(consent, consent_cases, loops), len(consent_cases)),
            (
                "facts + policy evaluation",
                timed(
                    lambda i: compiled[i].evaluate(
                        compiled[i].plan.build(records[i], bodies[i]["context"], today)
                    ),
                    list(range(mix)),
                    loops,
                ),
                mix,
            ),
            (
                "pseudonym HMAC (x1, x2 when granted)",
                timed(lambda m: gw.pseudonyms.of("s", m.subject.kind, m.subject.id), models, loops),
                mix + len(granted),
            ),
            (
                "Ed25519 JWS sign (granted only)",
                timed(lambda g: gw.signer.sign_with(key, g[1], BENEFIT_TYP), granted, loops),
                len(granted),
            ),
            ("json_response (orjson + Response)", timed(json_response, responses, loops), mix),
            ("metrics (4 histograms + 1 counter)", timed(observe, list(range(mix)), loops), mix),
            (
                "access log line (JSON, to a file)",
                timed(lambda req: access_logger.log(req, sample_response, 0.001), pool, 10),
                mix,
            ),
        ]
        print("\nsingle steps: µs per call, and per decision of the mix (calls x share)")
        total = 0.0
        for name, per_call, calls in steps:
            per_decision = per_call * calls / mix
            total += per_decision
            print(f"  {name:42}{per_call:8.1f}{per_decision:8.1f}")
        print(f"  {'sum of the steps above':42}{'':8}{total:8.1f}")
        access_log.flush()
        log_stream.close()
    finally:
        await gw.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
