"""Signed policy bundles: build → sign → verify, and every way a bundle is refused.

A bundle is a zip of the policy files, a manifest of their digests and a JWS
over the manifest. Each test alters one thing an attacker (or a careless
operator) could alter and checks the refusal says what is wrong.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli import main
from gateway.policy.bundle import (
    BundleError,
    build_bundle,
    load_bundle,
    load_trusted_keys,
    sign_bundle,
)
from gateway.policy.loader import PolicyLoadError, load_policy_dir
from gateway.resources import shipped
from gateway.tokens.keys import b64url
from tests.policy_ops._kit import (
    LIBRARY_RULE_600,
    copy_policies,
    read_zip,
    replace_once,
    write_zip,
)
from tests.policy_ops.conftest import Office, make_office

UNLAWFUL_LIBRARY_RULE = """
  - id: punish-low-score
    when: {fact: person.credit_score, op: "<", value: 500}
    constrain: {measure: loan.restrict_credit}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The shipped policies, bundled once per module (building checks every policy)."""
    out = tmp_path_factory.mktemp("built") / "policies.bundle"
    build_bundle(shipped("policies"), out)
    return out.read_bytes()


@pytest.fixture
def unsigned(tmp_path: Path, built: bytes) -> Path:
    out = tmp_path / "policies.bundle"
    out.write_bytes(built)
    return out


@pytest.fixture
def signed(unsigned: Path, office: Office) -> Path:
    sign_bundle(unsigned, office.private_pem)
    return unsigned


def refusal(bundle: Path, office: Office) -> str:
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle, load_trusted_keys(office.jwks))
    return str(caught.value)


def test_an_unsigned_bundle_is_refused_when_keys_are_configured(
    unsigned: Path, office: Office
) -> None:
    assert refusal(unsigned, office) == "the bundle is not signed"


def test_a_signed_bundle_verifies_and_serves_exactly_the_directory(
    signed: Path, office: Office
) -> None:
    policies = load_bundle(signed, load_trusted_keys(office.jwks))
    from_directory = load_policy_dir(shipped("policies"))
    assert policies.hash == from_directory.hash
    assert sorted(policies.by_scene) == sorted(from_directory.by_scene)
    names = set(read_zip(signed))
    assert names == {p.name for p in shipped("policies").glob("*.yaml")} | {
        "MANIFEST.json",
        "SIGNATURE.jws",
    }


def test_the_manifest_lists_every_file_digest_and_the_set_hash(signed: Path) -> None:
    entries = read_zip(signed)
    manifest = orjson.loads(entries["MANIFEST.json"])
    assert manifest["format"] == "xinyi-policy-bundle/1"
    assert manifest["policy_set"] == load_policy_dir(shipped("policies")).hash
    for name, digest in manifest["files"].items():
        assert digest == "sha256:" + hashlib.sha256(entries[name]).hexdigest()


def test_a_file_rewritten_inside_the_zip_is_refused(signed: Path, office: Office) -> None:
    entries = read_zip(signed)
    entries["library.yaml"] = entries["library.yaml"].replace(b"value: 600", b"value: 100")
    write_zip(signed, entries)
    assert refusal(signed, office) == "library.yaml was altered after the bundle was built"


def test_a_manifest_rewritten_to_match_altered_files_is_refused(
    signed: Path, office: Office
) -> None:
    entries = read_zip(signed)
    entries["library.yaml"] = entries["library.yaml"].replace(b"value: 600", b"value: 100")
    manifest = orjson.loads(entries["MANIFEST.json"])
    manifest["files"]["library.yaml"] = (
        "sha256:" + hashlib.sha256(entries["library.yaml"]).hexdigest()
    )
    entries["MANIFEST.json"] = orjson.dumps(manifest)
    write_zip(signed, entries)
    assert refusal(signed, office) == "the signature covers another manifest"


def test_a_bundle_signed_by_an_untrusted_key_is_refused(
    unsigned: Path, office: Office, tmp_path: Path
) -> None:
    stranger = make_office(tmp_path / "stranger")
    sign_bundle(unsigned, stranger.private_pem)
    assert refusal(unsigned, office) == "the bundle is not signed by a trusted credit-office key"
    # The stranger's own keys accept it: the refusal is about trust, not form.
    assert load_bundle(unsigned, load_trusted_keys(stranger.jwks)).hash


def test_a_forged_signature_under_the_trusted_kid_is_refused(signed: Path, office: Office) -> None:
    entries = read_zip(signed)
    header = b64url(orjson.dumps({"alg": "EdDSA", "kid": office.kid, "typ": "policy-bundle+jws"}))
    signing_input = f"{header}.{b64url(entries['MANIFEST.json'])}".encode()
    forged = Ed25519PrivateKey.generate().sign(signing_input)
    entries["SIGNATURE.jws"] = signing_input + b"." + b64url(forged).encode()
    write_zip(signed, entries)
    assert refusal(signed, office).startswith("the bundle signature does not verify")


def test_a_signature_of_another_type_is_refused(signed: Path, office: Office) -> None:
    """The trusted key's JWS for something else (another typ) is not a bundle signature."""
    entries = read_zip(signed)
    token = entries["SIGNATURE.jws"].decode()
    header = orjson.loads(_b64decode(token.split(".")[0]))
    assert header["typ"] == "policy-bundle+jws"
    header["typ"] = "JWT"
    entries["SIGNATURE.jws"] = (b64url(orjson.dumps(header)) + token[token.index(".") :]).encode()
    write_zip(signed, entries)
    assert refusal(signed, office) == "the bundle is not signed by a trusted credit-office key"


def _b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_garbled_signature_is_refused(signed: Path, office: Office) -> None:
    entries = read_zip(signed)
    entries["SIGNATURE.jws"] = b"not-a-jws"
    write_zip(signed, entries)
    assert refusal(signed, office).startswith("the bundle signature is malformed")


@pytest.mark.parametrize(
    ("change", "name"),
    [("add", "extra.yaml"), ("add", "notes.txt"), ("drop", "measures.yaml")],
)
def test_files_beyond_or_missing_from_the_manifest_are_refused(
    signed: Path, office: Office, change: str, name: str
) -> None:
    entries = read_zip(signed)
    if change == "add":
        entries[name] = (shipped("policies") / "library.yaml").read_bytes()
    else:
        del entries[name]
    write_zip(signed, entries)
    assert refusal(signed, office) == "the bundle's files differ from its manifest"


def test_an_unsafe_file_name_is_refused_even_when_signed(signed: Path, office: Office) -> None:
    entries = read_zip(signed)
    manifest = orjson.loads(entries["MANIFEST.json"])
    evil = b"id: x\n"
    manifest["files"]["../evil.yaml"] = "sha256:" + hashlib.sha256(evil).hexdigest()
    entries["MANIFEST.json"] = orjson.dumps(manifest)
    entries["../evil.yaml"] = evil
    del entries["SIGNATURE.jws"]
    write_zip(signed, entries)
    sign_bundle(signed, office.private_pem)
    assert refusal(signed, office) == "unsafe file name in bundle: '../evil.yaml'"
    assert not (signed.parent.parent / "evil.yaml").exists()


@pytest.mark.parametrize("manifest", [b"not json", b"[]", b'{"files": ["library.yaml"]}', b"{}"])
def test_a_malformed_manifest_is_a_bundle_error(
    signed: Path, office: Office, manifest: bytes
) -> None:
    entries = read_zip(signed)
    entries["MANIFEST.json"] = manifest
    del entries["SIGNATURE.jws"]
    write_zip(signed, entries)
    with pytest.raises(BundleError, match=r"MANIFEST\.json"):
        load_bundle(signed, None)
    sign_bundle(signed, office.private_pem)  # even the office's own key does not make it valid
    assert "MANIFEST.json" in refusal(signed, office)


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path, office: Office) -> None:
    bogus = tmp_path / "bogus.bundle"
    bogus.write_bytes(b"PK but not really")
    assert "not a readable policy bundle" in refusal(bogus, office)
    assert "not a readable policy bundle" in refusal(tmp_path / "missing.bundle", office)


def test_build_refuses_a_directory_with_a_refused_policy(tmp_path: Path) -> None:
    directory = copy_policies(tmp_path / "policies")
    (directory / "library.yaml").write_text(
        (directory / "library.yaml")
        .read_text(encoding="utf-8")
        .replace("tests:", UNLAWFUL_LIBRARY_RULE.lstrip("\n") + "tests:", 1),
        encoding="utf-8",
    )
    out = tmp_path / "refused.bundle"
    with pytest.raises(PolicyLoadError) as caught:
        build_bundle(directory, out)
    found = {(p.file, p.rule, p.code) for p in caught.value.problems}
    assert ("library.yaml", "punish-low-score", "personal_score_to_constraint") in found
    assert ("library.yaml", "punish-low-score", "constraint_in_basic_public_service") in found
    assert not out.exists()


def test_a_signed_bundle_is_never_trusted_more_than_its_files(
    tmp_path: Path, office: Office
) -> None:
    """The office's signature over an unlawful policy does not get it past the guard."""
    out = tmp_path / "lawful.bundle"
    build_bundle(shipped("policies"), out)
    entries = read_zip(out)
    unlawful = entries["library.yaml"].replace(
        b"tests:", UNLAWFUL_LIBRARY_RULE.lstrip("\n").encode() + b"tests:", 1
    )
    entries["library.yaml"] = unlawful
    manifest = orjson.loads(entries["MANIFEST.json"])
    manifest["files"]["library.yaml"] = "sha256:" + hashlib.sha256(unlawful).hexdigest()
    entries["MANIFEST.json"] = orjson.dumps(manifest)
    write_zip(out, entries)
    sign_bundle(out, office.private_pem)
    with pytest.raises(PolicyLoadError) as caught:
        load_bundle(out, load_trusted_keys(office.jwks))
    assert "library.yaml:punish-low-score: personal_score_to_constraint" in str(caught.value)


def test_a_policy_set_hash_not_matching_the_manifest_is_refused(
    signed: Path, office: Office
) -> None:
    entries = read_zip(signed)
    manifest = orjson.loads(entries["MANIFEST.json"])
    manifest["policy_set"] = "sha256:" + "0" * 64
    entries["MANIFEST.json"] = orjson.dumps(manifest)
    del entries["SIGNATURE.jws"]
    write_zip(signed, entries)
    sign_bundle(signed, office.private_pem)
    assert refusal(signed, office) == "the policy-set hash does not match the manifest"


def test_resigning_replaces_the_signature(signed: Path, office: Office, tmp_path: Path) -> None:
    other = make_office(tmp_path / "other")
    sign_bundle(signed, other.private_pem)
    assert refusal(signed, office) == "the bundle is not signed by a trusted credit-office key"
    sign_bundle(signed, office.private_pem)
    assert load_bundle(signed, load_trusted_keys(office.jwks)).hash


# --- the command line -------------------------------------------------------


def test_cli_keygen_build_sign_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pem, jwks, out = tmp_path / "k.pem", tmp_path / "k.jwks", tmp_path / "p.bundle"
    assert main(["policy", "bundle", "keygen", "--key", str(pem), "--jwks", str(jwks)]) == 0
    assert pem.stat().st_mode & 0o077 == 0, "the private key is readable by others"
    assert '"d"' not in jwks.read_text(), "the public JWKS holds a private member"
    kid = next(iter(load_trusted_keys(jwks)))
    assert kid in capsys.readouterr().out

    assert main(["policy", "bundle", "build", "--out", str(out)]) == 0
    digest = load_policy_dir(shipped("policies")).hash
    assert f"policy set {digest} (unsigned)" in capsys.readouterr().out

    assert main(["policy", "bundle", "verify", str(out), "--keys", str(jwks)]) == 1
    assert "the bundle is not signed" in capsys.readouterr().err

    assert main(["policy", "bundle", "sign", str(out), "--key", str(pem)]) == 0
    assert kid in capsys.readouterr().out

    assert main(["policy", "bundle", "verify", str(out), "--keys", str(jwks)]) == 0
    assert digest in capsys.readouterr().out


def test_cli_refusals_exit_nonzero_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], office: Office
) -> None:
    out = tmp_path / "p.bundle"
    assert main(["policy", "bundle", "build", "--out", str(out)]) == 0
    capsys.readouterr()

    # a key pair is never overwritten
    argv = ["policy", "bundle", "keygen", "--key", str(office.private_pem)]
    assert main([*argv, "--jwks", str(tmp_path / "x.jwks")]) == 1
    assert "exists" in capsys.readouterr().err

    # signing with something that is not a private key: a message, not a traceback
    assert main(["policy", "bundle", "sign", str(out), "--key", str(office.jwks)]) == 1
    assert "not a usable private key" in capsys.readouterr().err

    # signing or verifying something that is not a bundle
    assert main(["policy", "bundle", "sign", str(office.jwks), "--key", str(office.private_pem)])
    assert "not a readable policy bundle" in capsys.readouterr().err

    # verifying against something that is not a JWKS
    assert main(["policy", "bundle", "verify", str(out), "--keys", str(office.private_pem)]) == 1
    assert "not a usable JWKS" in capsys.readouterr().err

    # an untrusted signature
    stranger = make_office(tmp_path / "stranger")
    assert main(["policy", "bundle", "sign", str(out), "--key", str(stranger.private_pem)]) == 0
    capsys.readouterr()
    assert main(["policy", "bundle", "verify", str(out), "--keys", str(office.jwks)]) == 1
    assert "not signed by a trusted credit-office key" in capsys.readouterr().err


def test_cli_build_exit_codes_for_refused_and_unreadable_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = copy_policies(tmp_path / "policies")
    replace_once(
        directory / "library.yaml",
        LIBRARY_RULE_600,
        '- {fact: person.credit_score, op: ">=", value: true}',
    )
    out = tmp_path / "p.bundle"
    assert main(["policy", "bundle", "build", "--dir", str(directory), "--out", str(out)]) == 1
    assert "library.yaml:score-600: type_mismatch" in capsys.readouterr().err
    assert not out.exists()

    missing = tmp_path / "nowhere"
    assert main(["policy", "bundle", "build", "--dir", str(missing), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err

    (directory / "library.yaml").write_text("rules: [unclosed\n", encoding="utf-8")
    assert main(["policy", "bundle", "build", "--dir", str(directory), "--out", str(out)]) == 2
    assert "library.yaml:-: unreadable" in capsys.readouterr().err
