"""Bulk import of the platform's export into the embedded dataset: validated row
by row with line numbers, committed in batches, resumable, idempotent."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path

import orjson
import pytest

from adapters.credit.base import CreditRecord, RecordStatus, SubjectKind
from adapters.credit.fake_platform import export_bytes
from adapters.credit.sqlite import SQLiteCreditSource
from gateway.cli import main
from gateway.data_import import DataImportError, import_file
from gateway.identifiers import synthetic_ric, synthetic_uscc

Row = tuple[SubjectKind, str, CreditRecord]


def generated(count: int, seed: int = 7) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for n in range(count):
        kind: SubjectKind = "enterprise" if n % 3 else "person"
        subject = (
            synthetic_uscc(rng) if kind == "enterprise" else synthetic_ric(rng, dt.date(1980, 1, 2))
        )
        value: str | int | float | bool | None = [650, "A", 12.5, True, None][n % 5]
        rows.append(
            (
                kind,
                subject,
                CreditRecord(
                    record_id=f"r-{n:05d}",
                    type="credit_score" if n % 2 else "tax_credit_grade",
                    domain="market_credit_score",
                    effective_document=bool(n % 2),
                    adverse=n % 7 == 0,
                    decided_on=dt.date(2024, 1, 1) + dt.timedelta(days=n),
                    publication_until=dt.date(2027, 1, 1) if n % 4 == 0 else None,
                    status=list(RecordStatus)[n % 4],
                    value=value,
                    title="纳税信用" if n % 6 == 0 else None,
                ),
            )
        )
    return rows


def with_bad_lines(text: bytes, bad: dict[int, bytes]) -> bytes:
    """Insert ``bad`` lines so that each lands on the given (1-based) line number."""
    lines = text.splitlines(keepends=True)
    for number in sorted(bad):
        lines.insert(number - 1, bad[number] + b"\n")
    return b"".join(lines)


def stored(dataset: Path) -> dict[str, tuple[str, str]]:
    """record_id → (subject kind, subject id) of every record in the dataset."""
    conn = sqlite3.connect(dataset)
    try:
        subjects = conn.execute(
            "SELECT record_id, subject_kind, subject_id FROM records"
        ).fetchall()
    finally:
        conn.close()
    return {rid: (kind, sid) for rid, kind, sid in subjects}


async def read_back(dataset: Path, rows: list[Row]) -> list[CreditRecord]:
    source = SQLiteCreditSource(dataset)
    try:
        found: list[CreditRecord] = []
        for kind, subject in dict.fromkeys((k, s) for k, s, _ in rows):
            found.extend(await source.records(kind, subject))
        return sorted(found, key=lambda r: r.record_id)
    finally:
        await source.close()


def good_json(rows: list[Row], index: int) -> bytes:
    return export_bytes(rows[index : index + 1], "jsonl").strip()


async def test_jsonl_import_round_trips_and_reports_bad_lines(tmp_path: Path) -> None:
    rows = generated(120)
    valid = good_json(rows, 0)
    bad = {
        3: b"{not json",
        10: valid.replace(b'"adverse":false', b'"adverse":"no"').replace(
            b'"adverse":true', b'"adverse":"no"'
        ),
        20: valid.replace(b'"status":"active"', b'"status":"sort of"'),
        21: valid[:-1] + b',"extra":1}',
        50: b'"a string, not an object"',
        51: orjson.dumps({**orjson.loads(valid), "subject_id": "91350100M000100Y44"}),
        99: orjson.dumps({**orjson.loads(valid), "decided_on": "2024-13-40"}),
    }
    path = tmp_path / "export.jsonl"
    path.write_bytes(with_bad_lines(export_bytes(rows, "jsonl"), bad))
    dataset = tmp_path / "state" / "credit.sqlite3"

    report = import_file(path, dataset, batch_size=25)

    assert report.imported == 120
    assert report.rejected == len(bad)
    assert [p.line for p in report.problems] == sorted(bad)
    fields = {p.line: p.field for p in report.problems}
    assert fields[10] == "adverse"
    assert fields[20] == "status"
    assert fields[21] == "extra"
    assert fields[51] == "subject_id"
    assert fields[99] == "decided_on"
    assert await read_back(dataset, rows) == sorted(
        (r for _, _, r in rows), key=lambda r: r.record_id
    )
    # The refusals name lines and fields, never an identifier.
    text = "\n".join(str(p) for p in report.problems)
    assert not any(subject in text for _, subject, _ in rows)
    assert "91350100M000100Y44" not in text


async def test_csv_import_with_bad_rows(tmp_path: Path) -> None:
    rows = generated(60)
    text = export_bytes(rows, "csv")
    header, first = text.splitlines()[:2]
    cells = first.split(b",")

    def variant(index: int, replacement: bytes) -> bytes:
        changed = list(cells)
        changed[index] = replacement
        return b",".join(changed)

    bad = {
        5: variant(5, b"yes"),  # effective_document
        9: variant(7, b"01/02/2024"),  # decided_on
        12: variant(10, b"A"),  # value: not JSON
        30: b",".join(cells[:4]),  # too few cells
        40: variant(9, b"gone"),  # status
    }
    path = tmp_path / "export.csv"
    path.write_bytes(with_bad_lines(text, bad))
    dataset = tmp_path / "credit.sqlite3"

    report = import_file(path, dataset, batch_size=7)

    assert header.startswith(b"subject_kind,subject_id,record_id")
    assert report.imported == 60
    assert {p.line: p.field for p in report.problems} == {
        5: "effective_document",
        9: "decided_on",
        12: "value",
        30: "(line)",
        40: "status",
    }
    assert await read_back(dataset, rows) == sorted(
        (r for _, _, r in rows), key=lambda r: r.record_id
    )


def test_an_interrupted_import_resumes_after_its_last_committed_line(tmp_path: Path) -> None:
    rows = generated(100)
    path = tmp_path / "export.jsonl"
    path.write_bytes(with_bad_lines(export_bytes(rows, "jsonl"), {15: b"[]", 70: b"{"}))
    dataset = tmp_path / "credit.sqlite3"
    commits: list[int] = []

    def stop_after_two(line: int) -> None:
        commits.append(line)
        if len(commits) == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C, between two batches

    with pytest.raises(KeyboardInterrupt):
        import_file(path, dataset, batch_size=30, after_batch=stop_after_two)
    assert commits == [30, 60]
    assert len(stored(dataset)) == 59  # 60 lines, one of them refused
    conn = sqlite3.connect(dataset)
    line, imported, rejected, finished = conn.execute(
        "SELECT line, imported, rejected, finished_at FROM import_checkpoints"
    ).fetchone()
    conn.close()
    assert (line, imported, rejected, finished) == (60, 59, 1, None)

    again = import_file(path, dataset, batch_size=30)
    assert again.resumed_after == 60
    assert again.imported == 41
    assert [p.line for p in again.problems] == [70]
    assert len(stored(dataset)) == 100

    third = import_file(path, dataset, batch_size=30)
    assert third.already_done
    assert third.imported == 0


def test_reimporting_overlapping_exports_is_idempotent(tmp_path: Path) -> None:
    rows = generated(40)
    dataset = tmp_path / "credit.sqlite3"
    first, second = tmp_path / "a.jsonl", tmp_path / "b.csv"
    first.write_bytes(export_bytes(rows[:30], "jsonl"))
    second.write_bytes(export_bytes(rows[10:], "csv"))
    assert import_file(first, dataset).imported == 30
    assert import_file(second, dataset).imported == 30
    assert len(stored(dataset)) == 40
    # the same content under another name is the same export
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(first.read_bytes())
    assert import_file(copy, dataset).already_done


def test_a_csv_without_the_export_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("name,score\nsomeone,650\n", encoding="utf-8")
    with pytest.raises(DataImportError, match="line 1"):
        import_file(path, tmp_path / "credit.sqlite3")
    with pytest.raises(DataImportError, match="--format"):
        import_file(tmp_path / "x.txt", tmp_path / "credit.sqlite3")


def test_cli_import_into_a_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = generated(12)
    path = tmp_path / "export.jsonl"
    path.write_bytes(with_bad_lines(export_bytes(rows, "jsonl"), {4: b"{}"}))
    state = tmp_path / "state"

    assert main(["data", "import", str(path), "--state-dir", str(state)]) == 1
    out, err = capsys.readouterr()
    assert "12 records imported, 1 rows refused" in out
    assert "line 4: record_id: Field required" in err
    assert not any(subject in out + err for _, subject, _ in rows)
    assert len(stored(state / "credit.sqlite3")) == 12

    assert main(["data", "import", str(path), "--state-dir", str(state)]) == 0
    assert "already imported" in capsys.readouterr().out


def test_cli_import_follows_the_configured_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(export_bytes(generated(5), "csv"))
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'st'}\ncredit_source:\n  adapter: sqlite\n"
        "  options:\n    path: data/c.sqlite3\n",
        encoding="utf-8",
    )
    assert main(["data", "import", str(path), "--config", str(config)]) == 0
    assert len(stored(tmp_path / "st" / "data" / "c.sqlite3")) == 5

    config.write_text(
        "credit_source:\n  adapter: platform\n  options:\n    base_url: http://127.0.0.1:1\n",
        encoding="utf-8",
    )
    assert main(["data", "import", str(path), "--config", str(config)]) == 2
    assert "embedded sqlite dataset" in capsys.readouterr().err


def test_replacing_the_dataset_forgets_its_imports(tmp_path: Path) -> None:
    from adapters.credit.sqlite import write_dataset

    rows = generated(10)
    path = tmp_path / "export.jsonl"
    path.write_bytes(export_bytes(rows, "jsonl"))
    dataset = tmp_path / "credit.sqlite3"
    assert import_file(path, dataset).imported == 10
    write_dataset(dataset, rows[:2])  # e.g. the demo rewriting its dataset
    again = import_file(path, dataset)
    assert not again.already_done
    assert again.imported == 10
    assert len(stored(dataset)) == 10
