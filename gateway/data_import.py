"""Bulk import of the credit platform's export into the embedded SQLite dataset.

``xinyi-gateway data import FILE`` reads the export (JSON Lines or CSV, one
record with its subject per row, ``adapters.credit.wire.ExportRow``) as a
stream and validates each row on its own: a bad row is reported with its line
number and field and skipped; good rows are committed in batches.

Resumable and idempotent: the dataset keeps, per export file (named by the
SHA-256 of its content), the last line whose batch was committed, in the same
transaction as the batch. A run that stops half-way continues after that line;
a finished file is not imported again; and records are upserted by
``record_id``, so even replaying a batch leaves the same dataset.

CSV cells: booleans are ``true``/``false``, an empty cell is null, and the
``value`` cell holds JSON (``650``, ``"A"``, ``true``) so its type survives.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from adapters.credit.base import CreditRecord, SubjectKind
from adapters.credit.sqlite import ensure_schema, upsert_records
from adapters.credit.wire import ExportRow
from gateway.identifiers import InvalidIdentifier, validate_subject_id

__all__ = [
    "COLUMNS",
    "DataImportError",
    "ImportReport",
    "RowProblem",
    "guess_format",
    "import_file",
]

Format = Literal["jsonl", "csv"]
COLUMNS = tuple(ExportRow.model_fields)
_BOOLEAN_COLUMNS = frozenset({"effective_document", "adverse"})
_NULLABLE_COLUMNS = frozenset({"publication_until", "value", "title"})
_MAX_LINE = 1 << 20  # a record is a few hundred bytes; a longer line is refused, not read


class DataImportError(Exception):
    """The file cannot be imported at all (unreadable, wrong header, wrong target)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    field: str
    message: str  # never the value: rows carry personal identifiers

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ImportReport:
    digest: str
    imported: int = 0  # rows committed by this run
    rejected: int = 0  # rows refused by this run
    resumed_after: int = 0  # the checkpoint line this run started after
    last_line: int = 0
    already_done: bool = False
    problems: list[RowProblem] = field(default_factory=list)  # the first ones, with lines


def guess_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise DataImportError(f"{path.name}: cannot tell the format from the name; give --format")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonl_rows(path: Path) -> Iterator[tuple[int, bytes | RowProblem]]:
    with path.open("rb") as fh:
        for number, line in enumerate(iter(lambda: fh.readline(_MAX_LINE + 1), b""), start=1):
            if len(line) > _MAX_LINE:
                yield number, RowProblem(number, "(line)", f"longer than {_MAX_LINE} bytes")
                while line and not line.endswith(b"\n"):  # skip the rest of the long line
                    line = fh.readline(_MAX_LINE + 1)
                continue
            if line.strip():
                yield number, line


def _csv_rows(path: Path) -> Iterator[tuple[int, bytes | RowProblem]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataImportError(f"{path.name}: line 1: not CSV ({exc})") from None
        missing = [c for c in COLUMNS if c not in header and c not in _NULLABLE_COLUMNS]
        unknown = [c for c in header if c not in COLUMNS]
        if missing or unknown or len(set(header)) != len(header):
            raise DataImportError(
                f"{path.name}: line 1: the header must name the export columns "
                f"(missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'}"
                "; no repeats)"
            )
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, RowProblem(reader.line_num, "(line)", f"not CSV: {exc}")
                continue
            if not any(cells):
                continue
            if len(cells) != len(header):
                yield (
                    reader.line_num,
                    RowProblem(
                        reader.line_num, "(line)", f"{len(cells)} cells for {len(header)} columns"
                    ),
                )
                continue
            converted = _convert_cells(dict(zip(header, cells, strict=True)), reader.line_num)
            yield reader.line_num, converted


def _convert_cells(cells: dict[str, str], line: int) -> bytes | RowProblem:
    """A CSV row as the JSON the export's JSON Lines would hold, for one validator."""
    row: dict[str, Any] = {}
    for name, cell in cells.items():
        if cell == "" and name in _NULLABLE_COLUMNS:
            row[name] = None
        elif name in _BOOLEAN_COLUMNS and cell in ("true", "false"):
            row[name] = cell == "true"
        elif name == "value":
            try:
                row[name] = orjson.loads(cell)
            except orjson.JSONDecodeError:
                return RowProblem(line, "value", 'not JSON (write strings quoted: "A")')
        else:
            row[name] = cell  # anything else left as text: the validator says what is wrong
    return orjson.dumps(row)


def _validate(
    line: int, raw: bytes, today: dt.date
) -> tuple[SubjectKind, str, CreditRecord] | RowProblem:
    try:
        row = ExportRow.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(line)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        return RowProblem(line, where, f"{err['msg']}{more}")
    try:
        subject_id = validate_subject_id(row.subject_kind, row.subject_id, today)
    except InvalidIdentifier as exc:
        return RowProblem(line, "subject_id", str(exc))
    return row.subject_kind, subject_id, row.record()


def import_file(
    path: Path,
    dataset: Path,
    fmt: Format | None = None,
    *,
    batch_size: int = 1000,
    keep_problems: int = 100,
    after_batch: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``path`` into the SQLite dataset at ``dataset`` (created if absent).

    ``after_batch`` is called with the checkpoint line after each commit.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    fmt = fmt or guess_format(path)
    try:
        digest = _digest(path)
    except OSError as exc:
        raise DataImportError(f"{path}: cannot read ({exc.strerror})") from None
    dataset.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(dataset, timeout=30)
    try:
        with conn:
            ensure_schema(conn)  # records and import_checkpoints
        report = ImportReport(digest=digest)
        found = conn.execute(
            "SELECT line, finished_at FROM import_checkpoints WHERE digest = ?", (digest,)
        ).fetchone()
        if found is not None and found[1] is not None:
            report.already_done = True
            report.resumed_after = report.last_line = int(found[0])
            return report
        if found is None:
            with conn:
                conn.execute(
                    "INSERT INTO import_checkpoints VALUES (?, ?, ?, 0, 0, 0, ?, NULL)",
                    (digest, path.name, fmt, _now()),
                )
        report.resumed_after = report.last_line = int(found[0]) if found else 0
        _run(conn, path, fmt, report, batch_size, keep_problems, after_batch)
        return report
    finally:
        conn.close()


def _run(
    conn: sqlite3.Connection,
    path: Path,
    fmt: Format,
    report: ImportReport,
    batch_size: int,
    keep_problems: int,
    after_batch: Callable[[int], None] | None,
) -> None:
    today = dt.date.today()
    batch: list[tuple[SubjectKind, str, CreditRecord]] = []
    rejected = 0
    line = report.last_line

    def commit(finished: bool) -> None:
        nonlocal rejected
        with conn:  # the records and the checkpoint that covers them: one transaction
            upsert_records(conn, batch)
            conn.execute(
                "UPDATE import_checkpoints SET line = ?, imported = imported + ?,"
                " rejected = rejected + ?, finished_at = ? WHERE digest = ?",
                (line, len(batch), rejected, _now() if finished else None, report.digest),
            )
        report.imported += len(batch)
        report.rejected += rejected
        report.last_line = line
        batch.clear()
        rejected = 0
        if after_batch is not None and not finished:
            after_batch(line)

    rows = _jsonl_rows(path) if fmt == "jsonl" else _csv_rows(path)
    try:
        for number, item in rows:
            if number <= report.resumed_after:
                continue
            line = number
            checked = item if isinstance(item, RowProblem) else _validate(number, item, today)
            if isinstance(checked, RowProblem):
                rejected += 1
                if len(report.problems) < keep_problems:
                    report.problems.append(checked)
            else:
                batch.append(checked)
            if len(batch) + rejected >= batch_size:
                commit(finished=False)
    except UnicodeDecodeError as exc:
        raise DataImportError(f"{path.name}: after line {line}: not UTF-8 ({exc.reason})") from None
    commit(finished=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
