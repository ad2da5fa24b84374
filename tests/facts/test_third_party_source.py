"""A credit source from another package plugs in without touching gateway code.

The test writes a throwaway distribution (its own pyproject.toml declaring an
entry point in ``xinyi_gateway.credit_sources``), pip-installs it into the test
environment, starts a gateway configured with nothing but its entry-point name,
decides every demo subject through the HTTP API, and uninstalls it again.
"""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.credit.fake_platform import export_bytes
from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import prepare_demo, seed_consents, write_demo_json
from gateway.plugins import available_credit_sources
from gateway.policy.loader import PolicySet
from gateway.settings import load_settings
from tests.conftest import Demo

pytestmark = pytest.mark.slow

SOURCE = '''
"""A credit source that reads the platform's JSON Lines export from a file."""

from collections import defaultdict
from pathlib import Path

import orjson

from adapters.credit.base import CreditRecord, CreditSource, CreditSourceError, RecordStatus
from datetime import date


class JsonLinesCreditSource(CreditSource):
    def __init__(self, path):
        self._by_subject = defaultdict(list)
        for line in path.read_bytes().splitlines():
            row = orjson.loads(line)
            until = row["publication_until"]
            self._by_subject[(row["subject_kind"], row["subject_id"])].append(
                CreditRecord(
                    record_id=row["record_id"],
                    type=row["type"],
                    domain=row["domain"],
                    effective_document=row["effective_document"],
                    adverse=row["adverse"],
                    decided_on=date.fromisoformat(row["decided_on"]),
                    publication_until=date.fromisoformat(until) if until else None,
                    status=RecordStatus(row["status"]),
                    value=row["value"],
                    title=row["title"],
                )
            )

    @classmethod
    def from_options(cls, options, context):
        path = Path(options.get("path", "records.jsonl"))
        if not path.is_absolute():
            path = context.state_dir / path
        if not path.is_file():
            raise CreditSourceError("records file missing")
        return cls(path)

    async def records(self, kind, subject_id):
        return list(self._by_subject.get((kind, subject_id), []))

    async def check(self):
        return None
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Install the throwaway package; yield its entry-point name; uninstall it."""
    tag = uuid.uuid4().hex[:8]
    module, dist, entry = f"xinyi_jsonl_source_{tag}", f"xinyi-jsonl-source-{tag}", f"jsonl_{tag}"
    root = tmp_path_factory.mktemp("plugin")
    (root / f"{module}.py").write_text(SOURCE, encoding="utf-8")
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "{dist}"
            version = "0.1.0"

            [project.entry-points."xinyi_gateway.credit_sources"]
            {entry} = "{module}:JsonLinesCreditSource"

            [tool.hatch.build.targets.wheel]
            include = ["{module}.py"]
            """
        ),
        encoding="utf-8",
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(root)],
        check=True,
        capture_output=True,
    )
    importlib.invalidate_caches()
    try:
        yield entry
    finally:
        subprocess.run([*pip, "uninstall", "-y", dist], check=True, capture_output=True)
        sys.modules.pop(module, None)
        importlib.invalidate_caches()


async def test_an_installed_package_serves_decisions(
    plugin: str,
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    shipped_policies: PolicySet,
) -> None:
    monkeypatch.setattr("gateway.runtime.load_configured_policies", lambda _: shipped_policies)
    assert plugin in available_credit_sources()
    setup = prepare_demo(tmp_path / "demo", dt.datetime.now(dt.UTC).date())
    rows = [(s.kind, s.id, r) for s in setup.subjects for r in s.records]
    (setup.state_dir / "records.jsonl").write_bytes(export_bytes(rows, "jsonl"))
    settings = load_settings(
        None,
        setup.settings_overrides()
        | {"credit_source": {"adapter": plugin, "options": {"path": "records.jsonl"}}},
    )
    app = await create_app(settings)
    gateway = app[GATEWAY]
    assert type(gateway.credit).__module__.startswith("xinyi_jsonl_source_")
    await seed_consents(setup, gateway.consents.create, gateway.now())
    data = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
    demo = Demo(await aiohttp_client(app), gateway, data)

    scenes = {"enterprise": ("loan", "approval"), "person": ("library", "transit")}
    for subject in demo.subjects:
        for scene in scenes[subject["kind"]]:
            response = await demo.decide(subject, scene)
            assert response.status == 200, await response.text()
            assert (await response.json())["outcome"] == subject["expected"][scene]
    assert (await demo.client.get("/readyz")).status == 200
