"""The platform adapter on its own, and the fake platform's own surface: options,
credentials, answers that must not be used, the control endpoint, the export."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from adapters.credit.base import AdapterContext, CreditRecord, CreditSourceError, RecordStatus
from adapters.credit.fake_platform import FakePlatform, running_fake_platform
from adapters.credit.platform import PlatformCreditSource
from adapters.credit.sqlite import SQLiteCreditSource
from gateway.data_import import import_file

ENTERPRISE = "91350100M000100Y43"
PERSON = "11010519491231002X"


def record(n: int, **changes: Any) -> CreditRecord:
    base = CreditRecord(
        record_id=f"r{n}",
        type="tax_credit_grade",
        domain="taxation",
        effective_document=False,
        adverse=False,
        decided_on=dt.date(2024, 4, 1),
        publication_until=None,
        status=RecordStatus.ACTIVE,
        value="A",
        title="纳税信用 A 级",
    )
    return dataclasses.replace(base, **changes)


ROWS = [
    ("enterprise", ENTERPRISE, record(1)),
    ("enterprise", ENTERPRISE, record(2, value=12.5, publication_until=dt.date(2027, 1, 1))),
    ("person", PERSON, record(3, type="credit_score", value=650, title=None)),
]


def build(tmp_path: Path, **options: object) -> PlatformCreditSource:
    context = AdapterContext(tmp_path, tmp_path, CollectorRegistry())
    source = PlatformCreditSource.from_options(
        {"timeout_seconds": 0.3, "deadline_seconds": 0.8, "backoff_seconds": 0.01} | options,
        context,
    )
    assert isinstance(source, PlatformCreditSource)
    return source


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakePlatform, str]]:
    platform = FakePlatform.with_rows(ROWS, token="t0ken")  # type: ignore[arg-type]
    async with running_fake_platform(platform) as url:
        yield platform, url


async def test_records_come_back_typed(served: tuple[FakePlatform, str], tmp_path: Path) -> None:
    _, url = served
    source = build(tmp_path, base_url=url, bearer_token="t0ken")
    try:
        assert await source.records("enterprise", ENTERPRISE) == [r for _, _, r in ROWS[:2]]
        assert await source.records("person", PERSON) == [ROWS[2][2]]
        assert await source.records("person", "nobody") == []
        await source.check()
    finally:
        await source.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "http://x", "retries": 3}, "retries"),
        ({"base_url": "http://x", "bearer_token": "s3cret", "client_id": "c"}, "not both"),
        ({"base_url": "http://x", "client_id": "c"}, "go together"),
        ({"base_url": "http://x", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_options_are_checked_without_echoing_secrets(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(CreditSourceError, match=message) as refused:
        PlatformCreditSource.from_options(options, AdapterContext(tmp_path, tmp_path))
    assert "s3cret" not in str(refused.value)


def test_secrets_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = AdapterContext(tmp_path, tmp_path)
    options = {"base_url": "http://x", "bearer_token_env": "XINYI_TEST_PLATFORM_TOKEN"}
    with pytest.raises(CreditSourceError, match="XINYI_TEST_PLATFORM_TOKEN is not set"):
        PlatformCreditSource.from_options(options, ctx)
    monkeypatch.setenv("XINYI_TEST_PLATFORM_TOKEN", "from-env")
    source = PlatformCreditSource.from_options(options, ctx)
    assert isinstance(source, PlatformCreditSource)
    assert source._headers["Authorization"] == "Bearer from-env"


async def test_client_id_and_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = FakePlatform.with_rows(ROWS, token=None)  # type: ignore[arg-type]
    platform.client = ("gateway-1", "the-secret")
    monkeypatch.setenv("XINYI_TEST_PLATFORM_SECRET", "the-secret")
    async with running_fake_platform(platform) as url:
        good = build(
            tmp_path,
            base_url=url,
            client_id="gateway-1",
            client_secret_env="XINYI_TEST_PLATFORM_SECRET",
        )
        bad = build(tmp_path, base_url=url, client_id="gateway-1", client_secret="wrong")
        try:
            assert len(await good.records("enterprise", ENTERPRISE)) == 2
            with pytest.raises(CreditSourceError, match="HTTP 401"):
                await bad.records("enterprise", ENTERPRISE)
            assert platform.lookups == 2  # a refusal is not retried
        finally:
            await good.close()
            await bad.close()


async def test_an_answer_about_another_subject_is_not_used(
    served: tuple[FakePlatform, str], tmp_path: Path
) -> None:
    platform, url = served
    source = build(tmp_path, base_url=url, bearer_token="t0ken")
    try:
        platform.fail("other_subject")
        with pytest.raises(CreditSourceError):
            await source.records("enterprise", ENTERPRISE)
        platform.fail("other_subject", times=1)
        assert len(await source.records("enterprise", ENTERPRISE)) == 2  # the retry is right
    finally:
        await source.close()


async def test_an_oversized_answer_is_refused(
    served: tuple[FakePlatform, str], tmp_path: Path
) -> None:
    platform, url = served
    platform.put("enterprise", ENTERPRISE, [record(n) for n in range(40)])
    source = build(tmp_path, base_url=url, bearer_token="t0ken", max_body_bytes=1024)
    try:
        with pytest.raises(CreditSourceError, match="max_body_bytes"):
            await source.records("enterprise", ENTERPRISE)
        assert platform.lookups == 1  # the same answer would come again: not retried
    finally:
        await source.close()


async def test_the_control_endpoint_sets_and_clears_faults(
    served: tuple[FakePlatform, str],
) -> None:
    platform, url = served
    auth = {"Authorization": "Bearer t0ken"}
    query = {"subject": {"kind": "person", "id": PERSON}}
    async with aiohttp.ClientSession() as http:
        stranger = await http.post(f"{url}/_control/faults", json={"fault": "error"})
        assert stranger.status == 401
    async with aiohttp.ClientSession(headers=auth) as http:
        set_fault = await http.post(f"{url}/_control/faults", json={"fault": "error", "times": 1})
        assert set_fault.status == 200
        assert (await http.post(f"{url}/v1/records/query", json=query)).status == 500
        assert (await http.post(f"{url}/v1/records/query", json=query)).status == 200
        await http.post(f"{url}/_control/faults", json={"fault": "malformed"})
        broken = await http.post(f"{url}/v1/records/query", json=query)
        assert broken.status == 200
        assert not (await broken.text()).endswith("}")
        assert (await http.post(f"{url}/_control/heal")).status == 200
        assert (await http.post(f"{url}/v1/records/query", json=query)).status == 200
        unknown = await http.post(f"{url}/_control/faults", json={"fault": "meteor"})
        assert unknown.status == 400
        assert (await http.post(f"{url}/v1/records/query", json={"x": 1})).status == 400
    assert platform.lookups == 5


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_the_export_imports_into_the_embedded_dataset(
    served: tuple[FakePlatform, str], tmp_path: Path, fmt: str
) -> None:
    _, url = served
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer t0ken"}) as http,
        http.get(f"{url}/v1/export", params={"format": fmt}) as response,
    ):
        assert response.status == 200
        export = tmp_path / f"export.{fmt}"
        export.write_bytes(await response.read())
    dataset = tmp_path / "credit.sqlite3"
    report = import_file(export, dataset)
    assert (report.imported, report.rejected) == (3, 0)
    source = SQLiteCreditSource(dataset)
    try:
        assert await source.records("enterprise", ENTERPRISE) == [r for _, _, r in ROWS[:2]]
        assert await source.records("person", PERSON) == [ROWS[2][2]]
    finally:
        await source.close()


def test_a_bad_credit_source_setting_stops_the_start_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import main

    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "credit_source:\n  adapter: platform\n  options:\n    bearer_token: s3cret\n",
        encoding="utf-8",
    )
    assert main(["serve", "--config", str(config), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "credit_source" in err
    assert "base_url" in err
    assert "s3cret" not in err
    monkeypatch.setenv("XINYI_CREDIT_SOURCE__ADAPTER", "no_such_source")
    assert main(["serve", "--config", str(config), "--port", "1"]) == 2
    assert "installed: " in capsys.readouterr().err


def test_the_example_configuration_is_accepted() -> None:
    from adapters.credit.platform import PlatformOptions
    from gateway.resources import shipped
    from gateway.settings import load_settings

    settings = load_settings(shipped("config") / "credit-platform.yaml")
    assert settings.credit_source.adapter == "platform"
    PlatformOptions.model_validate(settings.credit_source.options)
