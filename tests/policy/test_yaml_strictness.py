"""YAML details a reviewer could be misled by are refused, not silently resolved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.policy.loader import PolicyLoadError, load_policy_dir
from gateway.resources import shipped


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(shipped("policies"), target)
    return target


def test_a_duplicate_key_makes_the_file_unreadable(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    library = directory / "library.yaml"
    library.write_text(
        library.read_text(encoding="utf-8").replace(
            "basic_public_service: true", "basic_public_service: true\nbasic_public_service: false"
        ),
        encoding="utf-8",
    )
    with pytest.raises(PolicyLoadError) as refused:
        load_policy_dir(directory)
    assert refused.value.unreadable
    assert "duplicate key 'basic_public_service'" in str(refused.value)


def test_an_effective_range_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    transit = directory / "transit.yaml"
    transit.write_text(
        transit.read_text(encoding="utf-8").replace(
            "effective: {from: 2025-01-01, until: null}",
            "effective: {from: 2025-01-01, until: 2024-12-31}",
        ),
        encoding="utf-8",
    )
    with pytest.raises(PolicyLoadError) as refused:
        load_policy_dir(directory)
    assert not refused.value.unreadable
    assert any(
        p.file == "transit.yaml" and p.code == "invalid_policy" and "until" in p.message
        for p in refused.value.problems
    )
