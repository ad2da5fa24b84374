"""The feedback a partner reports, typed and bounded (docs/feedback.md).

Feedback used to be any JSON object: it stored megabytes per decision, resident
ids and phone numbers, and nesting deep enough to fail serialisation. Now it
is a closed schema of what 发起—响应—反馈 needs to learn: whether the decision
was applied, which of its benefits were used, what a loan was granted at, and
why not, as a code. The one free-text member, ``note``, is short and refused
when it looks like it holds an identifier or a phone number.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from gateway.errors import FieldError

__all__ = [
    "FEEDBACK_MAX_BYTES",
    "FEEDBACK_PER_DECISION",
    "FeedbackBody",
    "FeedbackDetail",
    "scene_problems",
]

# A full feedback body is well under 1 KiB; anything near this is not feedback.
FEEDBACK_MAX_BYTES = 4096
# Feedbacks kept per decision: a few corrections are normal, a stream is not.
FEEDBACK_PER_DECISION = 10

_CODE = r"^[a-z][a-z0-9_]{0,63}$"
# Members that describe a loan; other scenes have nothing of the kind to report.
LOAN_FIELDS = ("amount_yuan", "annual_rate_percent", "term_months")
LOAN_SCENES = frozenset({"loan"})

# What a note may not contain. Digits are counted across the separators people
# type (space, -, ., /, parentheses), so "138 0013 8000" counts as 11 digits.
_DIGIT_RUN = re.compile(r"\d(?:[\s\-./()]*\d){6,}")  # 7+ digits: phone, id, account number
_ID_LIKE = re.compile(r"[0-9A-Za-z]{15,}")  # resident id (15/18), USCC (18), card numbers


class FeedbackDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # 信易贷: what the bank granted.
    amount_yuan: StrictInt | None = Field(None, ge=0, le=100_000_000_000)
    annual_rate_percent: float | None = Field(None, ge=0, le=100, strict=True)
    term_months: StrictInt | None = Field(None, ge=1, le=600)
    # Which of the decision's benefits were used (deposit waiver, green channel, …).
    benefits_used: list[str] = Field(
        default_factory=list, max_length=16, json_schema_extra={"uniqueItems": True}
    )
    # Why the decision was not applied, as a code (e.g. "declined_by_applicant").
    reason: str | None = Field(None, pattern=_CODE)
    note: str | None = Field(None, max_length=200)

    @field_validator("benefits_used")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(_CODE, code):
                raise ValueError("each entry is a benefit code (lowercase letters, digits, _)")
        if len(set(value)) != len(value):
            raise ValueError("each benefit is listed once")
        return value

    @field_validator("note")
    @classmethod
    def _nothing_personal(cls, value: str | None) -> str | None:
        if value is not None and (_DIGIT_RUN.search(value) or _ID_LIKE.search(value)):
            raise ValueError(
                "a note may not hold identifiers, phone or account numbers: "
                "report them through the reviewed channels, not feedback"
            )
        return value


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    applied: StrictBool
    detail: FeedbackDetail = Field(default_factory=FeedbackDetail)

    def stored(self) -> dict[str, Any]:
        """The detail as stored: only the members the partner set."""
        return self.detail.model_dump(exclude_defaults=True)


def scene_problems(body: FeedbackBody, decision: dict[str, Any]) -> list[FieldError]:
    """What the decision itself rules out: loan terms outside the loan scene, and
    benefits the decision did not grant."""
    problems: list[FieldError] = []
    if decision.get("scene") not in LOAN_SCENES:
        for name in LOAN_FIELDS:
            if getattr(body.detail, name) is not None:
                problems.append(
                    FieldError(f"/detail/{name}", "only a loan decision has loan terms")
                )
    granted = {b.get("code") for b in decision.get("benefits", []) if isinstance(b, dict)}
    for i, code in enumerate(body.detail.benefits_used):
        if code not in granted:
            problems.append(
                FieldError(f"/detail/benefits_used/{i}", "the decision did not grant this benefit")
            )
    return problems
