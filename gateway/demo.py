"""Demo mode: synthetic data, demo partners and consents, written to a state directory.

Every identifier is generated with correct check characters from a fixed seed,
so demo subjects are stable across starts and never belong to a real person.
API keys, client keys and consents are made on the first start, listed in
demo.json, and reused by later starts on the same state directory (so shell
variables taken from demo.json stay good); ``reset`` makes them afresh.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.credit.base import CreditRecord, RecordStatus, SubjectKind
from adapters.credit.fake_platform import FakePlatform, running_fake_platform
from adapters.credit.sqlite import read_dataset, write_dataset
from gateway.identifiers import synthetic_ric, synthetic_uscc
from gateway.tokens.keys import b64url, jwk_thumbprint
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

SEED = 20251122


@dataclass(frozen=True, slots=True)
class DemoPartner:
    id: str
    kind: str
    scenes: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()


PARTNERS = (
    DemoPartner("demo-bank", "bank", ("loan",), ("credit_loan_assessment",)),
    DemoPartner("demo-service-hall", "service_hall", ("approval",), ("administrative_approval",)),
    DemoPartner("demo-library", "library", ("library",), ("deposit_waiver",)),
    DemoPartner("demo-transit", "transit", ("transit",), ("deposit_waiver",)),
    # 信易+ scenes added as data (policies/rental.yaml, medical.yaml, tax.yaml, parking.yaml)
    DemoPartner("demo-rental", "service", ("rental",), ("deposit_waiver",)),
    DemoPartner("demo-hospital", "service", ("medical",), ("pay_after_treatment",)),
    DemoPartner("demo-tax-hall", "service_hall", ("tax",), ("tax_service",)),
    DemoPartner("demo-parking", "service", ("parking",), ("pay_after_parking",)),
    DemoPartner("demo-platform", "platform"),
    DemoPartner("demo-auditor", "auditor"),
    DemoPartner("demo-operator", "operator"),
    # A second bank, so 名单推荐 and statistics show one bank's view apart from another's.
    DemoPartner("demo-bank-2", "bank", ("loan",), ("credit_loan_assessment",)),
)

ENTERPRISE_CONTEXT: dict[str, dict[str, Any]] = {
    "loan": {"loan_amount": 1_000_000},
    "approval": {"matter_code": "LN-210100-0001", "missing_key_materials": False},
    "rental": {},
    "tax": {},
}
PERSON_CONTEXT: dict[str, dict[str, Any]] = {
    # persons at the service hall (信易批 for 行政相对人 who are natural persons)
    "approval": {"matter_code": "LN-210100-0002", "missing_key_materials": False},
    "library": {},
    "transit": {},
    "rental": {},
    "medical": {},
    "parking": {},
}
# Scenes whose policy needs an enterprise's 授权 (consent_required_for).
ENTERPRISE_CONSENT_SCENES = ("loan", "rental")


@dataclass
class DemoSubject:
    kind: SubjectKind
    id: str
    label: str
    records: list[CreditRecord]
    expected: dict[str, str]
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)


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


def _record(
    n: int,
    type_: str,
    domain: str,
    decided: dt.date,
    *,
    adverse: bool = False,
    document: bool = False,
    until: dt.date | None = None,
    status: RecordStatus = RecordStatus.ACTIVE,
    value: str | int | None = None,
    title: str | None = None,
) -> CreditRecord:
    return CreditRecord(
        record_id=f"rec-{n:04d}",
        type=type_,
        domain=domain,
        effective_document=document,
        adverse=adverse,
        decided_on=decided,
        publication_until=until,
        status=status,
        value=value,
        title=title,
    )


def _subjects(today: dt.date) -> list[DemoSubject]:
    rng = random.Random(SEED)  # noqa: S311 - synthetic data, reproducible on purpose
    d = dt.date
    n = iter(range(1, 10_000))

    def ago(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    def reg(year: int) -> CreditRecord:
        return _record(next(n), "registration", "market_registration", d(year, 3, 1))

    def tax(grade: str) -> CreditRecord:
        return _record(next(n), "tax_credit_grade", "taxation", ago(200), value=grade)

    def score(points: int) -> CreditRecord:
        return _record(next(n), "credit_score", "market_credit_score", ago(20), value=points)

    def both(loan: str, approval: str, rental: str, tax: str) -> dict[str, str]:
        return {"loan": loan, "approval": approval, "rental": rental, "tax": tax}

    def people(
        approval: str, library: str, transit: str, rental: str, medical: str, parking: str
    ) -> dict[str, str]:
        return {
            "approval": approval,
            "library": library,
            "transit": transit,
            "rental": rental,
            "medical": medical,
            "parking": parking,
        }

    def e(label: str, records: list[CreditRecord], expected: dict[str, str]) -> DemoSubject:
        return DemoSubject("enterprise", synthetic_uscc(rng), label, records, expected)

    def p(
        label: str, born: dt.date, records: list[CreditRecord], expected: dict[str, str]
    ) -> DemoSubject:
        return DemoSubject("person", synthetic_ric(rng, born), label, records, expected)

    return [
        e(
            "red-list enterprise (诚信典型)",
            [
                reg(2012),
                tax("B"),
                _record(next(n), "red_listed", "red_list", ago(150), until=ago(-580)),
            ],
            both("granted", "granted", "granted", "granted"),
        ),
        e(
            "tax grade A, clean for 3+ years",
            [reg(2015), tax("A")],
            both("granted", "granted", "granted", "granted"),
        ),
        e(
            "only adverse record repaired (信用修复)",
            [
                reg(2014),
                tax("A"),
                _record(
                    next(n),
                    "administrative_penalty",
                    "market_supervision",
                    ago(300),
                    adverse=True,
                    document=True,
                    until=ago(-65),
                    status=RecordStatus.REPAIRED,
                ),
            ],
            both("granted", "granted", "granted", "granted"),
        ),
        e(
            "adverse record past its publication period",
            [
                reg(2013),
                tax("A"),
                _record(
                    next(n),
                    "administrative_penalty",
                    "environment",
                    ago(500),
                    adverse=True,
                    document=True,
                    until=ago(135),
                ),
            ],
            both("granted", "granted", "granted", "granted"),
        ),
        e(
            "serious-dishonesty listing under objection (异议中)",
            [
                reg(2015),
                tax("A"),
                _record(
                    next(n),
                    "serious_dishonesty_listed",
                    "serious_dishonesty_list",
                    ago(40),
                    adverse=True,
                    document=True,
                    until=ago(-1055),
                    status=RecordStatus.UNDER_OBJECTION,
                ),
            ],
            both("granted", "granted", "granted", "granted"),
        ),
        e(
            "on the serious-dishonesty list by an effective document",
            [
                reg(2010),
                tax("B"),
                _record(
                    next(n),
                    "serious_dishonesty_listed",
                    "serious_dishonesty_list",
                    ago(260),
                    adverse=True,
                    document=True,
                    until=ago(-835),
                ),
            ],
            both("constrained", "standard", "standard", "standard"),
        ),
        e(
            "listed without an effective document (no basis to constrain)",
            [
                reg(2015),
                tax("A"),
                _record(
                    next(n),
                    "serious_dishonesty_listed",
                    "serious_dishonesty_list",
                    ago(90),
                    adverse=True,
                    document=False,
                    until=ago(-275),
                ),
            ],
            both("standard", "standard", "standard", "granted"),
        ),
        e(
            "enterprise the credit source does not know",
            [],
            both("standard", "standard", "standard", "standard"),
        ),
        p(
            "person, credit score 650",
            d(1986, 4, 12),
            [reg(2010), score(650)],
            people("granted", "granted", "granted", "granted", "granted", "granted"),
        ),
        p(
            "person, credit score 560",
            d(1992, 9, 3),
            [reg(2012), score(560)],
            people("granted", "standard", "standard", "standard", "standard", "standard"),
        ),
        p(
            "person, score 680 but on the dishonest-executed list (失信被执行人)",
            d(1979, 1, 25),
            [
                reg(2009),
                score(680),
                _record(
                    next(n),
                    "dishonest_executed",
                    "court_enforcement",
                    ago(120),
                    adverse=True,
                    document=True,
                    until=ago(-975),
                ),
            ],
            people("standard", "standard", "standard", "standard", "standard", "standard"),
        ),
        p(
            "person with no records at all",
            d(2001, 6, 30),
            [],
            people("granted", "standard", "standard", "standard", "standard", "standard"),
        ),
        p(
            "person, score 640, records in prohibited domains (信访, 养犬) with no effect",
            d(1975, 11, 8),
            [
                reg(2011),
                score(640),
                _record(
                    next(n),
                    "petition_record",
                    "petitioning",
                    ago(60),
                    adverse=True,
                    until=ago(-300),
                    title="信访记录",
                ),
                # relabelled with an innocent domain: caught by what its title says
                _record(
                    next(n),
                    "civility_record",
                    "public_order",
                    ago(30),
                    adverse=True,
                    until=ago(-300),
                    title="不文明养犬",
                ),
            ],
            people("granted", "granted", "granted", "granted", "granted", "granted"),
        ),
        *_more_subjects(today, n),
    ]


def _more_subjects(today: dt.date, n: Iterator[int]) -> list[DemoSubject]:
    """Subjects for the scenes added as data, from their own random stream so the
    earlier subjects keep their ids."""
    rng = random.Random(SEED + 1)  # noqa: S311 - synthetic data, reproducible on purpose

    def ago(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    def sole_trader_uscc() -> str:
        # 个体工商户: registered by 工商 (9), entity type 2
        while not (uscc := synthetic_uscc(rng)).startswith("92"):
            pass
        return uscc

    def reg(year: int) -> CreditRecord:
        return _record(next(n), "registration", "market_registration", dt.date(year, 3, 1))

    def tax(grade: str) -> CreditRecord:
        return _record(next(n), "tax_credit_grade", "taxation", ago(200), value=grade)

    return [
        DemoSubject(
            "enterprise",
            sole_trader_uscc(),
            "个体工商户, tax grade A, registered 2019",
            [reg(2019), tax("A")],
            {"loan": "granted", "approval": "granted", "rental": "granted", "tax": "granted"},
        ),
        DemoSubject(
            "enterprise",
            synthetic_uscc(rng),
            "on the major tax violation list (重大税收违法失信主体)",
            [
                reg(2011),
                tax("D"),
                _record(
                    next(n),
                    "major_tax_violation_listed",
                    "major_tax_violation",
                    ago(100),
                    adverse=True,
                    document=True,
                    until=ago(-995),
                ),
            ],
            {
                "loan": "standard",
                "approval": "standard",
                "rental": "standard",
                "tax": "constrained",
            },
        ),
        DemoSubject(
            "person",
            synthetic_ric(rng, dt.date(1990, 2, 14)),
            "person, score 630, no registration record (clean from the record start)",
            [_record(next(n), "credit_score", "market_credit_score", ago(20), value=630)],
            {
                "approval": "granted",
                "library": "granted",
                "transit": "granted",
                "rental": "granted",
                "medical": "granted",
                "parking": "granted",
            },
        ),
    ]


def prepare_demo(
    state_dir: Path, today: dt.date, rate_per_second: float = 200.0, *, reset: bool = False
) -> DemoSetup:
    """Write the demo partners file and credit dataset; return what seeding needs.

    Credentials a previous start listed in ``state_dir/demo.json`` are kept
    unless ``reset``.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    previous = {} if reset else _previous(state_dir)
    api_keys: dict[str, str] = {}
    client_keys: dict[str, tuple[Path, dict[str, str]]] = {}
    for p in PARTNERS:
        known = previous.get("partners", {}).get(p.id)
        reused = _reuse_client_key(Path(known["client_key"])) if known else None
        if known and reused:
            api_keys[p.id], client_keys[p.id] = known["api_key"], reused
        else:
            api_keys[p.id] = new_api_key()
            client_keys[p.id] = _client_key(state_dir / "clients", p.id)
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
    subjects = _subjects(today)
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
        _staff(state_dir / "ui-users.yaml"),
    )


# One staff account per demo partner that has pages (docs/ui.md).
STAFF = {
    "hall-clerk": ("demo-service-hall", "窗口 张敏"),
    "operator": ("demo-operator", "信用办 李强"),
    "auditor": ("demo-auditor", "审计 王芳"),
    "loan-officer": ("demo-bank", "信贷 赵磊"),
}


def _staff(path: Path) -> dict[str, tuple[str, str]]:
    """Fresh passwords every start, hashed into the accounts file (0600)."""
    from gateway.ui.users import hash_password

    accounts = {name: (partner, secrets.token_urlsafe(12)) for name, (partner, _) in STAFF.items()}
    users = [
        {
            "username": name,
            "partner": partner,
            "name": STAFF[name][1],
            "password_argon2": hash_password(password, cheap=True),
        }
        for name, (partner, password) in accounts.items()
    ]
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by `xinyi-gateway serve --demo`: demo staff, passwords in demo.json.\n")
        yaml.safe_dump({"users": users}, fh, allow_unicode=True, sort_keys=False)
    return accounts


@asynccontextmanager
async def demo_platform(setup: DemoSetup) -> AsyncIterator[dict[str, Any]]:
    """``serve --demo --upstream``: the fake credit platform, serving the demo dataset
    on a free loopback port in this event loop; yields the ``credit_source`` settings
    that point the platform adapter at it (with a fresh bearer token)."""
    token = secrets.token_urlsafe(24)
    platform = FakePlatform.with_rows(read_dataset(setup.dataset), token=token)
    async with running_fake_platform(platform) as url:
        yield {"adapter": "platform", "options": {"base_url": url, "bearer_token": token}}


def _previous(state_dir: Path) -> dict[str, Any]:
    """Partners' keys and consent ids from the last start's demo.json, if it is usable."""
    try:
        data = orjson.loads((state_dir / "demo.json").read_bytes())
        partners = {
            p["id"]: {"api_key": str(p["api_key"]), "client_key": str(p["client_key"])}
            for p in data["partners"]
        }
        consents = {
            str(s["id"]): {pid: str(c["consent_id"]) for pid, c in s["consents"].items()}
            for s in data["subjects"]
        }
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return {}
    return {"partners": partners, "consents": consents}


def _reuse_client_key(path: Path) -> tuple[Path, dict[str, str]] | None:
    """The public half of a client key written by an earlier start."""
    try:
        private = orjson.loads(path.read_bytes())
        public = {k: str(private[k]) for k in ("kty", "crv", "x", "kid", "alg", "use")}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return path.resolve(), public


def _client_key(directory: Path, partner_id: str) -> tuple[Path, dict[str, str]]:
    """A partner's client-assertion key pair: private JWK file (0600), public JWK."""
    key = Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    x = b64url(key.public_key().public_bytes(raw, serialization.PublicFormat.Raw))
    d = b64url(
        key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    )
    public = {"kty": "OKP", "crv": "Ed25519", "x": x}
    public |= {"kid": jwk_thumbprint(public), "alg": "EdDSA", "use": "sig"}
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{partner_id}.jwk.json"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps({**public, "d": d}, option=orjson.OPT_INDENT_2))
    return path.resolve(), public


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


def write_demo_json(setup: DemoSetup, base_url: str) -> Path:
    data = {
        "base_url": base_url,
        "partners": [
            {
                "id": p.id,
                "kind": p.kind,
                "api_key": setup.api_keys[p.id],
                # development only: the private JWK the partner signs client assertions with
                "client_key": str(setup.client_keys[p.id]),
                "scenes": list(p.scenes),
                "purposes": list(p.purposes),
            }
            for p in PARTNERS
        ],
        # development only: staff sign-in for the pages at /ui
        "ui_users": [
            {"username": name, "password": password, "partner": partner}
            for name, (partner, password) in setup.ui_users.items()
        ],
        "subjects": [
            {
                "kind": s.kind,
                "id": s.id,
                "label": s.label,
                "consents": s.consents,
                "context": ENTERPRISE_CONTEXT if s.kind == "enterprise" else PERSON_CONTEXT,
                "expected": s.expected,
            }
            for s in setup.subjects
        ],
    }
    # Written whole, then renamed: a reader never sees half a file.
    path = setup.state_dir / "demo.json"
    part = path.with_suffix(".json.part")
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    part.replace(path)
    return path
