"""The baseline of DESIGN §11: a bare aiohttp JSON endpoint, one process, uvloop.

It serves the decision route so the benchmark sends it the very same requests
as the gateway: it parses the JSON body with orjson, reads a few fields and
answers with a ~1.2 KB JSON object (decision responses are 0.4-3.3 KB, ~1.6 KB
on average). No authentication, no validation, no storage, no access log.

    python bench/bare.py --port 8081 [--workers N]

With ``--workers N`` it forks N processes that share the port (SO_REUSEPORT),
as ``xinyi-gateway serve --workers N`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import time

import orjson
import uvloop
from aiohttp import web

# Stands in for the reasons part of a decision: fixed text, ~0.9 KB.
_REASONS = [
    {
        "rule": f"baseline-rule-{i}",
        "effect": "grant",
        "legal_basis": ["《社会信用体系建设规划纲要（2014—2020年）》", "baseline legal basis text"],
        "facts": ["enterprise.tax_credit_grade", "enterprise.clean_record_years"],
    }
    for i in range(4)
]


async def decide(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    subject = body["subject"]
    answer = {
        "decision_id": "dec_" + secrets.token_urlsafe(16),
        "scene": request.match_info["scene"],
        "outcome": "standard",
        "subject": {"kind": subject["kind"], "id": subject["id"]},
        "purpose": body.get("purpose"),
        "consent_id": body.get("consent_id"),
        "reasons": _REASONS,
        "issued_at": int(time.time()),
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/scenes/{scene}/decisions", decide)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    def serve() -> None:
        web.run_app(
            make_app(),
            host=args.host,
            port=args.port,
            access_log=None,
            print=None,
            loop=uvloop.new_event_loop(),
            reuse_port=args.workers > 1,
        )

    if args.workers <= 1:
        serve()
        return
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            serve()
            os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
