"""``xinyi-gateway policy prove`` and ``policy diff``: reading input and printing reports.

Unlike ``policy lint`` these commands read policies the guard refuses too (a
dead rule is refused by lint, and proving why is the point); they only need
every file to parse and fit the schema, and every condition to be well typed.
Exit codes: 0 everything proved (or, for diff, the versions are equivalent),
1 a property refuted (the versions differ), 2 unreadable or unmodellable input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.policy.checks import Problem
from gateway.policy.loader import CATALOGUES, PolicyLoadError, read_yaml
from gateway.policy.model import BenefitCatalogue, FactCatalogue, Policy
from gateway.resources import shipped

__all__ = ["load_sources", "run_diff", "run_prove"]


def _validated(path: Path, model: type[Any]) -> Any:
    data, _ = read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "-"
        raise PolicyLoadError(
            [Problem(path.name, "-", "invalid_policy", f"{where}: {first['msg']}")],
            unreadable=True,
        ) from exc


def load_sources(
    directory: Path, files: list[Path] | None = None
) -> tuple[FactCatalogue, BenefitCatalogue, list[tuple[str, Policy]]]:
    """The catalogues and the policy files (default: every policy file in ``directory``)."""
    if not directory.is_dir():
        raise PolicyLoadError(
            [Problem(str(directory), "-", "unreadable", "policy directory does not exist")],
            unreadable=True,
        )
    catalogue = _validated(directory / "catalogue.yaml", FactCatalogue)
    benefits = _validated(directory / "benefits.yaml", BenefitCatalogue)
    paths = (
        files
        if files
        else sorted(
            p
            for p in directory.iterdir()
            if p.suffix in (".yaml", ".yml") and p.name not in CATALOGUES and p.is_file()
        )
    )
    return catalogue, benefits, [(p.name, _validated(p, Policy)) for p in paths]


def _case_yaml(case: dict[str, Any], indent: str) -> str:
    text = yaml.safe_dump(
        [case], allow_unicode=True, sort_keys=False, default_flow_style=None, width=200
    )
    return "\n".join(indent + line for line in text.rstrip().splitlines())


def run_prove(args: argparse.Namespace) -> int:
    try:
        from gateway.policy.prove import ProveError, as_test_case, prove_policy, replay_rules
    except ImportError:  # pragma: no cover - the optional extra is missing
        print("policy prove needs z3: pip install 'xinyi-gateway[prove]'", file=sys.stderr)
        return 2
    directory = Path(args.dir) if args.dir else shipped("policies")
    started = time.perf_counter()
    try:
        catalogue, benefits, policies = load_sources(directory, [Path(f) for f in args.files])
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    refuted = 0
    unmodelled = 0
    for file, policy in policies:
        try:
            proof = prove_policy(policy, catalogue, benefits, file)
        except ProveError as exc:
            # Reported, and the other files still proved: one report lists everything.
            print(f"{file}: cannot prove: {exc}", file=sys.stderr)
            unmodelled += 1
            continue
        print(f"{proof.label}: {proof.seconds:.2f} s")
        for finding in proof.findings:
            where = f" {finding.rule}" if finding.rule else ""
            title = f"rule{where} {finding.property}" if finding.rule else finding.property
            if finding.property == "conflicts":
                print(f"  conflict{where}: {finding.message}")
            elif finding.holds:
                print(f"  {title}: {finding.message}")
            else:
                refuted += 1
                print(f"  {title}: REFUTED — {finding.message}")
            if finding.holds and finding.property != "conflicts":
                continue
            for n, example in enumerate(finding.examples, 1):
                result = replay_rules(policy.rules, catalogue, benefits, example.facts)
                name = f"{finding.property}{where} example {n}"
                print(_case_yaml(as_test_case(name, example, result), "      "))
    elapsed = time.perf_counter() - started
    verdict = f"{refuted} refuted" if refuted else "every property proved"
    if unmodelled:
        verdict += f"; {unmodelled} could not be modelled (run policy lint)"
    print(f"policies proved: {len(policies) - unmodelled}; {verdict} ({elapsed:.2f} s)")
    return 2 if unmodelled else 1 if refuted else 0


def run_diff(args: argparse.Namespace) -> int:
    try:
        from gateway.policy.diff import diff_policies, replay
        from gateway.policy.prove import ProveError, as_test_case
    except ImportError:  # pragma: no cover - the optional extra is missing
        print("policy diff needs z3: pip install 'xinyi-gateway[prove]'", file=sys.stderr)
        return 2
    directory = Path(args.dir) if args.dir else shipped("policies")
    try:
        catalogue, benefits, pair = load_sources(directory, [Path(args.old), Path(args.new)])
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    (_, old), (_, new) = pair
    try:
        diff = diff_policies(old, new, catalogue, benefits)
    except ProveError as exc:
        print(f"cannot compare: {exc}", file=sys.stderr)
        return 2
    if diff.equivalent:
        print(f"{diff.old} → {diff.new}: equivalent (every subject gets the same result)")
        return 0
    print(
        f"{diff.old} → {diff.new}: NOT equivalent — "
        f"{'someone gains' if diff.gains else 'nobody gains'}, "
        f"{'someone loses' if diff.losses else 'nobody loses'}"
    )
    for heading, changes in (
        ("who loses", diff.losses),
        ("who gains", diff.gains),
        ("other changes", [c for c in diff.changes if c.direction == "other"]),
    ):
        if not changes:
            continue
        print(f"  {heading}:")
        for n, change in enumerate(changes, 1):
            print(f"    - {change.describe()}")
            before = replay(old, catalogue, benefits, change.example)
            after = replay(new, catalogue, benefits, change.example)
            print(
                f"      e.g. {change.example.subject} {change.example.facts}: "
                f"{_summary(before)} → {_summary(after)}"
            )
            case = as_test_case(f"{change.kind} {change.what} {n}", change.example, after)
            print(_case_yaml(case, "      "))
    return 1


def _summary(result: Any) -> str:
    if result.outcome == "constrained":
        return f"constrained {sorted(result.constraints)}"
    if result.outcome == "granted":
        return "granted " + ", ".join(f"{code} {params}" for code, params in result.benefits)
    return "standard"
