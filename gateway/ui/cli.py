"""``xinyi-gateway ui hash-password``: the hash for a staff account in ui_users_file."""

from __future__ import annotations

import getpass
import sys

from gateway.ui.users import hash_password

__all__ = ["MIN_PASSWORD", "hash_password_command"]

MIN_PASSWORD = 12


def hash_password_command() -> int:
    """Read a password (twice at a terminal, else one line of stdin); print its Argon2id hash."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD:
        print(f"a staff password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
