"""Dashboard panels, one module each: a title, a template and a loader.

A panel module exports ``PANEL``; ``gateway.ui.dashboard.PANELS`` lists them
in page order. A new panel (outbox deliveries, audit checkpoint, loan
statistics) is a module here, a template in templates/panels/, and one line there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

__all__ = ["Panel", "samples"]


@dataclass(frozen=True, slots=True)
class Panel:
    id: str
    title_key: str
    template: str
    load: Callable[[web.Request], Awaitable[dict[str, Any]]]


def samples(registry: CollectorRegistry, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Every sample of one series in this process's registry (labels, value)."""
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value
