"""The decision pipeline (DESIGN §4, steps 4–10), after the request is validated.

consent → fetch records (cached) → derive facts → evaluate (with the runtime
guard) → audit (durable) → sign → response. Nothing leaves before its audit
record is committed; if the append fails, the caller gets 503 and no decision.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.credit.base import (
    CircuitOpen,
    CreditRecord,
    CreditSource,
    CreditSourceError,
    SubjectKind,
)
from gateway.audit.events import audit_event
from gateway.commitments.models import BREACH_RECORD_TYPE
from gateway.errors import DependencyUnavailable
from gateway.facts.cache import RecordCache
from gateway.ids import ordered_id
from gateway.metrics import Metrics
from gateway.policy.evaluator import Evaluation
from gateway.policy.loader import CompiledPolicy, PolicySet
from gateway.policy.notice import constraint_notice, withheld_notice
from gateway.policy.prohibited import is_prohibited
from gateway.restorations.store import ConstraintLink, RestorationStore
from gateway.settings import Partner
from gateway.store.admission import Admission
from gateway.store.base import (
    AuditEntry,
    DecisionWrite,
    IdempotencyRecord,
    IssuedToken,
    StatusRef,
    Store,
    StoreUnavailable,
)
from gateway.tokens.keys import SigningKey
from gateway.tokens.signer import BENEFIT_TYP, Signer
from gateway.tokens.status_list import INVALID, VALID
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
        credit: CreditSource,
        credit_name: str,
        cache: RecordCache,
        store: Store,
        signer: Signer,
        pseudonyms: Pseudonyms,
        consents: ConsentService,
        metrics: Metrics,
        restorations: RestorationStore | None = None,
        breach_records: Callable[[str, dt.date], Awaitable[list[CreditRecord]]] | None = None,
        on_revoke: Callable[[IssuedToken, str], Awaitable[None]] | None = None,
    ) -> None:
        # Tells the token's audience of a revocation (gateway.trust.revocation).
        self._on_revoke = on_revoke
        self._issuer = issuer
        # The gateway's own commitment register: breaches withhold incentives
        # (policies read them as `commitment_breached` records).
        self._breach_records = breach_records
        self._credit = credit
        self._credit_name = credit_name
        self._cache = cache
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
        # The breaker is the source's own (purgatory in the platform adapter): the
        # gauge shows what it last said, open from a refused lookup to a good one.
        self._circuit_gauge = metrics.circuit_open.labels(credit_name)
        self._circuit_gauge.set(0)
        self._circuit_open = False
        # labels() costs a lock and a tuple hash each call; children are kept instead.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._calls_ok: Any = None  # upstream_calls' "ok" child: one per record-cache miss
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

    async def _records(self, kind: SubjectKind, subject_id: str, subject_key: str) -> Any:
        records = self._cache.get(subject_key)
        if records is not None:
            return records
        try:
            records = await self._credit.records(kind, subject_id)
        except CreditSourceError as exc:
            if isinstance(exc, CircuitOpen):  # refused by the source's breaker: not asked
                self._circuit_open = True
                self._circuit_gauge.set(1)
                self._metrics.upstream_calls.labels(self._credit_name, "short_circuited").inc()
            else:
                self._metrics.upstream_calls.labels(self._credit_name, "error").inc()
                log.warning("credit source failed", extra={"adapter": self._credit_name})
            wait = exc.retry_after_s
            raise DependencyUnavailable(
                "the credit source is not answering",
                retry_after_s=max(1, math.ceil(wait)) if wait is not None else 1,
            ) from exc
        if self._circuit_open:
            self._circuit_open = False
            self._circuit_gauge.set(0)
        calls_ok = self._calls_ok
        if calls_ok is None:  # made on the first answer, as labels() would: no series before
            calls_ok = self._calls_ok = self._metrics.upstream_calls.labels(self._credit_name, "ok")
        calls_ok.inc()
        # Records from domains that may not enter credit supervision are dropped
        # when facts are built; counted here, once per fetch.
        ignored = sum(1 for r in records if is_prohibited(r.domain, r.title))
        if ignored:
            self._metrics.records_dropped.inc(ignored)
        self._cache.put(subject_key, records)
        return records

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

        ``admitted``: the request's admission (``Store.admit``), whose consent is
        used rather than read again.
        """
        policy = compiled.policy
        scene = compiled.scene
        view = self._view(partner)
        partner_id = view.id
        consent_id = None
        # The subject's internal pseudonym keys consents, token records and the
        # record cache (so a replica can evict by it: gateway.sync); an HMAC costs
        # a few µs, so it is worked out once.
        subject_key = self._pseudonyms.internal(query.kind, query.subject_id)
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
        records = await self._records(query.kind, query.subject_id, subject_key)
        if self._breach_records is not None and compiled.plan.reads_type(BREACH_RECORD_TYPE):
            records = await self._with_breaches(records, subject_key, today)
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
            issued = IssuedToken(
                jti=jti,
                decision_id=decision_id,
                partner=partner_id,
                scene=scene,
                purpose=query.purpose,
                subject_key=subject_key,
                kid=key.kid,
                status=status,
                expires=times.exp,
                context=query.context,
                benefits=tuple(code for code, _ in result.benefits),
                claims=claims,
            )

        entry = AuditEntry(
            time=body["issued_at"],
            partner=partner_id,
            staff_id=query.staff_id,
            scene=scene,
            purpose=query.purpose,
            subject=pseudonym,
            outcome=result.outcome,
            policy=compiled.label,
            policy_hash=compiled.hash,
            policy_set=policies.hash,
            consent_id=consent_id,
            contract=view.contract,
            decision_id=decision_id,
            token_jti=jti,
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
        if subject_key is None:
            self._cache.clear()
        else:
            self._cache.forget(subject_key)

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

    async def _with_breaches(
        self, records: Sequence[CreditRecord], subject_key: str, today: dt.date
    ) -> Sequence[CreditRecord]:
        assert self._breach_records is not None
        try:
            breaches = await self._breach_records(subject_key, today)
        except StoreUnavailable as exc:
            raise DependencyUnavailable("the commitment register is not answering") from exc
        # The cached sequence stays as it is when there is nothing to add, so the
        # fact plan's memo still recognises it.
        return [*records, *breaches] if breaches else records

    async def recheck_tokens(
        self,
        kind: SubjectKind,
        subject_id: str,
        policies: PolicySet,
        today: dt.date,
        partners: Mapping[str, Partner] | None = None,
    ) -> tuple[int, int]:
        """After a credit change: revoke the subject's live tokens no longer justified.

        A token stays valid while its scene's policy, on fresh records and the
        token's own request context, still grants every benefit it carries.
        Returns (tokens checked, tokens revoked).
        """
        subject_key = self._pseudonyms.internal(kind, subject_id)
        self._cache.forget(subject_key)
        live = await self._store.live_tokens(subject_key, int(time.time()))
        if not live:
            return 0, 0
        records = await self._records(kind, subject_id, subject_key)
        if self._breach_records is not None:
            records = await self._with_breaches(records, live[0].subject_key, today)
        revoked = 0
        for token in live:
            if await self._store.token_status(token.status) != VALID:
                continue
            compiled = policies.active(token.scene, today)
            justified = False
            if compiled is not None:
                result = compiled.evaluate(compiled.plan.build(records, token.context, today, kind))
                owner = (partners or {}).get(token.partner)
                if owner is not None and owner.baseline:
                    result = with_baseline(
                        result, owner.baseline, token.scene, owner.id, policies.benefits
                    )
                granted = {code for code, _ in result.benefits}
                justified = result.outcome == "granted" and set(token.benefits) <= granted
            if not justified:
                await self._store.set_status(token.status, INVALID)
                self._metrics.tokens_revoked.labels("credit_event").inc()
                if self._on_revoke is not None:
                    await self._on_revoke(token, "credit_event")
                revoked += 1
        if revoked:
            log.info("tokens revoked after a credit event", extra={"revoked": revoked})
        return len(live), revoked

    async def replay(self, partner: Partner, record: IdempotencyRecord) -> dict[str, Any] | None:
        """The response a first request with this Idempotency-Key got, rebuilt.

        The token is signed again from its stored claims; Ed25519 signatures are
        deterministic, so it is the same token, byte for byte.
        """
        if record.decision_id is None:
            return None
        found = await self._store.get_decision(record.decision_id)
        if found is None or found[0] != partner.id:
            return None
        response = dict(found[1])
        if record.token_jti is not None:
            token = await self._store.get_token(record.token_jti)
            if token is not None:
                key = self._signer.ring.get(token.kid)
                if key is None or key.status == "retired":
                    key = self._signer.key_for(partner.token_alg)
                response["token"] = self._signer.sign_with(key, token.claims, BENEFIT_TYP)
        return response

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
