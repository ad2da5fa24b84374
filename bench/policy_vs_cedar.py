"""Policy evaluation per decision: our compiled policies against cedarpy, same rules, same run.

    .venv/bin/python bench/policy_vs_cedar.py [--ours 20000] [--cedar 3000] [--repeat 5]

Needs cedarpy in the venv (``.venv/bin/pip install cedarpy``); the gateway does not.

For every scene with an active policy, each rule is translated into one Cedar
policy: a ``permit`` for a grant, a ``forbid`` for a constraint, its condition
in ``when { ... }``. POLICY.md's three-valued logic is kept by translating each
condition twice, "is definitely true" and "is definitely false", so ``not``
swaps them and a comparison on a missing fact is neither (``has`` guards every
read; a catalogue ``default`` becomes the ``else`` branch of an
``if has ... then ... else``). Missing data therefore never fires a Cedar
policy either, and no policy is ever skipped because of an evaluation error
(the check below asserts Cedar reports none).

Subjects are the product, over every fact a scene's rules read, of: missing,
each enum value, ``true``/``false``, and each number compared against +-1.
Each subject is decided by both engines and the full answer compared —
outcome, benefits with merged parameters, constraints, and the ids of the
rules that fired — for every Cedar encoding timed; one disagreement fails
the run before anything is timed.

One decision, end to end from a fact dict to the answer:

* ours: ``compiled.evaluate(facts)``;
* cedar ``ctx-1call``: all facts in the request context, policies and an empty
  entity store parsed once into handles, one ``is_authorized`` call; its
  ``reasons`` (the policies that determined the decision) give the fired rules,
  which are mapped back to benefits (parameters merged as ours does) or
  measures;
* cedar ``entity-1call``: subject facts as attributes of the resource entity
  (built and serialised per call, as a subject's entity is new each decision),
  ``context.*`` facts in the context, one ``is_authorized`` call;
* cedar ``action-batch``: benefit as action — one request per benefit of the
  scene in one ``is_authorized_batch`` call, forbids apply to every action;
* cedar ``text-1call``: ``entity-1call`` with the policies passed as text,
  which cedarpy re-parses on every call (the API without handles);
* cedar ``ctx-raw``: ``ctx-1call`` through cedarpy's private extension
  (``cedarpy._internal.is_authorized_batch``), skipping the public wrapper's
  request copy and ``AuthzResult`` objects: we serialise the context and parse
  the response JSON ourselves. The floor of what cedarpy can do per call.

The headline ratio is against the fastest of these. Reported beside it, not in
it: ``ctx-raw`` with 64 subjects per call (amortised throughput, which a
gateway answering one request at a time cannot use without adding latency),
and Cedar's own ``authz_duration_micros`` (its evaluator alone, no request
building, JSON or Python/Rust crossing). Wall time is the headline; thread CPU
time is recorded too. Results go to bench/results/policy_eval.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import operator
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.policy.evaluator import merge_params  # noqa: E402
from gateway.policy.loader import CompiledPolicy, PolicySet, load_policy_dir  # noqa: E402
from gateway.policy.model import (  # noqa: E402
    AllOf,
    AnyOf,
    BenefitCatalogue,
    Comparison,
    Condition,
    FactCatalogue,
    FactType,
    Not,
)

try:
    import cedarpy
    from cedarpy import _internal
except ImportError:  # pragma: no cover - a bench dependency only
    sys.exit("cedarpy is not installed: .venv/bin/pip install cedarpy")

MISSING = object()
# Entity uids as {"type", "id"} dicts: the string form ('Subject::"s"') sends
# every uid through Cedar's parser on every call, about 10 µs each here.
PRINCIPAL = {"type": "Caller", "id": "bench"}
RESOURCE = {"type": "Subject", "id": "subject"}

# ---------------------------------------------------------------------------
# Translation of our condition trees into Cedar expressions
# ---------------------------------------------------------------------------

_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda v, options: v in options,
    "not_in": lambda v, options: v not in options,
}


def cedar_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(cedar_literal(v) for v in value) + "]"
    # Cedar has no floats; the policies compare numbers against integers only.
    raise TypeError(f"no Cedar literal for {value!r}")


@dataclass(frozen=True)
class Layout:
    """Where a fact lives in a Cedar request: ``resource`` attributes or ``context``."""

    name: str
    subject_on_resource: bool

    def root(self, fact: str) -> str:
        on_resource = self.subject_on_resource and not fact.startswith("context.")
        return "resource" if on_resource else "context"

    def has(self, fact: str) -> str:
        return f"{self.root(fact)} has {json.dumps(fact)}"

    def read(self, fact: str) -> str:
        return f"{self.root(fact)}[{json.dumps(fact)}]"


CTX = Layout("ctx", subject_on_resource=False)
ENTITY = Layout("entity", subject_on_resource=True)


def _compare(cmp: Comparison, layout: Layout) -> str:
    x = layout.read(cmp.fact)
    if cmp.op == "in":
        return f"{cedar_literal(cmp.value)}.contains({x})"
    if cmp.op == "not_in":
        return f"!{cedar_literal(cmp.value)}.contains({x})"
    return f"{x} {cmp.op} {cedar_literal(cmp.value)}"


def cedar_truth(cond: Condition, want: bool, layout: Layout, defaults: Mapping[str, Any]) -> str:
    """A Cedar expression that is true exactly when ``cond`` is definitely ``want``.

    Unknown (a missing fact without a default) makes both translations false.
    """
    if isinstance(cond, Comparison):
        body = _compare(cond, layout)
        if not want:
            body = f"!({body})"
        default = defaults.get(cond.fact)
        if default is None:
            return f"({layout.has(cond.fact)} && {body})"
        value: Any = frozenset(cond.value) if cond.op in ("in", "not_in") else cond.value
        fallback = _PY_OPS[cond.op](default, value) == want
        return f"(if {layout.has(cond.fact)} then {body} else {cedar_literal(fallback)})"
    if isinstance(cond, Not):
        return cedar_truth(cond.not_, not want, layout, defaults)
    if isinstance(cond, AllOf | AnyOf):
        parts = cond.all if isinstance(cond, AllOf) else cond.any
        # all: true when every part is true, false when some part is false; any: dual.
        joiner = " && " if isinstance(cond, AllOf) == want else " || "
        return "(" + joiner.join(cedar_truth(p, want, layout, defaults) for p in parts) + ")"
    raise TypeError(f"not a condition: {type(cond).__name__}")


@dataclass(frozen=True)
class RuleInfo:
    id: str
    benefit: str | None
    params: Mapping[str, Any]
    measure: str | None


def cedar_policies(
    compiled: CompiledPolicy, layout: Layout, defaults: Mapping[str, Any], per_benefit: bool
) -> str:
    """One Cedar policy per rule, in rule order (Cedar names them policy0, policy1, ...)."""
    out = []
    for rule in compiled.policy.rules:
        when = cedar_truth(rule.when, True, layout, defaults)
        if rule.grant is not None:
            effect = "permit"
            action = f'action == Action::"{rule.grant.benefit}"' if per_benefit else "action"
        else:
            effect, action = "forbid", "action"
        out.append(f'@id("{rule.id}")\n{effect}(principal, {action}, resource)\nwhen {{ {when} }};')
    return "\n\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Decisions, in one comparable shape
# ---------------------------------------------------------------------------

Answer = tuple[
    str, tuple[tuple[str, tuple[tuple[str, Any], ...]], ...], tuple[str, ...], tuple[str, ...]
]


def answer_of(
    outcome: str,
    benefits: Iterable[tuple[str, Mapping[str, Any]]],
    constraints: Iterable[str],
    fired: Iterable[str],
) -> Answer:
    return (
        outcome,
        tuple(sorted((code, tuple(sorted(params.items()))) for code, params in benefits)),
        tuple(sorted(constraints)),
        tuple(sorted(fired)),
    )


def decode(
    rules: Sequence[RuleInfo], index: Iterable[int], benefits: BenefitCatalogue
) -> tuple[str, list[tuple[str, dict[str, Any]]], list[str], list[str]]:
    """Fired rule indexes (Cedar ``reasons``) -> outcome, benefits, constraints, rule ids."""
    fired = [rules[i] for i in sorted(set(index))]
    measures = [r.measure for r in fired if r.measure is not None]
    if measures:
        return "constrained", [], list(dict.fromkeys(measures)), [r.id for r in fired]
    granted: dict[str, dict[str, Any]] = {}
    for r in fired:
        code = r.benefit
        assert code is not None
        current = granted.get(code)
        granted[code] = (
            dict(r.params) if current is None else merge_params(benefits, code, current, r.params)
        )
    if granted:
        return "granted", list(granted.items()), [], [r.id for r in fired]
    return "standard", [], [], []


def _position(policy_id: str) -> int:
    return int(policy_id[6:])  # "policy12" -> 12


@dataclass
class CedarEngine:
    """One Cedar encoding of a scene: how a fact dict becomes requests, and back."""

    name: str
    layout: Layout
    text: str
    policies: Any  # a cedarpy.PolicySet handle, or the text itself for text-1call
    rules: Sequence[RuleInfo]
    benefits: BenefitCatalogue
    actions: Sequence[dict[str, str]]
    empty_entities: Any
    raw: bool = False  # call cedarpy's extension directly, skipping its Python wrapper

    def requests(self, facts: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        if self.layout.subject_on_resource:
            attrs = {k: v for k, v in facts.items() if not k.startswith("context.")}
            context: Any = {k: v for k, v in facts.items() if k.startswith("context.")}
            entities: Any = [{"uid": RESOURCE, "attrs": attrs, "parents": []}]
        else:
            context, entities = facts, self.empty_entities
        if self.raw:
            context, entities = json.dumps(context), entities._inner
        reqs = [
            {"principal": PRINCIPAL, "action": action, "resource": RESOURCE, "context": context}
            for action in self.actions
        ]
        return reqs, entities

    def reasons(self, facts: Mapping[str, Any]) -> list[str]:
        """The ids of the policies that determined each request's decision."""
        reqs, entities = self.requests(facts)
        if self.raw:
            out = _internal.is_authorized_batch(reqs, self.policies, entities, None, False)
            ids: list[str] = []
            for text in out:
                ids.extend(json.loads(text)["diagnostics"]["reason"])
            return ids
        if len(reqs) == 1:
            return cedarpy.is_authorized(reqs[0], self.policies, entities).diagnostics.reasons
        ids = []
        for res in cedarpy.is_authorized_batch(reqs, self.policies, entities):
            ids.extend(res.diagnostics.reasons)
        return ids

    def decide(self, facts: Mapping[str, Any]) -> tuple[str, list[Any], list[str], list[str]]:
        return decode(self.rules, [_position(p) for p in self.reasons(facts)], self.benefits)

    def decide_many(self, many: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Several subjects' decisions in one batch call (raw context encoding only)."""
        if not self.raw or self.layout.subject_on_resource or len(self.actions) != 1:
            raise ValueError(f"{self.name}: decide_many needs the raw one-action context encoding")
        action = self.actions[0]
        reqs = [
            {
                "principal": PRINCIPAL,
                "action": action,
                "resource": RESOURCE,
                "context": json.dumps(f),
            }
            for f in many
        ]
        out = _internal.is_authorized_batch(
            reqs, self.policies, self.empty_entities._inner, None, False
        )
        return [
            decode(
                self.rules,
                [_position(p) for p in json.loads(t)["diagnostics"]["reason"]],
                self.benefits,
            )
            for t in out
        ]

    def responses(self, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every response in full (for the check, not timed)."""
        reqs, entities = self.requests(facts)
        if self.raw:
            out = _internal.is_authorized_batch(reqs, self.policies, entities, None, False)
            return [json.loads(text) for text in out]
        return [
            {
                "diagnostics": {
                    "reason": r.diagnostics.reasons,
                    "errors": r.diagnostics.errors,
                    "id_annotations_by_reason": r.diagnostics.id_annotations_by_reason,
                },
                "metrics": r.metrics,
            }
            for r in cedarpy.is_authorized_batch(reqs, self.policies, entities)
        ]


# Informative only: many subjects per cedarpy call, which a gateway deciding one
# request at a time cannot do without adding latency.
BATCH = 64
AMORTISED = f"ctx-raw x{BATCH} subjects/call"

ENCODINGS = (
    # name, layout, benefit as action, policies as text, raw extension call
    ("ctx-1call", CTX, False, False, False),
    ("entity-1call", ENTITY, False, False, False),
    ("action-batch", ENTITY, True, False, False),
    ("text-1call", ENTITY, False, True, False),
    ("ctx-raw", CTX, False, False, True),
)


def build_engines(compiled: CompiledPolicy, ps: PolicySet) -> list[CedarEngine]:
    defaults = {n: f.default for n, f in ps.catalogue.facts.items() if f.default is not None}
    rules = [
        RuleInfo(
            r.id,
            r.grant.benefit if r.grant else None,
            dict(r.grant.params) if r.grant else {},
            r.constrain.measure if r.constrain else None,
        )
        for r in compiled.policy.rules
    ]
    benefit_codes = list(dict.fromkeys(r.benefit for r in rules if r.benefit is not None))
    empty = cedarpy.Entities.from_json_str("[]")
    decide = [{"type": "Action", "id": "decide"}]
    per_benefit = [{"type": "Action", "id": b} for b in benefit_codes]
    engines = []
    for name, layout, by_action, as_text, raw in ENCODINGS:
        text = cedar_policies(compiled, layout, defaults, by_action)
        handle = text if as_text else cedarpy.PolicySet.from_str(text)
        actions = per_benefit if by_action else decide
        engines.append(
            CedarEngine(name, layout, text, handle, rules, ps.benefits, actions, empty, raw)
        )
    return engines


# ---------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------


def _walk(cond: Condition) -> Iterable[Comparison]:
    if isinstance(cond, Comparison):
        yield cond
    elif isinstance(cond, AllOf):
        for c in cond.all:
            yield from _walk(c)
    elif isinstance(cond, AnyOf):
        for c in cond.any:
            yield from _walk(c)
    elif isinstance(cond, Not):
        yield from _walk(cond.not_)


def subjects(compiled: CompiledPolicy, catalogue: FactCatalogue) -> list[dict[str, Any]]:
    """Every combination of boundary values (and absence) of the facts the scene reads."""
    compared: dict[str, set[Any]] = {}
    for rule in compiled.policy.rules:
        for cmp in _walk(rule.when):
            values = cmp.value if isinstance(cmp.value, list) else [cmp.value]
            compared.setdefault(cmp.fact, set()).update(values)
    # Facts the scene requires but no rule reads (context.matter_code) are
    # present, as they would be in a real request.
    for name in compiled.policy.context_required:
        compared.setdefault(name, set())
    axes: list[tuple[str, list[Any]]] = []
    for name in sorted(compared):
        fact = catalogue.facts[name]
        if fact.type is FactType.BOOLEAN:
            domain: list[Any] = [True, False]
        elif fact.type is FactType.ENUM:
            domain = list(fact.values or ())
        elif fact.type in (FactType.INTEGER, FactType.NUMBER):
            domain = sorted({v + d for v in compared[name] for d in (-1, 0, 1) if v + d >= 0})
        elif fact.type is FactType.STRING:
            domain = ["X-1"]
        else:
            raise TypeError(f"{name}: no subject values for {fact.type}")
        required = name in compiled.policy.context_required
        axes.append((name, domain if required and not compared[name] else [*domain, MISSING]))
    return [
        {name: v for (name, _), v in zip(axes, combo, strict=True) if v is not MISSING}
        for combo in itertools.product(*(domain for _, domain in axes))
    ]


# ---------------------------------------------------------------------------
# Equivalence check and timing
# ---------------------------------------------------------------------------

METRIC_KEYS = (
    "build_request_duration_micros",
    "load_entities_duration_micros",
    "parse_policies_duration_micros",
    "authz_duration_micros",
)


def check(
    scene: str, compiled: CompiledPolicy, engine: CedarEngine, facts_list: list[dict[str, Any]]
) -> dict[str, int]:
    """Decide every subject with both engines; exit on the first disagreement."""
    outcomes: dict[str, int] = {}
    for facts in facts_list:
        ev = compiled.evaluate(facts)
        ours = answer_of(ev.outcome, ev.benefits, ev.constraints, [r.rule for r in ev.reasons])
        for res in engine.responses(facts):
            diag = res["diagnostics"]
            if diag.get("errors"):
                sys.exit(f"FAIL {scene}/{engine.name}: Cedar errors {diag['errors']}")
            # The @id annotation must name the rule our positional mapping says.
            for pid, rid in diag.get("id_annotations_by_reason", {}).items():
                if engine.rules[_position(pid)].id != rid:
                    sys.exit(f"FAIL {scene}/{engine.name}: {pid} is {rid}, not rule {pid[6:]}")
        theirs = answer_of(*engine.decide(facts))
        if ours != theirs:
            sys.exit(
                f"FAIL {scene}/{engine.name}: engines disagree\n  facts: {facts}\n"
                f"  ours:  {ours}\n  cedar: {theirs}\n--- cedar policies ---\n{engine.text}"
            )
        outcomes[ours[0]] = outcomes.get(ours[0], 0) + 1
    return outcomes


def timed_run(fn: Callable[[Any], Any], seq: list[Any], per_call: int) -> tuple[float, float]:
    """µs per decision over one pass of ``seq``: wall clock, and this thread's CPU time."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for item in seq:
        fn(item)
    t1, c1 = time.perf_counter(), time.thread_time()
    n = len(seq) * per_call
    return (t1 - t0) / n * 1e6, (c1 - c0) / n * 1e6


def measure(
    targets: Mapping[str, tuple[Callable[[Any], Any], int, int]],
    facts_list: list[dict[str, Any]],
    repeat: int,
) -> dict[str, dict[str, Any]]:
    """Interleave runs of every target (``repeat`` rounds) so background load hits all alike.

    Each run cycles through the subjects in the same order; the median run
    counts. Wall time (perf_counter) is the headline; thread CPU time is kept
    beside it because it leaves out time the process spent descheduled, which
    on a shared machine is the noisier part. cedarpy holds the GIL and runs on
    the calling thread (``release_gil`` is off), so its work is in that count.
    A target whose third element is k > 1 takes k fact dicts per call.
    """
    seqs: dict[str, list[Any]] = {}
    for name, (_, n, k) in targets.items():
        flat = list(itertools.islice(itertools.cycle(facts_list), n))
        seqs[name] = flat if k == 1 else [flat[i : i + k] for i in range(0, n - k + 1, k)]
    for name, (fn, _, _) in targets.items():  # warm-up
        for item in seqs[name][:200]:
            fn(item)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    for _ in range(repeat):
        for name, (fn, _, k) in targets.items():
            runs[name].append(timed_run(fn, seqs[name], k))
    out = {}
    for name, r in runs.items():
        wall = [w for w, _ in r]
        cpu = [c for _, c in r]
        out[name] = {
            "us": statistics.median(wall),
            "min_us": min(wall),
            "cpu_us": statistics.median(cpu),
            "runs_us": [round(x, 3) for x in wall],
            "decisions": len(seqs[name]) * targets[name][2],
        }
    return out


def cedar_metrics(engine: CedarEngine, facts_list: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Cedar's own timings (whole µs per request, as it reports them) over ``n`` calls."""
    samples: dict[str, list[int]] = {k: [] for k in METRIC_KEYS}
    for facts in itertools.islice(itertools.cycle(facts_list), n):
        for res in engine.responses(facts):
            for key in METRIC_KEYS:
                samples[key].append(res["metrics"].get(key, 0))
    return {
        key.removesuffix("_duration_micros"): {
            "mean": statistics.fmean(v),
            "median": statistics.median(v),
        }
        for key, v in samples.items()
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
            model,
        )
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cedarpy": getattr(cedarpy, "__version__", None) or _dist_version("cedarpy"),
    }


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ours", type=int, default=20000, help="decisions timed per run, ours")
    ap.add_argument("--cedar", type=int, default=3000, help="decisions timed per run, Cedar")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    ap.add_argument("--scenes", default="loan,approval,library,transit")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "policy_eval.json")
    ap.add_argument("--show-policies", action="store_true", help="print the Cedar translation")
    args = ap.parse_args()

    ps = load_policy_dir(ROOT / "policies")
    today = dt.date.today()
    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/policy_vs_cedar.py", *sys.argv[1:]]),
        "machine": machine(),
        "iterations": {"ours": args.ours, "cedar": args.cedar, "repeat": args.repeat},
        "loadavg_start": loadavg(),
        "scenes": {},
    }
    rows = []
    for scene in args.scenes.split(","):
        compiled = ps.active(scene, today)
        if compiled is None:
            sys.exit(f"no active policy for scene {scene!r}")
        facts_list = subjects(compiled, ps.catalogue)
        engines = build_engines(compiled, ps)
        if args.show_policies:
            print(f"--- {scene} ({engines[0].name}) ---\n{engines[0].text}")
        entry: dict[str, Any] = {
            "policy": compiled.ref,
            "rules": len(compiled.rules),
            "subjects": len(facts_list),
            "cedar": {},
        }
        for engine in engines:
            entry["outcomes"] = check(scene, compiled, engine, facts_list)
            entry["cedar"][engine.name] = {"equivalent": True}
        raw = next(e for e in engines if e.name == "ctx-raw")
        many = [
            answer_of(*d)
            for i in range(0, len(facts_list), BATCH)
            for d in raw.decide_many(facts_list[i : i + BATCH])
        ]
        if many != [answer_of(*raw.decide(f)) for f in facts_list]:
            sys.exit(f"FAIL {scene}/{AMORTISED}: batched answers differ from one-by-one")
        print(
            f"{scene}: {len(facts_list)} subjects agree on all {len(engines)} Cedar encodings "
            f"({', '.join(f'{k} {v}' for k, v in sorted(entry['outcomes'].items()))})",
            flush=True,
        )
        targets: dict[str, tuple[Callable[[Any], Any], int, int]] = {
            "ours": (compiled.evaluate, args.ours, 1)
        }
        for engine in engines:
            slow = engine.name == "text-1call"  # re-parses the policies: ~10x fewer calls
            n = max(args.cedar // 10, 100) if slow else args.cedar
            targets[engine.name] = (engine.decide, n, 1)
        targets[AMORTISED] = (raw.decide_many, args.cedar, BATCH)
        timings = measure(targets, facts_list, args.repeat)
        entry["ours"] = timings.pop("ours")
        entry["ours_us"] = entry["ours"]["us"]
        # Not one decision's latency: kept out of the headline, reported beside it.
        entry["amortised"] = {AMORTISED: timings.pop(AMORTISED)}
        entry["amortised"][AMORTISED]["ratio"] = (
            entry["amortised"][AMORTISED]["us"] / entry["ours_us"]
        )
        for name, t in timings.items():
            entry["cedar"][name].update(t)
        ctx = next(e for e in engines if e.name == "ctx-1call")
        entry["cedar"]["ctx-1call"]["cedar_metrics_us"] = cedar_metrics(ctx, facts_list, 1000)
        best = min(entry["cedar"], key=lambda k: entry["cedar"][k]["us"])
        entry["cedar_best"] = best
        entry["ratio"] = entry["cedar"][best]["us"] / entry["ours_us"]
        best_cpu = min(entry["cedar"], key=lambda k: entry["cedar"][k]["cpu_us"])
        entry["ratio_cpu"] = entry["cedar"][best_cpu]["cpu_us"] / entry["ours"]["cpu_us"]
        # Cedar times authz by wall clock; its median leaves out calls where the process
        # was descheduled, so it is set against our CPU time, not our (loaded) wall time.
        # Whole µs, truncated: it understates Cedar by under 1 µs.
        authz = entry["cedar"]["ctx-1call"]["cedar_metrics_us"]["authz"]["median"]
        entry["ratio_vs_cedar_authz_only"] = authz / entry["ours"]["cpu_us"]
        report["scenes"][scene] = entry
        rows.append((scene, entry))
    report["loadavg_end"] = loadavg()

    names = [e.name for e in engines]
    for title, key, ours_key, ratio_key in (
        ("wall clock (perf_counter), median µs per decision", "us", "us", "ratio"),
        ("thread CPU time, median µs per decision", "cpu_us", "cpu_us", "ratio_cpu"),
    ):
        print(f"\n{title}")
        print(
            f"{'scene':<9}{'rules':>6}{'subj':>6}{'ours':>8}"
            + "".join(f"{n:>14}" for n in names)
            + f"{'cedar best/ours':>17}"
        )
        for scene, e in rows:
            cells = "".join(f"{e['cedar'][n][key]:>14.2f}" for n in names)
            print(
                f"{scene:<9}{e['rules']:>6}{e['subjects']:>6}{e['ours'][ours_key]:>8.2f}{cells}"
                f"{e[ratio_key]:>16.1f}×"
            )
    print(f"\nAmortised, not per decision: {AMORTISED} (one cedarpy call for {BATCH} subjects)")
    for scene, e in rows:
        a = e["amortised"][AMORTISED]
        print(f"  {scene:<9} {a['us']:.2f} µs per decision, {a['ratio']:.1f}× ours")
    print("\nInside one ctx-1call call, Cedar's own metrics (median µs per request):")
    for scene, e in rows:
        m = e["cedar"]["ctx-1call"]["cedar_metrics_us"]
        print(
            f"  {scene:<9}"
            + "  ".join(f"{k} {v['median']:.0f}" for k, v in m.items())
            + f"   (authz alone / ours CPU = {e['ratio_vs_cedar_authz_only']:.1f}×)"
        )
    worst = min(e["ratio"] for _, e in rows)
    report["min_ratio"] = worst
    report["goal"] = {"ratio": 5.0, "met": worst >= 5.0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nslowest ratio {worst:.1f}× (goal ≥ 5×: {'met' if worst >= 5 else 'NOT met'})")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
