"""Partners' public keys for client assertions, pinned to one algorithm each.

A key's algorithm follows from its type (Ed25519 → EdDSA, P-256 → ES256, RSA →
PS256) and is fixed when the key is loaded: an assertion whose header names
another algorithm for that key is refused, which closes algorithm-confusion
attacks (``none``, or HS256 keyed with a public key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from gateway.settings import ConfigError, Partner
from gateway.tokens.keys import jwk_thumbprint

__all__ = ["ALLOWED_ALGS", "ClientKey", "load_client_keys"]

ALLOWED_ALGS = frozenset({"EdDSA", "ES256", "PS256"})
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


@dataclass(frozen=True, slots=True)
class ClientKey:
    kid: str
    alg: str
    key: Any  # a cryptography public key, as PyJWT wants it


def _alg_for(jwk: dict[str, Any]) -> str | None:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "RSA":
        return "PS256"
    return None


def _required_members(jwk: dict[str, Any]) -> dict[str, str]:
    names = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
    return {name: str(jwk[name]) for name in names[str(jwk["kty"])]}


def load_client_keys(partner: Partner) -> dict[str, ClientKey]:
    """The partner's assertion keys by kid; ConfigError names what is wrong."""
    where = f"partner {partner.id!r}"
    if partner.jwks is not None:
        jwks = partner.jwks
    elif partner.jwks_file is not None:
        try:
            jwks = orjson.loads(partner.jwks_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read jwks_file {partner.jwks_file}: {exc}") from exc
    else:
        return {}
    keys: dict[str, ClientKey] = {}
    for jwk in jwks.get("keys", []) if isinstance(jwks, dict) else []:
        if not isinstance(jwk, dict):
            raise ConfigError(f"{where}: a JWKS entry is not an object")
        if _PRIVATE_MEMBERS & set(jwk):
            raise ConfigError(
                f"{where}: the JWKS holds private key material — publish public keys only"
            )
        alg = _alg_for(jwk)
        if alg is None or jwk.get("alg", alg) != alg:
            raise ConfigError(
                f"{where}: key type {jwk.get('kty')}/{jwk.get('crv')} with alg {jwk.get('alg')} "
                f"is not allowed; use Ed25519 (EdDSA), P-256 (ES256) or RSA (PS256)"
            )
        try:
            kid = str(jwk.get("kid") or jwk_thumbprint(_required_members(jwk)))
            key = jwt.PyJWK({**jwk, "alg": alg}, algorithm=alg).key
        except (KeyError, jwt.PyJWKError, ValueError) as exc:
            raise ConfigError(f"{where}: unusable JWK: {exc}") from exc
        keys[kid] = ClientKey(kid, alg, key)
    return keys
