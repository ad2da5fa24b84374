"""Demo mode: synthetic data, demo partners and consents, written to a state directory.

Every identifier is generated with correct check characters from a fixed seed,
so demo subjects are stable across starts and never belong to a real person.
API keys, client keys and consents are made on the first start, listed in
demo.json, and reused by later starts on the same state directory (so shell
variables taken from demo.json stay good); ``reset`` makes them afresh.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.credit.fake_platform import FakePlatform, running_fake_platform
from adapters.credit.sqlite import read_dataset, write_dataset
from gateway.demo.demo_json import read_previous, write_demo_json
from gateway.demo.partners import (
    ENTERPRISE_CONSENT_SCENES,
    PARTNERS,
    PERSON_CONTEXT,
    new_client_key,
    reuse_client_key,
)
from gateway.demo.staff import write_staff
from gateway.demo.subjects import DemoSubject, demo_subjects
from gateway.trust.partners import hash_api_key, new_api_key

__all__ = [
    "DemoSetup",
    "DemoSubject",
    "demo_overrides",
    "demo_platform",
    "prepare_demo",
    "seed_consents",
    "write_demo_json",
]


@dataclass
class DemoSetup:
    state_dir: Path
    partners_file: Path
    dataset: Path
    api_keys: dict[str, str]
    subjects: list[DemoSubject]
    client_keys: dict[str, Path] = field(default_factory=dict)
    # consent ids demo.json listed at the last start: subject id → partner → consent id
    previous_consents: dict[str, dict[str, str]] = field(default_factory=dict)
    # Staff sign-in for the pages: username → (partner id, password).
    ui_users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def settings_overrides(self) -> dict[str, Any]:
        """What a demo gateway's settings take from this setup: state, partners, dataset."""
        return demo_overrides(self.state_dir)


def demo_overrides(state_dir: Path) -> dict[str, Any]:
    """A demo gateway's settings (state, partners, dataset), known before anything is written."""
    return {
        "state_dir": state_dir,
        "partners_file": state_dir / "partners.yaml",
        "ui_users_file": state_dir / "ui-users.yaml",
        "credit_source": {
            "adapter": "sqlite",
            "options": {"path": str(state_dir / "credit.sqlite3")},
        },
    }


def prepare_demo(
    state_dir: Path, today: dt.date, rate_per_second: float = 200.0, *, reset: bool = False
) -> DemoSetup:
    """Write the demo partners file and credit dataset; return what seeding needs.

    Credentials a previous start listed in ``state_dir/demo.json`` are kept
    unless ``reset``.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    previous = {} if reset else read_previous(state_dir)
    api_keys: dict[str, str] = {}
    client_keys: dict[str, tuple[Path, dict[str, str]]] = {}
    for p in PARTNERS:
        known = previous.get("partners", {}).get(p.id)
        reused = reuse_client_key(Path(known["client_key"])) if known else None
        if known and reused:
            api_keys[p.id], client_keys[p.id] = known["api_key"], reused
        else:
            api_keys[p.id] = new_api_key()
            client_keys[p.id] = new_client_key(state_dir / "clients", p.id)
    partners = [
        {
            "id": p.id,
            "kind": p.kind,
            "title": f"demo {p.kind}",
            "scenes": list(p.scenes),
            "purposes": list(p.purposes),
            "allow_api_keys": True,
            "api_key_sha256": [hash_api_key(api_keys[p.id])],
            "jwks": {"keys": [client_keys[p.id][1]]},
            "rate_limit": {"per_second": rate_per_second, "burst": int(rate_per_second * 2)},
        }
        | (
            # The 备案 approval of a scene partner's contract (audit report).
            {
                "approval": {
                    "department": "市场秩序科",
                    "department_approved_on": (today - dt.timedelta(days=30)).isoformat(),
                    "leader": "分管副局长",
                    "leader_approved_on": (today - dt.timedelta(days=28)).isoformat(),
                }
            }
            if p.scenes
            else {}
        )
        for p in PARTNERS
    ]
    partners_file = state_dir / "partners.yaml"
    partners_file.write_text(
        "# Written by `xinyi-gateway serve --demo`; development API keys, hashed.\n"
        + yaml.safe_dump({"partners": partners}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    subjects = demo_subjects(today)
    dataset = state_dir / "credit.sqlite3"
    write_dataset(dataset, ((s.kind, s.id, r) for s in subjects for r in s.records))
    dataset.chmod(0o600)
    return DemoSetup(
        state_dir,
        partners_file,
        dataset,
        api_keys,
        subjects,
        {pid: path for pid, (path, _) in client_keys.items()},
        previous.get("consents", {}),
        write_staff(state_dir / "ui-users.yaml"),
    )


@asynccontextmanager
async def demo_platform(setup: DemoSetup) -> AsyncIterator[dict[str, Any]]:
    """``serve --demo --upstream``: the fake credit platform, serving the demo dataset
    on a free loopback port in this event loop; yields the ``credit_source`` settings
    that point the platform adapter at it (with a fresh bearer token)."""
    token = secrets.token_urlsafe(24)
    platform = FakePlatform.with_rows(read_dataset(setup.dataset), token=token)
    async with running_fake_platform(platform) as url:
        yield {"adapter": "platform", "options": {"base_url": url, "bearer_token": token}}


async def seed_consents(
    setup: DemoSetup, create: Any, now: dt.datetime, lookup: Any = None
) -> None:
    """Give every person consent for the library and transit partners, and every
    enterprise its 授权 for the bank; ``create`` is ``ConsentService.create``.

    With ``lookup`` (``Store.get_consent``), a consent the last start made is
    reused while it is unrevoked and has at least a week to run.
    """
    expires = now + dt.timedelta(days=180)
    for subject in setup.subjects:
        scenes = PERSON_CONTEXT if subject.kind == "person" else ENTERPRISE_CONSENT_SCENES
        for partner in PARTNERS:
            if not set(partner.scenes) & set(scenes):
                continue
            old_id = setup.previous_consents.get(subject.id, {}).get(partner.id)
            old = await lookup(old_id) if lookup is not None and old_id else None
            if (
                old is not None
                and old.partner == partner.id
                and old.revoked_at is None
                and old.expires_at > now + dt.timedelta(days=7)
            ):
                subject.consents[partner.id] = {
                    "consent_id": old.consent_id,
                    "purpose": old.purpose,
                    "scenes": list(old.scenes),
                }
                continue
            consent = await create(
                created_by="demo-platform",
                kind=subject.kind,
                subject_id=subject.id,
                partner=partner.id,
                scenes=list(partner.scenes),
                purpose=partner.purposes[0],
                expires_at=expires,
                now=now,
            )
            subject.consents[partner.id] = {
                "consent_id": consent.consent_id,
                "purpose": consent.purpose,
                "scenes": list(consent.scenes),
            }
