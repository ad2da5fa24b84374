"""Archive segments: audit records past the retention window, out of the hot store.

A segment is one gzip file of JSON lines, ``audit-<first>-<last>.jsonl.gz``:
a header (format, origin, range, and every checkpoint signed within the range,
the last one at exactly ``last``), then one line per record as the log holds
it (seq, entry, prev_hash, hash). A segment ends at a checkpointed size, so
it can be checked on its own against its checkpoint. It is written to a
temporary name, fsynced and renamed before the hot store lets its records go,
so a crash leaves either the records in hot state or a whole segment (and
perhaps both, which readers tolerate).
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.store.base import AuditRecord

__all__ = ["Archive", "Segment"]

_NAME = re.compile(r"^audit-(\d{12})-(\d{12})\.jsonl\.gz$")
FORMAT = "xinyi-audit-archive/1"


@dataclass(frozen=True, slots=True)
class Segment:
    first: int
    last: int
    path: Path


class Archive:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # The last segment read, decompressed: readers page through one at a time.
        self._cached: tuple[Path, dict[str, Any], list[AuditRecord]] | None = None

    def segments(self) -> list[Segment]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append(Segment(int(match[1]), int(match[2]), path))
        return sorted(found, key=lambda s: s.first)

    def write(
        self, records: list[AuditRecord], checkpoints: list[tuple[int, str]], origin: str
    ) -> Segment:
        first, last = records[0].seq, records[-1].seq
        if not checkpoints or checkpoints[-1][0] != last:
            raise ValueError("a segment ends at a checkpointed size")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"audit-{first:012d}-{last:012d}.jsonl.gz"
        tmp = path.with_suffix(".tmp")
        header = {
            "format": FORMAT,
            "origin": origin,
            "first": first,
            "last": last,
            "checkpoints": [[size, note] for size, note in checkpoints],
        }
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as out:
                out.write(orjson.dumps(header) + b"\n")
                for r in records:
                    line = {
                        "seq": r.seq,
                        "entry": r.entry,
                        "prev_hash": r.prev_hash,
                        "hash": r.hash,
                    }
                    out.write(orjson.dumps(line) + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash
        finally:
            os.close(dir_fd)
        return Segment(first, last, path)

    def read(self, segment: Segment) -> tuple[dict[str, Any], list[AuditRecord]]:
        if self._cached is not None and self._cached[0] == segment.path:
            return self._cached[1], self._cached[2]
        with gzip.open(segment.path, "rb") as data:
            lines = data.read().splitlines()
        header = orjson.loads(lines[0])
        if header.get("format") != FORMAT:
            raise ValueError(f"{segment.path.name} is not an audit archive segment")
        records = []
        for line in lines[1:]:
            d = orjson.loads(line)
            records.append(AuditRecord(d["seq"], d["entry"], d["prev_hash"], d["hash"]))
        self._cached = (segment.path, header, records)
        return header, records

    def records(self, after_seq: int, limit: int) -> list[AuditRecord]:
        """Archived records with seq above ``after_seq``, in order (at most ``limit``)."""
        out: list[AuditRecord] = []
        for segment in self.segments():
            if segment.last <= after_seq:
                continue
            _, records = self.read(segment)
            out += [r for r in records if r.seq > after_seq][: limit - len(out)]
            if len(out) >= limit:
                break
            after_seq = max(after_seq, segment.last)
        return out

    def checkpoints(self) -> list[tuple[int, str]]:
        found: dict[int, str] = {}
        for segment in self.segments():
            header, _ = self.read(segment)
            found.update({int(size): note for size, note in header["checkpoints"]})
        return sorted(found.items())
