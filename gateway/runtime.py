"""The running gateway: every component, opened and closed together.

``Gateway.open`` builds everything from settings (no work at import time);
``create_app`` in ``gateway.app`` wires it to HTTP routes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from adapters.credit.base import AdapterContext, CreditSource, CreditSourceError
from gateway.errors import Forbidden, RateLimited, Unauthenticated
from gateway.facts.cache import RecordCache
from gateway.metrics import Metrics
from gateway.pipeline import DecisionPipeline
from gateway.plugins import load_credit_source_class
from gateway.policy.bundle import BundleError
from gateway.policy.loader import PolicyLoadError, PolicySet
from gateway.policy.source import load_configured_policies
from gateway.settings import ConfigError, Partner, Settings, load_partners
from gateway.store.base import Store
from gateway.store.changes import Topic
from gateway.store.embedded import EmbeddedStore
from gateway.sync import ReplicaSync
from gateway.tokens.key_metrics import KeyRingCollector
from gateway.tokens.keys import KeyRing
from gateway.tokens.signer import Signer
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

__all__ = ["Gateway", "open_store"]

log = logging.getLogger("xinyi.gateway")


def open_store(url: str) -> Store:
    """The backend a store URL names."""
    if url.startswith("sqlite:///"):
        return EmbeddedStore(Path(url.removeprefix("sqlite://")))
    if url.startswith(("redis://", "rediss://", "redis+cluster://")):
        from gateway.store.redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"unsupported store URL scheme {url.split('://')[0]!r}: use sqlite:///PATH, "
        "redis://HOST:PORT/DB or redis+cluster://HOST:PORT,HOST:PORT"
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
    oauth: TokenService
    tz: ZoneInfo
    status_cache: dict[str, tuple[float, str]] = field(default_factory=dict)
    sync: ReplicaSync = field(init=False, repr=False)
    _today: dt.date = field(default=dt.date.min, repr=False)
    _today_at: int = field(default=-1, repr=False)

    @classmethod
    async def open(cls, settings: Settings, *, credit: CreditSource | None = None) -> Gateway:
        metrics = Metrics()
        policies = load_configured_policies(settings)
        partner_list = load_partners(settings.partners_file)
        partners = PartnerRegistry(partner_list)
        client_keys = {p.id: load_client_keys(p) for p in partner_list}
        state = settings.state_dir
        state.mkdir(parents=True, exist_ok=True)
        keys = KeyRing.load(state / "keys", create=True)
        es256 = any(p.token_alg == "ES256" for p in partner_list)  # noqa: S105 - an algorithm
        if es256 and keys.active("ES256") is None:
            keys.add("ES256", activate=True)
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
        store = open_store(settings.store_url)
        await store.open()
        signer = Signer(keys)
        consents = ConsentService(store, pseudonyms, settings.consent_max_days)
        pipeline = DecisionPipeline(
            issuer=settings.issuer,
            credit=credit,
            credit_name=credit_name,
            cache=RecordCache(settings.records_cache_seconds, settings.records_cache_size),
            store=store,
            signer=signer,
            pseudonyms=pseudonyms,
            consents=consents,
            metrics=metrics,
        )
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
            oauth=TokenService(
                issuer=settings.issuer,
                partners=partners.by_id,
                client_keys=client_keys,
                store=store,
            ),
            tz=ZoneInfo(settings.timezone),
        )
        gateway.sync = ReplicaSync(gateway)
        metrics.registry.register(KeyRingCollector(lambda: gateway.keys))
        return gateway

    async def announce(self, topic: Topic, key: str = "") -> None:
        """This replica changed shared in-memory state: the others apply it too."""
        await self.sync.announce(topic, key)

    async def close(self) -> None:
        await self.sync.stop()
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

    def reload_keys(self) -> None:
        """Re-read the key ring after `xinyi-gateway keys …` changed it."""
        self.keys = KeyRing.load(self.settings.state_dir / "keys")
        self.signer.ring = self.keys
        self.status_cache.clear()
        log.info("key ring reloaded", extra={"kids": [k.kid for k in self.keys.entries()]})

    def reload(self) -> None:
        """SIGHUP: policies and keys, each kept as it was if the new one is refused."""
        self.reload_policies()
        try:
            self.reload_keys()
        except (OSError, ValueError) as exc:
            log.error(
                "key ring reload failed; the previous ring keeps serving", extra={"error": str(exc)}
            )

    async def authenticate(self, request: web.Request, scope: str | None = None) -> Partner:
        """Credentials (401), then the partner's rate limit (429), in API.md's order.

        ``scope`` is the OAuth scope of the endpoint (``consents``, ``events``): an
        access token granted a narrower set than its partner could ask for gets 403
        ``insufficient_scope`` (RFC 6750 §3.1). Scene scopes narrow the contract's
        scenes instead, which answers ``forbidden_scene``.
        """
        authorization = request.headers.get("Authorization")
        credential = self.partners.bearer(authorization)
        granted: tuple[str, ...] | None = None
        if credential.startswith(ACCESS_TOKEN_PREFIX):
            record = await self.store.get_access_token(access_token_digest(credential))
            partner = self.partners.scoped(record.partner, record.scopes) if record else None
            if partner is None or record is None:
                raise Unauthenticated("the access token is not valid or has expired")
            granted = record.scopes
        else:
            partner = self.partners.by_api_key(credential)
        limit = partner.rate_limit
        wait = await self.store.rate_limit(f"rl:{partner.id}", limit.per_second, limit.burst)
        if wait > 0:
            self.metrics.rate_limited.labels(partner.id).inc()
            raise RateLimited(wait)
        if granted is not None and scope in partner_scopes(partner) and scope not in granted:
            raise Forbidden(
                f"this access token was not granted the {scope!r} scope",
                code="insufficient_scope",
            )
        return partner
