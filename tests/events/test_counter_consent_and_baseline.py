"""Consent given at the partner's counter, and the partner's own baseline as a floor."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import prepare_demo, seed_consents, write_demo_json
from gateway.policy.loader import PolicySet
from gateway.settings import ConfigError, load_settings
from tests.conftest import Demo

LIBRARY = "demo-library"
PLATFORM = "demo-platform"
BASIS = "本馆自2017年起对所有读者免押金（6册以内，50元）"


def _with_baseline(partners_file: Path, baseline: list[dict[str, Any]]) -> None:
    data = yaml.safe_load(partners_file.read_text(encoding="utf-8"))
    for partner in data["partners"]:
        if partner["id"] == LIBRARY:
            partner["baseline"] = baseline
    partners_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture
async def baseline_demo(
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    shipped_policies: PolicySet,
) -> Demo:
    monkeypatch.setattr("gateway.runtime.load_configured_policies", lambda _: shipped_policies)
    setup = prepare_demo(tmp_path / "demo", dt.datetime.now(dt.UTC).date())
    _with_baseline(
        setup.partners_file,
        [
            {
                "scene": "library",
                "benefit": "deposit_waiver",
                "params": {"max_items": 6, "max_value_cny": 50},
                "basis": BASIS,
            }
        ],
    )
    settings = load_settings(None, setup.settings_overrides())
    app = await create_app(settings)
    gateway = app[GATEWAY]
    await seed_consents(setup, gateway.consents.create, gateway.now())
    data = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
    return Demo(await aiohttp_client(app), gateway, data)


async def test_a_decision_never_offers_less_than_the_partners_baseline(
    baseline_demo: Demo,
) -> None:
    demo = baseline_demo
    nobody = demo.subject("person", {"library": "standard"})
    floor = await (await demo.decide(nobody, "library")).json()
    assert floor["outcome"] == "granted"
    assert floor["benefits"] == [
        {"code": "deposit_waiver", "params": {"max_items": 6, "max_value_cny": 50}}
    ]
    (reason,) = floor["reasons"]
    assert reason["rule"] == f"partner-baseline:{LIBRARY}"
    assert reason["legal_basis"] == [BASIS]
    assert reason["facts"] == []  # the floor rests on no credit fact
    assert "token" in floor

    # Where credit grants more, the decision keeps the more favourable terms.
    good = demo.subject("person", {"library": "granted"})
    better = await (await demo.decide(good, "library")).json()
    assert better["benefits"] == [
        {"code": "deposit_waiver", "params": {"max_items": 12, "max_value_cny": 100}}
    ]
    # Other partners' decisions are untouched by the library's baseline.
    transit = await (await demo.decide(nobody, "transit")).json()
    assert transit["outcome"] == "standard"


async def test_a_baseline_outside_the_catalogue_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_policies: PolicySet
) -> None:
    monkeypatch.setattr("gateway.runtime.load_configured_policies", lambda _: shipped_policies)
    setup = prepare_demo(tmp_path / "demo", dt.datetime.now(dt.UTC).date())
    _with_baseline(
        setup.partners_file,
        [{"scene": "library", "benefit": "deposit_waiver", "params": {"max_books": 6}}],
    )
    with pytest.raises(ConfigError, match=r"demo-library.*max_books"):
        await create_app(load_settings(None, setup.settings_overrides()))


def _counter_body(demo: Demo, subject: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "subject": {"kind": subject["kind"], "id": subject["id"]},
        "scenes": ["library"],
        "purpose": "deposit_waiver",
        "expires_at": (demo.gateway.now() + dt.timedelta(days=90)).isoformat(),
        "evidence": {"kind": "signed_form", "reference": "LIB-2026-000123"},
    }
    return body | changes


async def test_consent_given_at_the_counter_serves_that_partner_until_revoked(
    demo: Demo,
) -> None:
    person = demo.subject("person", {"library": "granted"})
    recorded = await demo.client.post(
        "/v1/consents/counter", json=_counter_body(demo, person), headers=demo.auth(LIBRARY)
    )
    assert recorded.status == 201, await recorded.text()
    consent = await recorded.json()
    assert consent["partner"] == LIBRARY
    assert consent["evidence"] == {"kind": "signed_form", "reference": "LIB-2026-000123"}
    consent_id = consent["consent_id"]

    decided = await demo.decide(person, "library", consent_id=consent_id)
    assert decided.status == 200
    # Valid for that partner alone: transit cannot use it.
    other = await demo.decide(person, "transit", consent_id=consent_id)
    assert (await other.json())["code"] == "consent_required"

    # The subject revokes it through the platform, which did not record it.
    gone = await demo.client.delete(f"/v1/consents/{consent_id}", headers=demo.auth(PLATFORM))
    assert gone.status == 204
    refused = await demo.decide(person, "library", consent_id=consent_id)
    assert (await refused.json())["code"] == "consent_revoked"

    entries = [r.entry for r in await demo.gateway.store.audit_records(0, 10_000)]
    kinds = [e.get("kind") for e in entries if e.get("detail", {}).get("consent_id") == consent_id]
    assert kinds == ["consent_recorded", "consent_revoked"]
    assert person["id"] not in str(entries)


async def test_counter_consent_needs_evidence_scene_and_a_counter(demo: Demo) -> None:
    person = demo.subject("person", {"library": "granted"})
    no_evidence = _counter_body(demo, person)
    del no_evidence["evidence"]
    cases = [
        (no_evidence, "/evidence"),
        (_counter_body(demo, person, scenes=["transit"]), "/scenes/0"),
        (_counter_body(demo, person, partner="demo-transit"), "/partner"),
    ]
    for body, pointer in cases:
        answer = await demo.client.post(
            "/v1/consents/counter", json=body, headers=demo.auth(LIBRARY)
        )
        assert answer.status == 422, await answer.text()
        assert pointer in [e["pointer"] for e in (await answer.json())["errors"]]
    bank = await demo.client.post(
        "/v1/consents/counter", json=_counter_body(demo, person), headers=demo.auth("demo-bank")
    )
    assert (await bank.json())["code"] == "forbidden_kind"
