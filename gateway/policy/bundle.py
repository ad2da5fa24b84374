"""Signed policy bundles: what a credit office deploys in production.

A bundle is a zip of the policy directory's YAML files with ``MANIFEST.json``
(each file's SHA-256 and the policy-set hash) and ``SIGNATURE.jws``, a compact
JWS whose payload is the manifest, signed with the credit office's Ed25519 key.
Verification checks the signature against configured public keys (PyJWT),
every file against the manifest, and loads the set through the same guard as
a directory — a bundle is never trusted more than the files in it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.policy.loader import PolicySet, load_policy_dir
from gateway.tokens.keys import b64url, jwk_thumbprint

__all__ = [
    "BundleError",
    "build_bundle",
    "load_bundle",
    "load_trusted_keys",
    "new_office_key",
    "sign_bundle",
]

MANIFEST = "MANIFEST.json"
SIGNATURE = "SIGNATURE.jws"
FORMAT = "xinyi-policy-bundle/1"
BUNDLE_TYP = "policy-bundle+jws"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entry times: the same files give the same bytes


class BundleError(Exception):
    """The bundle is unsigned, signed by an unknown key, altered or malformed."""


def _policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def build_bundle(directory: Path, out: Path) -> str:
    """Check the directory (PolicyLoadError when refused) and write an unsigned bundle."""
    policies = load_policy_dir(directory)
    files = {p.name: p.read_bytes() for p in _policy_files(directory)}
    manifest = {
        "format": FORMAT,
        "policy_set": policies.hash,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {name: "sha256:" + hashlib.sha256(raw).hexdigest() for name, raw in files.items()},
    }
    entries = {**files, MANIFEST: orjson.dumps(manifest, option=orjson.OPT_INDENT_2)}
    _write_zip(out, entries)
    return policies.hash


def _write_zip(out: Path, entries: Mapping[str, bytes]) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            zf.writestr(zipfile.ZipInfo(name, _FIXED_TIME), entries[name])
    tmp.replace(out)


def _read_zip(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            return {info.filename: zf.read(info) for info in zf.infolist()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: not a readable policy bundle ({exc})") from exc


def new_office_key(private_out: Path, jwks_out: Path) -> str:
    """A credit-office signing key pair: private PEM (0600) and a public JWKS."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_out.touch(mode=0o600, exist_ok=False)
    private_out.write_bytes(pem)
    x = b64url(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    kid = jwk_thumbprint({"crv": "Ed25519", "kty": "OKP", "x": x})
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}
    jwks_out.write_bytes(orjson.dumps({"keys": [jwk]}, option=orjson.OPT_INDENT_2))
    return kid


def sign_bundle(path: Path, private_pem: Path) -> str:
    """Add (or replace) the bundle's signature; returns the signing key's kid."""
    entries = _read_zip(path)
    if MANIFEST not in entries:
        raise BundleError(f"{path}: no {MANIFEST}; build the bundle first")
    try:
        key = serialization.load_pem_private_key(private_pem.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{private_pem}: not a usable private key (PEM): {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{private_pem}: not an Ed25519 private key")
    x = b64url(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    kid = jwk_thumbprint({"crv": "Ed25519", "kty": "OKP", "x": x})
    header = b64url(orjson.dumps({"alg": "EdDSA", "kid": kid, "typ": BUNDLE_TYP}))
    signing_input = f"{header}.{b64url(entries[MANIFEST])}".encode()
    entries[SIGNATURE] = signing_input + b"." + b64url(key.sign(signing_input)).encode()
    _write_zip(path, entries)
    return kid


def load_trusted_keys(path: Path) -> dict[str, Any]:
    """The credit office's public keys by kid, from a JWKS file."""
    try:
        jwks = jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8"))
    except (OSError, jwt.PyJWKSetError, ValueError) as exc:
        raise BundleError(f"{path}: not a usable JWKS ({exc})") from exc
    return {k.key_id: k for k in jwks.keys if k.key_id and k.algorithm_name == "EdDSA"}


def _verify_signature(entries: Mapping[str, bytes], trusted: Mapping[str, Any]) -> None:
    token = entries.get(SIGNATURE)
    if token is None:
        raise BundleError("the bundle is not signed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise BundleError(f"the bundle signature is malformed: {exc}") from exc
    kid = header.get("kid")
    key = trusted.get(kid) if isinstance(kid, str) else None
    if key is None or header.get("typ") != BUNDLE_TYP:
        raise BundleError("the bundle is not signed by a trusted credit-office key")
    try:
        signed = jwt.api_jws.decode_complete(token, key.key, algorithms=["EdDSA"])
    except jwt.InvalidTokenError as exc:
        raise BundleError(f"the bundle signature does not verify: {exc}") from exc
    if signed["payload"] != entries[MANIFEST]:
        raise BundleError("the signature covers another manifest")


def load_bundle(path: Path, trusted: Mapping[str, Any] | None) -> PolicySet:
    """Verify (when ``trusted`` is given, the signature too) and load a bundle."""
    entries = _read_zip(path)
    if MANIFEST not in entries:
        raise BundleError(f"{path}: no {MANIFEST}")
    if trusted is not None:
        _verify_signature(entries, trusted)
    try:
        manifest = orjson.loads(entries[MANIFEST])
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"{path}: {MANIFEST} is not JSON ({exc})") from exc
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict) or not all(
        isinstance(n, str) and isinstance(d, str) for n, d in listed.items()
    ):
        raise BundleError(f"{path}: {MANIFEST} does not list the files and their digests")
    present = {n for n in entries if n not in (MANIFEST, SIGNATURE)}
    if present != set(listed):
        raise BundleError("the bundle's files differ from its manifest")
    for name, digest in listed.items():
        if "/" in name or "\\" in name or name.startswith("."):
            raise BundleError(f"unsafe file name in bundle: {name!r}")
        if "sha256:" + hashlib.sha256(entries[name]).hexdigest() != digest:
            raise BundleError(f"{name} was altered after the bundle was built")
    with tempfile.TemporaryDirectory(prefix="xinyi-bundle-") as tmp:
        for name in listed:
            (Path(tmp) / name).write_bytes(entries[name])
        policies = load_policy_dir(Path(tmp))
    if policies.hash != manifest.get("policy_set"):
        raise BundleError("the policy-set hash does not match the manifest")
    return policies
