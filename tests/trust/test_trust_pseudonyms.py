"""Pairwise pseudonyms: unlinkable across sectors, stable, never the id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from gateway.trust.pseudonyms import Pseudonyms

SECRET = bytes(range(32))
RIC = "11010519491231002X"


def test_pseudonyms_differ_across_sectors() -> None:
    p = Pseudonyms(SECRET)
    assert p.of("bank-a", "person", RIC) != p.of("library-a", "person", RIC)
    assert p.internal("person", RIC) not in {
        p.of("bank-a", "person", RIC),
        p.of("library-a", "person", RIC),
    }


def test_pseudonyms_are_stable() -> None:
    assert Pseudonyms(SECRET).of("bank-a", "person", RIC) == Pseudonyms(SECRET).of(
        "bank-a", "person", RIC
    )


def test_kind_and_secret_matter() -> None:
    p = Pseudonyms(SECRET)
    assert p.of("s", "person", RIC) != p.of("s", "enterprise", RIC)
    assert p.of("s", "person", RIC) != Pseudonyms(bytes(32)).of("s", "person", RIC)


def test_fields_cannot_be_shifted_into_each_other() -> None:
    p = Pseudonyms(SECRET)
    assert p.of("a", "person", "b" + RIC) != p.of("ab", "person", RIC)


def test_pseudonym_does_not_contain_the_id() -> None:
    value = Pseudonyms(SECRET).of("bank-a", "person", RIC)
    assert RIC not in value
    assert RIC[:6] not in value
    assert len(value) == 43  # 256 bits, base64url without padding


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonyms(b"short")


def test_load_creates_a_private_secret_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "pseudonym.key"
    first = Pseudonyms.load(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    second = Pseudonyms.load(path, create=True)
    assert first.of("s", "person", RIC) == second.of("s", "person", RIC)


def test_load_without_create_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Pseudonyms.load(tmp_path / "missing.key")


def test_value_is_hmac_sha256_of_sector_kind_and_id() -> None:
    # Stored consents and token records hold these values: the derivation must not drift.
    p = Pseudonyms(SECRET)
    message = f"bank-a\x1fperson\x1f{RIC}".encode()
    expected = base64.urlsafe_b64encode(hmac.digest(SECRET, message, hashlib.sha256))
    for _ in range(2):  # the keyed HMAC is copied per call, never consumed
        assert p.of("bank-a", "person", RIC) == expected.rstrip(b"=").decode()
