"""Personal identifiers on a page: masked unless a person asks to see one."""

from __future__ import annotations

__all__ = ["mask_id"]


def mask_id(value: str) -> str:
    """``914403001922038216`` → ``9144**********8216``: enough to match a paper, not to copy."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
