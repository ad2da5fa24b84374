"""Consent: specific, expiring, revocable; anything else counts as none."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import Forbidden, InvalidRequest
from gateway.store.base import Consent
from gateway.store.embedded import EmbeddedStore
from gateway.trust.consents import ConsentService
from gateway.trust.pseudonyms import Pseudonyms

NOW = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
RIC = "11010519491231002X"
OTHER_RIC = "110105194912310046"


PSEUDONYMS = Pseudonyms(b"k" * 32)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "state.sqlite3")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def service(store: EmbeddedStore) -> ConsentService:
    return ConsentService(store, PSEUDONYMS, max_days=366)


async def create(service: ConsentService, **changes: Any) -> Consent:
    args: dict[str, Any] = {
        "kind": "person",
        "subject_id": RIC,
        "partner": "library-a",
        "scenes": ["library", "library"],
        "purpose": "deposit_waiver",
        "expires_at": NOW + dt.timedelta(days=30),
        "now": NOW,
        "created_by": "platform-a",
    } | changes
    return await service.create(**args)


async def require(service: ConsentService, consent_id: str | None, **changes: Any) -> Consent:
    args: dict[str, Any] = {
        "kind": "person",
        "subject_id": RIC,
        "partner": "library-a",
        "scene": "library",
        "purpose": "deposit_waiver",
        "now": NOW + dt.timedelta(days=1),
    } | changes
    args["subject_key"] = PSEUDONYMS.internal(args["kind"], args.pop("subject_id"))
    return await service.require(consent_id, **args)


async def test_created_consent_holds_no_subject_id(service: ConsentService) -> None:
    consent = await create(service)
    assert consent.scenes == ("library",)
    assert consent.consent_id.startswith("cns_")
    assert RIC not in repr(consent)


@pytest.mark.parametrize(
    "expires_at",
    [
        NOW - dt.timedelta(seconds=1),
        NOW,
        NOW + dt.timedelta(days=366, seconds=1),
        NOW + dt.timedelta(days=36500),
    ],
)
async def test_expiry_out_of_bounds_is_invalid(
    service: ConsentService, expires_at: dt.datetime
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await create(service, expires_at=expires_at)
    assert [e.pointer for e in info.value.errors] == ["/expires_at"]


async def test_expiry_at_the_maximum_is_accepted(service: ConsentService) -> None:
    await create(service, expires_at=NOW + dt.timedelta(days=366))


async def test_matching_query_is_covered(service: ConsentService) -> None:
    consent = await create(service)
    got = await require(service, consent.consent_id)
    assert got == consent


async def test_missing_or_unknown_consent_is_required(service: ConsentService) -> None:
    for consent_id in (None, "", "cns_unknown"):
        with pytest.raises(Forbidden) as info:
            await require(service, consent_id)
        assert info.value.code == "consent_required"


async def test_revoked_consent(service: ConsentService, store: EmbeddedStore) -> None:
    consent = await create(service)
    await store.revoke_consent(consent.consent_id, NOW)
    with pytest.raises(Forbidden) as info:
        await require(service, consent.consent_id)
    assert info.value.code == "consent_revoked"
    # another partner does not learn that the consent exists, revoked or not
    with pytest.raises(Forbidden) as other:
        await require(service, consent.consent_id, partner="bank-a")
    assert other.value.code == "consent_required"


@pytest.mark.parametrize(
    "changes",
    [
        {"partner": "library-b"},
        {"scene": "transit"},
        {"purpose": "marketing"},
        {"subject_id": OTHER_RIC},
        {"kind": "enterprise"},
        {"now": NOW + dt.timedelta(days=30)},
        {"now": NOW + dt.timedelta(days=31)},
    ],
)
async def test_consent_for_something_else_counts_as_none(
    service: ConsentService, changes: dict[str, Any]
) -> None:
    consent = await create(service)
    with pytest.raises(Forbidden) as info:
        await require(service, consent.consent_id, **changes)
    assert info.value.code == "consent_required"
    assert RIC not in info.value.detail
