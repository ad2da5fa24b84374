"""The running gateway: every component, opened and closed together.

``Gateway.open`` builds everything from settings (no work at import time);
``create_app`` in ``gateway.app`` wires it to HTTP routes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from adapters.credit.base import AdapterContext, CreditSource, CreditSourceError
from gateway.audit.archive import Archive
from gateway.audit.events import GATEWAY_ACTOR, audit_event
from gateway.audit.log import AuditLog
from gateway.audit.retention import Retention
from gateway.audit.store import audit_tree_store
from gateway.commitments.backend import commitment_store
from gateway.commitments.service import CommitmentService
from gateway.errors import Forbidden, RateLimited, Unauthenticated
from gateway.facts.cache import RecordCache
from gateway.facts.subject_records import SubjectRecords
from gateway.loans.sealing import Sealer
from gateway.loans.service import LoanService
from gateway.loans.store import loan_store_for
from gateway.metrics import Metrics
from gateway.outbox.backend import outbox_store
from gateway.outbox.dispatcher import Dispatcher, build_adapters
from gateway.outbox.events import Events
from gateway.pipeline import DecisionPipeline
from gateway.plugins import load_credit_source_class
from gateway.policy.bundle import BundleError
from gateway.policy.loader import PolicyLoadError, PolicySet
from gateway.policy.source import load_configured_policies
from gateway.restorations.backends import restorations_for
from gateway.restorations.store import RestorationStore
from gateway.settings import ConfigError, Partner, Settings, load_partners
from gateway.store.base import Store
from gateway.store.changes import Topic
from gateway.store.embedded import EmbeddedStore
from gateway.sync import ReplicaSync
from gateway.tokens.key_metrics import KeyRingCollector
from gateway.tokens.keys import KeyRing
from gateway.tokens.recheck import TokenRecheck
from gateway.tokens.reissue import DecisionReplay
from gateway.tokens.signer import Signer
from gateway.tokens.status_cache import StatusListCache
from gateway.trust.baseline import baseline_problems
from gateway.trust.client_keys import load_client_keys
from gateway.trust.consents import ConsentService
from gateway.trust.oauth import (
    ACCESS_TOKEN_PREFIX,
    TokenService,
    access_token_digest,
    partner_scopes,
)
from gateway.trust.partners import PartnerRegistry
from gateway.trust.pseudonyms import Pseudonyms
from gateway.trust.revocation import Revocations

__all__ = ["Gateway", "open_store", "rate_key"]

log = logging.getLogger("xinyi.gateway")


def open_store(url: str, *, read_only: bool = False) -> Store:
    """The backend a store URL names (``read_only`` matters to the embedded one)."""
    if url.startswith("sqlite:///"):
        return EmbeddedStore(Path(url.removeprefix("sqlite://")), read_only=read_only)
    if url.startswith(("redis://", "rediss://", "redis+cluster://")):
        from gateway.store.redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"unsupported store URL scheme {url.split('://')[0]!r}: use sqlite:///PATH, "
        "redis://HOST:PORT/DB or redis+cluster://HOST:PORT,HOST:PORT"
    )


def rate_key(partner: Partner) -> str:
    """The partner's rate-limit bucket (``Store.rate_limit``, ``Store.admit``)."""
    return f"rl:{partner.id}"


def _refuse_api_keys(path: Path, partners: list[Partner]) -> None:
    """Production takes OAuth client assertions only: API keys are a development aid."""
    allowed = [p.id for p in partners if p.allow_api_keys or p.api_key_sha256]
    if allowed:
        raise ConfigError(
            f"{path}: production mode does not accept development API keys, but "
            f"{', '.join(allowed)} allow them — fix: remove allow_api_keys and api_key_sha256 "
            "(partners sign in with client assertions at /oauth/token)"
        )


@dataclass
class Gateway:
    settings: Settings
    metrics: Metrics
    policies: PolicySet
    partners: PartnerRegistry
    store: Store
    keys: KeyRing
    signer: Signer
    pseudonyms: Pseudonyms
    consents: ConsentService
    credit: CreditSource
    pipeline: DecisionPipeline
    recheck: TokenRecheck  # a subject's live tokens after a credit event
    replay: DecisionReplay  # a decision's first response, for a retried request
    oauth: TokenService
    tz: ZoneInfo
    restorations: RestorationStore
    events: Events
    dispatcher: Dispatcher
    commitments: CommitmentService
    revocations: Revocations
    loans: LoanService
    status_cache: StatusListCache = field(default_factory=StatusListCache)
    sync: ReplicaSync = field(init=False, repr=False)
    audit: AuditLog = field(init=False)
    retention: Retention = field(init=False)
    _pending: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _today: dt.date = field(default=dt.date.min, repr=False)
    _today_at: int = field(default=-1, repr=False)

    @classmethod
    async def open(cls, settings: Settings, *, credit: CreditSource | None = None) -> Gateway:
        metrics = Metrics()
        policies = load_configured_policies(settings)
        partner_list = load_partners(settings.partners_file)
        if settings.mode == "production":
            _refuse_api_keys(settings.partners_file, partner_list)
        partners = PartnerRegistry(partner_list)
        for partner in partner_list:
            problems = baseline_problems(partner, policies.benefits)
            if problems:
                raise ConfigError(
                    f"{settings.partners_file}: partner {partner.id!r}: " + "; ".join(problems)
                )
        client_keys = {p.id: load_client_keys(p) for p in partner_list}
        state = settings.state_dir
        # Keys, consents and the audit trail live here: owner only (DESIGN §6 keeps keys 0600).
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        state.chmod(0o700)
        # A ring made now has never been published: its first keys may sign at once.
        fresh = not (state / "keys" / "ring.json").is_file()
        keys = KeyRing.load(state / "keys", create=True)
        es256 = any(p.token_alg == "ES256" for p in partner_list)  # noqa: S105 - an algorithm
        if es256 and not any(k.alg == "ES256" for k in keys.entries() if k.status != "retired"):
            # Partners already cache a JWKS without it: publish now, sign after the
            # publish-before-use delay (DESIGN §6; the signer activates it when due).
            key = keys.add("ES256", activate=fresh)
            if not fresh:
                log.warning(
                    "ES256 key published; it signs once partners can have fetched it",
                    extra={"kid": key.kid},
                )
        pseudonyms = Pseudonyms.load(state / "pseudonym.key", create=True)
        credit_name = settings.credit_source.adapter
        if credit is None:
            try:
                source_cls = load_credit_source_class(credit_name)
                credit = source_cls.from_options(
                    settings.credit_source.options,
                    AdapterContext(
                        state_dir=state,
                        config_dir=settings.partners_file.parent,
                        registry=metrics.registry,
                    ),
                )
            except (ValueError, CreditSourceError) as exc:
                # A start-up problem of configuration, told as one (no traceback).
                raise ConfigError(f"credit_source: {exc} — fix: correct the setting") from None
        else:
            credit_name = type(credit).__name__
        try:
            adapters = build_adapters(partner_list, settings)
        except ValueError as exc:
            raise ConfigError(f"{settings.partners_file}: {exc}") from None
        store = open_store(settings.store_url)
        await store.open()
        restorations = restorations_for(store)
        await restorations.open()
        outbox = outbox_store(store)
        await outbox.open()
        dispatcher = Dispatcher(outbox, adapters, settings.outbox, metrics)
        events = Events(partner_list, outbox, dispatcher.wake)
        commitments_store = commitment_store(store)
        await commitments_store.open()
        commitments = CommitmentService(
            commitments_store, events, store, pseudonyms, metrics, settings.commitments
        )
        revocations = Revocations(store, events, metrics)
        signer = Signer(keys)
        consents = ConsentService(store, pseudonyms, settings.consent_max_days)
        records = SubjectRecords(
            credit=credit,
            credit_name=credit_name,
            cache=RecordCache(settings.records_cache_seconds, settings.records_cache_size),
            metrics=metrics,
            breach_records=commitments.breach_records,
        )
        pipeline = DecisionPipeline(
            issuer=settings.issuer,
            records=records,
            store=store,
            signer=signer,
            pseudonyms=pseudonyms,
            consents=consents,
            metrics=metrics,
            restorations=restorations,
        )
        loans = LoanService(
            store=loan_store_for(store),
            audit=store,
            credit=credit,
            pseudonyms=pseudonyms,
            sealer=Sealer.load(state / "loans-seal.key"),
            tz=ZoneInfo(settings.timezone),
            banks=[p.id for p in partner_list if p.kind == "bank"],
            facts_ttl_s=settings.loan_facts_seconds,
            registry=metrics.registry,
        )
        await loans.open()
        log.info(
            "gateway ready",
            extra={
                "policy_set": policies.hash,
                "scenes": sorted(policies.by_scene),
                "partners": len(partners.by_id),
            },
        )
        gateway = cls(
            settings=settings,
            metrics=metrics,
            policies=policies,
            partners=partners,
            store=store,
            keys=keys,
            signer=signer,
            pseudonyms=pseudonyms,
            consents=consents,
            credit=credit,
            pipeline=pipeline,
            recheck=TokenRecheck(
                store=store,
                records=records,
                pseudonyms=pseudonyms,
                metrics=metrics,
                on_revoke=revocations.announce,
            ),
            replay=DecisionReplay(store, signer),
            oauth=TokenService(
                issuer=settings.issuer,
                partners=partners.by_id,
                client_keys=client_keys,
                store=store,
            ),
            tz=ZoneInfo(settings.timezone),
            restorations=restorations,
            events=events,
            dispatcher=dispatcher,
            commitments=commitments,
            revocations=revocations,
            loans=loans,
        )
        # Tree building and checkpoint signing follow the log in the background.
        gateway.audit = AuditLog(
            store,
            audit_tree_store(store),
            lambda: gateway.keys,
            origin=settings.audit_origin,
            every=settings.audit.checkpoint_every,
            seconds=settings.audit.checkpoint_seconds,
            archive=Archive(settings.archive_dir),
        )
        await gateway.audit.open()
        gateway.audit.start()
        if not isinstance(store, EmbeddedStore):  # redis-py stays unloaded on the embedded store
            from gateway.store.redis import RedisStore

            if isinstance(store, RedisStore):
                store.feedback_ttl_s = max(1, int(settings.retention.feedback_days * 86_400))
        gateway.retention = Retention(gateway.audit, settings.retention)
        gateway.retention.start()
        gateway.sync = ReplicaSync(gateway)
        metrics.registry.register(KeyRingCollector(lambda: gateway.keys))
        return gateway

    async def announce(self, topic: Topic, key: str = "") -> None:
        """This replica changed shared in-memory state: the others apply it too."""
        await self.sync.announce(topic, key)

    async def record(self, kind: str, partner: str = GATEWAY_ACTOR, **detail: Any) -> None:
        """Put a change (policy reload, key change …) on the audit record."""
        await self.store.append_audit(audit_event(kind, partner, self.now(), **detail))

    def _record_later(self, kind: str, **detail: Any) -> None:
        # From a signal handler: the record is appended as soon as the loop runs.
        task = asyncio.get_running_loop().create_task(self.record(kind, **detail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.sync.stop()
        await self.dispatcher.close()
        await self.restorations.close()
        await self.retention.close()
        await self.audit.close()
        await self.store.close()
        await self.credit.close()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        """The calendar day in the deployment's time zone: policies are dated in local days.

        Worked out at most once a wall-clock second (the zone conversion is the
        dearest part of a decision's date handling).
        """
        second = int(time.time())
        if second != self._today_at:
            self._today = dt.datetime.now(self.tz).date()
            self._today_at = second
        return self._today

    def reload_policies(self) -> tuple[bool, list[str]]:
        """Swap in a freshly loaded policy set, or keep the serving one and say why.

        The swap is one reference assignment: a request reads ``self.policies``
        once, so it sees either the old set or the new one, never a mixture.
        """
        try:
            fresh = load_configured_policies(self.settings)
        except PolicyLoadError as exc:
            reasons = [str(p) for p in exc.problems]
            for problem in exc.problems:
                self.metrics.guard_rejections.labels(problem.code).inc()
        except BundleError as exc:
            reasons = [str(exc)]
        else:
            reasons = self._change_impact(fresh)
        if not reasons:
            self.policies = fresh
            self.metrics.policy_reloads.labels("loaded").inc()
            log.info("policy set reloaded", extra={"policy_set": fresh.hash})
            return True, []
        self.metrics.policy_reloads.labels("refused").inc()
        log.error(
            "policy reload refused; the previous set keeps serving",
            extra={"reasons": reasons, "policy_set": self.policies.hash},
        )
        return False, reasons

    def _change_impact(self, fresh: PolicySet) -> list[str]:
        """Log who gains and loses under the new set; with ``refuse_benefit_removal``,
        the reasons to refuse a version that takes benefits away without a
        ``change_reason``. Proving needs z3 (the ``prove`` extra): without it the
        impact is not logged, and a reload that must be checked is refused."""
        refuse = self.settings.refuse_benefit_removal
        try:
            from gateway.policy.impact import reload_impact
            from gateway.policy.smt import ProveError
        except ImportError:
            if refuse:
                return ["refuse_benefit_removal needs z3: pip install 'xinyi-gateway[prove]'"]
            log.warning("policy change impact not computed: z3 is not installed")
            return []
        try:
            impacts = reload_impact(self.policies, fresh)
        except ProveError as exc:
            if refuse:
                return [f"the change impact cannot be proved: {exc}"]
            log.warning("policy change impact not computed", extra={"error": str(exc)})
            return []
        reasons = []
        for impact in impacts:
            log.info("policy change impact", extra=impact.summary())
            if refuse and impact.removes_benefits and not impact.new.policy.change_reason:
                losses = ", ".join(impact.losses)
                reasons.append(
                    f"{impact.new.file}: {impact.new.policy.id} {impact.new.policy.version} "
                    f"takes benefits away from some subjects ({losses}) and declares no "
                    "change_reason (refuse_benefit_removal; see policy diff)"
                )
        return reasons

    def reload_keys(self) -> None:
        """Re-read the key ring after `xinyi-gateway keys …` changed it."""
        self.keys = KeyRing.load(self.settings.state_dir / "keys")
        self.signer.ring = self.keys
        self.status_cache.clear()
        log.info("key ring reloaded", extra={"kids": [k.kid for k in self.keys.entries()]})

    def reload(self) -> None:
        """SIGHUP: policies and keys, each kept as it was if the new one is refused."""
        ok, reasons = self.reload_policies()
        self._record_later(
            "policy_reloaded" if ok else "policy_reload_refused",
            outcome="loaded" if ok else "refused",
            policy_set=self.policies.hash,
            reasons=len(reasons),
        )
        try:
            self.reload_keys()
        except (OSError, ValueError) as exc:
            log.error(
                "key ring reload failed; the previous ring keeps serving", extra={"error": str(exc)}
            )
        else:
            self._record_later(
                "keys_reloaded",
                keys=[{"kid": k.kid, "status": k.status} for k in self.keys.entries()],
            )

    async def authenticate(self, request: web.Request, scope: str | None = None) -> Partner:
        """Credentials (401), then the partner's rate limit (429), in API.md's order.

        ``scope`` is the OAuth scope of the endpoint (``consents``, ``events``): an
        access token granted a narrower set than its partner could ask for gets 403
        ``insufficient_scope`` (RFC 6750 §3.1). Scene scopes narrow the contract's
        scenes instead, which answers ``forbidden_scene``.
        """
        partner, granted = await self.credentials(request)
        await self.rate_limit(partner)
        if granted is not None and scope in partner_scopes(partner) and scope not in granted:
            raise Forbidden(
                f"this access token was not granted the {scope!r} scope",
                code="insufficient_scope",
            )
        return partner

    async def credentials(self, request: web.Request) -> tuple[Partner, tuple[str, ...] | None]:
        """The partner the request's credentials name (else 401), and an access
        token's granted scopes (None for an API key). No rate limit is taken:
        the decision endpoint takes it in its admission call (``Store.admit``)."""
        authorization = request.headers.get("Authorization")
        credential = self.partners.bearer(authorization)
        if credential.startswith(ACCESS_TOKEN_PREFIX):
            record = await self.store.get_access_token(access_token_digest(credential))
            partner = self.partners.scoped(record.partner, record.scopes) if record else None
            if partner is None or record is None:
                raise Unauthenticated("the access token is not valid or has expired")
            return partner, record.scopes
        return self.partners.by_api_key(credential), None

    async def rate_limit(self, partner: Partner) -> None:
        """Take one request from the partner's bucket, or 429 with Retry-After."""
        limit = partner.rate_limit
        self.refuse_if_limited(
            partner, await self.store.rate_limit(rate_key(partner), limit.per_second, limit.burst)
        )

    def refuse_if_limited(self, partner: Partner, wait: float) -> None:
        if wait > 0:
            self.metrics.rate_limited.labels(partner.id).inc()
            raise RateLimited(wait)
