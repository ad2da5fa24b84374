"""Two gateway processes on one shared store: what one replica does, the other honours.

For each backend (one Redis, a 3-master Redis Cluster) the module starts
replica A (``serve --demo --demo-rate 5``, so every partner may make 5 requests a
second with a burst of 10) and replica B (``serve --config`` on A's state
directory), both with the same issuer. Each test spends a partner's budget it
has to itself, so only the rate-limit test meets 429s. Every decision answered
200 is noted with the replica that answered it; the audit test checks the
shared chain against that ledger.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import orjson
import pytest

from tests.redis_servers import cluster_url
from tests.replicas.conftest import (
    PLATFORM,
    SCENE_PARTNER,
    Answer,
    DemoData,
    Replica,
    audit_verify,
    config_replica,
    demo_replica,
    free_port,
    read_audit,
    request,
)

pytestmark = pytest.mark.slow

RATE, BURST = 5, 10  # --demo-rate 5 gives every partner a burst of 2 x 5
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Pair:
    backend: str
    store_url: str
    a: Replica
    b: Replica
    demo: DemoData

    def replica(self, name: str) -> Replica:
        return self.a if name == "A" else self.b

    async def decide(
        self,
        session: aiohttp.ClientSession,
        via: str,
        subject: dict[str, Any],
        scene: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """A decision through replica ``via``; a 200 goes into the ledger."""
        partner = SCENE_PARTNER[scene]
        answer = await request(
            session,
            "POST",
            f"{self.replica(via).base}/v1/scenes/{scene}/decisions",
            json=self.demo.body(subject, scene),
            headers=headers or self.demo.auth(partner),
        )
        if answer.status == 200:
            self.demo.decided.setdefault(via, []).append(answer.json()["decision_id"])
        return answer


@pytest.fixture(scope="module", params=["redis", "redis_cluster"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    if request.param == "redis":
        store_url = request.getfixturevalue("replica_redis").url
    else:
        store_url = cluster_url(request.getfixturevalue("replica_cluster"))
    state_dir = tmp_path_factory.mktemp(f"pair-{request.param}")
    port_a = free_port()
    base_url = f"http://127.0.0.1:{port_a}"
    with (
        demo_replica(state_dir, store_url, rate=RATE, port=port_a, base_url=base_url) as a,
        config_replica(state_dir, store_url, base_url) as b,
    ):
        demo = DemoData.load(state_dir)
        assert demo.base_url == base_url
        yield Pair(request.param, store_url, a, b, demo)
        assert a.alive(), a.log_tail()
        assert b.alive(), b.log_tail()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        yield client


def _assertion(demo: DemoData, partner_id: str) -> str:
    jwk = demo.private_jwk(partner_id)
    now = int(time.time())
    claims = {
        "iss": partner_id,
        "sub": partner_id,
        "aud": demo.base_url,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, jwt.PyJWK(jwk).key, algorithm="EdDSA", headers={"kid": jwk["kid"]})


def _token_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


def _claims(token: str) -> dict[str, Any]:
    """A compact JWS's payload, unverified (the replicas check signatures; we read)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = orjson.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _status_bit(status_list_jwt: str, jwks: dict[str, Any], index: int) -> int:
    """Verify a status list JWT with the served JWKS and read entry ``index`` (2 bits)."""
    kid = jwt.get_unverified_header(status_list_jwt)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(status_list_jwt, jwt.PyJWK(key).key, algorithms=[key["alg"]])
    assert claims["status_list"]["bits"] == 2
    lst = claims["status_list"]["lst"]
    packed = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    return (packed[index // 4] >> (2 * (index % 4))) & 0b11


async def _status_of(pair: Pair, session: aiohttp.ClientSession, via: str, token: str) -> int:
    entry = _claims(token)["status"]["status_list"]
    uri = entry["uri"]
    assert uri.startswith(pair.demo.base_url + "/v1/status-lists/")
    listed = await request(session, "GET", pair.replica(via).base + urlsplit(uri).path)
    assert listed.status == 200, listed.body
    jwks = await request(session, "GET", pair.replica(via).base + "/.well-known/jwks.json")
    return _status_bit(listed.body.decode(), jwks.json(), entry["idx"])


async def _introspect(
    pair: Pair, session: aiohttp.ClientSession, via: str, token: str, partner: str
) -> dict[str, Any]:
    answer = await request(
        session,
        "POST",
        pair.replica(via).base + "/v1/tokens/introspect",
        json={"token": token},
        headers=pair.demo.auth(partner),
    )
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.json()
    return body


# -- consents ----------------------------------------------------------------------------------
async def test_consent_revoked_through_one_replica_is_refused_by_the_other(
    pair: Pair, session: aiohttp.ClientSession
) -> None:
    person = pair.demo.subject("person, credit score 560")
    before = await pair.decide(session, "B", person, "library")
    assert before.status == 200, before.body

    consent_id = person["consents"]["demo-library"]["consent_id"]
    revoked = await request(
        session,
        "DELETE",
        f"{pair.a.base}/v1/consents/{consent_id}",
        headers=pair.demo.auth(PLATFORM),
    )
    assert revoked.status == 204, revoked.body

    for via in ("B", "A"):
        after = await pair.decide(session, via, person, "library")
        assert after.status == 403, (via, after.body)
        assert after.headers["Content-Type"].startswith("application/problem+json")
        assert after.json()["code"] == "consent_revoked", (via, after.body)


# -- benefit tokens ----------------------------------------------------------------------------
async def test_token_revoked_by_an_event_at_one_replica_is_inactive_at_the_other(
    pair: Pair, session: aiohttp.ClientSession
) -> None:
    person = pair.demo.subject("person, credit score 650")
    granted = await pair.decide(session, "A", person, "library")
    assert granted.status == 200, granted.body
    assert granted.json()["outcome"] == "granted", granted.body
    token = granted.json()["token"]
    claims = _claims(token)
    assert claims["iss"] == pair.demo.base_url

    assert (await _introspect(pair, session, "A", token, "demo-library"))["active"] is True
    # B serves the list A's token points into, with the same keys and issuer.
    assert await _status_of(pair, session, "B", token) == 0

    decided_on = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    event = await request(
        session,
        "POST",
        pair.b.base + "/v1/events/credit",
        json={
            "subject": {"kind": "person", "id": person["id"]},
            "event": "listed",
            "record": {
                "record_id": "ev-1",
                "type": "dishonest_executed",
                "domain": "court_enforcement",
                "effective_document": True,
                "adverse": True,
                "decided_on": decided_on,
            },
        },
        headers=pair.demo.auth(PLATFORM),
    )
    assert event.status == 202, event.body
    assert event.json()["tokens_revoked"] >= 1, event.body

    assert await _introspect(pair, session, "A", token, "demo-library") == {"active": False}
    assert await _introspect(pair, session, "B", token, "demo-library") == {"active": False}
    assert await _status_of(pair, session, "A", token) == 1


# -- restorations (错误惩戒 → 恢复信誉) -----------------------------------------------------------
async def test_a_repair_at_one_replica_is_listed_for_the_credit_office_at_the_other(
    pair: Pair, session: aiohttp.ClientSession
) -> None:
    # demo-tax-hall is used by no other test here.
    listed = pair.demo.subject("on the major tax violation list")
    first = await pair.decide(session, "A", listed, "tax")
    assert first.status == 200, first.body
    body = first.json()
    assert body["outcome"] == "constrained", body
    record_id = body["constraints"][0]["records"][0]["record_id"]

    event = await request(
        session,
        "POST",
        pair.b.base + "/v1/events/credit",
        json={
            "subject": {"kind": "enterprise", "id": listed["id"]},
            "event": "repaired",
            "record": {"record_id": record_id},
        },
        headers=pair.demo.auth(PLATFORM),
    )
    assert event.status == 202, event.body
    assert event.json()["decisions_restored"] == 1, event.body
    after = await pair.decide(session, "B", listed, "tax")
    assert after.status == 200, after.body
    assert after.json()["outcome"] != "constrained", after.body
    # A cached the records when it decided; the change feed makes it forget them
    # long before its cache's 30 s TTL would (the bound is a deadline, not a timing).
    deadline = time.monotonic() + 10
    outcome = None
    while time.monotonic() < deadline:
        again = await pair.decide(session, "A", listed, "tax")
        if again.status == 200:
            outcome = again.json()["outcome"]
            if outcome != "constrained":
                break
        await asyncio.sleep(0.3)
    assert outcome == "standard"

    seen = await request(
        session,
        "GET",
        pair.a.base + "/v1/credit-office/restorations",
        headers=pair.demo.auth("demo-auditor"),
    )
    assert seen.status == 200, seen.body
    entries = seen.json()["restorations"]
    assert [(e["decision_id"], e["event"]) for e in entries] == [(body["decision_id"], "repaired")]


# -- rate limits -------------------------------------------------------------------------------
async def test_rate_limit_is_shared_by_the_replicas(
    pair: Pair, session: aiohttp.ClientSession
) -> None:
    # demo-transit is used by no other test here: its bucket is full (BURST requests).
    person = pair.demo.subject("person with no records at all")
    vias = ["A", "B"] * 12
    started = time.monotonic()
    answers = await asyncio.gather(*(pair.decide(session, via, person, "transit") for via in vias))
    elapsed = time.monotonic() - started

    by_status: dict[str, dict[int, int]] = {"A": {}, "B": {}}
    for via, answer in zip(vias, answers, strict=True):
        assert answer.status in (200, 429), (via, answer.status, answer.body)
        by_status[via][answer.status] = by_status[via].get(answer.status, 0) + 1
        if answer.status == 429:
            assert answer.json()["code"] == "rate_limited"
            assert int(answer.headers["Retry-After"]) >= 1
    allowed = sum(counts.get(200, 0) for counts in by_status.values())
    # One bucket for both: BURST, plus what refilled while the requests ran. Separate
    # buckets would have let 2 x BURST = 20 through (12 requests to each replica).
    refill = int(elapsed * RATE) + 1
    assert BURST <= allowed <= BURST + refill, (by_status, elapsed)
    assert allowed < 2 * BURST, by_status
    assert by_status["A"].get(429, 0) > 0, by_status
    assert by_status["B"].get(429, 0) > 0, by_status


# -- OAuth -------------------------------------------------------------------------------------
async def test_client_assertion_replayed_to_the_other_replica_is_refused(
    pair: Pair, session: aiohttp.ClientSession
) -> None:
    bank = "demo-bank"
    issued: dict[str, str] = {}
    for first, second in (("A", "B"), ("B", "A")):
        assertion = _assertion(pair.demo, bank)
        accepted = await request(
            session, "POST", pair.replica(first).base + "/oauth/token", data=_token_form(assertion)
        )
        assert accepted.status == 200, (first, accepted.body)
        issued[first] = accepted.json()["access_token"]

        replayed = await request(
            session,
            "POST",
            pair.replica(second).base + "/oauth/token",
            data=_token_form(assertion),
        )
        assert replayed.status == 401, (second, replayed.body)
        assert replayed.json()["error"] == "invalid_client", replayed.body
        assert "already used" in replayed.json()["error_description"]

    # An access token from one replica works at the other.
    enterprise = pair.demo.subject("red-list enterprise")
    for holder, via in (("A", "B"), ("B", "A")):
        answer = await pair.decide(
            session,
            via,
            enterprise,
            "loan",
            headers={"Authorization": f"Bearer {issued[holder]}"},
        )
        assert answer.status == 200, (holder, via, answer.body)
        assert answer.json()["outcome"] == "granted", answer.body


# -- audit -------------------------------------------------------------------------------------
async def test_audit_chain_holds_decisions_from_both_replicas_and_verifies(
    pair: Pair, session: aiohttp.ClientSession
) -> None:
    # Concurrent decisions through both replicas contend for the one chain head.
    enterprises = [s for s in pair.demo.raw["subjects"] if s["kind"] == "enterprise"]
    calls = [
        pair.decide(session, via, subject, scene)
        for via in ("A", "B")
        for subject, scene in [(e, "approval") for e in enterprises[:4]]
        + [(e, "loan") for e in enterprises[4:6]]
    ]
    answers = await asyncio.gather(*calls)
    assert [a.status for a in answers] == [200] * len(calls), [a.body for a in answers]

    decided = pair.demo.decided
    assert decided.get("A"), decided
    assert decided.get("B"), decided
    made = [d for ids in decided.values() for d in ids]
    assert len(set(made)) == len(made)

    records = await read_audit(pair.store_url)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    # Records that are not decisions (seeded consents, a consent revoked earlier on
    # this pair) carry a kind.
    recorded = [r.entry["decision_id"] for r in records if "kind" not in r.entry]
    # Every decision either replica answered is in the chain, and nothing else is.
    assert set(decided["A"]) <= set(recorded)
    assert set(decided["B"]) <= set(recorded)
    assert sorted(recorded) == sorted(made)
    for earlier, later in itertools.pairwise(records):
        assert later.prev_hash == earlier.hash

    code, output = await audit_verify(pair.store_url)
    assert code == 0, output
    found = re.search(r"audit chain intact: (\d+) records", output)
    assert found, output
    assert int(found.group(1)) == len(records)


def test_replica_logs_name_no_unhandled_error(pair: Pair) -> None:
    for replica in (pair.a, pair.b):
        log = replica.log.read_text(encoding="utf-8", errors="replace")
        assert "unhandled error" not in log, log[-4000:]
        assert replica.alive(), log[-4000:]
