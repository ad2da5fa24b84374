"""A third-party delivery adapter plugs in through the entry-point group alone.

A throwaway package is built in tmp, pip-installed into this environment,
found and used by the gateway's loader and dispatcher, then uninstalled.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.delivery.base import DeliveryContext, OutboundEvent
from adapters.delivery.platform import PlatformDelivery
from adapters.delivery.webhook import WebhookDelivery
from gateway.metrics import Metrics
from gateway.outbox.dispatcher import Dispatcher, build_adapters
from gateway.outbox.events import Events
from gateway.plugins import available_deliveries, load_delivery_class
from gateway.settings import OutboxSettings, Partner, Settings
from gateway.store.embedded import EmbeddedStore
from gateway.store.embedded.outbox import EmbeddedOutbox

PACKAGE = "xinyi-test-jsonl-delivery"
MODULE = "xinyi_test_jsonl_delivery"

_SOURCE = '''
"""Appends each event to a JSON-lines file: a delivery written outside the gateway."""
import json
from pathlib import Path

from adapters.delivery.base import DeliveryAdapter


class JsonLinesDelivery(DeliveryAdapter):
    def __init__(self, path):
        self.path = path

    @classmethod
    def from_options(cls, options, context):
        if "file" not in options:
            raise ValueError("file: required")
        return cls(context.state_dir / options["file"])

    async def deliver(self, event):
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"id": event.event_id, "type": event.type}) + "\\n")
'''


def _wheel(directory: Path) -> Path:
    """A minimal wheel (a zip with its dist-info), so no build backend is needed."""
    dist = f"{MODULE}-0.0.1"
    files = {
        f"{MODULE}/__init__.py": textwrap.dedent(_SOURCE),
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.0.1\n",
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: xinyi-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist}.dist-info/entry_points.txt": (
            f"[xinyi_gateway.deliveries]\njsonl = {MODULE}:JsonLinesDelivery\n"
        ),
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist}.dist-info/RECORD,,\n"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{dist}.dist-info/RECORD", record)
    return path


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    wheel = _wheel(tmp_path_factory.mktemp("plugin"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300
    )
    importlib.invalidate_caches()
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "-y", PACKAGE], check=True, timeout=120)
        importlib.invalidate_caches()


def test_builtin_adapters_register_through_the_group() -> None:
    assert {"webhook", "platform"} <= set(available_deliveries())
    assert load_delivery_class("webhook") is WebhookDelivery
    assert load_delivery_class("platform") is PlatformDelivery
    with pytest.raises(ValueError, match="no delivery adapter named 'smtp'"):
        load_delivery_class("smtp")


async def test_a_third_party_adapter_delivers_without_gateway_changes(
    installed_plugin: None, tmp_path: Path
) -> None:
    assert "jsonl" in available_deliveries()
    partner = Partner.model_validate(
        {
            "id": "library-x",
            "kind": "library",
            "deliveries": [
                {"adapter": "jsonl", "events": ["token_revoked"], "options": {"file": "ev.jsonl"}}
            ],
        }
    )
    settings = Settings(state_dir=tmp_path, partners_file=tmp_path / "partners.yaml")
    adapters = build_adapters([partner], settings)
    store = EmbeddedStore(tmp_path / "state.sqlite3")
    await store.open()
    try:
        outbox = EmbeddedOutbox(store)
        await outbox.open()
        dispatcher = Dispatcher(outbox, adapters, OutboxSettings(), Metrics())
        events = Events([partner], outbox, dispatcher.wake)
        assert await events.emit("token_revoked", {"jti": "x"}, audience=["library-x"]) == 1
        assert await events.emit("consent_revoked", {}, audience=["library-x"]) == 0
        assert await dispatcher.run_once() == 1
        await dispatcher.close()
    finally:
        await store.close()
    lines = (tmp_path / "ev.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert '"type": "token_revoked"' in lines[0]


def test_a_bad_delivery_names_partner_and_option_never_the_secret(tmp_path: Path) -> None:
    partner = Partner.model_validate(
        {
            "id": "hall-x",
            "kind": "service_hall",
            "deliveries": [
                {"adapter": "webhook", "events": ["token_revoked"], "options": {"url": "ftp://x"}}
            ],
        }
    )
    settings = Settings(state_dir=tmp_path, partners_file=tmp_path / "partners.yaml")
    with pytest.raises(ValueError, match=r"partner 'hall-x', delivery 'webhook'.*secret"):
        build_adapters([partner], settings)
    secret_file = tmp_path / "weak.whsec"
    secret_file.write_text("whsec_c2hvcnQ=", encoding="utf-8")
    context = DeliveryContext("hall-x", "webhook", tmp_path, tmp_path)
    with pytest.raises(ValueError, match="24 random bytes") as err:
        WebhookDelivery.from_options({"url": "http://x", "secret_file": str(secret_file)}, context)
    assert "c2hvcnQ" not in str(err.value)


def test_event_payload_is_the_standard_webhooks_shape() -> None:
    event = OutboundEvent("evt_1", "token_revoked", "2026-01-01T00:00:00+00:00", "p", {"a": 1})
    assert event.payload() == (
        b'{"type":"token_revoked","timestamp":"2026-01-01T00:00:00+00:00","data":{"a":1}}'
    )
