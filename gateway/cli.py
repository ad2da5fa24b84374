"""The ``xinyi-gateway`` command.

xinyi-gateway serve [--demo [--upstream] [--reset]] [--config FILE] [--host H] [--port P]
                    [--state-dir DIR] [--store URL]
xinyi-gateway policy lint [--dir DIR] [FILE ...]
xinyi-gateway policy test [--dir DIR]
xinyi-gateway policy prove [--dir DIR] [FILE ...]
xinyi-gateway policy diff OLD NEW [--dir DIR]
xinyi-gateway policy explain SCENE --facts FILE.json [--as-of DATE] [--dir DIR]
xinyi-gateway policy bundle build [--dir DIR] --out FILE | sign FILE --key PEM
                          | verify FILE --keys JWKS | keygen --key PEM --jwks JWKS
xinyi-gateway keys list|add [--alg EdDSA|ES256]|activate KID|retire KID
                   [--state-dir DIR | --config FILE]
xinyi-gateway audit verify [--state-dir DIR | --config FILE | --store URL]
xinyi-gateway data import FILE [--format jsonl|csv]
                          [--state-dir DIR | --config FILE | --dataset PATH]
xinyi-gateway outbox list [--dead] | retry (ITEM_ID | --all-dead) [--state-dir DIR | --store URL]
xinyi-gateway audit report --month YYYY-MM [--format csv|xlsx] [--out FILE] [--role R]
                           [--config FILE] [--state-dir DIR] [--store URL]
xinyi-gateway loans overdue [--config FILE] [--state-dir DIR] [--store URL] [--since T] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import access_log
from gateway.loans import cli as loans_cli
from gateway.logs import configure_logging
from gateway.policy.bundle import BundleError
from gateway.policy.loader import PolicyLoadError
from gateway.settings import ConfigError, Settings, load_settings

__all__ = ["main"]

log = logging.getLogger("xinyi.cli")


def _serve(args: argparse.Namespace) -> int:
    """Refuse early and write late: lock the state, bind the port, then prepare and serve.

    Nothing is written (demo credentials, partners file, state) until this
    process holds the state directory and its port, so a second gateway
    started by mistake changes nothing the first relies on.
    """
    from gateway.store.embedded.lock import StateDirLocked

    try:
        return _serve_locked(args)
    except StateDirLocked as exc:
        print(exc, file=sys.stderr)
        return 1


def _serve_locked(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.demo import demo_overrides, prepare_demo, seed_consents, write_demo_json
    from gateway.loans.demo import seed_loans
    from gateway.store.embedded.lock import lock_state_dir

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.store:
        overrides["store"] = args.store
    if args.upstream and not args.demo:
        print(
            "--upstream starts the fake credit platform of the demo: use it with --demo",
            file=sys.stderr,
        )
        return 2
    state_dir: Path | None = None
    if args.demo:
        state_dir = Path(args.state_dir or ".xinyi-demo").resolve()
        overrides.update(demo_overrides(state_dir))
    elif args.state_dir:
        overrides["state_dir"] = Path(args.state_dir).resolve()
    try:
        settings = load_settings(Path(args.config) if args.config else None, overrides)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    workers = max(1, args.workers)
    if workers > 1 and args.upstream:
        print(
            "--upstream runs the fake platform inside the one worker: drop --workers",
            file=sys.stderr,
        )
        return 2
    if workers > 1 and settings.store_url.startswith("sqlite:"):
        print(
            "--workers needs a shared store: the embedded store keeps rate limits, access "
            "tokens and status lists in one process. Use --store redis://… or run one worker.",
            file=sys.stderr,
        )
        return 2
    # Held for the life of the process; the embedded store takes it again when it opens.
    # Replicas on a shared store (Redis) may share a state directory's keys: no lock then,
    # except in demo mode, which rewrites the directory's credentials.
    locks = [lock_state_dir(state_dir)] if state_dir is not None else []
    if settings.store_url.startswith("sqlite:///"):
        locks.append(lock_state_dir(Path(settings.store_url.removeprefix("sqlite://")).parent))
    # The demo binds before it writes its credentials; a configured gateway checks its
    # policies and keys first, so a refused start never opens the port.
    sock: socket.socket | None = None
    if state_dir is not None and workers == 1 and not args.reuse_port:
        try:
            sock = _bind(settings.host, settings.port)
        except OSError as exc:
            print(_cannot_listen(settings, exc), file=sys.stderr)
            return 1
    setup = None
    if state_dir is not None:
        today = dt.datetime.now(dt.UTC).date()
        setup = prepare_demo(state_dir, today, rate_per_second=args.demo_rate, reset=args.reset)

    async def announce(gw: Any) -> None:
        if setup is not None:
            await seed_consents(setup, gw.consents.create, gw.now(), gw.store.get_consent)
            # Last: demo.json names credentials only once they are what the server accepts.
            path = write_demo_json(setup, settings.issuer)
            await seed_loans(gw, setup, path)
            log.info("demo ready", extra={"demo_json": str(path), "base_url": settings.issuer})

    async def factory(seed: bool) -> web.Application:
        serving = settings
        upstream = contextlib.AsyncExitStack()
        if args.upstream and setup is not None:
            from gateway.demo import demo_platform
            from gateway.settings import CreditSourceSettings

            credit = await upstream.enter_async_context(demo_platform(setup))
            serving = settings.model_copy(update={"credit_source": CreditSourceSettings(**credit)})
            log.info("fake credit platform serving", extra={"url": credit["options"]["base_url"]})
        app = await create_app(serving)
        app.on_cleanup.append(lambda _app: upstream.aclose())
        from gateway.api.keys import GATEWAY

        # SIGHUP reloads policies and keys; a refused set leaves the serving one in place.
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, app[GATEWAY].reload)
        if seed:
            await announce(app[GATEWAY])
        _settle_gc()
        return app

    def run(seed: bool) -> int:
        try:
            web.run_app(
                factory(seed),
                host=None if sock is not None else settings.host,
                port=None if sock is not None else settings.port,
                sock=sock,
                access_log_class=access_log.JsonAccessLogger,
                access_log=logging.getLogger("xinyi.access") if not args.no_access_log else None,
                print=None,
                loop=_new_loop(),
                reuse_port=args.reuse_port or workers > 1,
            )
        except PolicyLoadError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            print("the policy set was refused; the gateway did not start", file=sys.stderr)
            return 1
        except BundleError as exc:
            print(f"{exc}; the gateway did not start", file=sys.stderr)
            return 1
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise
            print(_cannot_listen(settings, exc), file=sys.stderr)
            return 1
        finally:
            # Forked workers leave through os._exit, which skips atexit.
            access_log.flush()
        return 0

    if workers == 1:
        return run(seed=True)
    return _run_workers(workers, settings, announce, run)


def _run_workers(workers: int, settings: Settings, announce: Any, run: Any) -> int:
    """Prepare shared state once, then fork workers that share the port (SO_REUSEPORT)."""
    from gateway.runtime import Gateway

    async def prepare() -> None:
        # Creates keys and the pseudonym secret before any worker races to do it.
        gw = await Gateway.open(settings)
        try:
            await announce(gw)
        finally:
            await gw.close()

    try:
        asyncio.run(prepare())
    except (PolicyLoadError, BundleError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 1
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            os._exit(run(seed=False))
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status


def _cannot_listen(settings: Settings, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    hint = " (is another gateway running? choose another --port)"
    return f"cannot listen on {settings.host}:{settings.port}: {reason}{hint}"


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, before anything is prepared: a port in use stops the start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _settle_gc() -> None:
    """Keep the garbage collector off the start-up heap, and run it less often.

    Everything built so far (modules, policies, keys, caches) lives as long as
    the process; ``gc.freeze`` moves it out of the collector's sight, so later
    collections only walk what requests allocate. A decision allocates a few
    hundred container objects, nearly all freed by reference counting, so a
    young-generation collection every 700 allocations (the default) mostly
    walks objects about to die anyway. Together this saved 10-20 µs of CPU
    per decision in bench/stages.py (BENCHMARKS.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _ui_password(args: argparse.Namespace) -> int:
    from gateway.ui.cli import hash_password_command

    return hash_password_command()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xinyi-gateway", description="信易+ incentive gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP gateway")
    serve.add_argument("--demo", action="store_true", help="demo partners, data and keys")
    serve.add_argument("--config", help="gateway YAML configuration (not with --demo)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--state-dir", help="state directory (demo default ./.xinyi-demo)")
    serve.add_argument("--store", help="store URL, e.g. sqlite:///var/lib/xinyi/state.sqlite3")
    serve.add_argument(
        "--upstream",
        action="store_true",
        help="with --demo: serve the demo data from a fake credit platform over HTTP "
        "and read it through the platform adapter",
    )
    serve.add_argument(
        "--reset", action="store_true", help="demo: new API keys and consents (default: reuse)"
    )
    serve.add_argument("--demo-rate", type=float, default=200.0, help=argparse.SUPPRESS)
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (needs Redis)"
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    from gateway.policy.cli import add_policy_commands
    from gateway.tokens.cli import add_keys_commands

    add_policy_commands(sub)
    add_keys_commands(sub)

    ui = sub.add_parser("ui", help="the pages at /ui").add_subparsers(
        dest="ui_command", required=True
    )
    ui_password = ui.add_parser(
        "hash-password", help="read a staff password (stdin) and print its Argon2id hash"
    )
    ui_password.set_defaults(run=_ui_password)

    from gateway.audit.cli import add_audit_commands
    from gateway.data_cli import add_data_commands
    from gateway.outbox.cli import add_outbox_commands

    add_audit_commands(sub)
    add_data_commands(sub)
    add_outbox_commands(sub)

    loans_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
