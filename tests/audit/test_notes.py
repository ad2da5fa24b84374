"""Checkpoints as C2SP signed notes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.notes import (
    NoteError,
    parse_checkpoint,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
)

ORIGIN = "gateway.example/audit"


def test_a_checkpoint_has_the_c2sp_layout_and_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    root = hashlib.sha256(b"root").digest()
    note = sign_checkpoint(ORIGIN, 42, root, key)
    text, signature_line = note.split("\n\n")
    assert text == f"{ORIGIN}\n42\n{base64.b64encode(root).decode()}"
    assert signature_line.startswith(f"\u2014 {ORIGIN} ")
    raw_public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # The key id is SHA-256(name || 0x0A || 0x01 || public key)[:4], computed here by hand.
    signature = base64.b64decode(signature_line.split(" ")[2])
    assert signature[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw_public).digest()[:4]
    key.public_key().verify(signature[4:], (text + "\n").encode())
    vkey = verifier_key(ORIGIN, key.public_key())
    assert vkey.split("+")[1] == signature[:4].hex()
    cp = verify_checkpoint(note, ORIGIN, [key.public_key()])
    assert (cp.size, cp.root) == (42, root)


def test_tampered_or_unknown_checkpoints_are_refused() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = sign_checkpoint(ORIGIN, 7, b"\1" * 32, key)
    with pytest.raises(NoteError, match="no known key"):
        verify_checkpoint(note, ORIGIN, [other.public_key()])
    with pytest.raises(NoteError, match="does not verify"):
        verify_checkpoint(note.replace("\n7\n", "\n8\n"), ORIGIN, [key.public_key()])
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(note, "elsewhere/audit", [key.public_key()])
    for broken in ("", "x\n", f"{ORIGIN}\n07\nAA==\n\n\u2014 x AAAAAAA=\n"):
        with pytest.raises(NoteError):
            parse_checkpoint(broken)
