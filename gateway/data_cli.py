"""``xinyi-gateway data import``: the credit platform's bulk export into the embedded dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.settings import ConfigError, load_settings

__all__ = ["add_data_commands"]


def _data_import(args: argparse.Namespace) -> int:
    from adapters.credit.sqlite import dataset_path
    from gateway.data_import import DataImportError, import_file

    if args.dataset:
        dataset = Path(args.dataset).resolve()
    else:
        overrides: dict[str, Any] = {}
        if args.state_dir:
            overrides["state_dir"] = Path(args.state_dir).resolve()
        try:
            settings = load_settings(Path(args.config) if args.config else None, overrides)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        if settings.credit_source.adapter != "sqlite":
            print(
                f"the configured credit source is {settings.credit_source.adapter!r}: import "
                "fills the embedded sqlite dataset (give --dataset PATH to name one)",
                file=sys.stderr,
            )
            return 2
        dataset = dataset_path(settings.credit_source.options, settings.state_dir).resolve()
    try:
        report = import_file(Path(args.file), dataset, args.format, batch_size=args.batch_size)
    except DataImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if report.rejected > len(report.problems):
        print(f"… {report.rejected - len(report.problems)} more rows refused", file=sys.stderr)
    if report.already_done:
        print(f"{args.file}: already imported into {dataset} (nothing to do)")
        return 0
    resumed = f", resumed after line {report.resumed_after}" if report.resumed_after else ""
    print(
        f"{args.file}: {report.imported} records imported, {report.rejected} rows refused"
        f"{resumed}; dataset {dataset}"
    )
    # A running gateway caches records for records_cache_seconds; it sees the rows after that.
    return 1 if report.rejected else 0


def add_data_commands(sub: Any) -> None:
    """The ``data`` command group, on the main parser's subparsers."""
    data = sub.add_parser("data", help="credit data tools").add_subparsers(
        dest="data_command", required=True
    )
    imp = data.add_parser(
        "import", help="load the credit platform's bulk export into the embedded dataset"
    )
    imp.add_argument("file", help="the export: JSON Lines (.jsonl) or CSV (.csv)")
    imp.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file name")
    target = imp.add_mutually_exclusive_group()
    target.add_argument("--state-dir", help="the dataset is <DIR>/credit.sqlite3")
    target.add_argument("--config", help="gateway YAML: its sqlite credit_source's dataset")
    target.add_argument("--dataset", help="the SQLite dataset file itself")
    imp.add_argument("--batch-size", type=int, default=1000, help=argparse.SUPPRESS)
    imp.set_defaults(run=_data_import)
