"""Delivery upstream: the credit platform's event endpoint.

``POST {base_url}{path}`` (default path ``/events``) with the Standard
Webhooks payload and headers; signed when a secret is configured (the
platform may instead authenticate the gateway by its network or mTLS). The
platform records what the gateway reports — e.g. 违背承诺 for a breached
commitment — and acknowledges with any 2xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from adapters.delivery.base import DeliveryAdapter, DeliveryContext, OutboundEvent, load_secret
from adapters.delivery.webhook import post_signed

__all__ = ["PlatformDelivery"]


class PlatformDelivery(DeliveryAdapter):
    """Options: ``base_url``, ``path``, ``timeout_seconds``; optionally ``secret_env`` or
    ``secret_file`` to sign."""

    def __init__(self, url: str, secret: str | None, timeout_s: float) -> None:
        self.url = url
        self._signer = Webhook(secret) if secret else None
        self._timeout = timeout_s
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: DeliveryContext) -> PlatformDelivery:
        base = options.get("base_url")
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise ValueError("base_url: the platform's http(s) base URL is required")
        path = str(options.get("path", "/events"))
        if not path.startswith("/"):
            raise ValueError("path: must start with /")
        return cls(
            base.rstrip("/") + path,
            load_secret(options, context),
            float(options.get("timeout_seconds", 10.0)),
        )

    async def deliver(self, event: OutboundEvent) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        await post_signed(self._session, self.url, event, self._signer, self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
