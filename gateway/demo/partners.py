"""The demo partners, the context their scenes take, and their client keys."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.tokens.keys import b64url, jwk_thumbprint

__all__ = [
    "ENTERPRISE_CONSENT_SCENES",
    "ENTERPRISE_CONTEXT",
    "PARTNERS",
    "PERSON_CONTEXT",
    "DemoPartner",
    "new_client_key",
    "reuse_client_key",
]


@dataclass(frozen=True, slots=True)
class DemoPartner:
    id: str
    kind: str
    scenes: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()


PARTNERS = (
    DemoPartner("demo-bank", "bank", ("loan",), ("credit_loan_assessment",)),
    DemoPartner("demo-service-hall", "service_hall", ("approval",), ("administrative_approval",)),
    DemoPartner("demo-library", "library", ("library",), ("deposit_waiver",)),
    DemoPartner("demo-transit", "transit", ("transit",), ("deposit_waiver",)),
    # 信易+ scenes added as data (policies/rental.yaml, medical.yaml, tax.yaml, parking.yaml)
    DemoPartner("demo-rental", "service", ("rental",), ("deposit_waiver",)),
    DemoPartner("demo-hospital", "service", ("medical",), ("pay_after_treatment",)),
    DemoPartner("demo-tax-hall", "service_hall", ("tax",), ("tax_service",)),
    DemoPartner("demo-parking", "service", ("parking",), ("pay_after_parking",)),
    DemoPartner("demo-platform", "platform"),
    DemoPartner("demo-auditor", "auditor"),
    DemoPartner("demo-operator", "operator"),
    # A second bank, so 名单推荐 and statistics show one bank's view apart from another's.
    DemoPartner("demo-bank-2", "bank", ("loan",), ("credit_loan_assessment",)),
)

ENTERPRISE_CONTEXT: dict[str, dict[str, Any]] = {
    "loan": {"loan_amount": 1_000_000},
    "approval": {"matter_code": "LN-210100-0001", "missing_key_materials": False},
    "rental": {},
    "tax": {},
}
PERSON_CONTEXT: dict[str, dict[str, Any]] = {
    # persons at the service hall (信易批 for 行政相对人 who are natural persons)
    "approval": {"matter_code": "LN-210100-0002", "missing_key_materials": False},
    "library": {},
    "transit": {},
    "rental": {},
    "medical": {},
    "parking": {},
}
# Scenes whose policy needs an enterprise's 授权 (consent_required_for).
ENTERPRISE_CONSENT_SCENES = ("loan", "rental")


def reuse_client_key(path: Path) -> tuple[Path, dict[str, str]] | None:
    """The public half of a client key written by an earlier start."""
    try:
        private = orjson.loads(path.read_bytes())
        public = {k: str(private[k]) for k in ("kty", "crv", "x", "kid", "alg", "use")}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return path.resolve(), public


def new_client_key(directory: Path, partner_id: str) -> tuple[Path, dict[str, str]]:
    """A partner's client-assertion key pair: private JWK file (0600), public JWK."""
    key = Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    x = b64url(key.public_key().public_bytes(raw, serialization.PublicFormat.Raw))
    d = b64url(
        key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    )
    public = {"kty": "OKP", "crv": "Ed25519", "x": x}
    public |= {"kid": jwk_thumbprint(public), "alg": "EdDSA", "use": "sig"}
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{partner_id}.jwk.json"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps({**public, "d": d}, option=orjson.OPT_INDENT_2))
    return path.resolve(), public
