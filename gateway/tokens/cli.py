"""``xinyi-gateway keys``: the token signing key ring (list, add, activate, retire)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.settings import ConfigError, load_settings

__all__ = ["add_keys_commands"]


def _keys(args: argparse.Namespace) -> int:
    from gateway.tokens.keys import KeyRing, KeyRingError

    state_dir = _state_dir(args)
    if state_dir is None:
        return 2
    ring = KeyRing.load(state_dir / "keys")
    try:
        if args.keys_command == "add":
            key = ring.add(args.alg)
            print(f"published {key.alg} key {key.kid}; activate it after partners refresh the JWKS")
        elif args.keys_command == "activate":
            key = ring.activate(args.kid)
            print(f"{key.kid} now signs {key.alg} tokens")
        elif args.keys_command == "retire":
            key = ring.retire(args.kid)
            print(f"{key.kid} retired")
    except KeyRingError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.keys_command == "list":
        for key in ring.entries():
            until = f" verify_until={key.verify_until:%Y-%m-%d}" if key.verify_until else ""
            print(f"{key.kid}  {key.alg:5}  {key.status:9}  created={key.created:%Y-%m-%d}{until}")
    else:
        # The running gateway holds the ring in memory: SIGHUP (or the admin API) reloads it.
        print("send SIGHUP to the running gateway to apply", file=sys.stderr)
    return 0


def _state_dir(args: argparse.Namespace) -> Path | None:
    """The state directory ``serve`` would use: --state-dir, else the configuration
    (``--config``, ``XINYI_STATE_DIR``), else its default."""
    if args.state_dir:
        return Path(args.state_dir).resolve()
    try:
        settings = load_settings(Path(args.config) if args.config else None)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    return settings.state_dir.resolve()


def add_keys_commands(sub: Any) -> None:
    """Register ``keys …`` on the top-level subparsers."""
    keys = sub.add_parser("keys", help="the token signing key ring").add_subparsers(
        dest="keys_command", required=True
    )
    key_list = keys.add_parser("list", help="every key with its state")
    key_add = keys.add_parser("add", help="publish a new key (not signing yet)")
    key_add.add_argument("--alg", choices=["EdDSA", "ES256"], default="EdDSA")
    key_activate = keys.add_parser("activate", help="sign with a published key from now on")
    key_activate.add_argument("kid")
    key_retire = keys.add_parser("retire", help="drop a key once its tokens have expired")
    key_retire.add_argument("kid")
    for command in (key_list, key_add, key_activate, key_retire):
        command.add_argument("--state-dir", help="state directory (default: as serve)")
        command.add_argument("--config", help="gateway YAML configuration naming the state")
        command.set_defaults(run=_keys)
