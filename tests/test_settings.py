"""Configuration files: refusals that say where and how to fix, and the environment on top."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.resources import shipped
from gateway.settings import ConfigError, load_partners, load_settings

DIGEST = "a" * 64


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("XINYI_"):
            monkeypatch.delenv(name)


def config(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_shipped_example_configuration_loads() -> None:
    settings = load_settings(shipped("config") / "gateway.yaml")
    assert settings.port == 8080
    assert settings.policy_dir.resolve() == shipped("policies").resolve()
    assert settings.partners_file.resolve() == (shipped("config") / "partners.yaml").resolve()


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.mode == "development"
    assert settings.issuer == "http://127.0.0.1:8080"
    assert settings.store_url.startswith("sqlite:///")


def test_unknown_key_names_file_key_and_fix(tmp_path: Path) -> None:
    path = config(tmp_path, "prot: 8081\n")
    message = refusal(path)
    assert str(path) in message
    assert "'prot'" in message
    assert "fix: remove it or correct its spelling" in message


def test_unknown_nested_key(tmp_path: Path) -> None:
    message = refusal(config(tmp_path, "credit_source: {adaptor: sqlite}\n"))
    assert "credit_source.adaptor" in message
    assert "fix:" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("port: eighty\n", "port"),
        ("port: 70000\n", "port"),
        ("mode: staging\n", "mode"),
        ("records_cache_seconds: -1\n", "records_cache_seconds"),
        ("consent_max_days: 100000\n", "consent_max_days"),
    ],
)
def test_wrong_type_or_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = config(tmp_path, text)
    message = refusal(path)
    assert str(path) in message
    assert f"'{key}'" in message
    assert "fix: correct the value" in message


def test_every_bad_key_is_reported(tmp_path: Path) -> None:
    message = refusal(config(tmp_path, "prot: 1\nport: x\n"))
    assert "'prot'" in message
    assert "'port'" in message


@pytest.mark.parametrize("text", ["- port\n- 8080\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = config(tmp_path, text)
    message = refusal(path)
    assert str(path) in message
    assert "mapping" in message
    assert "fix:" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    path = config(tmp_path, "port: [8080\nhost: x\n")
    message = refusal(path)
    assert str(path) in message
    assert "not valid YAML" in message
    assert "fix: correct the syntax" in message


def test_missing_file(tmp_path: Path) -> None:
    message = refusal(tmp_path / "absent.yaml")
    assert "absent.yaml" in message
    assert "fix:" in message


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")).port == 8080


def test_production_needs_signed_policies(tmp_path: Path) -> None:
    message = refusal(config(tmp_path, "mode: production\n"))
    assert "policy_bundle" in message


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = config(sub, "policy_dir: ../policies\npartners_file: partners.yaml\n")
    settings = load_settings(path)
    assert settings.policy_dir == sub.resolve() / "../policies"
    assert settings.partners_file == sub.resolve() / "partners.yaml"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, "port: 9000\nhost: gateway.internal\n")
    assert load_settings(path).port == 9000
    monkeypatch.setenv("XINYI_PORT", "9100")
    settings = load_settings(path)
    assert settings.port == 9100
    assert settings.host == "gateway.internal"


def test_nested_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XINYI_CREDIT_SOURCE__ADAPTER", "custom")
    path = config(tmp_path, "credit_source: {adapter: sqlite, options: {path: x.db}}\n")
    settings = load_settings(path)
    assert settings.credit_source.adapter == "custom"


def test_bad_environment_value_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XINYI_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="port"):
        load_settings(config(tmp_path, "port: 9000\n"))


# -- partners --------------------------------------------------------------------------------


def partners(tmp_path: Path, text: str) -> Path:
    return config(tmp_path, text, "partners.yaml")


def test_shipped_partners_load() -> None:
    loaded = load_partners(shipped("config") / "partners.yaml")
    assert len({p.id for p in loaded}) == len(loaded)
    assert {p.kind for p in loaded} >= {"bank", "library", "platform"}


def test_duplicate_partner_ids_are_refused(tmp_path: Path) -> None:
    path = partners(
        tmp_path,
        "partners:\n  - {id: bank-a, kind: bank}\n  - {id: bank-a, kind: library}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_partners(path)
    assert str(path) in str(info.value)
    assert "bank-a" in str(info.value)
    assert "unique" in str(info.value)


def test_api_key_digest_needs_allow_api_keys(tmp_path: Path) -> None:
    path = partners(
        tmp_path, f"partners:\n  - {{id: bank-a, kind: bank, api_key_sha256: [{DIGEST}]}}\n"
    )
    with pytest.raises(ConfigError, match="allow_api_keys"):
        load_partners(path)
    allowed = partners(
        tmp_path,
        "partners:\n"
        f"  - {{id: bank-a, kind: bank, allow_api_keys: true, api_key_sha256: [{DIGEST}]}}\n",
    )
    assert load_partners(allowed)[0].api_key_sha256 == [DIGEST]


def test_api_key_digest_must_be_lowercase_hex(tmp_path: Path) -> None:
    path = partners(
        tmp_path,
        "partners:\n"
        f"  - {{id: bank-a, kind: bank, allow_api_keys: true, api_key_sha256: [{'A' * 64}]}}\n",
    )
    with pytest.raises(ConfigError, match="api_key_sha256"):
        load_partners(path)


def test_non_scene_partner_may_not_list_scenes(tmp_path: Path) -> None:
    path = partners(tmp_path, "partners:\n  - {id: plat, kind: platform, scenes: [loan]}\n")
    with pytest.raises(ConfigError, match="scenes"):
        load_partners(path)


def test_jwks_file_is_relative_to_the_partners_file(tmp_path: Path) -> None:
    path = partners(tmp_path, "partners:\n  - {id: bank-a, kind: bank, jwks_file: keys/a.json}\n")
    assert load_partners(path)[0].jwks_file == tmp_path.resolve() / "keys" / "a.json"
