"""``xinyi-gateway outbox list|retry``: what waits to be delivered, and dead letters back.

xinyi-gateway outbox list [--dead] [--limit N] [--state-dir DIR | --store URL]
xinyi-gateway outbox retry (ITEM_ID | --all-dead) [--state-dir DIR | --store URL]

Lists show event ids, kinds, receivers, attempts and last errors: never a
payload (which holds pseudonyms) and never a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from gateway.outbox.backend import outbox_store
from gateway.settings import ConfigError, load_settings

__all__ = ["add_outbox_commands"]


def _store_url(args: argparse.Namespace) -> str | None:
    overrides: dict[str, Any] = {"state_dir": Path(args.state_dir or ".xinyi-demo").resolve()}
    if args.store:
        overrides["store"] = args.store
    try:
        return load_settings(None, overrides).store_url
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


async def _list(url: str, dead: bool, limit: int) -> None:
    from gateway.runtime import open_store

    store = open_store(url)
    await store.open()
    try:
        outbox = outbox_store(store)
        await outbox.open()
        items = await outbox.items("dead" if dead else "pending", limit)
    finally:
        await store.close()
    print(f"{'dead' if dead else 'pending'}: {len(items)}")
    for item in items:
        due = dt.datetime.fromtimestamp(item.next_at, dt.UTC).isoformat(timespec="seconds")
        print(
            f"{item.item_id}  {item.event.type}  to {item.partner}/{item.delivery}  "
            f"attempts {item.attempts}  {'since' if dead else 'due'} {due}"
            + (f"  last error: {item.last_error}" if item.last_error else "")
        )


async def _retry(url: str, item_id: str | None) -> int:
    from gateway.runtime import open_store

    store = open_store(url)
    await store.open()
    try:
        outbox = outbox_store(store)
        await outbox.open()
        return await outbox.retry(item_id)
    finally:
        await store.close()


def _run_list(args: argparse.Namespace) -> int:
    url = _store_url(args)
    if url is None:
        return 2
    asyncio.run(_list(url, args.dead, args.limit))
    return 0


def _run_retry(args: argparse.Namespace) -> int:
    if (args.item_id is None) == (not args.all_dead):
        print("name one ITEM_ID or --all-dead", file=sys.stderr)
        return 2
    url = _store_url(args)
    if url is None:
        return 2
    moved = asyncio.run(_retry(url, args.item_id))
    print(f"requeued: {moved}")
    return 0 if moved or args.all_dead else 1


def add_outbox_commands(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="event delivery: pending and dead letters")
    commands = outbox.add_subparsers(dest="outbox_command", required=True)
    listing = commands.add_parser("list", help="pending (or --dead) deliveries")
    listing.add_argument("--dead", action="store_true", help="dead letters instead")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(run=_run_list)
    retry = commands.add_parser("retry", help="requeue dead letters, due now, attempts reset")
    retry.add_argument("item_id", nargs="?")
    retry.add_argument("--all-dead", action="store_true")
    retry.set_defaults(run=_run_retry)
    for command in (listing, retry):
        command.add_argument("--state-dir")
        command.add_argument("--store")
