"""Consent (persons) and authorisation (enterprises, 授权): specific, revocable, never lifetime.

A consent names one partner, its scenes and one purpose, and expires. A
consent given for another partner, scene or purpose counts as none.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection

from gateway.audit.events import audit_event
from gateway.errors import FieldError, Forbidden, InvalidRequest
from gateway.store.base import Consent, Store
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["ConsentService", "consent_needed"]


def consent_needed(kind: str, consent_required_for: Collection[str]) -> bool:
    """A person's records always need consent; other kinds where the scene says so."""
    return kind == "person" or kind in consent_required_for


class ConsentService:
    def __init__(self, store: Store, pseudonyms: Pseudonyms, max_days: int) -> None:
        self._store = store
        self._pseudonyms = pseudonyms
        self._max = dt.timedelta(days=max_days)

    async def create(
        self,
        *,
        kind: str,
        subject_id: str,
        partner: str,
        scenes: list[str],
        purpose: str,
        expires_at: dt.datetime,
        now: dt.datetime,
        created_by: str | None = None,
        evidence: tuple[str, str] | None = None,
    ) -> Consent:
        if expires_at <= now:
            raise InvalidRequest(
                "a consent must expire in the future",
                errors=[FieldError("/expires_at", "must be in the future")],
            )
        if expires_at - now > self._max:
            raise InvalidRequest(
                "lifetime consent is not accepted",
                errors=[
                    FieldError("/expires_at", f"must be at most {self._max.days} days from now")
                ],
            )
        consent = Consent(
            consent_id="cns_" + secrets.token_urlsafe(18),
            subject_kind=kind,
            subject_key=self._pseudonyms.internal(kind, subject_id),
            partner=partner,
            scenes=tuple(dict.fromkeys(scenes)),
            purpose=purpose,
            expires_at=expires_at,
            created_at=now,
            created_by=created_by,
            evidence_kind=evidence[0] if evidence else None,
            evidence_ref=evidence[1] if evidence else None,
        )
        # On the record before it takes effect, like a decision.
        await self._store.append_audit(
            audit_event(
                "consent_recorded",
                created_by or partner,
                now,
                purpose=purpose,
                subject=consent.subject_key,
                consent_id=consent.consent_id,
                for_partner=partner,
                scenes=list(consent.scenes),
                expires_at=expires_at.isoformat(),
                # Consent given at a counter: where it is written down.
                **({"evidence_kind": evidence[0], "evidence_ref": evidence[1]} if evidence else {}),
            )
        )
        await self._store.put_consent(consent)
        return consent

    async def revoke(self, consent: Consent, *, by: str, now: dt.datetime) -> None:
        await self._store.append_audit(
            audit_event(
                "consent_revoked",
                by,
                now,
                purpose=consent.purpose,
                subject=consent.subject_key,
                consent_id=consent.consent_id,
                for_partner=consent.partner,
            )
        )
        await self._store.revoke_consent(consent.consent_id, now)

    async def require(
        self,
        consent_id: str | None,
        *,
        kind: str,
        subject_key: str,
        partner: str,
        scene: str,
        purpose: str,
        now: dt.datetime,
    ) -> Consent:
        """The consent that covers this query, or Forbidden.

        ``subject_key`` is the subject's internal pseudonym
        (``Pseudonyms.internal``), which the caller needs for its own records too.
        """
        consent = await self._store.get_consent(consent_id) if consent_id else None
        return self.check(
            consent_id,
            consent,
            kind=kind,
            subject_key=subject_key,
            partner=partner,
            scene=scene,
            purpose=purpose,
            now=now,
        )

    @staticmethod
    def check(
        consent_id: str | None,
        consent: Consent | None,
        *,
        kind: str,
        subject_key: str,
        partner: str,
        scene: str,
        purpose: str,
        now: dt.datetime,
    ) -> Consent:
        """``require`` on a consent already read (``Store.admit`` reads it with the
        rate limit): ``consent`` is what the store holds under ``consent_id``."""
        if not consent_id:
            raise Forbidden(
                "this query needs the subject's consent: send consent_id",
                code="consent_required",
            )
        if consent is None or consent.partner != partner:
            raise Forbidden("no consent with this id covers your queries", code="consent_required")
        if consent.revoked_at is not None:
            raise Forbidden("the subject has revoked this consent", code="consent_revoked")
        if (
            consent.expires_at <= now
            or scene not in consent.scenes
            or consent.purpose != purpose
            or consent.subject_kind != kind
            or not secrets.compare_digest(consent.subject_key, subject_key)
        ):
            raise Forbidden(
                "the consent does not cover this subject, scene, purpose or date",
                code="consent_required",
            )
        return consent
