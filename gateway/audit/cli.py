"""``xinyi-gateway audit verify|report``: the audit trail from a shell.

Both take the state the way ``serve`` does (``--config``, ``--state-dir``,
``--store``), so they read what the serving gateway writes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.settings import ConfigError, Settings, load_settings

__all__ = ["add_audit_commands"]


def _audit_settings(args: argparse.Namespace) -> Settings:
    """Settings for the audit commands: the same --config/--state-dir/--store as serve,
    with serve's default state directory."""
    overrides: dict[str, Any] = {}
    if args.state_dir:
        state_dir = Path(args.state_dir).resolve()
        overrides["state_dir"] = state_dir
        # A demo state directory holds its own partners file (serve --demo wrote it).
        if not args.config and (state_dir / "partners.yaml").is_file():
            overrides["partners_file"] = state_dir / "partners.yaml"
    if args.store:
        overrides["store"] = args.store
    return load_settings(Path(args.config) if args.config else None, overrides)


def _audit_verify(args: argparse.Namespace) -> int:
    from gateway.audit.verify import verify_store

    try:
        settings = _audit_settings(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    ok, message = asyncio.run(
        verify_store(
            settings.store_url,
            settings.state_dir / "keys",
            settings.audit.origin,
            settings.archive_dir,
        )
    )
    print(message)
    return 0 if ok else 1


def _audit_report(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from gateway.audit.report import build_report, parse_month
    from gateway.audit.verify import _missing_database
    from gateway.runtime import open_store
    from gateway.settings import load_partners

    try:
        parse_month(args.month)
        settings = _audit_settings(args)
        partners = {p.id: p for p in load_partners(settings.partners_file)}
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    missing = _missing_database(settings.store_url)
    if missing is not None:
        print(f"no state database at {missing}", file=sys.stderr)
        return 1

    async def run() -> Any:
        store = open_store(settings.store_url)
        await store.open()
        try:
            from gateway.audit.archive import Archive
            from gateway.audit.log import AuditLog
            from gateway.audit.store import audit_tree_store
            from gateway.tokens.keys import KeyRing

            audit = AuditLog(
                store,
                audit_tree_store(store),
                lambda: KeyRing.load(settings.state_dir / "keys"),
                origin=settings.audit_origin,
                archive=Archive(settings.archive_dir),
            )
            await audit.open()
            return await build_report(
                audit.records, partners, ZoneInfo(settings.timezone), args.month, args.role
            )
        finally:
            await store.close()

    report = asyncio.run(run())
    data = report.xlsx() if args.format == "xlsx" else report.csv()
    out = Path(args.out or f"beian-{args.month}.{args.format}")
    out.write_bytes(data)
    print(f"wrote {out}: {len(report.rows)} uses in {args.month}")
    return 0


def add_audit_commands(sub: Any) -> None:
    """The ``audit`` command group, on the main parser's subparsers."""
    audit = sub.add_parser("audit", help="audit trail tools").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify", help="check the audit chain, Merkle tree and signed checkpoints"
    )
    verify.set_defaults(run=_audit_verify)
    report = audit.add_parser("report", help="the monthly 备案 report of every use")
    report.add_argument("--month", required=True, help="YYYY-MM, in the configured time zone")
    report.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    report.add_argument("--out", help="file to write (default beian-YYYY-MM.<format>)")
    report.add_argument(
        "--role",
        choices=["auditor", "operator"],
        default="auditor",
        help="who reads it: an operator sees pseudonyms and staff ids masked",
    )
    report.set_defaults(run=_audit_report)
    for command in (verify, report):
        command.add_argument("--config", help="gateway YAML configuration")
        command.add_argument("--state-dir", help="state directory (default: as serve and keys)")
        command.add_argument("--store")
