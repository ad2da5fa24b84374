"""What a decision leaves in the embedded store, pinned byte for byte against its answer.

The decision path serialises the body, the audit entry and the token record
once each and hands the bytes to SQLite; these tests hold the stored forms to
what the answer and the audit chain promise: the body row is the answer
without its token, the audit row is the entry's canonical JSON (sorted keys,
every field), the token row's claims are the signed payload, and all three
are stored as TEXT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import orjson

from gateway.audit.chain import link_hash

if TYPE_CHECKING:
    from conftest import Demo

ENTRY_FIELDS = [
    "consent_id",
    "contract",
    "decision_id",
    "outcome",
    "partner",
    "policy",
    "policy_hash",
    "policy_set",
    "purpose",
    "scene",
    "staff_id",
    "subject",
    "time",
    "token_jti",
]
CLAIMS = [
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "vct",
    "scene",
    "benefits",
    "benefit_until",
    "policy",
    "policy_set",
    "decision_id",
    "status",
]
TOKEN_ROW = [
    "jti",
    "decision_id",
    "partner",
    "scene",
    "purpose",
    "subject_key",
    "kid",
    "status",
    "expires",
    "context",
    "benefits",
    "claims",
]


def _payload(token: str) -> bytes:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _pseudonym(demo: Demo, sector: str, kind: str, subject_id: str) -> str:
    # Worked out here from the secret, not through gateway.trust.pseudonyms.
    secret = (demo.gateway.settings.state_dir / "pseudonym.key").read_bytes()
    mac = hmac.new(secret, f"{sector}\x1f{kind}\x1f{subject_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


async def _decide_and_read(demo: Demo, subject: dict[str, Any], scene: str) -> dict[str, Any]:
    partner_id = demo.asker(scene)
    body = demo.body(subject, scene)
    response = await demo.client.post(
        f"/v1/scenes/{scene}/decisions", json=body, headers=demo.auth(partner_id)
    )
    assert response.status == 200, await response.text()
    raw = await response.read()
    answer = orjson.loads(raw)
    conn = demo.gateway.store.reader  # type: ignore[attr-defined]
    kind, stored, seq = conn.execute(
        "SELECT typeof(body), body, seq FROM decisions WHERE decision_id = ?",
        (answer["decision_id"],),
    ).fetchone()
    assert kind == "text"
    entry_kind, entry, prev, digest = conn.execute(
        "SELECT typeof(entry), entry, prev_hash, hash FROM audit WHERE seq = ?", (seq,)
    ).fetchone()
    assert entry_kind == "text"
    assert digest == link_hash(prev, seq, orjson.loads(entry))
    return {
        "raw": raw,
        "answer": answer,
        "body": stored,
        "entry": entry,
        "request": body,
        "partner": partner_id,
    }


async def test_a_granted_decision_is_stored_as_answered(demo: Demo) -> None:
    gw = demo.gateway
    subject = demo.subject("person", {"library": "granted"})
    got = await _decide_and_read(demo, subject, "library")
    answer, token = got["answer"], got["answer"]["token"]
    # The answer is the stored body plus the token as its last member, byte for byte.
    assert got["raw"] == got["body"].encode()[:-1] + b',"token":' + orjson.dumps(token) + b"}"
    # The token's claims, in their order, signed over exactly these bytes.
    claims = orjson.loads(_payload(token))
    assert list(claims) == CLAIMS
    compiled = gw.policies.active("library", gw.today())
    assert compiled is not None
    partner = gw.partners.by_id[got["partner"]]
    assert claims["vct"] == compiled.policy.id
    assert claims["scene"] == "library"
    assert claims["aud"] == partner.id
    assert (
        claims["policy"]
        == answer["policy"]
        == {
            "id": compiled.policy.id,
            "version": compiled.policy.version,
            "hash": compiled.hash,
        }
    )
    # The audit entry: every field, sorted, compact, the values the decision had.
    assert got["entry"].encode() == orjson.dumps(
        {
            "time": answer["issued_at"],
            "partner": partner.id,
            "staff_id": "staff-0001",
            "scene": "library",
            "purpose": got["request"]["purpose"],
            "subject": _pseudonym(demo, partner.pseudonym_sector, "person", subject["id"]),
            "outcome": "granted",
            "policy": f"{compiled.policy.id}@{compiled.policy.version}",
            "policy_hash": compiled.hash,
            "policy_set": gw.policies.hash,
            "consent_id": got["request"].get("consent_id"),
            "contract": partner.contract,
            "decision_id": answer["decision_id"],
            "token_jti": claims["jti"],
        },
        option=orjson.OPT_SORT_KEYS,
    )
    assert list(orjson.loads(got["entry"])) == ENTRY_FIELDS
    # The token's row keeps the claims it was signed with, as TEXT.
    kind, row = gw.store.reader.execute(  # type: ignore[attr-defined]
        "SELECT typeof(body), body FROM tokens WHERE jti = ?", (claims["jti"],)
    ).fetchone()
    assert kind == "text"
    record = orjson.loads(row)
    assert list(record) == TOKEN_ROW
    assert orjson.dumps(record["claims"]) == _payload(token)
    assert record["subject_key"] == _pseudonym(demo, "xinyi:internal", "person", subject["id"])
    # Every other member holds what the decision had (the pipeline builds it positionally).
    header = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    status = claims["status"]["status_list"]
    expected = {
        "jti": claims["jti"],
        "decision_id": answer["decision_id"],
        "partner": partner.id,
        "scene": "library",
        "purpose": got["request"]["purpose"],
        "kid": header["kid"],
        "status": {"list_id": status["uri"].rsplit("/", 1)[1], "index": status["idx"]},
        "expires": claims["exp"],
        "context": got["request"].get("context", {}),
        "benefits": [benefit["code"] for benefit in answer["benefits"]],
    }
    assert {name: record[name] for name in expected} == expected


async def test_answers_with_chinese_text_are_stored_unchanged(demo: Demo) -> None:
    # Notices and measures carry Chinese titles: the stored text is the answer's UTF-8.
    seen = 0
    for subject in demo.subjects:
        for scene, outcome in subject["expected"].items():
            if outcome == "granted":
                continue
            got = await _decide_and_read(demo, subject, scene)
            assert got["raw"] == got["body"].encode()
            assert "token" not in got["answer"]
            assert got["entry"].encode() == orjson.dumps(
                orjson.loads(got["entry"]), option=orjson.OPT_SORT_KEYS
            )
            seen += any(ord(ch) > 0x2E80 for ch in got["body"])
    assert seen, "no answer with Chinese text among the demo's"
