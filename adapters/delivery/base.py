"""The delivery contract: how a gateway event leaves for a partner's system.

A delivery adapter receives events from the outbox and hands each to one
receiver (a partner's webhook endpoint, the upstream platform's event API, a
message queue …). Adapters are found through the ``xinyi_gateway.deliveries``
entry-point group; the built-in ones register there too (``pyproject.toml``),
so a third-party package adds one without touching the gateway.

Delivery is at least once: an adapter returns when the receiver acknowledged
the event and raises :class:`DeliveryError` otherwise; the outbox retries with
backoff. Receivers de-duplicate by ``OutboundEvent.event_id``.
"""

from __future__ import annotations

import base64
import binascii
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "DeliveryAdapter",
    "DeliveryContext",
    "DeliveryError",
    "OutboundEvent",
    "load_secret",
]


class DeliveryError(Exception):
    """The receiver did not acknowledge the event (unreachable, refused, timed out)."""


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One event for one receiver. ``data`` holds pseudonyms and codes, never an identifier."""

    event_id: str  # unique per event: the Standard Webhooks ``webhook-id``
    type: str  # commitment_breached, token_revoked, …
    timestamp: str  # RFC 3339, when the event happened
    partner: str  # the receiving partner
    data: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> bytes:
        """The body receivers get: the Standard Webhooks payload shape."""
        return orjson.dumps({"type": self.type, "timestamp": self.timestamp, "data": self.data})

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "timestamp": self.timestamp,
            "partner": self.partner,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutboundEvent:
        return cls(d["event_id"], d["type"], d["timestamp"], d["partner"], dict(d["data"]))


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What the gateway hands an adapter when it builds one."""

    partner: str  # the partner this delivery serves
    name: str  # the delivery's name in the partner's configuration
    config_dir: Path
    state_dir: Path


class DeliveryAdapter(ABC):
    """Delivers events to one receiver. Must be safe to call concurrently."""

    @classmethod
    @abstractmethod
    def from_options(cls, options: Mapping[str, Any], context: DeliveryContext) -> DeliveryAdapter:
        """Build from the delivery's ``options`` block; ValueError names a bad option."""

    @abstractmethod
    async def deliver(self, event: OutboundEvent) -> None:
        """Return once the receiver acknowledged ``event``; else raise DeliveryError."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once when the gateway stops."""


def load_secret(options: Mapping[str, Any], context: DeliveryContext) -> str | None:
    """A ``whsec_`` signing secret from ``secret_env`` (a variable's name) or
    ``secret_file`` (relative to the configuration directory); never inline, so
    it stays out of configuration files and logs. None when neither is set."""
    env_name, file_name = options.get("secret_env"), options.get("secret_file")
    if env_name is not None:
        secret = os.environ.get(str(env_name), "")
        if not secret:
            raise ValueError(f"secret_env: the variable {env_name} is not set")
    elif file_name is not None:
        path = Path(str(file_name))
        path = path if path.is_absolute() else context.config_dir / path
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"secret_file: cannot read {path} ({exc.strerror})") from None
    else:
        return None
    if not secret.startswith("whsec_"):
        raise ValueError("the webhook secret must be whsec_ followed by base64")
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not valid base64 after whsec_") from None
    if len(raw) < 24:
        raise ValueError("the webhook secret must hold at least 24 random bytes")
    return secret
