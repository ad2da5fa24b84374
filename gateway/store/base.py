"""One storage protocol for all shared state (DESIGN §8).

Backends: ``embedded`` (memory + SQLite, one process) now; Redis and Redis
Cluster implement the same contract. Subject ids never reach a store: consents
hold a keyed hash of the subject, audit records a pseudonym.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.store.admission import Admission, BreachRead, IdempotencyClaim, admit_in_turn
from gateway.store.changes import ChangeFeed, LocalChangeFeed

__all__ = [
    "IDEMPOTENCY_TTL_S",
    "AccessToken",
    "AuditEntry",
    "AuditEvent",
    "AuditRecord",
    "Consent",
    "DecisionWrite",
    "IdempotencyRecord",
    "IssuedToken",
    "StatusRef",
    "Store",
    "StoreUnavailable",
    "consent_from_json",
    "consent_to_json",
]


# The values built for every decision (AuditEntry, StatusRef, IssuedToken,
# DecisionWrite, IdempotencyRecord) are plain slotted dataclasses, not frozen
# ones: a frozen dataclass sets each field through object.__setattr__, which
# made AuditEntry 7x dearer to build (2.0 against 0.3 µs). Nothing mutates them
# once built; the long-lived records (Consent, AccessToken) stay frozen.

# How long an Idempotency-Key is remembered.
IDEMPOTENCY_TTL_S = 86_400


class StoreUnavailable(Exception):
    """The backend cannot answer now; the API turns this into 503."""


@dataclass(frozen=True, slots=True)
class Consent:
    consent_id: str
    subject_kind: str
    subject_key: str  # keyed hash of the subject id, never the id
    partner: str
    scenes: tuple[str, ...]
    purpose: str
    expires_at: dt.datetime
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    created_by: str | None = None  # the platform, or the partner at whose counter it was given
    # Consent given at a partner's counter or kiosk: how it is written down.
    evidence_kind: str | None = None  # signed_form | kiosk_confirmation
    evidence_ref: str | None = None


@dataclass(slots=True)  # per request, not frozen: see above
class AuditEntry:
    """What one use of credit information records (seeds/004's 备案 fields)."""

    time: str
    partner: str
    staff_id: str | None
    scene: str
    purpose: str
    subject: str  # pseudonym
    outcome: str
    policy: str
    policy_hash: str
    policy_set: str
    consent_id: str | None
    contract: str
    decision_id: str
    token_jti: str | None

    def as_dict(self) -> dict[str, Any]:
        # Members in sorted order, as the canonical form has them: the stores
        # serialise it without orjson's sorting (gateway.audit.chain.link_audit).
        return {
            "consent_id": self.consent_id,
            "contract": self.contract,
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "partner": self.partner,
            "policy": self.policy,
            "policy_hash": self.policy_hash,
            "policy_set": self.policy_set,
            "purpose": self.purpose,
            "scene": self.scene,
            "staff_id": self.staff_id,
            "subject": self.subject,
            "time": self.time,
            "token_jti": self.token_jti,
        }


@dataclass(slots=True)
class AuditEvent:
    """Any other use of credit information or change of state, on the same chain.

    A decision's record is an ``AuditEntry`` (no ``kind``); every other record
    names its ``kind`` (``consent_recorded``, ``loan_match``, ``commitment_registered``
    …) and keeps its particulars in ``detail``: pseudonyms, codes and counts, never
    a personal identifier, a score or a token.
    """

    kind: str
    time: str
    partner: str
    record_id: str  # unique per record: a retried append is recognised by it
    scene: str | None = None
    purpose: str | None = None
    subject: str | None = None  # pseudonym
    staff_id: str | None = None
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    entry: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(slots=True)  # per request, not frozen: see above
class StatusRef:
    list_id: str
    index: int


@dataclass(slots=True)  # per request, not frozen: see above
class IssuedToken:
    """What the gateway keeps of a benefit token: enough to re-check and revoke it."""

    jti: str
    decision_id: str
    partner: str
    scene: str
    purpose: str
    subject_key: str  # keyed hash of the subject id
    kid: str
    status: StatusRef
    expires: int  # epoch seconds
    context: dict[str, Any]
    benefits: tuple[str, ...] = ()
    # The signed claims, so a retried request gets the same token back.
    claims: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["status"] = {"list_id": self.status.list_id, "index": self.status.index}
        d["benefits"] = list(self.benefits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IssuedToken:
        status = StatusRef(d["status"]["list_id"], d["status"]["index"])
        return cls(
            **{
                **d,
                "status": status,
                "benefits": tuple(d.get("benefits", ())),
                "claims": d.get("claims", {}),
            }
        )


@dataclass(slots=True)  # per request, not frozen: see above
class IdempotencyRecord:
    """What a POST with an Idempotency-Key left behind: a decision, or a response."""

    fingerprint: str  # SHA-256 of the request body
    decision_id: str | None = None
    token_jti: str | None = None
    status: int | None = None
    body: str | None = None

    def to_json(self) -> str:
        return orjson.dumps(
            {name: getattr(self, name) for name in self.__dataclass_fields__}
        ).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> IdempotencyRecord:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class AccessToken:
    partner: str
    scopes: tuple[str, ...]
    expires: float  # epoch seconds


@dataclass(slots=True)  # per request, not frozen: see above
class DecisionWrite:
    """A decision, its audit entry and its token's status slot: written all or nothing."""

    decision_id: str
    partner: str
    # The decision as JSON, serialised once for the store and the answer; None for
    # an audit record that is not a decision (``Store.append_audit``).
    body: bytes | None
    audit: AuditEntry | AuditEvent
    status: StatusRef | None
    token: IssuedToken | None = None
    # Partner-scoped Idempotency-Key and body fingerprint, stored in the same write.
    idempotency: tuple[str, str] | None = None

    def idempotency_record(self) -> IdempotencyRecord | None:
        if self.idempotency is None:
            return None
        return IdempotencyRecord(
            fingerprint=self.idempotency[1],
            decision_id=self.decision_id,
            token_jti=self.token.jti if self.token else None,
        )


def consent_to_json(c: Consent) -> str:
    return orjson.dumps(
        {
            "consent_id": c.consent_id,
            "subject_kind": c.subject_kind,
            "subject_key": c.subject_key,
            "partner": c.partner,
            "scenes": list(c.scenes),
            "purpose": c.purpose,
            "expires_at": c.expires_at.isoformat(),
            "created_at": c.created_at.isoformat(),
            "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
            "created_by": c.created_by,
            "evidence_kind": c.evidence_kind,
            "evidence_ref": c.evidence_ref,
        }
    ).decode()


def consent_from_json(raw: str | bytes) -> Consent:
    d = orjson.loads(raw)
    return Consent(
        consent_id=d["consent_id"],
        subject_kind=d["subject_kind"],
        subject_key=d["subject_key"],
        partner=d["partner"],
        scenes=tuple(d["scenes"]),
        purpose=d["purpose"],
        expires_at=dt.datetime.fromisoformat(d["expires_at"]),
        created_at=dt.datetime.fromisoformat(d["created_at"]),
        revoked_at=dt.datetime.fromisoformat(d["revoked_at"]) if d["revoked_at"] else None,
        created_by=d.get("created_by"),
        evidence_kind=d.get("evidence_kind"),
        evidence_ref=d.get("evidence_ref"),
    )


class Store(ABC):
    """The state every replica shares. All methods may raise StoreUnavailable."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    def change_feed(self, origin: str) -> ChangeFeed:
        """How this replica tells the others what it changed (``gateway.sync``).

        A backend shared by many processes overrides this; the embedded store
        has one process, so nobody else needs telling.
        """
        return LocalChangeFeed()

    @abstractmethod
    async def check(self) -> None:
        """Raise StoreUnavailable unless the backend answers (readiness)."""

    # -- rate limits ---------------------------------------------------------
    @abstractmethod
    async def rate_limit(self, key: str, per_second: float, burst: int) -> float:
        """Take one request from the bucket; 0.0 if allowed, else seconds to wait."""

    async def admit(
        self,
        rate_key: str,
        per_second: float,
        burst: int,
        *,
        consent_id: str | None = None,
        idempotency: IdempotencyClaim | None = None,
        breaches: BreachRead | None = None,
    ) -> Admission:
        """A decision's rate limit, consent and Idempotency-Key state (gateway.store.admission).

        Rate limited: nothing else is read or claimed. Otherwise the consent
        (when ``consent_id`` is given) and the key's record are read, and the
        key's lock claimed when it has no record, and the subject's breaches read
        when ``breaches`` is given. A backend with round trips answers all of it
        in one.
        """
        return await admit_in_turn(
            self, rate_key, per_second, burst, consent_id, idempotency, breaches
        )

    # -- consents ------------------------------------------------------------
    @abstractmethod
    async def put_consent(self, consent: Consent) -> None: ...

    @abstractmethod
    async def get_consent(self, consent_id: str) -> Consent | None: ...

    @abstractmethod
    async def revoke_consent(self, consent_id: str, at: dt.datetime) -> bool:
        """Mark revoked; False when no such consent exists."""

    # -- decisions, audit and token status ------------------------------------
    @abstractmethod
    async def record_decision(self, write: DecisionWrite) -> None:
        """Durably store the decision and append its audit record, atomically."""

    async def append_audit(self, event: AuditEvent) -> None:
        """Append a record that is not a decision, durably, on the same hash chain.

        It rides the decisions' group commit, so it costs no extra fsync when
        decisions are flowing, and it is on disk when this returns.
        """
        await self.record_decision(
            DecisionWrite(
                decision_id=event.record_id,
                partner=event.partner,
                body=None,
                audit=event,
                status=None,
            )
        )

    @abstractmethod
    async def get_decision(self, decision_id: str) -> tuple[str, dict[str, Any]] | None:
        """(partner id, body) of a stored decision."""

    @abstractmethod
    async def add_feedback(
        self,
        decision_id: str,
        partner: str,
        applied: bool,
        detail: dict[str, Any],
        at: str,
        limit: int,
    ) -> bool:
        """Keep a feedback unless the decision already has ``limit``; False when full."""

    @abstractmethod
    async def allocate_status(self) -> StatusRef:
        """A fresh, randomly placed slot in a token status list."""

    @abstractmethod
    async def set_status(self, ref: StatusRef, status: int) -> None: ...

    @abstractmethod
    async def status_list(self, list_id: str) -> tuple[bytes, int] | None:
        """The packed 2-bit statuses of a list and its size in entries."""

    @abstractmethod
    async def audit_records(self, after_seq: int, limit: int) -> list[AuditRecord]: ...

    # -- issued tokens -------------------------------------------------------------
    @abstractmethod
    async def token_status(self, ref: StatusRef) -> int: ...

    @abstractmethod
    async def live_tokens(self, subject_key: str, now: int) -> list[IssuedToken]:
        """Unexpired tokens issued on a subject."""

    @abstractmethod
    async def get_token(self, jti: str) -> IssuedToken | None:
        """An issued token's record while it lives."""

    @abstractmethod
    async def tokens_signed_by(self, kid: str, now: int) -> list[IssuedToken]:
        """Unexpired tokens signed with a key (for an emergency rotation)."""

    # -- OAuth -------------------------------------------------------------------------
    # -- idempotency ---------------------------------------------------------------------
    @abstractmethod
    async def get_idempotency(self, key: str) -> IdempotencyRecord | None: ...

    @abstractmethod
    async def put_idempotency(self, key: str, record: IdempotencyRecord, ttl_s: int) -> None:
        """Keep a non-decision response; decisions store theirs in record_decision."""

    @abstractmethod
    async def claim_once(self, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is claimed within its TTL (the replay cache)."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """Give up a claim early (a request that held it failed)."""

    @abstractmethod
    async def put_access_token(self, digest: str, token: AccessToken) -> None: ...

    @abstractmethod
    async def get_access_token(self, digest: str) -> AccessToken | None: ...
