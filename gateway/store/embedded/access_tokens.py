"""OAuth access tokens on the embedded store: in memory only.

After a restart partners simply exchange again; one process serves the file,
so there is no other replica to tell.
"""

from __future__ import annotations

import time

from gateway.store.base import AccessToken

__all__ = ["EmbeddedAccessTokens"]


class EmbeddedAccessTokens:
    def __init__(self) -> None:
        self._access: dict[str, AccessToken] = {}

    async def put_access_token(self, digest: str, token: AccessToken) -> None:
        now = time.time()
        if len(self._access) > 10_000:
            self._access = {k: v for k, v in self._access.items() if v.expires > now}
        self._access[digest] = token

    async def get_access_token(self, digest: str) -> AccessToken | None:
        token = self._access.get(digest)
        return token if token is not None and token.expires > time.time() else None
