"""Every API module the application serves: routes and OpenAPI parts come from here.

A new resource module is one line in ``MODULES``; a new operation in an
existing module needs no change here (its ``openapi`` part describes it).
"""

from __future__ import annotations

from types import ModuleType

from gateway.api import (
    admin,
    audit,
    commitments,
    consents,
    credit_office,
    decisions,
    events,
    loans,
    oauth,
    service,
    subjects,
    tokens,
)

__all__ = ["MODULES"]

MODULES: tuple[ModuleType, ...] = (
    service,
    decisions,
    consents,
    admin,
    oauth,
    tokens,
    events,
    credit_office,
    commitments,
    audit,
    subjects,
    loans,
)
