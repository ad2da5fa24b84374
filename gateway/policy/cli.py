"""``xinyi-gateway policy``: lint, test, prove, diff and explain policies; signed bundles."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from gateway.policy.loader import PolicyLoadError, load_policy_dir
from gateway.resources import shipped

__all__ = ["add_policy_commands"]


def _policy_lint(args: argparse.Namespace) -> int:
    directory = Path(args.dir) if args.dir else shipped("policies")
    files = [Path(f) for f in args.files] or None
    try:
        policies = load_policy_dir(directory, files)
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem)
        return 2 if exc.unreadable else 1
    count = sum(len(v) for v in policies.by_scene.values())
    print(f"ok: {count} policies accepted ({policies.hash})")
    return 0


def _policy_test(args: argparse.Namespace) -> int:
    directory = Path(args.dir) if args.dir else shipped("policies")
    try:
        policies = load_policy_dir(directory)
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem)
        return 2 if exc.unreadable else 1
    cases = sum(len(c.policy.tests) for ps in policies.by_scene.values() for c in ps)
    print(f"ok: {cases} policy tests passed")
    return 0


def _policy_explain(args: argparse.Namespace) -> int:
    import orjson

    from gateway.policy.explain import explain

    directory = Path(args.dir) if args.dir else shipped("policies")
    try:
        policies = load_policy_dir(directory)
        facts = orjson.loads(Path(args.facts).read_bytes())
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2 if exc.unreadable else 1
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"{args.facts}: cannot read facts as JSON ({exc})", file=sys.stderr)
        return 2
    if not isinstance(facts, dict):
        print(f"{args.facts}: facts must be a JSON object of fact name to value", file=sys.stderr)
        return 2
    # JSON has no dates: ISO strings for date facts become dates, as in YAML.
    for name, value in list(facts.items()):
        fact = policies.catalogue.facts.get(name)
        if fact is not None and fact.type.value == "date" and isinstance(value, str):
            facts[name] = dt.date.fromisoformat(value)
    day = dt.date.fromisoformat(args.as_of) if args.as_of else dt.date.today()
    compiled = policies.active(args.scene, day)
    if compiled is None:
        print(f"no policy for scene {args.scene!r} is in effect on {day}", file=sys.stderr)
        return 1
    print(f"as of {day}")
    print(explain(compiled, policies.catalogue, facts))
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from gateway.policy import bundle

    try:
        if args.bundle_command == "build":
            directory = Path(args.dir) if args.dir else shipped("policies")
            digest = bundle.build_bundle(directory, Path(args.out))
            print(f"built {args.out}: policy set {digest} (unsigned)")
        elif args.bundle_command == "sign":
            kid = bundle.sign_bundle(Path(args.file), Path(args.key))
            print(f"signed {args.file} with key {kid}")
        elif args.bundle_command == "verify":
            trusted = bundle.load_trusted_keys(Path(args.keys))
            policies = bundle.load_bundle(Path(args.file), trusted)
            print(f"ok: {args.file} is signed by a trusted key; policy set {policies.hash}")
        else:
            kid = bundle.new_office_key(Path(args.key), Path(args.jwks))
            print(f"made key {kid}: private {args.key} (keep it offline), public {args.jwks}")
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2 if exc.unreadable else 1
    except (bundle.BundleError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def add_policy_commands(sub: Any) -> None:
    """Register ``policy …`` on the top-level subparsers."""
    policy = sub.add_parser("policy", help="check and test policy files").add_subparsers(
        dest="policy_command", required=True
    )
    lint = policy.add_parser("lint", help="check catalogues and policies (POLICY.md)")
    lint.add_argument("--dir")
    lint.add_argument("files", nargs="*")
    lint.set_defaults(run=_policy_lint)
    ptest = policy.add_parser("test", help="run every policy's tests")
    ptest.add_argument("--dir")
    ptest.set_defaults(run=_policy_test)

    from gateway.policy.prove_cmd import run_diff, run_prove

    prove = policy.add_parser("prove", help="prove what each policy does (SMT; docs/prove.md)")
    prove.add_argument("--dir")
    prove.add_argument("files", nargs="*")
    prove.set_defaults(run=run_prove)
    pdiff = policy.add_parser("diff", help="who gains and who loses between two versions")
    pdiff.add_argument("old")
    pdiff.add_argument("new")
    pdiff.add_argument("--dir", help="catalogues to read them with (default the shipped ones)")
    pdiff.set_defaults(run=run_diff)

    explain = policy.add_parser("explain", help="trace a policy's rules on given facts")
    explain.add_argument("scene")
    explain.add_argument("--facts", required=True, help="JSON object: fact name → value")
    explain.add_argument("--as-of", help="evaluation date, YYYY-MM-DD (default today)")
    explain.add_argument("--dir")
    explain.set_defaults(run=_policy_explain)

    bundles = policy.add_parser("bundle", help="signed policy bundles").add_subparsers(
        dest="bundle_command", required=True
    )
    build = bundles.add_parser("build", help="check a policy directory and bundle it")
    build.add_argument("--dir")
    build.add_argument("--out", required=True)
    sign = bundles.add_parser("sign", help="sign a bundle with a credit-office key")
    sign.add_argument("file")
    sign.add_argument("--key", required=True, help="Ed25519 private key (PEM)")
    verify_bundle = bundles.add_parser("verify", help="verify a bundle's signature and content")
    verify_bundle.add_argument("file")
    verify_bundle.add_argument("--keys", required=True, help="JWKS of trusted credit-office keys")
    keygen = bundles.add_parser("keygen", help="make a credit-office signing key pair")
    keygen.add_argument("--key", required=True, help="where to write the private key (PEM)")
    keygen.add_argument("--jwks", required=True, help="where to write the public JWKS")
    for command in (build, sign, verify_bundle, keygen):
        command.set_defaults(run=_bundle)
