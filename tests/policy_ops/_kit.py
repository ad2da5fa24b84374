"""Plain helpers for the policy-operations tests: policy copies, zip surgery, metrics."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.resources import shipped

__all__ = [
    "LIBRARY_RULE_600",
    "copy_policies",
    "file_hash",
    "read_zip",
    "replace_once",
    "sample",
    "write_zip",
]

# The shipped library rule's threshold line, edited by the reload tests.
LIBRARY_RULE_600 = '- {fact: person.credit_score, op: ">=", value: 600}'


def copy_policies(dest: Path) -> Path:
    """A private copy of the shipped policy directory that a test may edit."""
    shutil.copytree(shipped("policies"), dest)
    return dest


def replace_once(path: Path, old: str, new: str) -> None:
    """Edit a text file, failing loudly when ``old`` is not there exactly once."""
    text = path.read_text(encoding="utf-8")
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"{path.name}: expected {old!r} once, found it {count} times")
    path.write_text(text.replace(old, new), encoding="utf-8")


def file_hash(path: Path) -> str:
    """A policy file's hash as decisions report it."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(path: Path, entries: Mapping[str, bytes]) -> None:
    """Write ``entries`` as a fresh zip: how an attacker would rewrite a bundle."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def sample(exposition: str, name: str, **labels: str) -> float:
    """One sample's value in a Prometheus text exposition (0.0 when absent)."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
