"""Partner authentication by development API key, and contract kinds."""

from __future__ import annotations

import hashlib

import pytest

from gateway.errors import Forbidden, Unauthenticated
from gateway.settings import Partner
from gateway.trust.partners import PartnerRegistry, hash_api_key, new_api_key

BANK_KEY = "xk_dev_bank-secret-key"
OTHER_KEY = "xk_dev_key-of-a-partner-without-api-keys"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def registry() -> PartnerRegistry:
    return PartnerRegistry(
        [
            Partner(
                id="bank-a",
                kind="bank",
                scenes=["loan"],
                purposes=["credit_loan_assessment"],
                allow_api_keys=True,
                api_key_sha256=[sha(BANK_KEY)],
            ),
            Partner(id="library-a", kind="library", scenes=["library"]),
            Partner(id="platform-a", kind="platform"),
        ]
    )


def test_hash_api_key_is_sha256_hex() -> None:
    assert hash_api_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_new_api_keys_are_random_and_prefixed() -> None:
    a, b = new_api_key(), new_api_key()
    assert a != b
    assert a.startswith("xk_dev_")
    assert len(a) >= 7 + 43


def test_valid_key_authenticates(registry: PartnerRegistry) -> None:
    assert registry.authenticate(f"Bearer {BANK_KEY}").id == "bank-a"
    assert registry.authenticate(f"bearer   {BANK_KEY}  ").id == "bank-a"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"Basic {BANK_KEY}",
        f"Token {BANK_KEY}",
        "Bearer",
        "Bearer    ",
        BANK_KEY,
        f"Bearer {BANK_KEY}x",
        "Bearer xk_dev_unknown",
        f"Bearer {sha(BANK_KEY)}",  # the digest itself is not a credential
    ],
)
def test_bad_credentials_are_unauthenticated(registry: PartnerRegistry, header: str | None) -> None:
    with pytest.raises(Unauthenticated) as info:
        registry.authenticate(header)
    assert info.value.status == 401
    assert "WWW-Authenticate" in info.value.headers
    assert BANK_KEY not in info.value.detail


def test_keys_of_partners_without_allow_api_keys_do_not_work() -> None:
    # built without the settings validator, as a partner loaded some other way might be
    partner = Partner.model_construct(
        id="sneaky", kind="bank", api_key_sha256=[sha(OTHER_KEY)], allow_api_keys=False
    )
    with pytest.raises(Unauthenticated):
        PartnerRegistry([partner]).authenticate(f"Bearer {OTHER_KEY}")


def test_require_kind(registry: PartnerRegistry) -> None:
    bank = registry.by_id["bank-a"]
    PartnerRegistry.require_kind(bank, "bank", "library")
    with pytest.raises(Forbidden) as info:
        PartnerRegistry.require_kind(bank, "platform")
    assert info.value.code == "forbidden_kind"
    assert info.value.status == 403


def test_scoped_narrows_scenes(registry: PartnerRegistry) -> None:
    scoped = registry.scoped("bank-a", ("other",))
    assert scoped is not None
    assert scoped.scenes == []
    assert registry.scoped("bank-a", ("loan",)).scenes == ["loan"]
    assert registry.scoped("nobody", ("loan",)) is None
    # the registry's own partner keeps its contract
    assert registry.by_id["bank-a"].scenes == ["loan"]
