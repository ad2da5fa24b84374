"""The upstream credit platform over HTTP: ``credit_source.adapter: platform``.

A lookup is ``POST {base_url}/v1/records/query`` with ``{"subject": {kind, id}}``
(the identifier goes in the body, never in a URL that proxies log). One lookup
gets one total deadline; inside it, attempts that fail in a way a retry can
mend (connection refused or dropped, timeout, 5xx, 429, a body that is cut off
or does not parse) are retried with jittered exponential backoff, each attempt
bounded by ``timeout_seconds`` and by what is left of the deadline. A lookup
that still fails counts once against a circuit breaker (purgatory); while the
circuit is open lookups fail at once, saying when it half-opens.

Every answer is validated whole (``adapters.credit.wire``) before a single
record leaves this module, so a decision never rests on a half-read or
malformed record. The adapter keeps no cache of its own: the gateway's
``RecordCache`` caches records and credit events evict it (docs/adapters.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import aiohttp
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.messages.base import Event
from purgatory.domain.messages.events import ContextChanged
from purgatory.domain.model import OpenedState
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from adapters.credit.base import (
    AdapterContext,
    CircuitOpen,
    CreditRecord,
    CreditSource,
    CreditSourceError,
    SubjectKind,
)
from adapters.credit.wire import LookupAnswer

__all__ = ["PlatformCreditSource", "PlatformOptions"]

_STATE_VALUE = {"closed": 0, "half-opened": 1, "opened": 2}
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PlatformOptions(BaseModel):
    """``credit_source.options`` for the platform adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    # Credentials: a bearer token, or a client id and secret sent as headers.
    # The *_env forms name an environment variable, so no secret sits in YAML.
    bearer_token: str | None = None
    bearer_token_env: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_env: str | None = None
    timeout_seconds: float = Field(1.0, gt=0, le=60)
    deadline_seconds: float = Field(2.5, gt=0, le=120)
    attempts: int = Field(3, ge=1, le=10)
    backoff_seconds: float = Field(0.05, ge=0, le=10)
    backoff_max_seconds: float = Field(0.5, ge=0, le=60)
    breaker_threshold: int = Field(5, ge=1, le=1000)
    breaker_reset_seconds: float = Field(10.0, gt=0, le=3600)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")] = "platform"

    @model_validator(mode="after")
    def _one_credential(self) -> PlatformOptions:
        bearer = self.bearer_token is not None or self.bearer_token_env is not None
        client = self.client_id is not None
        secret = self.client_secret is not None or self.client_secret_env is not None
        if bearer and (client or secret):
            raise ValueError("give a bearer token or a client id and secret, not both")
        if client != secret:
            raise ValueError("client_id and client_secret (or client_secret_env) go together")
        if self.bearer_token is not None and self.bearer_token_env is not None:
            raise ValueError("give bearer_token or bearer_token_env, not both")
        if self.client_secret is not None and self.client_secret_env is not None:
            raise ValueError("give client_secret or client_secret_env, not both")
        return self


class _Retryable(Exception):
    """An attempt failed in a way the next attempt may not (kept out of messages: no ids)."""


def _secret(value: str | None, env: str | None) -> str | None:
    if env is None:
        return value
    found = os.environ.get(env)
    if not found:
        raise CreditSourceError(f"credit_source.options: environment variable {env} is not set")
    return found


class _Metrics:
    """The adapter's collectors, in the gateway's registry (they show on /metrics)."""

    def __init__(self, registry: CollectorRegistry, name: str) -> None:
        self.latency = Histogram(
            "xinyi_credit_upstream_seconds",
            "Credit platform HTTP attempts by outcome, with their latency",
            ["adapter", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.state = Gauge(
            "xinyi_credit_circuit_state",
            "Credit platform circuit: 0 closed, 1 half-open, 2 open",
            ["adapter"],
            registry=registry,
        ).labels(name)
        self.transitions = Counter(
            "xinyi_credit_circuit_transitions_total",
            "Credit platform circuit state changes, by the state entered",
            ["adapter", "state"],
            registry=registry,
        )
        self.name = name

    def attempt(self, outcome: str, seconds: float) -> None:
        self.latency.labels(self.name, outcome).observe(seconds)


class PlatformCreditSource(CreditSource):
    def __init__(self, options: PlatformOptions, registry: CollectorRegistry | None = None) -> None:
        self._o = options
        self._url = options.base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        token = _secret(options.bearer_token, options.bearer_token_env)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if options.client_id is not None:
            secret = _secret(options.client_secret, options.client_secret_env)
            headers["X-Client-Id"] = options.client_id
            headers["X-Client-Secret"] = secret or ""
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None
        self._metrics = _Metrics(registry or CollectorRegistry(), options.name)
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=options.breaker_threshold,
            default_ttl=options.breaker_reset_seconds,
            # Cancellation is not excluded: purgatory would count an excluded error as
            # a success (closing a half-open circuit). aiohttp does not cancel handlers
            # when a client hangs up, so it only happens at shutdown.
        )
        self._breakers.add_listener(self._on_breaker_event)
        self._metrics.state.set(0)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: AdapterContext) -> CreditSource:
        try:
            parsed = PlatformOptions.model_validate(dict(options))
        except ValidationError as exc:
            # Field names and messages only: an echoed input could be a secret.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(options)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise CreditSourceError(f"credit_source.options refused: {problems}") from None
        return cls(parsed, context.registry)

    @property
    def options(self) -> PlatformOptions:
        return self._o

    def _on_breaker_event(self, name: str, kind: str, event: Event) -> None:
        if kind == "state_changed" and isinstance(event, ContextChanged):
            self._metrics.state.set(_STATE_VALUE.get(event.state, 0))
            self._metrics.transitions.labels(self._o.name, event.state).inc()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Timeouts are set per attempt from what is left of the deadline.
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def records(self, kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        breaker = await self._breakers.get_breaker(self._o.name)
        try:
            async with breaker:
                return await self._lookup(kind, subject_id)
        except OpenedState as opened:
            reopens = opened.opened_at + self._o.breaker_reset_seconds - time.time()
            raise CircuitOpen(
                "the credit platform's circuit is open", retry_after_s=max(1.0, reopens)
            ) from None

    async def _lookup(self, kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._o.deadline_seconds
        body = orjson.dumps({"subject": {"kind": kind, "id": subject_id}})
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._o.attempts) | stop_before_delay(self._o.deadline_seconds),
            wait=wait_random_exponential(
                multiplier=self._o.backoff_seconds, max=self._o.backoff_max_seconds
            ),
            retry=retry_if_exception_type(_Retryable),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise _Retryable("deadline reached")
                    timeout = min(left, self._o.timeout_seconds)
                    return await self._attempt(kind, subject_id, body, timeout)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise CreditSourceError(
                f"the credit platform failed within {self._o.deadline_seconds} s: {last}",
                retry_after_s=1,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _attempt(
        self, kind: SubjectKind, subject_id: str, body: bytes, seconds: float
    ) -> Sequence[CreditRecord]:
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(seconds):
                raw = await self._post(body)
            answer = LookupAnswer.model_validate_json(raw)
            if answer.subject.kind != kind or answer.subject.id != subject_id:
                raise _Retryable("the answer is about another subject")
            return [r.record() for r in answer.records]
        except TimeoutError:
            outcome = "timeout"
            raise _Retryable("attempt timed out") from None
        except ValidationError as exc:
            outcome = "invalid"
            where = ", ".join(
                ".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()[:5]
            )
            raise _Retryable(f"the answer does not match the record schema at {where}") from None
        except aiohttp.ClientError as exc:
            outcome = "connection"
            raise _Retryable(f"connection failed ({type(exc).__name__})") from None
        except _Retryable:
            outcome = "invalid"
            raise
        except _TooLarge:
            outcome = "too_large"
            raise
        except _HttpStatus as exc:
            outcome = f"http_{exc.status // 100}xx"
            if exc.status >= 500 or exc.status == 429:
                raise _Retryable(f"the platform answered HTTP {exc.status}") from None
            raise CreditSourceError(f"the platform refused the lookup: HTTP {exc.status}") from None
        finally:
            self._metrics.attempt(outcome, time.perf_counter() - started)

    async def _post(self, body: bytes) -> bytes:
        async with self._client().post(
            f"{self._url}/v1/records/query",
            data=body,
            headers={"Content-Type": "application/json"},
            # A redirect is an answer to refuse, not to follow with our credentials.
            allow_redirects=False,
        ) as resp:
            if resp.status != 200:
                raise _HttpStatus(resp.status)
            if resp.content_length is not None and resp.content_length > self._o.max_body_bytes:
                raise _TooLarge("the answer is larger than max_body_bytes")
            chunks: list[bytes] = []
            size = 0
            # A body cut short raises ClientPayloadError here (length or chunking broken).
            async for chunk in resp.content.iter_chunked(65_536):
                size += len(chunk)
                if size > self._o.max_body_bytes:
                    raise _TooLarge("the answer is larger than max_body_bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    async def check(self) -> None:
        breaker = await self._breakers.get_breaker(self._o.name)
        ctx = breaker.context
        reopens = (ctx.opened_at or 0.0) + self._o.breaker_reset_seconds
        if ctx.state == "opened" and time.time() < reopens:
            raise CreditSourceError("the credit platform's circuit is open")
        try:
            async with (
                asyncio.timeout(self._o.timeout_seconds),
                self._client().get(f"{self._url}/v1/health", allow_redirects=False) as resp,
            ):
                await resp.read()
                if resp.status != 200:
                    raise CreditSourceError(f"the platform's health check answered {resp.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise CreditSourceError(
                f"the platform's health check failed ({type(exc).__name__})"
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _TooLarge(CreditSourceError):
    """Not retried: the platform would send the same oversized answer again."""


class _HttpStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
