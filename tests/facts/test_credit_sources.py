"""Credit sources: the embedded SQLite dataset, entry-point loading, the handler source."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from adapters.credit.base import (
    AdapterContext,
    CreditEvent,
    CreditRecord,
    CreditSource,
    CreditSourceError,
    RecordStatus,
    SubjectKind,
    UnknownRecord,
)
from adapters.credit.handler import HandlerCreditSource
from adapters.credit.sqlite import SQLiteCreditSource, write_dataset
from gateway.plugins import available_credit_sources, load_credit_source_class

ENTERPRISE = "91350100M000100Y43"
PERSON = "11010519491231002X"

RECORDS: list[tuple[SubjectKind, str, CreditRecord]] = [
    (
        "enterprise",
        ENTERPRISE,
        CreditRecord(
            record_id="e1",
            type="tax_credit_grade",
            domain="taxation",
            effective_document=False,
            adverse=False,
            decided_on=dt.date(2024, 4, 1),
            publication_until=None,
            status=RecordStatus.ACTIVE,
            value="A",
            title="纳税信用 A 级",
        ),
    ),
    (
        "enterprise",
        ENTERPRISE,
        CreditRecord(
            record_id="e2",
            type="penalty",
            domain="public_credit_record",
            effective_document=True,
            adverse=True,
            decided_on=dt.date(2023, 5, 6),
            publication_until=dt.date(2026, 5, 6),
            status=RecordStatus.UNDER_OBJECTION,
            value=12.5,
        ),
    ),
    (
        "enterprise",
        ENTERPRISE,
        CreditRecord(
            record_id="e3",
            type="serious_dishonesty_listed",
            domain="serious_dishonesty_list",
            effective_document=True,
            adverse=True,
            decided_on=dt.date(2022, 1, 2),
            publication_until=None,
            status=RecordStatus.REPAIRED,
            value=True,
        ),
    ),
    (
        "person",
        PERSON,
        CreditRecord(
            record_id="p1",
            type="credit_score",
            domain="market_credit_score",
            effective_document=False,
            adverse=False,
            decided_on=dt.date(2025, 1, 1),
            publication_until=None,
            status=RecordStatus.ACTIVE,
            value=650,
        ),
    ),
    (
        "person",
        PERSON,
        CreditRecord(
            record_id="p2",
            type="registration",
            domain="public_credit_record",
            effective_document=False,
            adverse=False,
            decided_on=dt.date(2001, 1, 1),
            publication_until=None,
            status=RecordStatus.EXPIRED,
        ),
    ),
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "credit.sqlite3"
    assert write_dataset(path, RECORDS) == len(RECORDS)
    return path


@pytest.fixture
async def source(dataset: Path) -> AsyncIterator[SQLiteCreditSource]:
    src = SQLiteCreditSource(dataset)
    yield src
    await src.close()


async def test_records_roundtrip(source: SQLiteCreditSource) -> None:
    got = await source.records("enterprise", ENTERPRISE)
    expected = [r for kind, sid, r in RECORDS if kind == "enterprise" and sid == ENTERPRISE]
    assert sorted(got, key=lambda r: r.record_id) == expected
    person = await source.records("person", PERSON)
    assert sorted(person, key=lambda r: r.record_id) == [r for k, _, r in RECORDS if k == "person"]
    # values keep their JSON types
    assert {r.record_id: r.value for r in person} == {"p1": 650, "p2": None}


async def test_subject_kind_is_part_of_the_key(source: SQLiteCreditSource) -> None:
    assert await source.records("person", ENTERPRISE) == []


async def test_unknown_subject_has_no_records(source: SQLiteCreditSource) -> None:
    assert await source.records("enterprise", "nobody") == []
    await source.check()


async def test_write_dataset_replaces_the_previous_content(dataset: Path) -> None:
    write_dataset(dataset, RECORDS[:1])
    src = SQLiteCreditSource(dataset)
    try:
        assert [r.record_id for r in await src.records("enterprise", ENTERPRISE)] == ["e1"]
    finally:
        await src.close()


@pytest.mark.parametrize("dirname", ["data#1", "50%", "who?", "空 格"])
async def test_dataset_path_with_uri_characters(tmp_path: Path, dirname: str) -> None:
    path = tmp_path / dirname / "credit.sqlite3"
    write_dataset(path, RECORDS)
    src = SQLiteCreditSource(path)
    try:
        assert [r.record_id for r in await src.records("person", PERSON)] == ["p1", "p2"]
    finally:
        await src.close()


async def test_relative_dataset_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dataset(tmp_path / "rel.sqlite3", RECORDS)
    monkeypatch.chdir(tmp_path)
    src = SQLiteCreditSource(Path("rel.sqlite3"))
    try:
        assert len(await src.records("enterprise", ENTERPRISE)) == 3
    finally:
        await src.close()


async def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    src = SQLiteCreditSource(tmp_path / "absent.sqlite3")
    with pytest.raises(CreditSourceError):
        await src.records("person", PERSON)
    with pytest.raises(CreditSourceError):
        await src.check()
    # and the source does not create the file while failing
    assert not (tmp_path / "absent.sqlite3").exists()


async def test_file_that_is_not_a_dataset_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    src = SQLiteCreditSource(path)
    try:
        with pytest.raises(CreditSourceError):
            await src.records("person", PERSON)
    finally:
        await src.close()


async def test_events_change_the_embedded_dataset(source: SQLiteCreditSource) -> None:
    await source.apply_event("enterprise", ENTERPRISE, CreditEvent.REPAIRED, None, "e2")
    statuses = {r.record_id: r.status for r in await source.records("enterprise", ENTERPRISE)}
    assert statuses["e2"] is RecordStatus.REPAIRED
    _, _, added = RECORDS[3]
    new = CreditRecord(
        **{
            **{f: getattr(added, f) for f in added.__dataclass_fields__},
            "record_id": "p9",
            "value": 700,
        }
    )
    await source.apply_event("person", PERSON, CreditEvent.RECORD_ADDED, new, "p9")
    assert new in await source.records("person", PERSON)


def _write_status(dataset: Path, record_id: str, status: RecordStatus) -> None:
    """Another writer (the import, another worker's event), waiting for no lock."""
    conn = sqlite3.connect(dataset, timeout=0)
    try:
        with conn:
            conn.execute(
                "UPDATE records SET status = ? WHERE record_id = ?", (status.value, record_id)
            )
    finally:
        conn.close()


async def test_lookups_of_one_loop_pass_share_a_read_transaction(
    source: SQLiteCreditSource, dataset: Path
) -> None:
    before = await source.records("enterprise", ENTERPRISE)
    # Still this pass: the shared lock of its read transaction is held ...
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _write_status(dataset, "e2", RecordStatus.REPAIRED)
    assert await source.records("enterprise", ENTERPRISE) == before
    # ... and released when the next pass begins: a writer gets through, and a
    # lookup sees what it wrote.
    await asyncio.sleep(0)
    _write_status(dataset, "e2", RecordStatus.REPAIRED)
    statuses = {r.record_id: r.status for r in await source.records("enterprise", ENTERPRISE)}
    assert statuses["e2"] is RecordStatus.REPAIRED


async def test_a_bulk_read_keeps_no_lock_once_it_returns(
    source: SQLiteCreditSource, dataset: Path
) -> None:
    await source.records("enterprise", ENTERPRISE)  # a lookup of this pass began a transaction
    before = await source.records_many("enterprise", [ENTERPRISE, "91350100M000100Y43"])
    # Still this pass, whose caller goes on to build facts for every subject the bulk
    # read returned (a ranking of every open demand): another process's writer is not
    # held off meanwhile, as it was not before lookups shared a transaction.
    _write_status(dataset, "e2", RecordStatus.REPAIRED)
    after = await source.records_many("enterprise", [ENTERPRISE])
    assert {r.record_id: r.status for r in before[ENTERPRISE]}["e2"] is not RecordStatus.REPAIRED
    assert {r.record_id: r.status for r in after[ENTERPRISE]}["e2"] is RecordStatus.REPAIRED


async def test_a_wal_dataset_is_read_one_transaction_per_lookup(
    source: SQLiteCreditSource, dataset: Path
) -> None:
    conn = sqlite3.connect(dataset)
    try:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        await source.records("enterprise", ENTERPRISE)
        # No transaction left open: a WAL reader's snapshot would not see this write.
        _write_status(dataset, "e2", RecordStatus.REPAIRED)
        statuses = {r.record_id: r.status for r in await source.records("enterprise", ENTERPRISE)}
        assert statuses["e2"] is RecordStatus.REPAIRED
    finally:
        conn.close()


async def test_event_on_unknown_record(source: SQLiteCreditSource) -> None:
    with pytest.raises(UnknownRecord):
        await source.apply_event("enterprise", ENTERPRISE, CreditEvent.DELISTED, None, "nope")
    # a record of another subject is not found either
    with pytest.raises(UnknownRecord):
        await source.apply_event("enterprise", "someone-else", CreditEvent.DELISTED, None, "e1")


def test_from_options_resolves_relative_paths(tmp_path: Path) -> None:
    ctx = AdapterContext(state_dir=tmp_path / "state", config_dir=tmp_path)
    src = SQLiteCreditSource.from_options({"path": "c.sqlite3"}, ctx)
    assert isinstance(src, SQLiteCreditSource)
    assert src._path == tmp_path / "state" / "c.sqlite3"
    absolute = SQLiteCreditSource.from_options({"path": str(tmp_path / "x.db")}, ctx)
    assert absolute._path == tmp_path / "x.db"
    with pytest.raises(CreditSourceError):
        SQLiteCreditSource.from_options({"path": 5}, ctx)


def test_entry_point_loads_the_sqlite_source() -> None:
    assert "sqlite" in available_credit_sources()
    assert load_credit_source_class("sqlite") is SQLiteCreditSource


def test_unknown_entry_point_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no_such_source"):
        load_credit_source_class("no_such_source")


async def test_handler_source_with_a_sync_handler() -> None:
    calls: list[tuple[str, str]] = []

    def handler(kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        calls.append((kind, subject_id))
        return [r for k, s, r in RECORDS if (k, s) == (kind, subject_id)]

    src: CreditSource = HandlerCreditSource(handler)
    got = await src.records("person", PERSON)
    assert [r.record_id for r in got] == ["p1", "p2"]
    assert calls == [("person", PERSON)]
    await src.check()


async def test_handler_source_with_an_async_handler() -> None:
    async def handler(kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        return [r for k, s, r in RECORDS if (k, s) == (kind, subject_id)]

    src = HandlerCreditSource(handler)
    assert [r.record_id for r in await src.records("enterprise", ENTERPRISE)] == ["e1", "e2", "e3"]
    assert await src.records("enterprise", "nobody") == []


async def test_handler_errors_propagate() -> None:
    def handler(kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        raise CreditSourceError("upstream down")

    with pytest.raises(CreditSourceError, match="upstream down"):
        await HandlerCreditSource(handler).records("person", PERSON)


def test_handler_source_is_not_configurable(tmp_path: Path) -> None:
    with pytest.raises(CreditSourceError):
        HandlerCreditSource.from_options({}, AdapterContext(tmp_path, tmp_path))


# Three threads, each with its own event loop, looking subjects up in one source.
_THREADED_LOOKUPS = """
import asyncio, sys, threading
from pathlib import Path
from adapters.credit.sqlite import SQLiteCreditSource

source = SQLiteCreditSource(Path(sys.argv[1]))
wrong = []

def lookups(offset):
    async def run():
        for n in range(2000):
            i = (n * 7 + offset) % 300
            found = await source.records("enterprise", f"S{i}")
            if [r.record_id for r in found] != [f"r{i}"]:
                wrong.append(i)
            if n % 50 == 0:
                await asyncio.sleep(0)
    asyncio.run(run())

threads = [threading.Thread(target=lookups, args=(k,)) for k in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("wrong", len(wrong))
"""


def test_lookups_from_threads_with_their_own_loops(tmp_path: Path) -> None:
    # The connection is opened with check_same_thread=False: a source shared by
    # threads answers each its own subject's records, and does not crash.
    dataset = tmp_path / "threads.sqlite3"
    write_dataset(
        dataset,
        [
            ("enterprise", f"S{i}", dataclasses.replace(RECORDS[0][2], record_id=f"r{i}"))
            for i in range(300)
        ],
    )
    done = subprocess.run(
        [sys.executable, "-c", _THREADED_LOOKUPS, str(dataset)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["wrong", "0"]


@pytest.mark.parametrize(
    ("column", "bad"),
    [("value", "{not json"), ("status", "gone"), ("decided_on", "yesterday")],
)
async def test_a_malformed_row_is_a_source_error(dataset: Path, column: str, bad: str) -> None:
    conn = sqlite3.connect(dataset)
    with conn:
        conn.execute(
            f"UPDATE records SET {column} = ? WHERE subject_id = ?",  # noqa: S608 - test's own column
            (bad, ENTERPRISE),
        )
    conn.close()
    src = SQLiteCreditSource(dataset)
    try:
        with pytest.raises(CreditSourceError, match="malformed row"):
            await src.records("enterprise", ENTERPRISE)
        with pytest.raises(CreditSourceError, match="malformed row"):
            await src.records_many("enterprise", [ENTERPRISE, "nobody"])
        # The rest of the dataset still answers.
        assert await src.records("person", PERSON)
    finally:
        await src.close()
