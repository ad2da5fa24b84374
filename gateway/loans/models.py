"""The records of the loan workflow: products, demands and bank responses.

They are plain dataclasses serialised with orjson, not pydantic models: a
recommendation reads up to 100,000 demands, and building each through
pydantic validation would cost more than evaluating it. Request bodies are
validated by the pydantic models in ``gateway.loans.bodies``.

Times a demand is filtered or ranked by are whole epoch seconds (UTC).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import orjson

__all__ = [
    "ALL_BANKS",
    "REFUSAL_REASONS",
    "DemandStatus",
    "LoanDemand",
    "LoanProduct",
    "LoanResponse",
    "ProductStatus",
    "ResponseStatus",
]

ProductStatus = Literal["active", "withdrawn"]
DemandStatus = Literal["open", "closed"]
ResponseStatus = Literal["accepted", "granted", "refused", "withdrawn"]

# A demand authorising (or disclosing its name to) every bank on the platform.
ALL_BANKS = "*"

# The published list of refusal reasons a bank may give (the enterprise sees the
# code's title and the bank's own text).
REFUSAL_REASONS: dict[str, str] = {
    "insufficient_repayment_capacity": "还款能力不足",
    "insufficient_operating_history": "经营年限不足",
    "collateral_required": "需提供抵押或担保",
    "credit_record": "信用记录不符合产品要求",
    "industry_restriction": "行业不在产品支持范围",
    "incomplete_materials": "申请材料不全",
    "amount_exceeds_limit": "申请金额超出可授信额度",
    "enterprise_unreachable": "无法联系企业",
    "other": "其他原因",
}


@dataclass(frozen=True, slots=True)
class LoanProduct:
    """One version of a bank's loan product. Versions are immutable; ``status``
    is the product's, shown on every version (a withdrawn product is withdrawn)."""

    id: str
    version: int
    bank: str
    title: str
    amount_min: int  # CNY
    amount_max: int
    term_min: int  # months
    term_max: int
    rate_min: float  # annual rate, percent
    rate_max: float
    regions: tuple[str, ...]  # administrative division codes (6 digits)
    subject_kinds: tuple[str, ...]
    valid_from: dt.date
    valid_until: dt.date | None
    legal_basis: tuple[str, ...]
    rules: tuple[dict[str, Any], ...]  # policy-language rules, as published
    created_at: int
    status: ProductStatus = "active"
    withdrawn_at: int | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "version": self.version,
                "bank": self.bank,
                "title": self.title,
                "amount_min": self.amount_min,
                "amount_max": self.amount_max,
                "term_min": self.term_min,
                "term_max": self.term_max,
                "rate_min": self.rate_min,
                "rate_max": self.rate_max,
                "regions": list(self.regions),
                "subject_kinds": list(self.subject_kinds),
                "valid_from": self.valid_from.isoformat(),
                "valid_until": self.valid_until.isoformat() if self.valid_until else None,
                "legal_basis": list(self.legal_basis),
                "rules": list(self.rules),
                "created_at": self.created_at,
                "status": self.status,
                "withdrawn_at": self.withdrawn_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> LoanProduct:
        # Versions are immutable and a product's head changes rarely, so the same
        # bytes come back on every match: each is parsed once.
        return _parse_product(raw)

    @classmethod
    def _from_json(cls, raw: bytes | str) -> LoanProduct:
        d = orjson.loads(raw)
        return cls(
            id=d["id"],
            version=d["version"],
            bank=d["bank"],
            title=d["title"],
            amount_min=d["amount_min"],
            amount_max=d["amount_max"],
            term_min=d["term_min"],
            term_max=d["term_max"],
            rate_min=d["rate_min"],
            rate_max=d["rate_max"],
            regions=tuple(d["regions"]),
            subject_kinds=tuple(d["subject_kinds"]),
            valid_from=dt.date.fromisoformat(d["valid_from"]),
            valid_until=dt.date.fromisoformat(d["valid_until"]) if d["valid_until"] else None,
            legal_basis=tuple(d["legal_basis"]),
            rules=tuple(d["rules"]),
            created_at=d["created_at"],
            status=d["status"],
            withdrawn_at=d.get("withdrawn_at"),
        )

    def withdrawn(self, at: int) -> LoanProduct:
        return replace(self, status="withdrawn", withdrawn_at=at)

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def covers_region(self, region: str) -> bool:
        """A code ending in 0000 covers its province, one ending in 00 its city."""
        for code in self.regions:
            if code == region:
                return True
            if code.endswith("0000") and region[:2] == code[:2]:
                return True
            if code.endswith("00") and region[:4] == code[:4]:
                return True
        return False

    def as_json(self) -> dict[str, Any]:
        """The product as the API shows it (the shape a bank publishes)."""
        return {
            "id": self.id,
            "version": self.version,
            "bank": self.bank,
            "title": self.title,
            "status": self.status,
            "amount": {"min": self.amount_min, "max": self.amount_max},
            "term_months": {"min": self.term_min, "max": self.term_max},
            "annual_rate": {"min": self.rate_min, "max": self.rate_max},
            "regions": list(self.regions),
            "subject_kinds": list(self.subject_kinds),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "legal_basis": list(self.legal_basis),
            "rules": list(self.rules),
            "created_at": dt.datetime.fromtimestamp(self.created_at, dt.UTC).isoformat(),
        }


@lru_cache(maxsize=20_000)
def _parse_product(raw: bytes | str) -> LoanProduct:
    return LoanProduct._from_json(raw)


@dataclass(frozen=True, slots=True)
class LoanDemand:
    """An enterprise's financing demand, recorded by a platform on its behalf.

    The enterprise's id and name are sealed (``gateway.loans.sealing``): the
    store holds a keyed hash to find it by and a ciphertext the gateway opens
    only to fetch credit records or to disclose the name to a bank it allowed.
    """

    id: str
    platform: str
    subject_kind: str
    subject_key: str  # internal pseudonym (keyed hash)
    sealed: str  # the enterprise's id and name, encrypted
    amount: int
    term_months: int
    purpose: str
    region: str
    created_at: int
    expires_at: int
    banks: tuple[str, ...]  # authorised banks, or (ALL_BANKS,)
    disclose_to: tuple[str, ...] = ()  # banks that may see the name, or (ALL_BANKS,)
    status: DemandStatus = "open"
    closed_at: int | None = None

    def authorises(self, bank: str) -> bool:
        return ALL_BANKS in self.banks or bank in self.banks

    def discloses_to(self, bank: str) -> bool:
        return ALL_BANKS in self.disclose_to or bank in self.disclose_to

    def is_open(self, now: int) -> bool:
        return self.status == "open" and self.expires_at > now

    def to_json(self) -> bytes:
        return orjson.dumps(
            [
                self.id,
                self.platform,
                self.subject_kind,
                self.subject_key,
                self.sealed,
                self.amount,
                self.term_months,
                self.purpose,
                self.region,
                self.created_at,
                self.expires_at,
                list(self.banks),
                list(self.disclose_to),
                self.status,
                self.closed_at,
            ]
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> LoanDemand:
        # A 名单推荐 reads every open demand; their bytes rarely change, so each
        # distinct body is parsed once.
        return _parse_demand(raw)

    @classmethod
    def _from_json(cls, raw: bytes | str) -> LoanDemand:
        d = orjson.loads(raw)
        return cls(
            d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10],
            tuple(d[11]), tuple(d[12]), d[13], d[14],
        )  # fmt: skip

    def closed(self, at: int) -> LoanDemand:
        return replace(self, status="closed", closed_at=at)


@lru_cache(maxsize=250_000)
def _parse_demand(raw: bytes | str) -> LoanDemand:
    return LoanDemand._from_json(raw)


@dataclass(frozen=True, slots=True)
class LoanResponse:
    """One step of a bank's answer to a demand; the latest one is its current state."""

    response_id: str
    demand_id: str
    bank: str
    status: ResponseStatus
    at: int
    product_id: str | None = None
    product_version: int | None = None
    amount: int | None = None
    rate: float | None = None
    term_months: int | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps({n: getattr(self, n) for n in self.__dataclass_fields__})

    @classmethod
    def from_json(cls, raw: bytes | str) -> LoanResponse:
        return cls(**orjson.loads(raw))

    def as_json(self) -> dict[str, Any]:
        body = {n: getattr(self, n) for n in self.__dataclass_fields__ if n != "detail"}
        body["at"] = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat()
        if self.reason_code is not None:
            body["reason_title"] = REFUSAL_REASONS.get(self.reason_code)
        return {k: v for k, v in body.items() if v is not None}
