"""Staff accounts for the pages: a person signs in on behalf of their partner.

Accounts live in a YAML file (``ui_users_file``) beside the partners file:
each names its partner, and the partner's kind decides which pages it may
open (``ROLE_PAGES``). Passwords are stored only as Argon2id hashes
(argon2-cffi); checking one costs tens of milliseconds, so it runs off the
event loop.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.settings import ConfigError, Partner

__all__ = [
    "ROLE_PAGES",
    "StaffDirectory",
    "StaffUser",
    "hash_password",
    "load_staff",
]

# Which pages each partner kind may open. A page not listed for a kind is refused (403).
# Banks get "loans" when the loan desk page is added (it needs the loans API).
ROLE_PAGES: dict[str, frozenset[str]] = {
    "service_hall": frozenset({"counter"}),
    "bank": frozenset({"loans"}),
    "operator": frozenset({"dashboard"}),
    "auditor": frozenset({"dashboard"}),
}

_HASHER = PasswordHasher()


def hash_password(password: str, *, cheap: bool = False) -> str:
    """An Argon2id hash; ``cheap`` (demo accounts only) takes milliseconds, not tens of them.

    The parameters travel inside the hash, so verification needs no setting.
    """
    hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1) if cheap else _HASHER
    return hasher.hash(password)


class _Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
    partner: str
    name: str = ""
    password_argon2: str = Field(pattern=r"^\$argon2id\$")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[_Account] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StaffUser:
    username: str
    partner: str
    name: str
    password_hash: str


class StaffDirectory:
    """Every staff account, checked against the partners at start-up."""

    def __init__(self, users: list[StaffUser]) -> None:
        self._users = {u.username: u for u in users}

    def __len__(self) -> int:
        return len(self._users)

    def get(self, username: str) -> StaffUser | None:
        return self._users.get(username)

    async def verify(self, username: str, password: str) -> StaffUser | None:
        """The account when the password is right, else None (same cost either way)."""
        user = self._users.get(username)
        digest = user.password_hash if user is not None else None
        ok = await asyncio.get_running_loop().run_in_executor(None, _check, digest, password)
        return user if ok and user is not None else None


@functools.cache
def _dummy() -> str:
    """Checked when the user does not exist, so a wrong name costs what a wrong password does.

    Made on the first sign-in, not at start-up: an Argon2id hash with the default
    parameters takes 64 MiB for its duration, which would set every worker's peak
    memory whether or not anyone ever signs in.
    """
    return _HASHER.hash("not a password anyone has")


def _check(digest: str | None, password: str) -> bool:
    # Both branches make the dummy on the first call, so that call costs the same either way.
    dummy = _dummy()
    if digest is None:
        digest = dummy
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def load_staff(path: Path | None, partners: dict[str, Partner]) -> StaffDirectory:
    """Read the accounts file; a bad file or an unknown partner stops the start."""
    if path is None:
        return StaffDirectory([])
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = _File.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read staff accounts: {exc}") from None
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: staff accounts refused: {where}") from None
    users = []
    for account in parsed.users:
        partner = partners.get(account.partner)
        if partner is None:
            raise ConfigError(
                f"{path}: user {account.username!r} names an unknown partner "
                f"{account.partner!r} — fix: use a partner id from the partners file"
            )
        if partner.kind not in ROLE_PAGES:
            raise ConfigError(
                f"{path}: user {account.username!r} belongs to a {partner.kind} partner, "
                f"which has no pages — fix: remove the account"
            )
        users.append(
            StaffUser(account.username, account.partner, account.name, account.password_argon2)
        )
    if len({u.username for u in users}) != len(users):
        raise ConfigError(f"{path}: a username appears twice — fix: make usernames unique")
    return StaffDirectory(users)
