"""Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note).

A checkpoint's text is three lines: the log's origin, the tree size in
decimal, the base64 RFC 9162 root hash. A signature line is
``— <origin> base64(key id || Ed25519 signature)`` where the key id is the
first four bytes of SHA-256(origin || 0x0A || 0x01 || public key), so any
transparency-log tool given the verifier key (``vkey``) can check it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "NoteError",
    "checkpoint_text",
    "key_id",
    "parse_checkpoint",
    "sign_checkpoint",
    "verifier_key",
    "verify_checkpoint",
]

_ED25519 = b"\x01"
_DASH = "\u2014 "


class NoteError(ValueError):
    """Text that is not a well-formed signed checkpoint."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str  # the signed note text (ends in a newline)
    signatures: tuple[tuple[str, bytes], ...]  # (key name, key id || signature)


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(origin: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(origin.encode() + b"\n" + _ED25519 + _raw_public(public)).digest()[:4]


def verifier_key(origin: str, public: Ed25519PublicKey) -> str:
    """The signed-note vkey: ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    material = base64.b64encode(_ED25519 + _raw_public(public)).decode()
    return f"{origin}+{key_id(origin, public).hex()}+{material}"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, key: Ed25519PrivateKey) -> str:
    text = checkpoint_text(origin, size, root)
    signature = key_id(origin, key.public_key()) + key.sign(text.encode())
    return f"{text}\n{_DASH}{origin} {base64.b64encode(signature).decode()}\n"


def parse_checkpoint(note: str) -> Checkpoint:
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise NoteError("a signed note is text, a blank line, then signature lines")
    text += "\n"
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a tree size and a root hash")
    origin, size_line, root_line = lines[:3]
    if not size_line.isdigit() or (size_line != "0" and size_line.startswith("0")):
        raise NoteError("the tree size is not a decimal number")
    try:
        root = base64.b64decode(root_line, validate=True)
    except ValueError:
        raise NoteError("the root hash is not base64") from None
    if len(root) != 32:
        raise NoteError("the root hash is not 32 bytes")
    signatures = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise NoteError("a signature is not base64") from None
        if len(raw) < 5:
            raise NoteError("a signature is too short")
        signatures.append((name, raw))
    return Checkpoint(origin, int(size_line), root, text, tuple(signatures))


def verify_checkpoint(
    note: str, origin: str | None, keys: Iterable[Ed25519PublicKey]
) -> Checkpoint:
    """The checkpoint, if a known key signed it for ``origin`` (None: the origin it names)
    and every known signature verifies; NoteError otherwise."""
    cp = parse_checkpoint(note)
    origin = origin or cp.origin
    if cp.origin != origin:
        raise NoteError(f"the checkpoint is for origin {cp.origin!r}, not {origin!r}")
    known = {key_id(origin, k): k for k in keys}
    verified = False
    for name, raw in cp.signatures:
        public = known.get(raw[:4]) if name == origin else None
        if public is None:
            continue  # signed-note: ignore signatures from unknown keys
        try:
            public.verify(raw[4:], cp.text.encode())
        except InvalidSignature:
            raise NoteError("a signature from a known key does not verify") from None
        verified = True
    if not verified:
        raise NoteError("no known key signed this checkpoint")
    return cp
