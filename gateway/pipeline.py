"""The decision pipeline (DESIGN §4, steps 4–10), after the request is validated.

consent → fetch records (cached) → derive facts → evaluate (with the runtime
guard) → audit (durable) → sign → response. Nothing leaves before its audit
record is committed; if the append fails, the caller gets 503 and no decision.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.credit.base import SubjectKind
from gateway.audit.events import audit_event
from gateway.commitments.models import BREACH_RECORD_TYPE
from gateway.commitments.records import breach_records
from gateway.errors import DependencyUnavailable
from gateway.facts.subject_records import SubjectRecords
from gateway.ids import ordered_id
from gateway.metrics import Metrics
from gateway.policy.evaluator import Evaluation
from gateway.policy.loader import CompiledPolicy, PolicySet
from gateway.policy.notice import constraint_notice, withheld_notice
from gateway.restorations.store import ConstraintLink, RestorationStore
from gateway.settings import Partner
from gateway.store.admission import Admission
from gateway.store.base import (
    AuditEntry,
    DecisionWrite,
    IssuedToken,
    StatusRef,
    Store,
    StoreUnavailable,
)
from gateway.tokens.keys import SigningKey
from gateway.tokens.signer import BENEFIT_TYP, Signer
from gateway.trust.baseline import with_baseline
from gateway.trust.consents import ConsentService, consent_needed
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["DecisionPipeline", "DecisionQuery"]

log = logging.getLogger("xinyi.decisions")


@dataclass(slots=True)  # built per request, so not frozen (see store/base.py)
class DecisionQuery:
    kind: SubjectKind
    subject_id: str
    purpose: str
    consent_id: str | None
    staff_id: str | None
    context: dict[str, Any]
    # The subject's internal pseudonym, when the caller worked it out already.
    subject_key: str | None = None


@dataclass(slots=True)
class _PartnerView:
    """What a decision reads of its partner, copied out of the pydantic model.

    A model's attribute costs ~300 instructions (pydantic's ``__getattr__``
    keeps CPython off its fast path); a decision read a dozen of them.
    """

    partner: Partner  # the model copied: a reloaded partner is a new object
    id: str
    sector: str
    contract: str
    token_alg: str
    baseline: list[Any]


@dataclass(slots=True)
class _Stamps:
    """A decision's times, as its body and token state them (whole seconds, UTC)."""

    issued_at: str
    expires_at: str
    iat: int
    exp: int
    benefit_until: str


class DecisionPipeline:
    def __init__(
        self,
        *,
        issuer: str,
        records: SubjectRecords,
        store: Store,
        signer: Signer,
        pseudonyms: Pseudonyms,
        consents: ConsentService,
        metrics: Metrics,
        restorations: RestorationStore | None = None,
    ) -> None:
        self._issuer = issuer
        # The credit source's records (cached) and the commitment register's breaches.
        self.records = records
        self._store = store
        self._signer = signer
        self._pseudonyms = pseudonyms
        self._consents = consents
        self._metrics = metrics
        self._restorations = restorations
        stage = metrics.stage_seconds
        self._t_fetch = stage.labels("fetch")
        self._t_evaluate = stage.labels("evaluate")
        self._t_audit = stage.labels("audit")
        self._t_sign = stage.labels("sign")
        self._t_append = metrics.audit_append_seconds.labels(type(store).__name__)
        # labels() costs a lock and a tuple hash each call; children are kept instead.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._issued: dict[str, Any] = {}
        self._stamps: dict[tuple[int, dt.date, int, int], _Stamps] = {}
        self._partners: dict[str, _PartnerView] = {}

    def _view(self, partner: Partner) -> _PartnerView:
        view = self._partners.get(partner.id)
        if view is None or view.partner is not partner:
            view = _PartnerView(
                partner,
                partner.id,
                partner.pseudonym_sector,
                partner.contract,
                partner.token_alg,
                partner.baseline,
            )
            self._partners[view.id] = view
        return view

    def _times(
        self, now: dt.datetime, today: dt.date, token_days: int, benefit_days: int
    ) -> _Stamps:
        """The decision's times, worked out once per second and policy.

        Every decision of that second shares them; formatting the dates anew
        cost ~5 µs a decision.
        """
        second = int(now.timestamp())
        key = (second, today, token_days, benefit_days)
        stamps = self._stamps.get(key)
        if stamps is None:
            if len(self._stamps) > 64:  # older seconds are never asked for again
                self._stamps.clear()
            at = dt.datetime.fromtimestamp(second, dt.UTC)
            stamps = _Stamps(
                issued_at=at.isoformat(),
                expires_at=(at + dt.timedelta(days=token_days)).isoformat(),
                iat=second,
                exp=second + token_days * 86_400,
                benefit_until=(today + dt.timedelta(days=benefit_days)).isoformat(),
            )
            self._stamps[key] = stamps
        return stamps

    async def decide(
        self,
        partner: Partner,
        policies: PolicySet,
        compiled: CompiledPolicy,
        query: DecisionQuery,
        now: dt.datetime,
        today: dt.date,
        idempotency: tuple[str, str] | None = None,
        admitted: Admission | None = None,
    ) -> bytes:
        """The decision's answer, as the JSON body the caller gets.

        ``admitted``: the request's admission (``Store.admit``), whose consent
        and breaches are used rather than read again.
        """
        policy = compiled.policy
        scene = compiled.scene
        view = self._view(partner)
        partner_id = view.id
        consent_id = None
        # The subject's internal pseudonym keys consents, token records and the
        # record cache (so a replica can evict by it: gateway.sync); an HMAC costs
        # a few µs, so it is worked out once.
        subject_key = query.subject_key or self._pseudonyms.internal(query.kind, query.subject_id)
        if consent_needed(query.kind, compiled.consent_required_for):
            if admitted is not None and admitted.consent_read:
                # Read in the admission call, with the rate limit (Store.admit).
                consent = self._consents.check(
                    query.consent_id,
                    admitted.consent,
                    kind=query.kind,
                    subject_key=subject_key,
                    partner=partner_id,
                    scene=scene,
                    purpose=query.purpose,
                    now=now,
                )
            else:
                consent = await self._consents.require(
                    query.consent_id,
                    kind=query.kind,
                    subject_key=subject_key,
                    partner=partner_id,
                    scene=scene,
                    purpose=query.purpose,
                    now=now,
                )
            consent_id = consent.consent_id

        t0 = time.perf_counter()
        records = await self.records.fetch(query.kind, query.subject_id, subject_key)
        if compiled.plan.reads_type(BREACH_RECORD_TYPE):
            read = None
            if admitted is not None and admitted.breaches is not None:
                read = breach_records(admitted.breaches)  # read with the rate limit
            records = await self.records.with_breaches(records, subject_key, today, read)
        t1 = time.perf_counter()
        facts = compiled.plan.build(records, query.context, today, query.kind)
        result = compiled.evaluate(facts)
        if view.baseline:
            result = with_baseline(result, view.baseline, scene, partner_id, policies.benefits)
        t2 = time.perf_counter()
        if result.dropped:
            self._metrics.guard_violations.labels(scene).inc(len(result.dropped))
            log.error(
                "runtime guard dropped constraints",
                extra={"scene": scene, "rules": result.dropped, "policy": policy.id},
            )
            # Rare by construction (the load-time guard should make it impossible),
            # so the extra durable write costs nothing on the normal path.
            await self._store.append_audit(
                audit_event(
                    "runtime_guard_dropped",
                    partner_id,
                    now,
                    scene=scene,
                    outcome="dropped",
                    policy=policy.id,
                    rules=list(result.dropped),
                )
            )

        decision_id = ordered_id("dec_")
        times = self._times(now, today, compiled.token_days, compiled.benefit_days)
        body: dict[str, Any] = {
            "decision_id": decision_id,
            "scene": scene,
            "outcome": result.outcome,
            "benefits": [{"code": code, "params": params} for code, params in result.benefits],
            "constraints": [],
            "reasons": [reason.as_json() for reason in result.reasons],
            "policy": compiled.ref,
            "policy_set": policies.hash,
            "issued_at": times.issued_at,
            "expires_at": times.expires_at,
        }
        grounds: list[str] = []
        if result.constraints:
            body["constraints"], grounds = self._constraint_notices(
                policies, compiled, result, records, today, query.kind
            )
        elif result.outcome == "standard" and compiled.grant_reads:
            notice = withheld_notice(
                policies.measures,
                compiled.plan.evidence(
                    records, compiled.grant_reads, today, query.kind, adverse_only=True
                ),
            )
            if notice is not None:
                body["notice"] = notice
        if grounds and self._restorations is not None:
            # Linked before the decision is stored: a restoration may then name a
            # decision that was never given, never miss one that was.
            link = ConstraintLink(
                decision_id,
                partner_id,
                scene,
                tuple(result.constraints),
                times.issued_at,
            )
            subject_key = subject_key or self._pseudonyms.internal(query.kind, query.subject_id)
            try:
                await self._restorations.link(subject_key, grounds, link)
            except StoreUnavailable as exc:
                raise DependencyUnavailable("the restorations store is not writable") from exc
        pseudonym = self._pseudonyms.of(view.sector, query.kind, query.subject_id)
        jti: str | None = None
        status: StatusRef | None = None
        issued: IssuedToken | None = None
        key: SigningKey | None = None
        if result.outcome == "granted":
            body["benefit_until"] = times.benefit_until
            jti = ordered_id()
            status = await self._store.allocate_status()
            key = self._signer.key_for(view.token_alg)
            claims = self._claims(partner_id, compiled, body, pseudonym, jti, status, times)
            # Kept so a credit event can re-check the grant, a key's tokens can be
            # revoked, and a retried request gets this very token back.
            # Positional, as AuditEntry below: a class called with keywords first
            # gathers them into a dict (~100 instructions a field).
            issued = IssuedToken(
                jti,
                decision_id,
                partner_id,  # partner
                scene,
                query.purpose,
                subject_key,
                key.kid,
                status,
                times.exp,  # expires
                query.context,
                tuple(code for code, _ in result.benefits),
                claims,
            )

        entry = AuditEntry(  # positional, in field order (see IssuedToken above)
            body["issued_at"],  # time
            partner_id,  # partner
            query.staff_id,
            scene,
            query.purpose,
            pseudonym,  # subject
            result.outcome,
            compiled.label,  # policy
            compiled.hash,  # policy_hash
            policies.hash,  # policy_set
            consent_id,
            view.contract,
            decision_id,
            jti,  # token_jti
        )
        body_json = orjson.dumps(body)
        write = DecisionWrite(
            decision_id, partner_id, body_json, entry, status, issued, idempotency
        )
        try:
            await self._store.record_decision(write)
        except StoreUnavailable as exc:
            self._metrics.audit_append_failures.inc()
            log.error("audit append failed; decision withheld", extra={"decision_id": decision_id})
            raise DependencyUnavailable("the audit log is not writable; try again") from exc
        t3 = time.perf_counter()

        response = body_json
        if key is not None and issued is not None:
            token = self._signer.sign_with(key, issued.claims, BENEFIT_TYP)
            # The answer is the stored body plus the token as its last member.
            response = b'%s,"token":%s}' % (body_json[:-1], orjson.dumps(token))
            issued_counter = self._issued.get(scene)
            if issued_counter is None:
                issued_counter = self._metrics.tokens_issued.labels(scene)
                self._issued[scene] = issued_counter
            issued_counter.inc()
        t4 = time.perf_counter()

        self._t_fetch.observe(t1 - t0)
        self._t_evaluate.observe(t2 - t1)
        self._t_audit.observe(t3 - t2)
        self._t_append.observe(t3 - t2)
        self._t_sign.observe(t4 - t3)
        label = (scene, result.outcome, partner_id)
        counter = self._counted.get(label)
        if counter is None:
            counter = self._counted[label] = self._metrics.decisions.labels(*label)
        counter.inc()
        return response

    def forget_records(self, subject_key: str | None = None) -> None:
        """Drop one subject's cached records (by internal pseudonym), or all of them."""
        self.records.forget(subject_key)

    @staticmethod
    def _constraint_notices(
        policies: PolicySet,
        compiled: CompiledPolicy,
        result: Evaluation,
        records: Any,
        today: dt.date,
        kind: SubjectKind,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Each measure with its notice, and the ids of every record a measure rests on."""
        measure_of = {r.id: r.measure for r in compiled.rules if r.measure is not None}
        notices = []
        grounds: dict[str, None] = {}
        for code in result.constraints:
            facts = {
                fact
                for reason in result.reasons
                if measure_of.get(reason.rule) == code
                for fact in reason.facts
            }
            evidence = compiled.plan.evidence(records, facts, today, kind)
            notice = constraint_notice(policies.measures, code, evidence)
            notices.append(notice)
            grounds.update(dict.fromkeys(r["record_id"] for r in notice["records"]))
        return notices, list(grounds)

    def _claims(
        self,
        partner_id: str,
        compiled: CompiledPolicy,
        body: dict[str, Any],
        pseudonym: str,
        jti: str,
        status: StatusRef,
        times: _Stamps,
    ) -> dict[str, Any]:
        claims = {
            "iss": self._issuer,
            "sub": pseudonym,
            "aud": partner_id,
            "iat": times.iat,
            "nbf": times.iat,
            "exp": times.exp,
            "jti": jti,
            "vct": compiled.ref["id"],
            "scene": compiled.scene,
            "benefits": body["benefits"],
            "benefit_until": body["benefit_until"],
            "policy": compiled.ref,
            "policy_set": body["policy_set"],
            "decision_id": body["decision_id"],
            "status": {
                "status_list": {
                    "idx": status.index,
                    "uri": f"{self._issuer}/v1/status-lists/{status.list_id}",
                }
            },
        }
        return claims
