"""Standard Webhooks delivery: a signed HTTP POST to a partner's endpoint.

Headers ``webhook-id`` (the event id, stable across retries, so receivers
de-duplicate by it), ``webhook-timestamp`` (seconds, this attempt) and
``webhook-signature`` (``v1,`` HMAC-SHA256 by the ``standardwebhooks``
library, over ``id.timestamp.body``). Any 2xx acknowledges; anything else,
or no answer within the timeout, is retried by the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from adapters.delivery.base import (
    DeliveryAdapter,
    DeliveryContext,
    DeliveryError,
    OutboundEvent,
    load_secret,
)

__all__ = ["WebhookDelivery", "post_signed"]


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    event: OutboundEvent,
    signer: Webhook | None,
    timeout_s: float,
) -> None:
    body = event.payload()
    now = dt.datetime.now(dt.UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
    }
    if signer is not None:
        headers["webhook-signature"] = signer.sign(event.event_id, now, body)
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as answer:
            await answer.read()
            if not 200 <= answer.status < 300:
                raise DeliveryError(f"the receiver answered HTTP {answer.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"the receiver is unreachable: {type(exc).__name__}") from None


def _url(options: Mapping[str, Any], key: str) -> str:
    url = options.get(key)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{key}: an http(s) URL is required")
    return url


class WebhookDelivery(DeliveryAdapter):
    """Options: ``url``; ``secret_env`` or ``secret_file`` (required); ``timeout_seconds``."""

    def __init__(self, url: str, secret: str, timeout_s: float) -> None:
        self._url = url
        self._signer = Webhook(secret)
        self._timeout = timeout_s
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: DeliveryContext) -> WebhookDelivery:
        secret = load_secret(options, context)
        if secret is None:
            raise ValueError("a webhook needs its signing secret: set secret_env or secret_file")
        return cls(_url(options, "url"), secret, float(options.get("timeout_seconds", 10.0)))

    async def deliver(self, event: OutboundEvent) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        await post_signed(self._session, self._url, event, self._signer, self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
