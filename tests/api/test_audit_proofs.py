"""Checkpoints and proofs over HTTP, checked with an independent RFC 9162 verifier."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.audit import rfc9162

if TYPE_CHECKING:
    from conftest import Demo


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _root_of(note: str, jwks: dict[str, list[dict[str, str]]]) -> tuple[int, bytes]:
    """Check a checkpoint's signature from the JWKS alone (signed-note rules), and read it."""
    text, _, signatures = note.rpartition("\n\n")
    origin, size, root = text.split("\n")[:3]
    verified = False
    for line in signatures.strip().split("\n"):
        name, raw = line.removeprefix("\u2014 ").split(" ")
        sig = _b(raw)
        for jwk in jwks["keys"]:
            if jwk.get("crv") != "Ed25519":
                continue
            public = base64.urlsafe_b64decode(jwk["x"] + "=")
            key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
            if name == origin and key_id == sig[:4]:
                Ed25519PublicKey.from_public_bytes(public).verify(sig[4:], (text + "\n").encode())
                verified = True
    assert verified
    return int(size), _b(root)


async def _decide(demo: Demo, n: int) -> list[str]:
    subject = demo.subject("person", {"library": "granted"})
    ids = []
    for _ in range(n):
        response = await demo.decide(subject, "library")
        assert response.status == 200
        ids.append((await response.json())["decision_id"])
    return ids


async def test_inclusion_and_consistency_proofs_verify_independently(demo: Demo) -> None:
    client = demo.client
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    first_ids = await _decide(demo, 3)
    old_size, _ = await demo.gateway.audit.checkpoint_now()
    await _decide(demo, 4)
    new_size, _ = await demo.gateway.audit.checkpoint_now()
    assert old_size < new_size

    auth = demo.auth("demo-library")
    response = await client.get("/v1/audit/checkpoints/latest", headers=auth)
    assert response.status == 200
    assert response.content_type == "text/plain"
    size, root = _root_of(await response.text(), jwks)
    assert size == new_size
    old_note = await (await client.get(f"/v1/audit/checkpoints/{old_size}", headers=auth)).text()
    _, old_root = _root_of(old_note, jwks)

    # an inclusion proof for one of the library's own decisions
    decision_id = first_ids[1]
    response = await client.get(
        "/v1/audit/proofs/inclusion", params={"decision_id": decision_id}, headers=auth
    )
    assert response.status == 200, await response.text()
    proof = await response.json()
    assert proof["tree_size"] == new_size
    assert '"decision_id":"' + decision_id + '"' in proof["record"]
    # The leaf is the record's chain hash, which covers the record, its seq and the link.
    chained = proof["prev_hash"].encode() + b"\n%d\n" % proof["seq"] + proof["record"].encode()
    assert rfc9162.sha256(chained).hex() == proof["record_hash"]
    assert proof["seq"] == proof["leaf_index"] + 1
    leaf = rfc9162.sha256(b"\x00" + bytes.fromhex(proof["record_hash"]))
    assert _b(proof["leaf_hash"]) == leaf
    hashes = [_b(h) for h in proof["hashes"]]
    assert rfc9162.verify_inclusion(proof["leaf_index"], size, leaf, hashes, root)
    forged = [hashes[0][::-1], *hashes[1:]]
    assert not rfc9162.verify_inclusion(proof["leaf_index"], size, leaf, forged, root)

    # the same decision in the older tree
    response = await client.get(
        "/v1/audit/proofs/inclusion",
        params={"decision_id": decision_id, "tree_size": str(old_size)},
        headers=auth,
    )
    old_proof = await response.json()
    assert rfc9162.verify_inclusion(
        old_proof["leaf_index"], old_size, leaf, [_b(h) for h in old_proof["hashes"]], old_root
    )

    response = await client.get(
        "/v1/audit/proofs/consistency",
        params={"from": str(old_size), "to": str(new_size)},
        headers=auth,
    )
    assert response.status == 200
    path = [_b(h) for h in (await response.json())["hashes"]]
    assert rfc9162.verify_consistency(old_size, new_size, old_root, root, path)
    assert not rfc9162.verify_consistency(old_size, new_size, old_root, root, path[::-1])


async def test_another_partners_decision_and_bad_queries_are_refused(demo: Demo) -> None:
    client = demo.client
    subject = demo.subject("person", {"library": "granted"})
    decision_id = (await (await demo.decide(subject, "library")).json())["decision_id"]
    size, _ = await demo.gateway.audit.checkpoint_now()
    for partner in ("demo-bank", "demo-platform"):
        response = await client.get(
            "/v1/audit/proofs/inclusion",
            params={"decision_id": decision_id},
            headers=demo.auth(partner),
        )
        assert response.status == 404
    # the auditor may prove any decision
    response = await client.get(
        "/v1/audit/proofs/inclusion",
        params={"decision_id": decision_id},
        headers=demo.auth("demo-auditor"),
    )
    assert response.status == 200
    auth = demo.auth("demo-library")
    cases = [
        ("/v1/audit/proofs/inclusion", {"decision_id": decision_id, "tree_size": "x"}, 422),
        ("/v1/audit/proofs/inclusion", {"decision_id": decision_id, "tree_size": "9999"}, 404),
        ("/v1/audit/proofs/consistency", {"from": "2", "to": "1"}, 422),
        ("/v1/audit/proofs/consistency", {"from": "1"}, 422),
        ("/v1/audit/proofs/consistency", {"from": "1", "to": str(size + 1)}, 404),
        ("/v1/audit/checkpoints/abc", {}, 422),
    ]
    for path, params, status in cases:
        response = await client.get(path, params=params, headers=auth)
        assert response.status == status, (path, params)
        assert response.content_type == "application/problem+json"
    # a decision made after the latest checkpoint is not provable yet
    later = (await (await demo.decide(subject, "library")).json())["decision_id"]
    response = await client.get(
        "/v1/audit/proofs/inclusion", params={"decision_id": later}, headers=auth
    )
    assert response.status == 409
    assert (await response.json())["code"] == "not_checkpointed"


async def test_records_are_paged_for_auditors_only(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    for _ in range(3):
        await demo.decide(subject, "library")
    response = await demo.client.get("/v1/audit/records", headers=demo.auth("demo-library"))
    assert response.status == 403
    auth = demo.auth("demo-auditor")
    seen: list[int] = []
    after = 0
    while True:
        response = await demo.client.get(
            "/v1/audit/records", params={"after_seq": str(after), "limit": "2"}, headers=auth
        )
        page = await response.json()
        seen += [r["seq"] for r in page["records"]]
        if page["next_after_seq"] is None:
            break
        after = page["next_after_seq"]
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) >= 3
    response = await demo.client.get("/v1/audit/records", params={"limit": "100000"}, headers=auth)
    assert response.status == 422
