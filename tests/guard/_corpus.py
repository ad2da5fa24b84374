"""Build a policy directory from a self-describing corpus case.

A case file holds ``policies`` (one or more policy documents, written as separate
files), optional ``catalogue_extra`` / ``benefits_extra`` / ``measures_extra``
merged over the shipped catalogues (mappings merge key by key; a ``null`` value
deletes the key), and what the guard must say: ``expect_codes`` (unlawful: the
exact set of POLICY.md codes), ``expect_path`` (taint cases: the path printed
after "constrain reads"), ``expect_messages`` (substrings some message must
contain) and, for lawful cases, ``expect_active`` ({scene, day, version}).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "policies"
CORPUS = Path(__file__).resolve().parent / "corpus"
CATALOGUES = {
    "catalogue.yaml": "catalogue_extra",
    "benefits.yaml": "benefits_extra",
    "measures.yaml": "measures_extra",
}
TAINT_CODES = frozenset({"personal_score_to_constraint", "constraint_needs_effective_document"})
CASE_KEYS = frozenset(
    {
        "description",
        "expect_codes",
        "expect_path",
        "expect_messages",
        "expect_active",
        "policies",
        *CATALOGUES.values(),
    }
)


def merge(base: Any, extra: Any) -> Any:
    """``extra`` over ``base``: mappings merge recursively, ``None`` deletes a key."""
    if not isinstance(base, dict) or not isinstance(extra, dict):
        return extra
    merged = dict(base)
    for key, value in extra.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value)
    return merged


def parse(text: str) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)  # the safe loader, in C


@functools.cache
def _shipped(name: str) -> Any:
    return parse((SHIPPED / name).read_text(encoding="utf-8"))


def shipped(name: str) -> Any:
    """A fresh copy of one shipped catalogue."""
    return copy.deepcopy(_shipped(name))


def load_case(path: Path) -> dict[str, Any]:
    case = parse(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict), f"{path.name}: a case is a mapping"
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"{path.name}: unknown case keys {sorted(unknown)}"
    assert case.get("policies"), f"{path.name}: a case needs at least one policy"
    return case


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)


def build_dir(case: dict[str, Any], directory: Path) -> Path:
    """Write the shipped catalogues (with the case's extras) and the case's policies."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, key in CATALOGUES.items():
        (directory / name).write_text(dump(merge(shipped(name), case.get(key) or {})), "utf-8")
    for index, policy in enumerate(case["policies"]):
        text = policy if isinstance(policy, str) else dump(policy)
        (directory / f"policy_{index}.yaml").write_text(text, "utf-8")
    return directory


def case_paths(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yaml"))
