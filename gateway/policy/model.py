"""The policy file format of POLICY.md as pydantic models.

Keys are the public interface credit offices write against; unknown keys are
refused (``extra="forbid"``) so a misspelt key fails the load instead of being
silently ignored.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

__all__ = [
    "AllOf",
    "AnyOf",
    "Behaviour",
    "Benefit",
    "BenefitCatalogue",
    "BenefitParam",
    "Comparison",
    "Condition",
    "Constrain",
    "Fact",
    "FactCatalogue",
    "FactClass",
    "FactType",
    "Grant",
    "Measure",
    "MeasureEnd",
    "MeasureList",
    "Not",
    "Policy",
    "PolicyTest",
    "Remedy",
    "Rule",
    "Select",
    "SubjectKind",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FactType(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    DATE = "date"
    ENUM = "enum"
    RECORDS = "records"


class FactClass(StrEnum):
    PERSONAL_SCORE = "personal_score"
    EFFECTIVE_DOCUMENT = "effective_document"
    PUBLIC_RECORD = "public_record"
    CONTEXT = "context"


SubjectKind = Literal["person", "enterprise"]
FactSubject = Literal["person", "enterprise", "any"]


class Select(_Strict):
    """Which credit records feed a base fact (an addition to POLICY.md's keys).

    Without it a base fact reads records whose ``type`` is the fact name after
    its first dot, e.g. ``person.credit_score`` reads ``credit_score`` records;
    ``select: {}`` reads every record type.
    """

    types: list[str] | None = None
    adverse: bool | None = None


class Fact(_Strict):
    type: FactType
    subject: FactSubject
    class_: FactClass | None = Field(default=None, alias="class")
    domain: str
    source: str
    title: str | None = None
    values: list[str] | None = None
    default: Any = None
    derived_from: list[str] | None = None
    derive: str | None = None
    select: Select | None = None
    # Additions to POLICY.md's keys. ``behaviour``: the behaviour-list entry
    # (行为清单) this fact evidences. ``record_start``: for a clean-record
    # derivation, the documented date from which absence of adverse records
    # counts when the subject has no registration record (docs/policies.md).
    behaviour: str | None = None
    record_start: dt.date | None = None

    @model_validator(mode="after")
    def _shape(self) -> Fact:
        if self.type is FactType.ENUM and not self.values:
            raise ValueError("an enum fact needs 'values'")
        if (self.derived_from is None) != (self.derive is None):
            raise ValueError("'derived_from' and 'derive' go together")
        if self.derived_from is None and self.class_ is None:
            raise ValueError("a fact that is not derived needs a 'class'")
        return self

    @property
    def is_derived(self) -> bool:
        return self.derived_from is not None


class Behaviour(_Strict):
    """One entry of the behaviour list (行为清单): what a fact may evidence."""

    title: str
    kind: Literal["trustworthy", "dishonest", "seriously_dishonest"]
    matter: str  # 事项
    list_: str = Field(alias="list")
    legal_basis: list[str] = Field(default_factory=list)


class FactCatalogue(_Strict):
    facts: dict[str, Fact]
    # An addition to POLICY.md: the behaviour list the facts point to.
    behaviours: dict[str, Behaviour] = Field(default_factory=dict)


class BenefitParam(_Strict):
    type: Literal["integer", "number", "boolean", "string"]
    min: float | None = None
    max: float | None = None
    # Which way is better for the subject; merging several grants keeps the best.
    favourable: Literal["higher", "lower"] = "higher"


class Benefit(_Strict):
    title: str
    params: dict[str, BenefitParam] = Field(default_factory=dict)
    vct: str | None = None


class BenefitCatalogue(_Strict):
    benefits: dict[str, Benefit]


EndEvent = Literal[
    "period_end", "repaired", "delisted", "objection_upheld", "performed", "restructured"
]


class MeasureEnd(_Strict):
    """One way a measure ends (终止条件), in the words the subject is told."""

    event: EndEvent  # not ``on``: YAML 1.1 reads a bare ``on`` key as true
    text: str


class Remedy(_Strict):
    """A route by which a subject puts things right or objects (修复, 异议)."""

    title: str
    route: str
    deadline: str
    working_days: int | None = Field(default=None, ge=1)


class Measure(_Strict):
    title: str
    list_: str = Field(alias="list")
    legal_basis: list[str] = Field(default_factory=list)
    initiating: str
    implementing: str
    # Additions to POLICY.md's keys, all optional: the domains of the effective
    # documents the measure rests on (a constrain rule must read one), its
    # period (惩戒期限) and end conditions (终止条件), and the remedies a
    # subject is told of.
    number: str | None = None
    documents: list[str] | None = None
    period: str | None = None
    max_years: int | None = Field(default=None, ge=1, le=10)
    ends: list[MeasureEnd] = Field(default_factory=list)
    remedies: list[str] = Field(default_factory=list)


class MeasureList(_Strict):
    measures: dict[str, Measure]
    # An addition to POLICY.md: repair and objection routes measures refer to.
    remedies: dict[str, Remedy] = Field(default_factory=dict)


Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in"]


class Comparison(_Strict):
    fact: str
    op: Op
    value: Any


class AllOf(_Strict):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Condition] = Field(min_length=1)


class Not(_Strict):
    not_: Condition = Field(alias="not")


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "not", "fact"):
            if key in value:
                return key
        return None
    for cls, tag in ((AllOf, "all"), (AnyOf, "any"), (Not, "not"), (Comparison, "fact")):
        if isinstance(value, cls):
            return tag
    return None


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Comparison, Tag("fact")],
    Discriminator(
        _condition_tag,
        custom_error_type="invalid_condition",
        custom_error_message="a condition is all, any, not or a {fact, op, value} comparison",
    ),
]


class Grant(_Strict):
    benefit: str
    params: dict[str, Any] = Field(default_factory=dict)


class Constrain(_Strict):
    measure: str


class Rule(_Strict):
    id: str
    title: str | None = None
    when: Condition
    grant: Grant | None = None
    constrain: Constrain | None = None
    legal_basis: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_effect(self) -> Rule:
        if (self.grant is None) == (self.constrain is None):
            raise ValueError("a rule has exactly one of 'grant' or 'constrain'")
        return self


def _persons() -> list[SubjectKind]:
    return ["person"]


class Departments(_Strict):
    initiating: str
    implementing: str


class Effective(_Strict):
    from_: dt.date = Field(alias="from")
    until: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Effective:
        if self.until is not None and self.until < self.from_:
            raise ValueError("'until' is before 'from'")
        return self

    def covers(self, day: dt.date) -> bool:
        return self.from_ <= day and (self.until is None or day <= self.until)


class Expectation(_Strict):
    outcome: Literal["granted", "standard", "constrained"]
    benefits: list[str] | None = None
    constraints: list[str] | None = None


class PolicyTest(_Strict):
    name: str
    subject: SubjectKind
    facts: dict[str, Any] = Field(default_factory=dict)
    as_of: dt.date | None = None
    expect: Expectation


class Policy(_Strict):
    id: str
    version: str
    scene: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    title: str
    basic_public_service: bool
    subjects: list[SubjectKind] = Field(min_length=1)
    consent_required_for: list[SubjectKind] = Field(default_factory=_persons)
    departments: Departments
    legal_basis: list[str] = Field(default_factory=list)
    effective: Effective
    # Additions to POLICY.md's keys: which context fields a request must send,
    # how long a benefit token lives, and the business period it covers.
    context_required: list[str] = Field(default_factory=list)
    token_days: int = Field(default=7, ge=1, le=31)
    benefit_days: int = Field(default=30, ge=1, le=366)
    # Why this version takes a benefit from anyone (docs/prove.md): a reload under
    # ``refuse_benefit_removal`` accepts such a version only when it says why.
    change_reason: str | None = Field(default=None, min_length=1)
    rules: list[Rule] = Field(min_length=1)
    tests: list[PolicyTest] = Field(default_factory=list)
