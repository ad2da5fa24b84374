"""The demo's staff accounts for the pages, with fresh passwords every start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import yaml

__all__ = ["STAFF", "write_staff"]

# One staff account per demo partner that has pages (docs/ui.md).
STAFF = {
    "hall-clerk": ("demo-service-hall", "窗口 张敏"),
    "operator": ("demo-operator", "信用办 李强"),
    "auditor": ("demo-auditor", "审计 王芳"),
    "loan-officer": ("demo-bank", "信贷 赵磊"),
}


def write_staff(path: Path) -> dict[str, tuple[str, str]]:
    """Fresh passwords every start, hashed into the accounts file (0600)."""
    from gateway.ui.users import hash_password

    accounts = {name: (partner, secrets.token_urlsafe(12)) for name, (partner, _) in STAFF.items()}
    users = [
        {
            "username": name,
            "partner": partner,
            "name": STAFF[name][1],
            "password_argon2": hash_password(password, cheap=True),
        }
        for name, (partner, password) in accounts.items()
    ]
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by `xinyi-gateway serve --demo`: demo staff, passwords in demo.json.\n")
        yaml.safe_dump({"users": users}, fh, allow_unicode=True, sort_keys=False)
    return accounts
