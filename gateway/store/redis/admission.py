"""A decision's admission on Redis: one function call, or one pipeline pass on a cluster.

On one Redis, ``xinyi_admit`` (gateway/store/xinyi.lua) takes the rate-limit
token, reads the consent and the Idempotency-Key's record and claims the key,
and reads the subject's withholding breaches when asked (gateway/store/redis/
breaches.py), in one round trip. On Redis Cluster those keys live in different
slots, so no one function may touch them all: the bucket, consent, record and
breach index are asked concurrently (they leave in the same auto-pipeline
pass); the key is claimed afterwards only if the request passed and the key has
no record, and the breached commitments read only if the request passed and the
index names any — second passes that only requests with an Idempotency-Key,
or subjects with a breach, pay.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster

from gateway.store.admission import Admission, BreachRead, IdempotencyClaim
from gateway.store.base import IdempotencyRecord, consent_from_json
from gateway.store.redis.breaches import (
    body_keys,
    body_prefix,
    first_withheld,
    index_key,
    withholding,
)

if TYPE_CHECKING:
    from gateway.store.redis.core import RedisStore

__all__ = ["admit"]


def interval_us(per_second: float) -> int:
    return max(1, int(1_000_000 / per_second))


async def admit(
    store: RedisStore,
    rate_key: str,
    per_second: float,
    burst: int,
    consent_id: str | None,
    idempotency: IdempotencyClaim | None,
    breaches: BreachRead | None = None,
) -> Admission:
    if isinstance(store.client, RedisCluster):
        return await _admit_cluster(
            store, rate_key, per_second, burst, consent_id, idempotency, breaches
        )
    keys = [store.key("rl", rate_key)]
    if consent_id is not None:
        keys.append(store.key("c", consent_id))
    lock_ms = 0
    if idempotency is not None:
        keys += [store.audit_key("idem", idempotency.key), store.key("jti", idempotency.lock)]
        lock_ms = max(1, int(idempotency.lock_ttl_s * 1000))
    args: list[str | int] = [
        interval_us(per_second),
        burst,
        1 if consent_id is not None else 0,
        1 if idempotency is not None else 0,
        lock_ms,
    ]
    if breaches is not None:
        keys.append(index_key(store.prefix, breaches.subject_key))
        args += [first_withheld(breaches.today), body_prefix(store.prefix)]
    reply = await store.fcall("xinyi_admit", keys, args)
    wait, consent, record, claimed = reply[:4]
    if int(wait) > 0:
        return Admission(int(wait) / 1_000_000)
    return Admission(
        0.0,
        consent=consent_from_json(consent) if consent else None,
        consent_read=consent_id is not None,
        idempotency=IdempotencyRecord.from_json(record) if record else None,
        claimed=bool(claimed),
        # Absent from a previous release's library: the pipeline then reads them.
        breaches=withholding(reply[4]) if len(reply) > 4 else None,
    )


async def _admit_cluster(
    store: RedisStore,
    rate_key: str,
    per_second: float,
    burst: int,
    consent_id: str | None,
    idempotency: IdempotencyClaim | None,
    breaches: BreachRead | None,
) -> Admission:
    asked: list[Any] = [
        store.fcall("xinyi_rate", [store.key("rl", rate_key)], [interval_us(per_second), burst])
    ]
    if consent_id is not None:
        asked.append(store.run("GET", store.key("c", consent_id)))
    if idempotency is not None:
        asked.append(store.run("GET", store.audit_key("idem", idempotency.key)))
    if breaches is not None:
        # Asked even if the request turns out rate limited: a read, like the consent's.
        index = index_key(store.prefix, breaches.subject_key)
        asked.append(store.run("ZRANGEBYSCORE", index, first_withheld(breaches.today), "+inf"))
    answers = await asyncio.gather(*asked)
    wait = int(answers[0])
    if wait > 0:
        return Admission(wait / 1_000_000)
    admission = Admission(0.0)
    if consent_id is not None:
        raw = answers[1]
        admission.consent = consent_from_json(raw) if raw else None
        admission.consent_read = True
    if breaches is not None:
        # Before the key's claim: a read that fails leaves no claim behind.
        ids = answers[-1]
        raws = await store.run("MGET", *body_keys(store.prefix, ids)) if ids else []
        admission.breaches = withholding(raws)
    if idempotency is not None:
        raw = answers[2 if consent_id is not None else 1]
        if raw:
            admission.idempotency = IdempotencyRecord.from_json(raw)
        else:
            admission.claimed = await store.claim_once(idempotency.lock, idempotency.lock_ttl_s)
    return admission
