"""``xinyi-gateway loans …``: what an operator asks of the loan workflow from a shell.

    xinyi-gateway loans overdue [--config FILE] [--state-dir DIR] [--store URL]
                                [--partners FILE] [--since ISO-TIME] [--json]

lists every (demand, bank) pair whose response deadline passed unanswered,
oldest deadline first, from the same store the gateway uses.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from gateway.settings import ConfigError, Settings, load_partners, load_settings

__all__ = ["add_parser"]


async def _overdue(settings: Settings, since: int | None) -> list[dict[str, Any]]:
    from gateway.loans.deadlines import WorkingDays
    from gateway.loans.stats import overdue_pairs
    from gateway.loans.store import loan_store_for
    from gateway.runtime import open_store

    banks = [p.id for p in load_partners(settings.partners_file) if p.kind == "bank"]
    days = WorkingDays(ZoneInfo(settings.timezone))
    store = open_store(settings.store_url)
    await store.open()
    try:
        loans = loan_store_for(store)
        await loans.open()
        now = int(dt.datetime.now(dt.UTC).timestamp())
        start = (since if since is not None else now) - 400 * 86_400
        demands = await loans.demands_created(start, now + 1)
        responses = await loans.responses([d.id for d in demands])
        pairs = overdue_pairs(
            demands, responses, banks, lambda d: days.deadline(d.created_at), now, since
        )
    finally:
        await store.close()
    return [
        {
            "demand_id": p.demand_id,
            "bank": p.bank,
            "platform": p.platform,
            "deadline": dt.datetime.fromtimestamp(p.deadline, dt.UTC).isoformat(),
        }
        for p in pairs
    ]


def _run_overdue(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.state_dir:
        overrides["state_dir"] = Path(args.state_dir).resolve()
    if args.store:
        overrides["store"] = args.store
    if args.partners:
        overrides["partners_file"] = Path(args.partners).resolve()
    since = None
    if args.since:
        try:
            moment = dt.datetime.fromisoformat(args.since)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            print("--since is an ISO 8601 time with its offset", file=sys.stderr)
            return 2
        since = int(moment.timestamp())
    try:
        settings = load_settings(Path(args.config) if args.config else None, overrides)
        rows = asyncio.run(_overdue(settings, since))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for row in rows:
            print(f"{row['deadline']}  {row['bank']:24}  {row['demand_id']}  ({row['platform']})")
        print(f"{len(rows)} overdue", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    loans = sub.add_parser("loans", help="信易贷 workflow tools").add_subparsers(
        dest="loans_command", required=True
    )
    overdue = loans.add_parser(
        "overdue", help="(demand, bank) pairs past their response deadline unanswered"
    )
    overdue.add_argument("--config", help="gateway YAML configuration")
    overdue.add_argument("--state-dir")
    overdue.add_argument("--store")
    overdue.add_argument("--partners", help="partners file (default: the configuration's)")
    overdue.add_argument("--since", help="only pairs overdue since this time (ISO 8601)")
    overdue.add_argument("--json", action="store_true", help="JSON instead of lines")
    overdue.set_defaults(run=_run_overdue)
