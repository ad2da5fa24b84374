"""Production mode: only a bundle signed by a configured credit-office key serves.

The same checks run at start-up and on reload: a refused or unsigned set stops
the start, and on reload leaves the serving set in place.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.policy.bundle import BundleError, build_bundle, sign_bundle
from gateway.policy.loader import PolicyLoadError, load_policy_dir
from gateway.resources import shipped
from gateway.settings import ConfigError, load_settings
from tests.policy_ops._kit import LIBRARY_RULE_600, copy_policies, replace_once, sample
from tests.policy_ops.conftest import METRICS_TOKEN, Office, Serve, make_office

SCORE_650 = "person, credit score 650"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("built") / "policies.bundle"
    build_bundle(shipped("policies"), out)
    return out.read_bytes()


@pytest.fixture
def bundle(tmp_path: Path, built: bytes) -> Path:
    out = tmp_path / "deployed.bundle"
    out.write_bytes(built)
    return out


def test_production_without_a_bundle_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="policy_bundle"):
        load_settings(None, {"mode": "production"})


def test_production_with_a_bundle_but_no_keys_is_a_configuration_error(bundle: Path) -> None:
    with pytest.raises(ConfigError, match="policy_keys"):
        load_settings(None, {"mode": "production", "policy_bundle": bundle})


def test_production_ignores_a_policy_directory(bundle: Path, office: Office) -> None:
    """policy_dir alone, however lawful, is not enough in production."""
    with pytest.raises(ConfigError):
        load_settings(None, {"mode": "production", "policy_dir": shipped("policies")})
    settings = load_settings(
        None,
        {
            "mode": "production",
            "policy_bundle": bundle,
            "policy_keys": office.jwks,
            "metrics_token": METRICS_TOKEN,
        },
    )
    assert settings.policy_bundle == bundle


async def test_production_serves_a_signed_bundle(
    serve: Serve, bundle: Path, office: Office
) -> None:
    sign_bundle(bundle, office.private_pem)
    served = await serve(mode="production", policy_bundle=bundle, policy_keys=office.jwks)
    expected = load_policy_dir(shipped("policies")).hash
    assert served.gateway.policies.hash == expected

    ready = await served.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["policy_set"] == expected

    response = await served.decide("library", served.subject(SCORE_650))
    assert response.status == 200
    decision = await response.json()
    assert decision["outcome"] == "granted"
    assert decision["policy_set"] == expected
    claims = await served.token_claims(decision["token"], "demo-library")
    assert claims["policy_set"] == expected


async def test_production_refuses_to_start_on_an_unsigned_bundle(
    serve: Serve, bundle: Path, office: Office
) -> None:
    with pytest.raises(BundleError, match="the bundle is not signed"):
        await serve(mode="production", policy_bundle=bundle, policy_keys=office.jwks)


async def test_production_refuses_to_start_on_a_bundle_of_another_office(
    serve: Serve, bundle: Path, office: Office, tmp_path: Path
) -> None:
    sign_bundle(bundle, make_office(tmp_path / "stranger").private_pem)
    with pytest.raises(BundleError, match="not signed by a trusted credit-office key"):
        await serve(mode="production", policy_bundle=bundle, policy_keys=office.jwks)


async def test_development_refuses_to_start_on_a_refused_policy(
    serve: Serve, tmp_path: Path
) -> None:
    directory = copy_policies(tmp_path / "policies")
    replace_once(
        directory / "library.yaml",
        LIBRARY_RULE_600,
        '- {fact: person.credit_score, op: ">=", value: "600"}',
    )
    with pytest.raises(PolicyLoadError, match=r"library\.yaml:score-600: type_mismatch"):
        await serve(policy_dir=directory)


def test_serve_exits_1_on_an_unsigned_bundle_without_listening(
    tmp_path: Path,
    bundle: Path,
    office: Office,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command an operator runs: the start fails and says why, before any port opens."""
    monkeypatch.setattr("gateway.cli.configure_logging", lambda *_: None)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "mode: production\n"
        f"state_dir: {tmp_path / 'state'}\n"
        f"policy_bundle: {bundle.name}\n"
        f"policy_keys: {office.jwks}\n"
        f"metrics_token: {METRICS_TOKEN}\n",
        encoding="utf-8",
    )
    code = main(["serve", "--config", str(config), "--port", "1", "--no-access-log"])
    assert code == 1
    err = capsys.readouterr().err
    assert "the bundle is not signed; the gateway did not start" in err


async def test_reload_keeps_the_signed_set_when_the_new_bundle_is_unsigned(
    serve: Serve,
    bundle: Path,
    office: Office,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sign_bundle(bundle, office.private_pem)
    served = await serve(mode="production", policy_bundle=bundle, policy_keys=office.jwks)
    old = served.gateway.policies.hash

    directory = copy_policies(tmp_path / "edited")
    replace_once(directory / "library.yaml", 'version: "2025.1"', 'version: "2025.2"')
    new = build_bundle(directory, bundle)  # replaced in place, not yet signed
    assert new != old

    with caplog.at_level(logging.ERROR, logger="xinyi.gateway"):
        response = await served.reload()
    assert response.status == 409
    problem = await response.json()
    assert problem["code"] == "policy_refused"
    assert problem["reasons"] == ["the bundle is not signed"]
    assert problem["policy_set"] == old
    assert served.gateway.policies.hash == old
    assert any(
        r.getMessage().startswith("policy reload refused")
        and r.__dict__["reasons"] == ["the bundle is not signed"]
        for r in caplog.records
    )
    text = await served.metrics()
    assert sample(text, "xinyi_policy_reloads_total", result="refused") == 1.0
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 0.0
    decision = await (await served.decide("library", served.subject(SCORE_650))).json()
    assert decision["policy_set"] == old
    assert decision["policy"]["version"] == "2025.1"

    sign_bundle(bundle, office.private_pem)
    response = await served.reload()
    assert response.status == 200
    assert (await response.json())["policy_set"] == new
    decision = await (await served.decide("library", served.subject(SCORE_650))).json()
    assert decision["policy_set"] == new
    assert decision["policy"]["version"] == "2025.2"
    text = await served.metrics()
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 1.0


async def test_reload_refuses_a_missing_bundle_and_keeps_serving(
    serve: Serve, bundle: Path, office: Office
) -> None:
    sign_bundle(bundle, office.private_pem)
    served = await serve(mode="production", policy_bundle=bundle, policy_keys=office.jwks)
    old = served.gateway.policies.hash
    await asyncio.to_thread(bundle.unlink)
    response = await served.reload()
    assert response.status == 409
    reasons = (await response.json())["reasons"]
    assert len(reasons) == 1
    assert "not a readable policy bundle" in reasons[0]
    assert served.gateway.policies.hash == old
    assert (await served.decide("library", served.subject(SCORE_650))).status == 200


def test_production_without_a_metrics_token_is_a_configuration_error(
    bundle: Path, office: Office
) -> None:
    with pytest.raises(ConfigError, match="metrics_token"):
        load_settings(
            None, {"mode": "production", "policy_bundle": bundle, "policy_keys": office.jwks}
        )


async def test_production_metrics_need_the_scrapers_token(
    serve: Serve, bundle: Path, office: Office
) -> None:
    sign_bundle(bundle, office.private_pem)
    served = await serve(mode="production", policy_bundle=bundle, policy_keys=office.jwks)
    anonymous = await served.client.get("/metrics")
    assert anonymous.status == 401
    assert anonymous.content_type == "application/problem+json"
    wrong = await served.client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32})
    assert wrong.status == 401
    # A partner's own access token is not the scraper's.
    assert (await served.client.get("/metrics", headers=served.auth("demo-bank"))).status == 401
    assert "xinyi_decisions_total" in await served.metrics()


async def test_production_refuses_to_start_with_development_api_keys(
    serve: Serve, bundle: Path, office: Office
) -> None:
    sign_bundle(bundle, office.private_pem)
    with pytest.raises(ConfigError, match="does not accept development API keys"):
        await serve(
            mode="production",
            policy_bundle=bundle,
            policy_keys=office.jwks,
            extra_partners={"dev-key-" + "k" * 32: {"id": "dev-bank", "kind": "bank"}},
        )
