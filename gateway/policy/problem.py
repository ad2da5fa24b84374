"""One refusal of the guard: where, which POLICY.md code, and why."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem"]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    rule: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.rule}: {self.code}: {self.message}"
