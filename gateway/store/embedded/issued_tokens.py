"""Issued tokens on the embedded store: read here, written with their decision (core.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gateway.store.base import IssuedToken

if TYPE_CHECKING:
    from gateway.store.embedded.core import EmbeddedStore

__all__ = ["SCHEMA", "EmbeddedIssuedTokens"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    jti TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    kid TEXT NOT NULL,
    expires INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_subject ON tokens (subject_key, expires);
CREATE INDEX IF NOT EXISTS tokens_by_kid ON tokens (kid, expires);
"""


class EmbeddedIssuedTokens:
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    def _tokens(self, where: str, value: str, now: int) -> list[IssuedToken]:
        rows = self._store.reader.execute(
            f"SELECT body FROM tokens WHERE {where} = ? AND expires > ?",  # noqa: S608 - fixed column names
            (value, now),
        ).fetchall()
        return [IssuedToken.from_dict(orjson.loads(raw)) for (raw,) in rows]

    async def get_token(self, jti: str) -> IssuedToken | None:
        row = self._store.reader.execute("SELECT body FROM tokens WHERE jti = ?", (jti,)).fetchone()
        return IssuedToken.from_dict(orjson.loads(row[0])) if row else None

    async def live_tokens(self, subject_key: str, now: int) -> list[IssuedToken]:
        return self._tokens("subject_key", subject_key, now)

    async def tokens_signed_by(self, kid: str, now: int) -> list[IssuedToken]:
        return self._tokens("kid", kid, now)
