"""The Redis and Redis Cluster backends: shared state for many gateway replicas.

Layout (``P`` is the key prefix, default ``xinyi``):

    P:rl:{partner}          GCRA bucket               (Redis functions xinyi_rate, xinyi_admit)
    P:c:{consent id}        consent JSON, expires with the consent
    P:jti:{key}             replay-cache entry (SET NX PX)
    P:at:{digest}           access token JSON, expires with the token
    {P:audit}:head          hash chain head: seq, hash
    {P:audit}:log           audit records, one JSON per seq (LRANGE by seq)
    {P:audit}:d:<id>        decision: partner and body
    {P:audit}:t:<jti>       issued token record
    {P:audit}:ts:<subject>  live tokens of a subject (ZSET by expiry)
    {P:audit}:tk:<kid>      live tokens signed by a key (ZSET by expiry)
    {P:audit}:sl:<list id>  token status list bits, in the IETF draft's byte layout
    {P:audit}:lists         known status list ids
    {P:audit}:fb            feedback
    {P:audit}:idem:<key>    Idempotency-Key record (with the decision, in the same call)
    {P:restore}:…           restorations (gateway/store/redis/restorations.py)
    {P:audit}:base          how many records were archived: the log list starts after them

Everything a decision writes carries the ``{P:audit}`` hash tag, so in a
cluster it lives in one slot and the append function can write audit record,
decision, token and indexes atomically; the per-partner and per-consent keys
spread over the cluster. One hash chain serves every replica: each replica
computes the next links from the head it knows and the ``xinyi_append``
function takes the batch only if that head is still current (else the replica
recomputes from the real head). Commands issued in one event-loop pass share
one write on a lean connection (``AutoPipeline``, gateway/store/redis/lean/);
decisions are group-committed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

try:
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # pragma: no cover - redis-py without maintenance notifications
    MaintNotificationsConfig = None  # type: ignore[assignment,misc]
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gateway.audit.chain import GENESIS, link_audit
from gateway.ids import random_below
from gateway.store.admission import Admission, BreachRead, IdempotencyClaim
from gateway.store.base import (
    IDEMPOTENCY_TTL_S,
    AccessToken,
    AuditRecord,
    Consent,
    DecisionWrite,
    IdempotencyRecord,
    IssuedToken,
    StatusRef,
    Store,
    StoreUnavailable,
    consent_from_json,
    consent_to_json,
)
from gateway.store.batching import GroupCommit
from gateway.store.changes import ChangeFeed
from gateway.store.packing import connection_class
from gateway.store.redis.admission import admit
from gateway.store.redis.lean import UNAVAILABLE, AutoPipeline

__all__ = ["RedisStore"]

STATUS_LIST_SIZE = 131_072
_LIST_FILL = 0.5
_MAX_APPEND_TRIES = 50


# Function libraries loaded at open (and again if Redis lost them): the store's
# own, then those of concept modules (outbox and commitments share events.lua).
FUNCTION_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("gateway.store", "xinyi.lua"),
    ("gateway.store.redis", "events.lua"),
    ("gateway.store.redis", "loans.lua"),
)


def _functions_sources() -> list[str]:
    return [
        resources.files(package).joinpath(name).read_text(encoding="utf-8")
        for package, name in FUNCTION_LIBRARIES
    ]


def _client(url: str) -> Redis | RedisCluster:
    options: dict[str, Any] = {
        "socket_timeout": 2.0,
        "socket_connect_timeout": 2.0,
        "decode_responses": False,
    }
    if MaintNotificationsConfig is not None:
        # With maintenance notifications on (redis-py's default), the pool skips its check
        # for connections the server closed: after a Redis restart each idle connection
        # would fail its first command (503s long after Redis is back) instead of reconnecting.
        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    if url.startswith("redis+cluster://"):
        netloc = urlsplit(url.replace("redis+cluster://", "redis://", 1)).netloc
        userinfo, _, hosts = netloc.rpartition("@")
        if userinfo:
            user, _, password = userinfo.rpartition(":")
            options.update(username=unquote(user) or None, password=unquote(password))
        nodes = []
        for part in hosts.split(","):
            host, _, port = part.rpartition(":")
            nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
        # The async cluster client builds its node connections itself (redis-py's
        # packer); only the single-node client takes a connection class.
        return RedisCluster(startup_nodes=nodes, **options)
    options["connection_class"] = connection_class(urlsplit(url).scheme)
    return Redis.from_url(url, **options)


class RedisStore(Store):
    def __init__(self, url: str, prefix: str = "xinyi", connect_timeout_s: float = 30.0) -> None:
        self._url = url
        self._prefix = prefix
        self._connect_timeout = connect_timeout_s
        self._client: Redis | RedisCluster | None = None
        self._pipe: AutoPipeline | None = None
        self._commit: GroupCommit[DecisionWrite] | None = None
        self._head = (0, GENESIS)
        tag = f"{{{prefix}:audit}}"
        self._k_head = f"{tag}:head"
        self._k_log = f"{tag}:log"
        self._k_lists = f"{tag}:lists"
        self._tag = tag
        # Each replica hands out indexes from lists of its own, so allocation
        # needs no round trip; the bits themselves live in Redis.
        self._list_id = ""
        self._allocated: set[int] = set()
        self._access: dict[str, AccessToken] = {}
        # How long a decision's feedback is kept (the runtime sets retention.feedback_days).
        self.feedback_ttl_s = 400 * 86_400

    # -- keys ---------------------------------------------------------------------------
    def _k(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{{{ident}}}"

    def _ka(self, kind: str, ident: str) -> str:
        return f"{self._tag}:{kind}:{ident}"

    # -- life cycle ---------------------------------------------------------------------
    async def open(self) -> None:
        self._client = _client(self._url)
        # The hot path's lean connections; redis-py's client stays for pub/sub,
        # FUNCTION LOAD on every primary and the cluster's slot map.
        self._pipe = AutoPipeline(self._url, self._client)
        self._commit = GroupCommit(self._append_batch)
        # Wait for Redis with backoff: a replica may start before its store.
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(self._connect_timeout),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            retry=retry_if_exception_type((StoreUnavailable, *UNAVAILABLE)),
            reraise=True,
        ):
            with attempt:
                await self._load_functions()
                self._head = await self._read_head()
        self._new_list()

    async def _load_functions(self) -> None:
        for source in _functions_sources():
            await self.load_library(source)

    async def load_library(self, source: str) -> None:
        """FUNCTION LOAD REPLACE a function library (on every primary of a cluster).

        The libraries in ``FUNCTION_LIBRARIES`` are loaded at open and again when
        Redis has lost them; a concept module may load one of its own through this.
        """
        assert self._client is not None
        try:
            if isinstance(self._client, RedisCluster):
                await self._client.execute_command(
                    "FUNCTION", "LOAD", "REPLACE", source, target_nodes=RedisCluster.PRIMARIES
                )
            else:
                await self._client.execute_command(  # type: ignore[no-untyped-call]
                    "FUNCTION", "LOAD", "REPLACE", source
                )
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"Redis is unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._commit is not None:
            await self._commit.close()
        if self._pipe is not None:
            await self._pipe.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def check(self) -> None:
        """Redis answers and takes writes: a read-only replica, a full memory or a
        failing disk (MISCONF) would refuse every decision's audit append."""
        try:
            await self._run("SET", f"{self._tag}:health", int(time.time()), "PX", 60_000)
        except rex.ResponseError as exc:
            raise StoreUnavailable(f"the audit log cannot be written: {exc}") from exc

    async def _run(self, *command: Any) -> Any:
        if self._pipe is None:
            raise StoreUnavailable("the Redis store is not open")
        return await self._pipe.execute(*command)

    async def _fcall(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._run("FCALL", name, len(keys), *keys, *args)
        except rex.ResponseError as exc:
            # A Redis restarted without persistence has lost the library: load it again.
            if "Function not found" not in str(exc):
                raise
            await self._load_functions()
            return await self._run("FCALL", name, len(keys), *keys, *args)

    # -- for concept modules (gateway/store/redis/<concept>.py) ----------------------
    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def client(self) -> Redis | RedisCluster:
        """redis-py's client, for what the auto-pipeline cannot carry (pub/sub)."""
        if self._client is None:
            raise StoreUnavailable("the Redis store is not open")
        return self._client

    def change_feed(self, origin: str) -> ChangeFeed:
        from gateway.store.redis.changes import RedisChangeFeed

        return RedisChangeFeed(self, origin)

    def key(self, kind: str, ident: str) -> str:
        """A per-item key, hash-tagged on the item (spreads over a cluster)."""
        return self._k(kind, ident)

    def audit_key(self, kind: str, ident: str = "") -> str:
        """A key in the audit hash slot: written atomically with the log if need be."""
        return self._ka(kind, ident) if ident else f"{self._tag}:{kind}"

    async def run(self, *command: Any) -> Any:
        """One command on the auto-pipeline (coalesced with the loop pass's others)."""
        return await self._run(*command)

    async def fcall(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Call a function of the ``xinyi`` library (reloaded if Redis lost it)."""
        return await self._fcall(name, keys, args)

    # -- rate limits --------------------------------------------------------------------
    async def rate_limit(self, key: str, per_second: float, burst: int) -> float:
        interval_us = max(1, int(1_000_000 / per_second))
        wait = await self._fcall("xinyi_rate", [self._k("rl", key)], [interval_us, burst])
        return int(wait) / 1_000_000

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
        # One round trip (gateway/store/redis/admission.py).
        return await admit(self, rate_key, per_second, burst, consent_id, idempotency, breaches)

    # -- consents -----------------------------------------------------------------------
    async def put_consent(self, consent: Consent) -> None:
        ttl_ms = int((consent.expires_at - dt.datetime.now(dt.UTC)).total_seconds() * 1000)
        await self._run(
            "SET", self._k("c", consent.consent_id), consent_to_json(consent), "PX", max(ttl_ms, 1)
        )

    async def get_consent(self, consent_id: str) -> Consent | None:
        raw = await self._run("GET", self._k("c", consent_id))
        return consent_from_json(raw) if raw else None

    async def revoke_consent(self, consent_id: str, at: dt.datetime) -> bool:
        found = await self._fcall(
            "xinyi_revoke_consent", [self._k("c", consent_id)], [at.isoformat()]
        )
        return bool(found)

    # -- decisions and audit ---------------------------------------------------------------
    async def record_decision(self, write: DecisionWrite) -> None:
        if self._commit is None:
            raise StoreUnavailable("the Redis store is not open")
        await self._commit.submit(write)

    async def _read_head(self) -> tuple[int, str]:
        seq, digest = await self._run("HMGET", self._k_head, "seq", "hash")
        return (int(seq), digest.decode()) if seq else (0, GENESIS)

    async def _append_batch(self, batch: list[DecisionWrite]) -> None:
        for _ in range(_MAX_APPEND_TRIES):
            seq, prev = self._head
            head_seq, head_hash = seq, prev
            keys = [self._k_head, self._k_log, self._k_lists]
            records: list[Any] = []
            for write in batch:
                seq += 1
                entry, digest = link_audit(prev, seq, write.audit)
                record = orjson.dumps(
                    {"seq": seq, "entry": orjson.Fragment(entry), "prev_hash": prev, "hash": digest}
                )
                prev = digest
                token = write.token
                idem = write.idempotency_record()
                keys += [
                    self._ka("d", write.decision_id),
                    self._ka("t", token.jti if token else "-"),
                    self._ka("ts", token.subject_key if token else "-"),
                    self._ka("tk", token.kid if token else "-"),
                    self._ka("idem", write.idempotency[0] if write.idempotency else "-"),
                ]
                records += [
                    record,
                    orjson.dumps({"partner": write.partner, "body": orjson.Fragment(write.body)})
                    if write.body is not None
                    else b"",
                    orjson.dumps(token.as_dict()) if token else b"",
                    token.jti if token else "",
                    token.expires if token else 0,
                    write.status.list_id if write.status else "",
                    idem.to_json() if idem else "",
                ]
            args = [head_seq, head_hash, GENESIS, len(batch), seq, prev, IDEMPOTENCY_TTL_S]
            args += records
            result = await self._fcall("xinyi_append", keys, args)
            outcome, real_seq, real_hash = int(result[0]), int(result[1]), result[2].decode()
            self._head = (real_seq, real_hash)
            if outcome in (1, 2):
                return
        raise StoreUnavailable("the audit chain is too contended to append; try again")

    async def get_decision(self, decision_id: str) -> tuple[str, dict[str, Any]] | None:
        raw = await self._run("GET", self._ka("d", decision_id))
        if not raw:
            return None
        data = orjson.loads(raw)
        if not isinstance(data, dict):  # the marker of a record that is not a decision
            return None
        return str(data["partner"]), data["body"]

    async def add_feedback(
        self,
        decision_id: str,
        partner: str,
        applied: bool,
        detail: dict[str, Any],
        at: str,
        limit: int,
    ) -> bool:
        item = {"partner": partner, "applied": applied, "detail": detail, "at": at}
        added = await self._fcall(
            "xinyi_feedback",
            [self._k("fb", decision_id)],
            [limit, orjson.dumps(item), self.feedback_ttl_s],
        )
        return bool(added)

    async def audit_records(self, after_seq: int, limit: int) -> list[AuditRecord]:
        # Records up to {P:audit}:base were archived (gateway/store/redis/audit_tree.py).
        rows = await self._fcall(
            "xinyi_audit_range", [self._k_log, f"{self._tag}:base"], [after_seq, limit]
        )
        out = []
        for raw in rows:
            data = orjson.loads(raw)
            out.append(AuditRecord(data["seq"], data["entry"], data["prev_hash"], data["hash"]))
        return out

    # -- token status lists ----------------------------------------------------------------
    def _new_list(self) -> None:
        self._list_id = secrets.token_hex(8)
        self._allocated = set()

    async def allocate_status(self) -> StatusRef:
        if len(self._allocated) >= STATUS_LIST_SIZE * _LIST_FILL:
            self._new_list()
        while True:
            index = random_below(STATUS_LIST_SIZE)
            if index not in self._allocated:
                self._allocated.add(index)
                return StatusRef(self._list_id, index)

    @staticmethod
    def _bit_offset(index: int) -> int:
        # The draft packs entry i into byte i // 4 from the least significant bit;
        # Redis numbers bits from the most significant one.
        byte, slot = divmod(index, 4)
        return byte * 8 + 6 - slot * 2

    async def set_status(self, ref: StatusRef, status: int) -> None:
        key = self._ka("sl", ref.list_id)
        await self._run("BITFIELD", key, "SET", "u2", self._bit_offset(ref.index), status & 0b11)

    async def token_status(self, ref: StatusRef) -> int:
        key = self._ka("sl", ref.list_id)
        values = await self._run("BITFIELD", key, "GET", "u2", self._bit_offset(ref.index))
        return int(values[0])

    async def status_list(self, list_id: str) -> tuple[bytes, int] | None:
        known = await self._run("SISMEMBER", self._k_lists, list_id)
        bits = await self._run("GET", self._ka("sl", list_id))
        if not known and not bits:
            return None
        packed = (bits or b"").ljust(STATUS_LIST_SIZE // 4, b"\0")
        return packed, STATUS_LIST_SIZE

    # -- issued tokens ----------------------------------------------------------------------
    async def _tokens(self, index_key: str, now: int) -> list[IssuedToken]:
        jtis = await self._run("ZRANGEBYSCORE", index_key, now, "+inf")
        if not jtis:
            return []
        raws = await self._run("MGET", *[self._ka("t", j.decode()) for j in jtis])
        return [IssuedToken.from_dict(orjson.loads(raw)) for raw in raws if raw]

    async def get_token(self, jti: str) -> IssuedToken | None:
        raw = await self._run("GET", self._ka("t", jti))
        return IssuedToken.from_dict(orjson.loads(raw)) if raw else None

    async def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        raw = await self._run("GET", self._ka("idem", key))
        return IdempotencyRecord.from_json(raw) if raw else None

    async def put_idempotency(self, key: str, record: IdempotencyRecord, ttl_s: int) -> None:
        await self._run("SET", self._ka("idem", key), record.to_json(), "EX", ttl_s)

    async def live_tokens(self, subject_key: str, now: int) -> list[IssuedToken]:
        return await self._tokens(self._ka("ts", subject_key), now)

    async def tokens_signed_by(self, kid: str, now: int) -> list[IssuedToken]:
        return await self._tokens(self._ka("tk", kid), now)

    # -- OAuth ---------------------------------------------------------------------------------
    async def claim_once(self, key: str, ttl_s: float) -> bool:
        done = await self._run(
            "SET", self._k("jti", key), b"1", "NX", "PX", max(1, int(ttl_s * 1000))
        )
        return bool(done)

    async def release(self, key: str) -> None:
        await self._run("DEL", self._k("jti", key))

    async def put_access_token(self, digest: str, token: AccessToken) -> None:
        ttl_ms = int((token.expires - time.time()) * 1000)
        data = {"partner": token.partner, "scopes": list(token.scopes), "expires": token.expires}
        await self._run("SET", self._k("at", digest), orjson.dumps(data), "PX", max(ttl_ms, 1))

    async def get_access_token(self, digest: str) -> AccessToken | None:
        now = time.time()
        cached = self._access.get(digest)
        if cached is not None:
            return cached if cached.expires > now else None
        raw = await self._run("GET", self._k("at", digest))
        if not raw:
            return None
        data = orjson.loads(raw)
        token = AccessToken(data["partner"], tuple(data["scopes"]), float(data["expires"]))
        # Access tokens cannot be revoked, so a replica may keep one until it expires.
        if len(self._access) > 10_000:
            self._access = {k: v for k, v in self._access.items() if v.expires > now}
        self._access[digest] = token
        return token
