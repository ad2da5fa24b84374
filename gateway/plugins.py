"""Entry-point discovery of adapters.

Built-in adapters register through the same entry-point group as third-party
ones (``pyproject.toml``), and only an adapter named in configuration loads.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from adapters.credit.base import CreditSource
from adapters.delivery.base import DeliveryAdapter

__all__ = [
    "CREDIT_SOURCES_GROUP",
    "DELIVERIES_GROUP",
    "available_credit_sources",
    "available_deliveries",
    "load_credit_source_class",
    "load_delivery_class",
]

CREDIT_SOURCES_GROUP = "xinyi_gateway.credit_sources"
DELIVERIES_GROUP = "xinyi_gateway.deliveries"


def available_credit_sources() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=CREDIT_SOURCES_GROUP))


def load_credit_source_class(name: str) -> type[CreditSource]:
    """Load the credit source registered under ``name``; ValueError if none is."""
    matches = [ep for ep in entry_points(group=CREDIT_SOURCES_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(available_credit_sources()) or "none"
        raise ValueError(f"no credit source named {name!r} is installed (installed: {known})")
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, CreditSource)):
        raise ValueError(f"entry point {name!r} does not name a CreditSource subclass")
    return cls


def available_deliveries() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=DELIVERIES_GROUP))


def load_delivery_class(name: str) -> type[DeliveryAdapter]:
    """Load the delivery adapter registered under ``name``; ValueError if none is."""
    matches = [ep for ep in entry_points(group=DELIVERIES_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(available_deliveries()) or "none"
        raise ValueError(f"no delivery adapter named {name!r} is installed (installed: {known})")
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, DeliveryAdapter)):
        raise ValueError(f"entry point {name!r} does not name a DeliveryAdapter subclass")
    return cls
