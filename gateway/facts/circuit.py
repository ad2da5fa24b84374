"""A circuit breaker for the credit source (DESIGN §10: upstream circuit state).

After ``threshold`` consecutive failures the circuit opens: decisions fail at
once (503) instead of each waiting on a source that is down, which also spares
the source while it recovers. After ``cool_down_s`` one call is let through; its
success closes the circuit, its failure opens it again. The gauge
``xinyi_upstream_circuit_open`` is 1 while open.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    def __init__(self, gauge: Any, threshold: int = 5, cool_down_s: float = 5.0) -> None:
        self._gauge = gauge  # a Gauge child, set to 1 while open
        self._threshold = threshold
        self._cool_down = cool_down_s
        self._failures = 0
        self._open_until = 0.0  # monotonic; 0 while closed
        gauge.set(0)

    def allow(self) -> bool:
        """Whether a call may go upstream now (while open: one trial after the cool-down)."""
        if not self._open_until:
            return True
        now = time.monotonic()
        if now < self._open_until:
            return False
        self._open_until = now + self._cool_down  # this caller is the trial
        return True

    def succeeded(self) -> None:
        if self._failures or self._open_until:
            self._failures = 0
            self._open_until = 0.0
            self._gauge.set(0)

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._open_until = time.monotonic() + self._cool_down
            self._gauge.set(1)

    @property
    def is_open(self) -> bool:
        return bool(self._open_until)
