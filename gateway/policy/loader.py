"""Load a policy directory, check it, and compile it into a serving set.

A directory holds ``catalogue.yaml``, ``benefits.yaml``, ``measures.yaml`` and
any number of policy files (every other ``*.yaml`` / ``*.yml``). Loading either
yields a :class:`PolicySet` or the complete list of problems — never a set that
is half checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    create_model,
)

from gateway.facts.builder import FactPlan
from gateway.policy.checks import (
    Problem,
    Taint,
    check_benefits,
    check_catalogue,
    check_policy,
    comparisons,
    value_fits,
)
from gateway.policy.evaluator import (
    CompiledRule,
    Evaluation,
    Reason,
    compile_condition,
    evaluate_rules,
)
from gateway.policy.measure_checks import check_measures
from gateway.policy.model import (
    BenefitCatalogue,
    Fact,
    FactCatalogue,
    FactType,
    MeasureList,
    Policy,
)

__all__ = ["CompiledPolicy", "PolicyLoadError", "PolicySet", "load_policy_dir", "read_yaml"]

CATALOGUES = ("catalogue.yaml", "benefits.yaml", "measures.yaml")


class PolicyLoadError(Exception):
    """The policy set was refused; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem], *, unreadable: bool = False) -> None:
        self.problems = sorted(problems)
        self.unreadable = unreadable
        super().__init__("\n".join(str(p) for p in self.problems))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which YAML forbids and which would
    otherwise let the last of two ``class:`` lines win unseen by a reviewer."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> tuple[Any, bytes]:
    """Parse one YAML file; raises PolicyLoadError(unreadable=True) when it cannot."""
    try:
        raw = path.read_bytes()
        return yaml.load(raw, Loader=_UniqueKeyLoader), raw  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise PolicyLoadError(
            [Problem(path.name, "-", "unreadable", f"cannot read or parse: {reason}")],
            unreadable=True,
        ) from exc


def _schema_problems(file: str, exc: ValidationError, data: Any) -> list[Problem]:
    """Schema errors, each under the fact, measure, benefit or rule it concerns."""
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        where = ".".join(str(p) for p in loc) or "-"
        rule = "-"
        if len(loc) >= 2 and loc[0] in ("facts", "measures", "benefits"):
            rule = str(loc[1])  # the catalogue entry
        elif len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = data.get("rules") if isinstance(data, dict) else None
            entry = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                rule = entry["id"]
        problems.append(Problem(file, rule, "invalid_policy", f"{where}: {err['msg']}"))
    return problems


def _check_tests(policy: Policy, file: str, catalogue: FactCatalogue) -> list[Problem]:
    """A test case must name real facts of its subject, with values of their types."""
    problems = []
    for case in policy.tests:
        label = f"test {case.name!r}"
        if case.subject not in policy.subjects:
            problems.append(
                Problem(
                    file,
                    "-",
                    "invalid_policy",
                    f"{label}: the policy does not serve a {case.subject}",
                )
            )
        if case.as_of is not None and not policy.effective.covers(case.as_of):
            problems.append(
                Problem(
                    file,
                    "-",
                    "invalid_policy",
                    f"{label}: as_of {case.as_of} is outside the policy's effective dates",
                )
            )
        for name, value in case.facts.items():
            fact = catalogue.facts.get(name)
            if fact is None or (fact.subject not in ("any", case.subject)):
                problems.append(
                    Problem(
                        file, "-", "unknown_fact", f"{label}: no fact {name!r} for a {case.subject}"
                    )
                )
            elif fact.type is FactType.RECORDS or not value_fits(fact.type, fact.values, value):
                problems.append(
                    Problem(
                        file,
                        "-",
                        "type_mismatch",
                        f"{label}: {name} = {value!r} is not a {fact.type.value}",
                    )
                )
    return problems


def _context_field(fact: Fact, required: bool) -> tuple[Any, Any]:
    types: dict[FactType, Any] = {
        FactType.INTEGER: StrictInt,
        FactType.NUMBER: StrictInt | float,
        FactType.BOOLEAN: StrictBool,
        FactType.STRING: str,
        FactType.DATE: dt.date,
    }
    if fact.type is FactType.ENUM:
        annotation: Any = Literal[tuple(fact.values or ())]
    else:
        annotation = types[fact.type]
    if fact.type is FactType.NUMBER:
        info = (
            Field(ge=0, allow_inf_nan=False) if required else Field(None, ge=0, allow_inf_nan=False)
        )
    elif fact.type is FactType.STRING:
        info = Field(max_length=256) if required else Field(None, max_length=256)
    else:
        info = Field() if required else Field(None)
    return (annotation if required else annotation | None, info)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    policy: Policy
    file: str
    hash: str
    rules: tuple[CompiledRule, ...]
    plan: FactPlan
    context_model: type[BaseModel]
    benefits: BenefitCatalogue
    reads: frozenset[str]
    # What the grant rules read: a withheld incentive names the adverse records behind them.
    grant_reads: frozenset[str] = frozenset()
    # What every decision reads of the policy, copied out of the pydantic model once:
    # a model's attribute costs ~300 instructions (its __getattr__ keeps CPython
    # off the fast path), and a decision read some twenty of them.
    ref: dict[str, str] = field(init=False, compare=False)  # shared: do not change it
    scene: str = field(init=False, compare=False)
    label: str = field(init=False, compare=False)  # "id@version", as audit entries name it
    token_days: int = field(init=False, compare=False)
    benefit_days: int = field(init=False, compare=False)
    consent_required_for: frozenset[str] = field(init=False, compare=False)
    subjects: frozenset[str] = field(init=False, compare=False)  # the kinds it serves
    _basic: bool = field(init=False, compare=False)
    _from: dt.date = field(init=False, compare=False)
    _until: dt.date | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        policy = self.policy
        hot = {
            "ref": {"id": policy.id, "version": policy.version, "hash": self.hash},
            "scene": policy.scene,
            "label": f"{policy.id}@{policy.version}",
            "token_days": policy.token_days,
            "benefit_days": policy.benefit_days,
            "consent_required_for": frozenset(policy.consent_required_for),
            "subjects": frozenset(policy.subjects),
            "_basic": policy.basic_public_service,
            "_from": policy.effective.from_,
            "_until": policy.effective.until,
        }
        for name, value in hot.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    def evaluate(self, facts: Mapping[str, Any]) -> Evaluation:
        return evaluate_rules(self.rules, facts, self.benefits, self._basic)

    def in_effect(self, day: dt.date) -> bool:
        """``policy.effective.covers(day)``, from the copied dates."""
        return self._from <= day and (self._until is None or day <= self._until)


@dataclass(frozen=True, slots=True)
class PolicySet:
    catalogue: FactCatalogue
    benefits: BenefitCatalogue
    measures: MeasureList
    by_scene: Mapping[str, tuple[CompiledPolicy, ...]]
    hash: str
    files: tuple[str, ...] = field(default=())

    def active(self, scene: str, day: dt.date) -> CompiledPolicy | None:
        for compiled in self.by_scene.get(scene, ()):
            if compiled.in_effect(day):
                return compiled
        return None

    def active_all(self, day: dt.date) -> list[CompiledPolicy]:
        return [p for scene in sorted(self.by_scene) if (p := self.active(scene, day))]


def _compile(
    policy: Policy,
    file: str,
    digest: str,
    catalogue: FactCatalogue,
    benefits: BenefitCatalogue,
    taint: Taint,
) -> CompiledPolicy:
    defaults = {n: f.default for n, f in catalogue.facts.items() if f.default is not None}
    rules = []
    reads: set[str] = set(policy.context_required)
    for rule in policy.rules:
        facts = tuple(dict.fromkeys(c.fact for c in comparisons(rule.when)))
        reads.update(facts)
        classes = frozenset().union(*(taint.classes(f) for f in facts))
        effect: Literal["grant", "constrain"] = "grant" if rule.grant else "constrain"
        reason = Reason(rule.id, effect, tuple(policy.legal_basis + rule.legal_basis), facts)
        rules.append(
            CompiledRule(
                id=rule.id,
                predicate=compile_condition(rule.when, defaults),
                reason=reason,
                benefit=rule.grant.benefit if rule.grant else None,
                params=dict(rule.grant.params) if rule.grant else {},
                measure=rule.constrain.measure if rule.constrain else None,
                classes=classes,
            )
        )
    context_facts = sorted(
        n for n in reads if catalogue.facts[n].class_ is not None and n.startswith("context.")
    )
    fields = {
        name.split(".", 1)[1]: _context_field(
            catalogue.facts[name], name in policy.context_required
        )
        for name in context_facts
    }
    model = create_model(  # type: ignore[call-overload]
        f"Context_{policy.scene}",
        __config__=ConfigDict(extra="forbid", strict=False),
        **fields,
    )
    return CompiledPolicy(
        policy=policy,
        file=file,
        hash=digest,
        rules=tuple(rules),
        plan=FactPlan(catalogue, reads),
        context_model=model,
        benefits=benefits,
        reads=frozenset(reads),
        grant_reads=frozenset(f for r in rules if r.benefit is not None for f in r.reason.facts),
    )


def _run_tests(compiled: CompiledPolicy) -> list[Problem]:
    problems = []
    for case in compiled.policy.tests:
        result = compiled.evaluate(case.facts)
        expect = case.expect
        got_benefits = sorted(code for code, _ in result.benefits)
        failed = (
            result.outcome != expect.outcome
            or (expect.benefits is not None and got_benefits != sorted(expect.benefits))
            or (
                expect.constraints is not None
                and sorted(result.constraints) != sorted(expect.constraints)
            )
        )
        if failed:
            problems.append(
                Problem(
                    compiled.file,
                    "-",
                    "policy_test_failed",
                    f"test {case.name!r}: expected {expect.outcome} {expect.benefits or ''}"
                    f"{expect.constraints or ''}, got {result.outcome} {got_benefits}"
                    f"{result.constraints or ''}",
                )
            )
    return problems


def _overlaps(policies: list[tuple[Policy, str]]) -> list[Problem]:
    problems = []
    by_id: dict[str, list[tuple[Policy, str]]] = {}
    for policy, file in policies:
        by_id.setdefault(policy.id, []).append((policy, file))
    for versions in by_id.values():
        versions.sort(key=lambda pf: pf[0].effective.from_)
        for (a, _), (b, bfile) in itertools.pairwise(versions):
            if a.effective.until is None or a.effective.until >= b.effective.from_:
                problems.append(
                    Problem(
                        bfile,
                        "-",
                        "overlapping_versions",
                        f"{b.id} {b.version} takes effect {b.effective.from_} while "
                        f"{a.version} is still effective",
                    )
                )
    return problems


def load_policy_dir(directory: Path, files: list[Path] | None = None) -> PolicySet:
    """Load, check and compile a policy directory; raise PolicyLoadError on any problem."""
    if not directory.is_dir():
        raise PolicyLoadError(
            [Problem(str(directory), "-", "unreadable", "policy directory does not exist")],
            unreadable=True,
        )
    problems: list[Problem] = []
    digests: dict[str, str] = {}
    models: dict[str, Any] = {}
    kinds: tuple[type[BaseModel], ...] = (FactCatalogue, BenefitCatalogue, MeasureList)
    for name, model in zip(CATALOGUES, kinds, strict=True):
        data, raw = read_yaml(directory / name)
        digests[name] = hashlib.sha256(raw).hexdigest()
        try:
            models[name] = model.model_validate(data)
        except ValidationError as exc:
            problems.extend(_schema_problems(name, exc, data))
    if problems:
        raise PolicyLoadError(problems)
    catalogue: FactCatalogue = models["catalogue.yaml"]
    benefits: BenefitCatalogue = models["benefits.yaml"]
    measures: MeasureList = models["measures.yaml"]
    problems += (
        check_catalogue(catalogue)
        + check_measures(measures, catalogue=catalogue)
        + check_benefits(benefits)
    )
    taint = Taint(catalogue)

    paths = (
        files
        if files is not None
        else sorted(
            p
            for p in directory.iterdir()
            if p.suffix in (".yaml", ".yml") and p.name not in CATALOGUES and p.is_file()
        )
    )
    loaded: list[tuple[Policy, str, str]] = []
    for path in paths:
        data, raw = read_yaml(path)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        digests[path.name] = digest
        try:
            policy = Policy.model_validate(data)
        except ValidationError as exc:
            problems.extend(_schema_problems(path.name, exc, data))
            continue
        problems.extend(check_policy(policy, path.name, catalogue, benefits, measures, taint))
        problems.extend(_check_tests(policy, path.name, catalogue))
        loaded.append((policy, path.name, digest))
    problems.extend(_overlaps([(p, f) for p, f, _ in loaded]))
    # Policies that passed every check still run their tests, so one report
    # lists test failures beside other files' refusals.
    refused = {p.file for p in problems}
    by_scene: dict[str, list[CompiledPolicy]] = {}
    for policy, file, digest in loaded:
        if file in refused or "catalogue.yaml" in refused:
            continue
        compiled = _compile(policy, file, digest, catalogue, benefits, taint)
        problems.extend(_run_tests(compiled))
        by_scene.setdefault(policy.scene, []).append(compiled)
    if problems:
        raise PolicyLoadError(problems)
    set_hash = hashlib.sha256(
        "\n".join(f"{n} {d}" for n, d in sorted(digests.items())).encode()
    ).hexdigest()
    return PolicySet(
        catalogue=catalogue,
        benefits=benefits,
        measures=measures,
        by_scene={
            scene: tuple(sorted(ps, key=lambda c: c.policy.effective.from_, reverse=True))
            for scene, ps in by_scene.items()
        },
        hash="sha256:" + set_hash,
        files=tuple(sorted(digests)),
    )
