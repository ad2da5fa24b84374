"""Decisions and tokens as the contract tests write them, shared by the concepts' suites."""

from __future__ import annotations

import datetime as dt
import secrets

import orjson

from gateway.store.base import AuditEntry, DecisionWrite, IssuedToken, StatusRef

NOW = dt.datetime.now(dt.UTC)


def decision_write(
    n: int, token: IssuedToken | None = None, status: StatusRef | None = None
) -> DecisionWrite:
    decision_id = f"dec_{n}_{secrets.token_hex(4)}"
    entry = AuditEntry(
        time=NOW.isoformat(),
        partner="demo-bank",
        staff_id=None,
        scene="loan",
        purpose="credit_loan_assessment",
        subject=f"pseudonym-{n}",
        outcome="granted" if token else "standard",
        policy="loan.credit_products@2025.1",
        policy_hash="sha256:" + "0" * 64,
        policy_set="sha256:" + "1" * 64,
        consent_id=None,
        contract="demo-bank:contract",
        decision_id=decision_id,
        token_jti=token.jti if token else None,
    )
    body = {"decision_id": decision_id, "outcome": entry.outcome, "n": n}
    return DecisionWrite(decision_id, "demo-bank", orjson.dumps(body), entry, status, token)


def issued_token(ref: StatusRef, subject: str, kid: str, expires: int) -> IssuedToken:
    return IssuedToken(
        jti="j" + secrets.token_hex(8),
        decision_id="dec_x",
        partner="demo-library",
        scene="library",
        purpose="deposit_waiver",
        subject_key=subject,
        kid=kid,
        status=ref,
        expires=expires,
        context={},
        benefits=("deposit_waiver",),
    )
