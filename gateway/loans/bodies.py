"""Request bodies of the loan endpoints (API.md "Loans"), as pydantic models."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

__all__ = ["DemandBody", "MatchBody", "ProductBody", "ResponseBody"]

_ID = r"^[a-z0-9][a-z0-9._-]{1,63}$"
_PARTNER = r"^(\*|[a-z0-9][a-z0-9._-]{1,63})$"
_REGION = r"^[1-9][0-9]{5}$"
_MAX_CNY = 10_000_000_000


SubjectKind = Literal["enterprise", "person"]


def _enterprises() -> list[SubjectKind]:
    return ["enterprise"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmountRange(_Body):
    min: StrictInt = Field(ge=1, le=_MAX_CNY)
    max: StrictInt = Field(ge=1, le=_MAX_CNY)

    @model_validator(mode="after")
    def _ordered(self) -> AmountRange:
        if self.min > self.max:
            raise ValueError("min is above max")
        return self


class TermRange(_Body):
    min: StrictInt = Field(ge=1, le=360)
    max: StrictInt = Field(ge=1, le=360)

    @model_validator(mode="after")
    def _ordered(self) -> TermRange:
        if self.min > self.max:
            raise ValueError("min is above max")
        return self


class RateRange(_Body):
    min: float = Field(gt=0, le=36, allow_inf_nan=False)
    max: float = Field(gt=0, le=36, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> RateRange:
        if self.min > self.max:
            raise ValueError("min is above max")
        return self


class ProductBody(_Body):
    """A product as a bank publishes it (POST) or revises it (PUT: no ``id``)."""

    id: str | None = Field(None, pattern=_ID)
    title: str = Field(min_length=1, max_length=128)
    bank: str | None = Field(None, pattern=_ID)
    amount: AmountRange
    term_months: TermRange
    annual_rate: RateRange  # percent
    regions: list[str] = Field(min_length=1, max_length=64)
    subject_kinds: list[SubjectKind] = Field(
        default_factory=_enterprises, min_length=1, max_length=2
    )
    valid_from: dt.date
    valid_until: dt.date | None = None
    legal_basis: list[str] = Field(default_factory=list, max_length=16)
    rules: list[dict[str, Any]] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> ProductBody:
        for code in self.regions:
            if len(code) != 6 or not code.isdigit() or code[0] == "0":
                raise ValueError("regions are 6-digit administrative division codes")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class EnterpriseRef(_Body):
    kind: Literal["enterprise"]
    id: str = Field(min_length=1, max_length=32)


class DemandBody(_Body):
    subject: EnterpriseRef
    name: str | None = Field(None, min_length=1, max_length=128)
    amount: StrictInt = Field(ge=1, le=_MAX_CNY)
    term_months: StrictInt = Field(ge=1, le=360)
    purpose: str = Field(min_length=1, max_length=64)
    region: str = Field(pattern=_REGION)
    expires_at: AwareDatetime
    # The enterprise's 授权: named banks, or ["*"] for every bank on the platform.
    authorised_banks: list[str] = Field(min_length=1, max_length=64)
    # Banks that may see the enterprise's id and name ("*": all it authorised).
    disclose_to: list[str] = Field(default_factory=list, max_length=64)


class MatchTerms(_Body):
    amount: StrictInt = Field(ge=1, le=_MAX_CNY)
    term_months: StrictInt = Field(ge=1, le=360)
    region: str = Field(pattern=_REGION)


class MatchBody(_Body):
    subject: EnterpriseRef
    consent_id: str | None = Field(None, max_length=128)
    purpose: str | None = Field(None, max_length=64)
    staff_id: str | None = Field(None, max_length=64)
    demand: MatchTerms | None = None
    demand_id: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _terms(self) -> MatchBody:
        if (self.demand is None) == (self.demand_id is None):
            raise ValueError("send either demand (amount, term_months, region) or demand_id")
        return self


class ResponseBody(_Body):
    status: Literal["accepted", "granted", "refused", "withdrawn"]
    product_id: str | None = Field(None, pattern=_ID)
    amount: StrictInt | None = Field(None, ge=1, le=_MAX_CNY)
    rate: float | None = Field(None, gt=0, le=36, allow_inf_nan=False)
    term_months: StrictInt | None = Field(None, ge=1, le=360)
    reason_code: str | None = Field(None, max_length=64)
    reason_text: str | None = Field(None, max_length=500)
    staff_id: str | None = Field(None, max_length=64)
