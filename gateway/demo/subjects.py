"""The demo's synthetic subjects and their credit records, from a fixed seed."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adapters.credit.base import CreditRecord, RecordStatus, SubjectKind
from gateway.identifiers import synthetic_ric, synthetic_uscc

__all__ = ["SEED", "DemoSubject", "demo_subjects"]

SEED = 20251122


@dataclass
class DemoSubject:
    kind: SubjectKind
    id: str
    label: str
    records: list[CreditRecord]
    expected: dict[str, str]
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)


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


def demo_subjects(today: dt.date) -> list[DemoSubject]:
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
