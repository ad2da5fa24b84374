"""The guard's promises as properties (DESIGN §5), on random catalogues and policies.

Two ways in:

* through the loader: a random catalogue (base facts of every class and type,
  records facts, facts derived from them by ``clean_record_years``), a random
  policy over it and random subjects are written to a temporary directory and
  loaded exactly as the gateway loads them;
* through the checks directly: a random catalogue whose derived facts form
  arbitrary chains — even cycles — over any other facts (taint is computed from
  declarations alone, so the derivation need not exist), checked with
  :class:`Taint` and :func:`check_policy`, and compiled with the evaluator's
  public functions.

The test computes taint itself (a fixpoint over ``derived_from``), so it does
not trust the guard's own computation.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from gateway.policy.checks import Problem, Taint, check_policy, comparisons
from gateway.policy.evaluator import CompiledRule, Reason, compile_condition, evaluate_rules
from gateway.policy.loader import CompiledPolicy, PolicyLoadError, load_policy_dir
from gateway.policy.model import BenefitCatalogue, FactCatalogue, MeasureList, Policy
from gateway.policy.reachability import unsatisfiable_reason
from tests.guard._corpus import dump, shipped


def examples(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


CLASSES = ("personal_score", "effective_document", "public_record", "context")
CONSTRAINT_OK = frozenset({"effective_document", "context"})
TAINT_CODES = ("personal_score_to_constraint", "constraint_needs_effective_document")
TYPES = ("integer", "number", "boolean", "enum", "date", "string")
ORDERED = frozenset({"integer", "number", "date"})
ENUM = ["A", "B", "C"]
D = dt.date
# The constants conditions compare with ...
CONSTANTS: dict[str, list[Any]] = {
    "integer": [0, 1, 2, 3, 4],
    "number": [0, 0.5, 1, 2.5],
    "boolean": [True, False],
    "enum": ENUM,
    "date": [D(2025, 1, 1), D(2025, 6, 1), D(2026, 1, 1)],
    "string": ["a", "b", "c"],
}
# ... and the values a subject may have: every constant, and one point inside each
# gap between constants and beyond them, so these finite sets are exhaustive.
DOMAIN: dict[str, list[Any]] = {
    "integer": [-1, 0, 1, 2, 3, 4, 5],
    "number": [-1, 0, 0.25, 0.5, 0.75, 1, 1.75, 2.5, 3.5],
    "boolean": [True, False],
    "enum": ENUM,
    "date": [
        D(2024, 12, 31),
        D(2025, 1, 1),
        D(2025, 3, 1),
        D(2025, 6, 1),
        D(2025, 9, 1),
        D(2026, 1, 1),
        D(2026, 1, 2),
    ],
    "string": ["a", "b", "c", "z"],
}
MEASURE = "loan.restrict_credit"
BENEFITS: dict[str, Any] = shipped("benefits.yaml")["benefits"]
BENEFITS_TEXT = dump(shipped("benefits.yaml"))


def _measures_without_documents() -> Any:
    """The shipped measures list, minus each measure's document kinds: generated
    catalogues invent their own domains (document kinds are the corpus's to test)."""
    data = shipped("measures.yaml")
    for measure in data["measures"].values():
        measure.pop("documents", None)
    return data


MEASURES_TEXT = dump(_measures_without_documents())
BENEFIT_MODEL = BenefitCatalogue.model_validate(shipped("benefits.yaml"))
MEASURE_MODEL = MeasureList.model_validate(_measures_without_documents())
DAY = D(2025, 6, 1)

Facts = dict[str, dict[str, Any]]


# --- an independent taint oracle -----------------------------------------------


def oracle_classes(facts: Facts) -> dict[str, frozenset[str]]:
    """Least fixpoint: a base fact has its class, a derived fact the union of its inputs'."""
    classes: dict[str, frozenset[str]] = {
        name: frozenset({f["class"]}) if "derived_from" not in f else frozenset()
        for name, f in facts.items()
    }
    changed = True
    while changed:
        changed = False
        for name, f in facts.items():
            if "derived_from" not in f:
                continue
            union = frozenset().union(*(classes.get(src, frozenset()) for src in f["derived_from"]))
            if union != classes[name]:
                classes[name], changed = union, True
    return classes


def expected_taint(classes: frozenset[str]) -> str | None:
    if "personal_score" in classes:
        return "personal_score_to_constraint"
    if not classes <= CONSTRAINT_OK:
        return "constraint_needs_effective_document"
    return None


def read_facts(cond: Any) -> list[str]:
    if "fact" in cond:
        return [cond["fact"]]
    if "not" in cond:
        return read_facts(cond["not"])
    return [f for part in cond.get("all", cond.get("any", [])) for f in read_facts(part)]


# --- strategies ------------------------------------------------------------------


# Strategies are cached: building one afresh for every draw costs more than drawing.
@functools.cache
def comparison(name: str, ftype: str) -> st.SearchStrategy[dict[str, Any]]:
    ops = ["==", "!=", "in", "not_in"] + (["<", "<=", ">", ">="] if ftype in ORDERED else [])
    scalar = st.sampled_from(CONSTANTS[ftype])
    listed = st.lists(st.sampled_from(CONSTANTS[ftype]), min_size=1, max_size=3, unique=True)
    return st.sampled_from(ops).flatmap(
        lambda op: (listed if op in ("in", "not_in") else scalar).map(
            lambda value: {"fact": name, "op": op, "value": value}
        )
    )


def conditions(readable: Iterable[tuple[str, str]], leaves: int = 6) -> st.SearchStrategy[Any]:
    """Random all/any/not trees over comparisons on (name, type) facts."""
    return _conditions(tuple(readable), leaves)


@functools.cache
def _conditions(readable: tuple[tuple[str, str], ...], leaves: int) -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(readable).flatmap(lambda nt: comparison(*nt))
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
            st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
            kids.map(lambda x: {"not": x}),
        ),
        max_leaves=leaves,
    )


@st.composite
def param_value(draw: st.DrawFn, spec: Mapping[str, Any], bad_ok: bool) -> Any:
    lo, hi = spec.get("min"), spec.get("max")
    integer = spec["type"] == "integer"
    # Rare choices take the largest draw: Hypothesis starts from the smallest.
    if bad_ok and draw(st.integers(0, 5)) == 5:  # now and then, one the guard must refuse
        if not integer and draw(st.integers(0, 1)) == 1:
            return math.nan  # compares false with both bounds
        bad: list[Any] = [] if integer else [(lo if lo is not None else 0) - 0.5]
        bad += [lo - 1] if lo is not None else []
        bad += [hi + 1] if hi is not None else []
        bad += ["12", True, None]  # None: the parameter is left out, which is fine
        return draw(st.sampled_from(bad))
    low = lo if lo is not None else -(10**6)
    high = hi if hi is not None else 10**7
    if integer:
        return draw(st.integers(int(low), int(high)))
    return draw(st.floats(low, high, allow_nan=False, allow_infinity=False))


@st.composite
def grants(draw: st.DrawFn, bad_ok: bool) -> dict[str, Any]:
    code = draw(st.sampled_from(sorted(BENEFITS)))
    spec = BENEFITS[code]["params"]
    params = {p: draw(param_value(s, bad_ok)) for p, s in spec.items()}
    params = {p: v for p, v in params.items() if v is not None}
    if bad_ok and draw(st.integers(0, 19)) == 19:
        params["penalty_cny"] = 10
    return {"benefit": code, "params": params}


@st.composite
def base_fact(draw: st.DrawFn, index: int) -> tuple[str, dict[str, Any]]:
    subject = draw(st.sampled_from(("person", "enterprise", "any")))
    ftype = draw(st.sampled_from(TYPES))
    fact: dict[str, Any] = {
        "type": ftype,
        "subject": subject,
        "class": draw(st.sampled_from(CLASSES)),
        "domain": f"test_{index}",
        "source": f"测试来源 {index}",
    }
    if ftype == "enum":
        fact["values"] = ENUM
    if draw(st.integers(0, 4)) == 4:
        fact["default"] = draw(st.sampled_from(CONSTANTS[ftype]))
    prefix = "context" if subject == "any" else subject
    return f"{prefix}.f{index}", fact


@st.composite
def loadable_catalogues(draw: st.DrawFn) -> Facts:
    """Base facts, records facts, and integer facts derived from records by clean_record_years."""
    facts: Facts = dict(draw(base_fact(i)) for i in range(draw(st.integers(2, 7))))
    for j in range(draw(st.integers(0, 2))):
        subject = draw(st.sampled_from(("person", "enterprise")))
        records = f"{subject}.r{j}"
        facts[records] = {
            "type": "records",
            "subject": subject,
            "class": draw(st.sampled_from(CLASSES)),
            "domain": f"records_{j}",
            "source": f"记录 {j}",
        }
        for k in range(draw(st.integers(1, 2))):
            derived: dict[str, Any] = {
                "type": "integer",
                "subject": subject,
                "derived_from": [records],
                "derive": "clean_record_years",
                "domain": f"derived_{j}_{k}",
                "source": f"派生 {j}-{k}",
            }
            if draw(st.booleans()):  # a class on a derived fact is ignored by the guard
                derived["class"] = draw(st.sampled_from(CLASSES))
            facts[f"{subject}.d{j}_{k}"] = derived
    return facts


@st.composite
def tainted_catalogue_additions(draw: st.DrawFn, kinds: list[str]) -> tuple[Facts, str]:
    """A personal-score fact a policy serving ``kinds`` can read, base or derived."""
    subject = draw(st.sampled_from([*kinds, "any"]))
    prefix = "context" if subject == "any" else subject
    if subject == "any" or draw(st.booleans()):
        return {
            f"{prefix}.score": {
                "type": "integer",
                "subject": subject,
                "class": "personal_score",
                "domain": "market_credit_score",
                "source": "市场信用分",
            }
        }, f"{prefix}.score"
    extra = {
        f"{prefix}.score_history": {
            "type": "records",
            "subject": subject,
            "class": "personal_score",
            "domain": "market_credit_score",
            "source": "信用分历史",
        },
        f"{prefix}.score_years": {
            "type": "integer",
            "subject": subject,
            "derived_from": [f"{prefix}.score_history"],
            "derive": "clean_record_years",
            "class": draw(st.sampled_from(["effective_document", "context"])),
            "domain": "market_credit_score",
            "source": "信用分稳定年数",
        },
    }
    return extra, f"{prefix}.score_years"


@dataclass
class Scenario:
    facts: Facts
    policy: dict[str, Any]
    subjects: list[dict[str, Any]]
    # A constrain rule and the personal-score fact planted in it, if one was.
    planted: tuple[str, str] | None = None

    @property
    def classes(self) -> dict[str, frozenset[str]]:
        return oracle_classes(self.facts)


@functools.cache
def _values_of(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def values_of(values: list[Any]) -> st.SearchStrategy[Any]:
    return _values_of(tuple(values))


def readable(facts: Facts, kinds: Iterable[str]) -> list[tuple[str, str]]:
    return [
        (name, f["type"])
        for name, f in sorted(facts.items())
        if f["type"] != "records" and (f["subject"] == "any" or f["subject"] in kinds)
    ]


@st.composite
def subjects(draw: st.DrawFn, facts: Facts) -> dict[str, Any]:
    """A subject's facts: each readable fact has a value of its type, or is missing."""
    values = {}
    for name, f in sorted(facts.items()):
        if f["type"] != "records" and draw(st.booleans()):
            values[name] = draw(values_of(DOMAIN[f["type"]]))
    return values


def plant(cond: Any, cmp: dict[str, Any], where: int) -> Any:
    """``cmp`` placed into ``cond`` under some polarity and nesting."""
    return [
        {"all": [cond, cmp]},
        {"any": [cmp, cond]},
        {"not": {"all": [cond, {"not": cmp}]}},
        {"any": [{"all": [{"not": cmp}, cond]}, cond]},
    ][where]


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    with_score: bool = False,
    plant_score: bool = False,
    lawful_effects: bool = False,
    bad_params: bool = True,
    bps: bool | None = None,
) -> Scenario:
    """A catalogue, a policy over it and subjects.

    ``with_score`` adds a personal-score fact (base or derived) the policy can
    read, ``plant_score`` also plants it in a constrain rule. ``lawful_effects``
    keeps constrain rules to facts the oracle finds safe, to known measures and
    out of basic public services (and then makes sure there is one where it
    can), so that most policies are accepted; ``bad_params`` lets now and then a
    grant parameter out of its range.
    """
    basic = draw(st.booleans()) if bps is None else bps
    facts = draw(loadable_catalogues())
    kinds = draw(
        st.lists(st.sampled_from(("person", "enterprise")), min_size=1, max_size=2, unique=True)
    )
    planted_fact = None
    if with_score or plant_score:
        extra, planted_fact = draw(tainted_catalogue_additions(kinds))
        facts.update(extra)
    can_read = readable(facts, kinds)
    assume(can_read)
    classes = oracle_classes(facts)
    safe = [(n, t) for n, t in can_read if classes[n] <= CONSTRAINT_OK]
    if lawful_effects:
        may_constrain = bool(safe) and not basic
    else:  # a forced basic public service is all grants half of the time
        may_constrain = bps is not True or draw(st.booleans())
    # Two in three rules constrain where they may (and the simplest draw is a constraint).
    count = draw(st.integers(1, 4))
    effects = [may_constrain and draw(st.integers(0, 2)) < 2 for _ in range(count)]
    if lawful_effects and may_constrain and not any(effects):
        effects[draw(st.integers(0, len(effects) - 1))] = True
    rules = []
    for i, constrains in enumerate(effects):
        rule: dict[str, Any] = {"id": f"r{i}"}
        if not constrains:
            rule["when"] = draw(conditions(can_read))
            rule["grant"] = draw(grants(bad_params))
        else:
            wild = not lawful_effects and draw(st.integers(0, 3)) == 3
            rule["when"] = draw(conditions(can_read if wild or not safe else safe))
            wrong = not lawful_effects and draw(st.integers(0, 19)) == 19
            rule["constrain"] = {"measure": "travel.restrict_flights" if wrong else MEASURE}
        rules.append(rule)
    planted = None
    if plant_score:
        assert planted_fact is not None
        constrains = [r for r in rules if "constrain" in r]
        if not constrains:
            rules.append({"id": f"r{len(rules)}", "constrain": {"measure": MEASURE}})
            rules[-1]["when"] = draw(conditions(safe or can_read, leaves=3))
            constrains = [rules[-1]]
        target = draw(st.sampled_from(constrains))
        cmp = draw(comparison(planted_fact, "integer"))
        target["when"] = plant(target["when"], cmp, draw(st.integers(0, 3)))
        planted = (target["id"], planted_fact)
    policy = {
        "id": "generated.policy",
        "version": "1",
        "scene": "generated",
        "title": "生成的政策",
        "basic_public_service": basic,
        "subjects": kinds,
        "departments": {"initiating": "测试", "implementing": "测试"},
        "legal_basis": ["测试依据"],
        "effective": {"from": D(2025, 1, 1), "until": None},
        "rules": rules,
    }
    people = draw(st.lists(subjects(facts), min_size=1, max_size=2))
    return Scenario(facts, policy, people, planted)


# --- loading -----------------------------------------------------------------------


def load(scenario: Scenario) -> CompiledPolicy | list[Problem]:
    """Load the scenario as a policy directory: the compiled policy, or the problems."""
    with tempfile.TemporaryDirectory(prefix="guard-") as tmp:
        directory = Path(tmp)
        (directory / "catalogue.yaml").write_text(dump({"facts": scenario.facts}), "utf-8")
        (directory / "benefits.yaml").write_text(BENEFITS_TEXT, "utf-8")
        (directory / "measures.yaml").write_text(MEASURES_TEXT, "utf-8")
        (directory / "generated.yaml").write_text(dump(scenario.policy), "utf-8")
        try:
            policies = load_policy_dir(directory)
        except PolicyLoadError as exc:
            refusal = exc
        else:
            refusal = None
    if refusal is not None:
        assert not refusal.unreadable, refusal.problems
        note("refused: " + "; ".join(map(str, refusal.problems)))
        return refusal.problems
    compiled = policies.active("generated", DAY)
    assert compiled is not None
    return compiled


def accepted(scenario: Scenario) -> CompiledPolicy:
    result = load(scenario)
    assume(not isinstance(result, list))
    assert not isinstance(result, list)
    return result


def score_tainted(scenario: Scenario) -> list[str]:
    classes = scenario.classes
    return sorted(
        n
        for n, f in scenario.facts.items()
        if f["type"] != "records" and "personal_score" in classes[n]
    )


@st.composite
def score_variant(draw: st.DrawFn, subject: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    """The same subject with personal-score facts changed, added or removed."""
    other = dict(subject)
    for name in score_tainted(scenario):
        how = draw(st.sampled_from(("keep", "remove", "set")))
        if how == "remove":
            other.pop(name, None)
        elif how == "set":
            other[name] = draw(values_of(DOMAIN[scenario.facts[name]["type"]]))
    return other


def fired(compiled_rules: Iterable[CompiledRule], facts: Mapping[str, Any]) -> dict[str, Any]:
    return {rule.id: rule.predicate(facts) for rule in compiled_rules}


def fired_constraints(compiled_rules: Iterable[CompiledRule], facts: Mapping[str, Any]) -> set[str]:
    """Constrain rules whose condition is true — before any runtime guard."""
    return {r.id for r in compiled_rules if r.measure is not None and r.predicate(facts) is True}


# --- properties through the loader ---------------------------------------------------


@examples(30)
@given(scenario=scenarios(with_score=True, bad_params=False, bps=False), data=st.data())
def test_non_interference(scenario: Scenario, data: st.DataObject) -> None:
    """Subjects differing only in personal-score facts get identical constraints."""
    compiled = accepted(scenario)
    event(f"constrain rules: {sum(r.measure is not None for r in compiled.rules)}")
    # What makes it so: every constrain rule of an accepted policy reads only facts
    # that are, by the test's own taint computation, documents or context.
    classes = scenario.classes
    for rule in compiled.rules:
        if rule.measure is not None:
            assert all(classes[f] <= CONSTRAINT_OK for f in rule.reason.facts), rule.id
            assert rule.classes <= CONSTRAINT_OK, rule.id
    for subject in scenario.subjects:
        other = data.draw(score_variant(subject, scenario))
        a, b = compiled.evaluate(subject), compiled.evaluate(other)
        event(f"outcomes: {a.outcome}/{b.outcome}; score facts differ: {subject != other}")
        assert a.constraints == b.constraints
        assert fired_constraints(compiled.rules, subject) == fired_constraints(
            compiled.rules, other
        )
        # The static guard did the work: the runtime guard never had to drop a rule.
        assert a.dropped == b.dropped == []
        # Had the policy been (wrongly) served as a basic public service, the runtime
        # guard would drop every firing constraint rather than constrain.
        served = evaluate_rules(compiled.rules, subject, BENEFIT_MODEL, basic_public_service=True)
        assert served.outcome != "constrained"
        assert set(served.dropped) == fired_constraints(compiled.rules, subject)


@examples(30)
@given(scenario=scenarios(with_score=True, bad_params=False, bps=False))
def test_no_constraint_without_a_document(scenario: Scenario) -> None:
    """A subject no effective document names is never constrained, whatever else is known."""
    result = load(scenario)
    if isinstance(result, list):
        return  # refused: nothing serves
    documents = {name for name, cls in scenario.classes.items() if cls == {"effective_document"}}
    for subject in scenario.subjects:
        undocumented = {k: v for k, v in subject.items() if k not in documents}
        outcome = result.evaluate(undocumented)
        event(f"constrain rules: {sum(r.measure is not None for r in result.rules)}")
        assert outcome.constraints == [], (undocumented, outcome)


@examples(30)
@given(scenario=scenarios(bps=True, bad_params=False), data=st.data())
def test_basic_public_service_is_never_constrained(scenario: Scenario, data: st.DataObject) -> None:
    """A basic public service with a constrain rule is refused; one accepted never constrains."""
    constrain_rules = {r["id"] for r in scenario.policy["rules"] if "constrain" in r}
    result = load(scenario)
    event("refused" if isinstance(result, list) else "accepted")
    if isinstance(result, list):
        flagged = {p.rule for p in result if p.code == "constraint_in_basic_public_service"}
        assert flagged == constrain_rules
        return
    assert not constrain_rules
    assert all(rule.measure is None for rule in result.rules)
    for subject in scenario.subjects:
        other = data.draw(subjects(scenario.facts))
        for facts in (subject, other, {}):
            assert result.evaluate(facts).outcome in ("granted", "standard")


def param_ok(code: str, name: str, value: Any) -> bool:
    """The test's own reading of "within the benefit's favourable range"."""
    spec = BENEFITS.get(code, {}).get("params", {}).get(name)
    if spec is None:
        return False
    if spec["type"] == "integer":
        typed = type(value) is int
    else:
        typed = type(value) in (int, float) and not math.isnan(value)
    lo, hi = spec.get("min"), spec.get("max")
    return typed and (lo is None or value >= lo) and (hi is None or value <= hi)


def grant_ok(grant: Mapping[str, Any]) -> bool:
    return grant["benefit"] in BENEFITS and all(
        param_ok(grant["benefit"], n, v) for n, v in grant["params"].items()
    )


@examples(40)
@given(scenario=scenarios(lawful_effects=True))
def test_granted_params_are_within_the_catalogue_ranges(scenario: Scenario) -> None:
    """Grants out of range are refused (exactly those); what is granted is in range."""
    bad = {r["id"] for r in scenario.policy["rules"] if "grant" in r and not grant_ok(r["grant"])}
    event(f"grants out of range: {bool(bad)}")
    result = load(scenario)
    if isinstance(result, list):
        assert {p.rule for p in result if p.code == "benefit_param_out_of_range"} == bad
        return
    assert not bad
    for rule in result.rules:
        if rule.benefit is not None:
            assert all(param_ok(rule.benefit, n, v) for n, v in rule.params.items())
    for subject in scenario.subjects:
        for code, params in result.evaluate(subject).benefits:
            assert all(param_ok(code, n, v) for n, v in params.items()), (code, params)


def _reads_a_default(rule: CompiledRule, facts: Facts) -> bool:
    return any("default" in facts[name] for name in rule.reason.facts)


@examples(30)
@given(scenario=scenarios(with_score=True, lawful_effects=True, bad_params=False), data=st.data())
def test_missing_data_never_fires_a_rule(scenario: Scenario, data: st.DataObject) -> None:
    """With every fact missing nothing is known; filling in unknowns never retracts a verdict."""
    compiled = accepted(scenario)
    for rule in compiled.rules:
        if not _reads_a_default(rule, scenario.facts):
            assert rule.predicate({}) is None, rule.id
    if not any(_reads_a_default(r, scenario.facts) for r in compiled.rules):
        assert compiled.evaluate({}).outcome == "standard"

    for partial in scenario.subjects:
        # Extend with values for facts that are missing and have no default.
        extension = dict(partial)
        for name, f in sorted(scenario.facts.items()):
            open_ = name not in partial and "default" not in f and f["type"] != "records"
            if open_ and data.draw(st.booleans()):
                extension[name] = data.draw(values_of(DOMAIN[f["type"]]))
        before, after = fired(compiled.rules, partial), fired(compiled.rules, extension)
        for rule_id, verdict in before.items():
            if verdict is not None:
                assert after[rule_id] is verdict, (rule_id, partial, extension)
        small, large = compiled.evaluate(partial), compiled.evaluate(extension)
        assert set(small.constraints) <= set(large.constraints)
        if large.outcome != "constrained":
            assert {c for c, _ in small.benefits} <= {c for c, _ in large.benefits}


@examples(30)
@given(scenario=scenarios(plant_score=True))
def test_a_personal_score_in_a_constraint_is_always_refused(scenario: Scenario) -> None:
    """However it is nested or derived, a planted score in a constrain rule is refused."""
    assert scenario.planted is not None
    rule_id, fact = scenario.planted
    result = load(scenario)
    assert isinstance(result, list), "a constrain rule reading a personal score was accepted"
    hits = [p for p in result if p.rule == rule_id and p.code == "personal_score_to_constraint"]
    assert any(p.message.startswith(f"constrain reads {fact}") for p in hits), result
    for problem in hits:
        _assert_valid_path(problem, scenario.facts, frozenset({"personal_score"}))


@examples(30)
@given(scenario=scenarios(with_score=True))
def test_taint_refusals_are_exactly_the_specified_ones(scenario: Scenario) -> None:
    """The (rule, code) pairs of the guard's taint and scene refusals match an oracle."""
    classes = scenario.classes
    want: set[tuple[str, str]] = set()
    for rule in scenario.policy["rules"]:
        if "constrain" not in rule:
            continue
        if scenario.policy["basic_public_service"]:
            want.add((rule["id"], "constraint_in_basic_public_service"))
        for name in read_facts(rule["when"]):
            if (code := expected_taint(classes[name])) is not None:
                want.add((rule["id"], code))
    result = load(scenario)
    codes = {*TAINT_CODES, "constraint_in_basic_public_service"}
    got = (
        set()
        if not isinstance(result, list)
        else {
            (p.rule, p.code)
            for p in result
            if p.code not in TAINT_CODES or p.message.startswith("constrain reads")
        }
    )
    event(f"expected refusals: {sorted({code for _, code in want})}")
    assert {pair for pair in got if pair[1] in codes} == want


def _assert_valid_path(problem: Problem, facts: Facts, wanted: frozenset[str]) -> None:
    """The printed path follows derived_from edges down to a base fact of a wanted class."""
    path = problem.message.removeprefix("constrain reads ").split(" (", 1)[0].split(" ← ")
    for upper, lower in itertools.pairwise(path):
        assert lower in facts[upper]["derived_from"], (upper, lower)
    last = facts[path[-1]]
    assert "derived_from" not in last, path
    assert last["class"] in wanted, path
    assert len(set(path)) == len(path), path


# --- properties on the checks directly: arbitrary derivation chains -----------------


@st.composite
def deep_catalogues(draw: st.DrawFn) -> Facts:
    """Base facts plus derived facts over any facts at all: chains, diamonds, cycles."""
    facts: Facts = {}
    for i in range(draw(st.integers(1, 5))):
        ftype = draw(st.sampled_from(TYPES))
        facts[f"any.b{i}"] = {
            "type": ftype,
            "subject": "any",
            "class": draw(st.sampled_from(CLASSES)),
            "domain": "d",
            "source": "s",
            **({"values": ENUM} if ftype == "enum" else {}),
        }
    derived = [f"any.d{i}" for i in range(draw(st.integers(1, 6)))]
    names = [*facts, *derived]
    for name in derived:
        ftype = draw(st.sampled_from(TYPES))
        facts[name] = {
            "type": ftype,
            "subject": "any",
            "derived_from": draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)),
            "derive": "declared_only",
            "domain": "d",
            "source": "s",
            **({"values": ENUM} if ftype == "enum" else {}),
        }
    return facts


def _direct_policy(rules: list[dict[str, Any]]) -> Policy:
    return Policy.model_validate(
        {
            "id": "direct",
            "version": "1",
            "scene": "direct",
            "title": "直接",
            "basic_public_service": False,
            "subjects": ["person"],
            "departments": {"initiating": "测试", "implementing": "测试"},
            "legal_basis": ["测试依据"],
            "effective": {"from": D(2025, 1, 1)},
            "rules": rules,
        }
    )


@st.composite
def deep_scenarios(draw: st.DrawFn) -> tuple[Facts, list[dict[str, Any]]]:
    facts = draw(deep_catalogues())
    every = [(n, f["type"]) for n, f in sorted(facts.items())]
    classes = oracle_classes(facts)
    safe = [(n, t) for n, t in every if classes[n] <= CONSTRAINT_OK]
    rules = []
    for i in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            rules.append(
                {
                    "id": f"r{i}",
                    "when": draw(conditions(every)),
                    "grant": {"benefit": "green_channel"},
                }
            )
        else:
            pool = safe if safe and draw(st.booleans()) else every
            rules.append(
                {"id": f"r{i}", "when": draw(conditions(pool)), "constrain": {"measure": MEASURE}}
            )
    return facts, rules


def _compile_direct(
    policy: Policy, catalogue: FactCatalogue, taint: Taint
) -> tuple[CompiledRule, ...]:
    defaults = {n: f.default for n, f in catalogue.facts.items() if f.default is not None}
    compiled = []
    for rule in policy.rules:
        reads = tuple(dict.fromkeys(c.fact for c in comparisons(rule.when)))
        effect = "grant" if rule.grant else "constrain"
        compiled.append(
            CompiledRule(
                id=rule.id,
                predicate=compile_condition(rule.when, defaults),
                reason=Reason(rule.id, effect, (), reads),
                benefit=rule.grant.benefit if rule.grant else None,
                params=dict(rule.grant.params) if rule.grant else {},
                measure=rule.constrain.measure if rule.constrain else None,
                classes=frozenset().union(*(taint.classes(f) for f in reads)),
            )
        )
    return tuple(compiled)


@examples(100)
@given(scenario=deep_scenarios(), data=st.data())
def test_taint_through_any_chain_of_derived_facts(
    scenario: tuple[Facts, list[dict[str, Any]]], data: st.DataObject
) -> None:
    facts, rules = scenario
    catalogue = FactCatalogue.model_validate({"facts": facts})
    policy = _direct_policy(rules)
    taint = Taint(catalogue)
    classes = oracle_classes(facts)
    # Query in a random order: the answer may not depend on what was asked first.
    for name in data.draw(st.permutations(sorted(facts))):
        assert taint.classes(name) == classes[name], name

    problems = check_policy(policy, "p.yaml", catalogue, BENEFIT_MODEL, MEASURE_MODEL, taint)
    for rule in rules:
        if "constrain" not in rule:
            assert not [p for p in problems if p.rule == rule["id"] and p.code in TAINT_CODES]
            continue
        for name in dict.fromkeys(read_facts(rule["when"])):
            code = expected_taint(classes[name])
            mine = [
                p
                for p in problems
                if p.rule == rule["id"]
                and p.code in TAINT_CODES
                and p.message.startswith(f"constrain reads {name} ")
            ]
            if code is None:
                assert not mine, mine
                continue
            assert [p.code for p in mine] == [code], (name, problems)
            wanted = (
                frozenset({"personal_score"})
                if code == "personal_score_to_constraint"
                else frozenset(CLASSES) - CONSTRAINT_OK
            )
            _assert_valid_path(mine[0], facts, wanted)

    if [p for p in problems if p.code in TAINT_CODES]:
        return
    # Accepted as far as taint goes: non-interference, without the runtime guard's help.
    compiled = _compile_direct(policy, catalogue, taint)
    tainted = sorted(n for n in facts if "personal_score" in classes[n])
    for _ in range(2):
        subject = {
            n: data.draw(values_of(DOMAIN[f["type"]]))
            for n, f in sorted(facts.items())
            if data.draw(st.booleans())
        }
        other = dict(subject)
        for name in tainted:
            if data.draw(st.booleans()):
                other.pop(name, None)
            else:
                other[name] = data.draw(values_of(DOMAIN[facts[name]["type"]]))
        a = evaluate_rules(compiled, subject, BENEFIT_MODEL, basic_public_service=False)
        b = evaluate_rules(compiled, other, BENEFIT_MODEL, basic_public_service=False)
        assert a.constraints == b.constraints
        assert fired_constraints(compiled, subject) == fired_constraints(compiled, other)
        assert a.dropped == b.dropped == []


# --- the unreachable check is exact --------------------------------------------------


@st.composite
def small_conditions(draw: st.DrawFn) -> tuple[Facts, Any]:
    facts: Facts = {}
    for i in range(draw(st.integers(1, 3))):
        ftype = draw(st.sampled_from(TYPES))
        facts[f"any.x{i}"] = {
            "type": ftype,
            "subject": "any",
            "class": "context",
            "domain": "d",
            "source": "s",
            **({"values": ENUM} if ftype == "enum" else {}),
        }
    readable_facts = [(n, f["type"]) for n, f in facts.items()]
    return facts, draw(conditions(readable_facts, leaves=5))


@examples(150)
@given(case=small_conditions())
def test_unreachable_rule_is_exact(case: tuple[Facts, Any]) -> None:
    """A rule is refused as unreachable iff no assignment at all makes it true."""
    facts, when = case
    catalogue = FactCatalogue.model_validate({"facts": facts})
    rule = _direct_policy([{"id": "r", "when": when, "grant": {"benefit": "green_channel"}}])
    predicate = compile_condition(rule.rules[0].when, {})
    names = sorted(facts)
    choices = [[None, *DOMAIN[facts[n]["type"]]] for n in names]
    satisfiable = any(
        predicate({n: v for n, v in zip(names, values, strict=True) if v is not None}) is True
        for values in itertools.product(*choices)
    )
    reason = unsatisfiable_reason(rule.rules[0].when, catalogue)
    assert (reason is None) == satisfiable, reason
    problems = check_policy(
        rule, "p.yaml", catalogue, BENEFIT_MODEL, MEASURE_MODEL, Taint(catalogue)
    )
    assert ("unreachable_rule" in {p.code for p in problems}) == (not satisfiable)
    # Under three-valued logic nothing fires with every fact missing.
    assert predicate({}) is None
