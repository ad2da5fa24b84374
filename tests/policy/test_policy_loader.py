"""Loading and linting policy directories: every POLICY.md refusal code, and dated versions."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.policy.checks import Problem, Taint
from gateway.policy.loader import PolicyLoadError, PolicySet, load_policy_dir
from gateway.policy.model import FactCatalogue
from gateway.resources import shipped

SHIPPED = shipped("policies")
CATALOGUES = ("catalogue.yaml", "benefits.yaml", "measures.yaml")

BASE_POLICY: dict[str, Any] = {
    "id": "test.loan",
    "version": "1",
    "scene": "testloan",
    "title": "测试 信易贷",
    "basic_public_service": False,
    "subjects": ["enterprise"],
    "consent_required_for": ["enterprise"],
    "departments": {"initiating": "信用办", "implementing": "银行"},
    "legal_basis": ["国办发〔2021〕52号"],
    "effective": {"from": dt.date(2025, 1, 1), "until": None},
    "rules": [
        {
            "id": "discount",
            "when": {"fact": "enterprise.tax_credit_grade", "op": "in", "value": ["A", "B"]},
            "grant": {"benefit": "loan_rate_discount", "params": {"bp": 30}},
        },
        {
            "id": "listed",
            "when": {"fact": "enterprise.serious_dishonesty_listed", "op": "==", "value": True},
            "constrain": {"measure": "loan.restrict_credit"},
        },
    ],
}


def dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def policy(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE_POLICY)
    out.update(copy.deepcopy(changes))
    return out


def one_rule(when: Any, **effect: Any) -> dict[str, Any]:
    """A policy whose only rule is ``r`` with the given condition and effect."""
    if not effect:
        effect = {"grant": {"benefit": "green_channel"}}
    return policy(rules=[{"id": "r", "when": when, **effect}])


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    for name in CATALOGUES:
        shutil.copy(SHIPPED / name, d / name)
    return d


def add_facts(d: Path, **facts: dict[str, Any]) -> None:
    data = yaml.safe_load((d / "catalogue.yaml").read_text(encoding="utf-8"))
    data["facts"].update(facts)
    dump(d / "catalogue.yaml", data)


def refused(d: Path) -> list[Problem]:
    with pytest.raises(PolicyLoadError) as info:
        load_policy_dir(d)
    assert not info.value.unreadable
    return info.value.problems


def triples(problems: list[Problem]) -> set[tuple[str, str, str]]:
    return {(p.file, p.rule, p.code) for p in problems}


def only(problems: list[Problem], code: str) -> Problem:
    matching = [p for p in problems if p.code == code]
    assert len(matching) == 1, problems
    return matching[0]


# -- accepted sets ---------------------------------------------------------------------


def test_shipped_policies_load() -> None:
    policies = load_policy_dir(SHIPPED)
    assert set(policies.by_scene) == {
        "library",
        "loan",
        "transit",
        "approval",
        "rental",
        "medical",
        "tax",
        "parking",
    }
    assert policies.hash.startswith("sha256:")
    day = dt.date(2025, 6, 1)
    library = policies.active("library", day)
    assert library is not None
    assert library.policy.id == "library.deposit_waiver"
    assert policies.active("library", dt.date(2024, 12, 31)) is None
    assert [p.policy.scene for p in policies.active_all(day)] == sorted(policies.by_scene)


def test_shipped_library_policy_applies_the_catalogue_default() -> None:
    library = load_policy_dir(SHIPPED).active("library", dt.date(2025, 6, 1))
    assert library is not None
    # no court record at all: the court list is authoritative, so "not listed"
    assert library.evaluate({"person.credit_score": 650}).outcome == "granted"
    assert library.evaluate(
        {"person.credit_score": 650, "person.dishonest_executed": True}
    ).outcome == ("standard")
    assert library.evaluate({}).outcome == "standard"


def test_base_test_policy_is_accepted(pdir: Path) -> None:
    dump(pdir / "p.yaml", policy())
    policies = load_policy_dir(pdir)
    compiled = policies.active("testloan", dt.date(2025, 3, 1))
    assert compiled is not None
    assert compiled.ref["id"] == "test.loan"
    assert compiled.evaluate({"enterprise.tax_credit_grade": "A"}).outcome == "granted"


def test_files_that_are_not_yaml_are_ignored_and_yml_is_read(pdir: Path) -> None:
    (pdir / "README.txt").write_text("rules: [not a policy", encoding="utf-8")
    dump(pdir / "p.yml", policy())
    assert set(load_policy_dir(pdir).by_scene) == {"testloan"}


def test_hash_changes_with_content(pdir: Path) -> None:
    dump(pdir / "p.yaml", policy())
    first = load_policy_dir(pdir).hash
    dump(pdir / "p.yaml", policy(title="另一个标题"))
    assert load_policy_dir(pdir).hash != first


# -- problem format --------------------------------------------------------------------


def test_problem_prints_file_rule_code_message() -> None:
    assert str(Problem("loan.yaml", "r1", "unknown_measure", "why")) == (
        "loan.yaml:r1: unknown_measure: why"
    )


def test_refusal_message_lines_use_the_format(pdir: Path) -> None:
    dump(pdir / "p.yaml", one_rule({"fact": "enterprise.nope", "op": "==", "value": True}))
    with pytest.raises(PolicyLoadError) as info:
        load_policy_dir(pdir)
    assert str(info.value).splitlines()[0].startswith("p.yaml:r: unknown_fact: ")


def test_every_problem_is_reported_not_only_the_first(pdir: Path) -> None:
    dump(
        pdir / "a.yaml",
        policy(
            legal_basis=[],
            rules=[
                {
                    "id": "g",
                    "when": {"fact": "enterprise.red_listed", "op": "==", "value": True},
                    "grant": {"benefit": "loan_rate_discount", "params": {"bp": 500}},
                },
                {
                    "id": "c",
                    "when": {"fact": "enterprise.dishonest_executed", "op": "==", "value": True},
                    "constrain": {"measure": "no.such_measure"},
                },
            ],
        ),
    )
    dump(pdir / "b.yaml", policy(id="other", scene="other", departments=None))
    assert triples(refused(pdir)) >= {
        ("a.yaml", "-", "missing_legal_basis"),
        ("a.yaml", "g", "benefit_param_out_of_range"),
        ("a.yaml", "c", "unknown_measure"),
        ("b.yaml", "-", "invalid_policy"),
    }


# -- unknown_fact ------------------------------------------------------------------------


def test_condition_on_unknown_fact(pdir: Path) -> None:
    dump(pdir / "p.yaml", one_rule({"fact": "enterprise.nope", "op": "==", "value": True}))
    problem = only(refused(pdir), "unknown_fact")
    assert (problem.file, problem.rule) == ("p.yaml", "r")
    assert "enterprise.nope" in problem.message


def test_condition_on_a_fact_of_a_subject_the_policy_does_not_serve(pdir: Path) -> None:
    dump(pdir / "p.yaml", one_rule({"fact": "person.credit_score", "op": ">=", "value": 600}))
    assert triples(refused(pdir)) == {("p.yaml", "r", "unknown_fact")}


def test_subject_any_facts_are_readable_by_every_policy(pdir: Path) -> None:
    dump(pdir / "p.yaml", one_rule({"fact": "context.loan_amount", "op": "<=", "value": 100}))
    load_policy_dir(pdir)


def test_unknown_fact_nested_under_not_and_any(pdir: Path) -> None:
    cond = {
        "any": [
            {"fact": "enterprise.red_listed", "op": "==", "value": True},
            {"not": {"fact": "enterprise.ghost", "op": "==", "value": True}},
        ]
    }
    dump(pdir / "p.yaml", one_rule(cond))
    assert triples(refused(pdir)) == {("p.yaml", "r", "unknown_fact")}


def test_derived_from_unknown_fact_refuses_the_catalogue(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "enterprise.orphan_years": {
                "type": "integer",
                "subject": "enterprise",
                "derived_from": ["enterprise.missing_records"],
                "derive": "clean_record_years",
                "domain": "public_credit_record",
                "source": "x",
            }
        },
    )
    # no policy reads the fact: the catalogue is refused all the same
    problem = only(refused(pdir), "unknown_fact")
    assert (problem.file, problem.rule) == ("catalogue.yaml", "enterprise.orphan_years")
    assert "enterprise.missing_records" in problem.message


def test_context_required_must_name_a_context_fact(pdir: Path) -> None:
    dump(pdir / "p.yaml", policy(context_required=["enterprise.red_listed"]))
    assert triples(refused(pdir)) == {("p.yaml", "-", "unknown_fact")}


# -- unknown_derivation and derivation types ---------------------------------------------


def test_unknown_derivation(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "enterprise.magic": {
                "type": "integer",
                "subject": "enterprise",
                "derived_from": ["enterprise.credit_history"],
                "derive": "magic",
                "domain": "public_credit_record",
                "source": "x",
            }
        },
    )
    assert triples(refused(pdir)) == {("catalogue.yaml", "enterprise.magic", "unknown_derivation")}


def test_derivation_output_type_must_match(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "enterprise.clean_years_text": {
                "type": "string",
                "subject": "enterprise",
                "derived_from": ["enterprise.credit_history"],
                "derive": "clean_record_years",
                "domain": "public_credit_record",
                "source": "x",
            }
        },
    )
    assert triples(refused(pdir)) == {
        ("catalogue.yaml", "enterprise.clean_years_text", "type_mismatch")
    }


def test_derivation_input_type_must_match(pdir: Path) -> None:
    # clean_record_years reads records; a boolean input would crash it at request time
    add_facts(
        pdir,
        **{
            "enterprise.bad_years": {
                "type": "integer",
                "subject": "enterprise",
                "derived_from": ["enterprise.red_listed"],
                "derive": "clean_record_years",
                "domain": "public_credit_record",
                "source": "x",
            }
        },
    )
    assert triples(refused(pdir)) == {("catalogue.yaml", "enterprise.bad_years", "type_mismatch")}


# -- type_mismatch -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cond",
    [
        pytest.param(
            {"fact": "context.loan_amount", "op": ">=", "value": True}, id="bool-for-number"
        ),
        pytest.param(
            {"fact": "enterprise.clean_record_years", "op": ">=", "value": 2.5}, id="float-for-int"
        ),
        pytest.param({"fact": "enterprise.red_listed", "op": "==", "value": 1}, id="int-for-bool"),
        pytest.param({"fact": "context.matter_code", "op": "==", "value": 7}, id="int-for-string"),
        pytest.param(
            {"fact": "enterprise.tax_credit_grade", "op": "==", "value": "Z"}, id="outside-enum"
        ),
        pytest.param(
            {"fact": "enterprise.tax_credit_grade", "op": "not_in", "value": ["A", "Q"]},
            id="outside-enum-in-list",
        ),
        pytest.param(
            {"fact": "enterprise.tax_credit_grade", "op": "in", "value": "A"}, id="scalar-for-in"
        ),
        pytest.param(
            {"fact": "enterprise.tax_credit_grade", "op": "in", "value": []}, id="empty-in"
        ),
        pytest.param({"fact": "enterprise.credit_history", "op": "==", "value": "x"}, id="records"),
        pytest.param(
            {"fact": "enterprise.tax_credit_grade", "op": ">", "value": "B"}, id="ordered-enum"
        ),
        pytest.param(
            {"fact": "enterprise.red_listed", "op": "<", "value": True}, id="ordered-bool"
        ),
    ],
)
def test_type_mismatch(pdir: Path, cond: dict[str, Any]) -> None:
    dump(pdir / "p.yaml", one_rule(cond))
    problems = refused(pdir)
    assert triples(problems) == {("p.yaml", "r", "type_mismatch")}
    assert cond["fact"] in problems[0].message


@pytest.mark.parametrize(
    "cond",
    [
        {"fact": "context.loan_amount", "op": ">=", "value": 10},
        {"fact": "context.loan_amount", "op": ">=", "value": 10.5},
        {"fact": "enterprise.tax_credit_grade", "op": "not_in", "value": ["C", "D"]},
        {"fact": "enterprise.clean_record_years", "op": "<", "value": 3},
    ],
)
def test_values_of_the_right_type_are_accepted(pdir: Path, cond: dict[str, Any]) -> None:
    dump(pdir / "p.yaml", one_rule(cond))
    load_policy_dir(pdir)


# -- prohibited_domain ------------------------------------------------------------------------

PROHIBITED_DOMAINS = [
    "petitioning",
    "demolition",
    "minor_traffic_offence",
    "dog_keeping",
    "property_fees",
    "garbage_sorting",
]
PROHIBITED_TERMS = ["信访", "拆迁", "闯红灯", "养犬", "物业费", "垃圾分类"]


def fact(**changes: Any) -> dict[str, Any]:
    return {
        "type": "boolean",
        "subject": "person",
        "class": "public_record",
        "domain": "neighbourhood",
        "source": "社区记录",
        **changes,
    }


@pytest.mark.parametrize("domain", PROHIBITED_DOMAINS)
def test_prohibited_domain_by_domain(pdir: Path, domain: str) -> None:
    add_facts(pdir, **{"person.behaviour": fact(domain=domain)})
    assert triples(refused(pdir)) == {("catalogue.yaml", "person.behaviour", "prohibited_domain")}


@pytest.mark.parametrize("term", PROHIBITED_TERMS)
@pytest.mark.parametrize("where", ["source", "title"])
def test_prohibited_domain_by_text(pdir: Path, term: str, where: str) -> None:
    add_facts(pdir, **{"person.behaviour": fact(**{where: f"街道报送的{term}记录"})})
    assert triples(refused(pdir)) == {("catalogue.yaml", "person.behaviour", "prohibited_domain")}


def test_prohibited_domain_on_a_derived_fact(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "person.petition_years": {
                "type": "integer",
                "subject": "person",
                "derived_from": ["person.credit_history"],
                "derive": "clean_record_years",
                "domain": "public_credit_record",
                "source": "x",
                "title": "无信访年数",
            }
        },
    )
    assert triples(refused(pdir)) == {
        ("catalogue.yaml", "person.petition_years", "prohibited_domain")
    }


# -- measures, legal basis, benefits ------------------------------------------------------


def test_unknown_measure(pdir: Path) -> None:
    rules = copy.deepcopy(BASE_POLICY["rules"])
    rules[1]["constrain"]["measure"] = "loan.deny_everything"
    dump(pdir / "p.yaml", policy(rules=rules))
    problem = only(refused(pdir), "unknown_measure")
    assert str(problem).startswith("p.yaml:listed: unknown_measure: ")
    assert "loan.deny_everything" in problem.message


@pytest.mark.parametrize("basis", [[], ["   "], None])
def test_policy_without_legal_basis(pdir: Path, basis: list[str] | None) -> None:
    data = policy(legal_basis=basis)
    if basis is None:
        del data["legal_basis"]
    dump(pdir / "p.yaml", data)
    assert triples(refused(pdir)) == {("p.yaml", "-", "missing_legal_basis")}


def test_measure_without_legal_basis(pdir: Path) -> None:
    data = yaml.safe_load((pdir / "measures.yaml").read_text(encoding="utf-8"))
    data["measures"]["travel.restrict"] = {
        "title": "限制乘坐飞机",
        "list": "全国失信惩戒措施基础清单",
        "legal_basis": [],
        "initiating": "法院",
        "implementing": "航空公司",
    }
    dump(pdir / "measures.yaml", data)
    assert triples(refused(pdir)) == {("measures.yaml", "travel.restrict", "missing_legal_basis")}


@pytest.mark.parametrize(
    "grant",
    [
        pytest.param({"benefit": "deposit_waiver", "params": {"max_value_cny": -1}}, id="negative"),
        pytest.param({"benefit": "deposit_waiver", "params": {"max_items": 0}}, id="below-min"),
        pytest.param({"benefit": "loan_rate_discount", "params": {"bp": 201}}, id="above-max"),
        pytest.param({"benefit": "loan_rate_discount", "params": {"bp": -10}}, id="negative-bp"),
        pytest.param({"benefit": "loan_rate_discount", "params": {"bps": 30}}, id="unknown-param"),
        pytest.param({"benefit": "loan_rate_discount", "params": {"bp": "30"}}, id="string"),
        pytest.param({"benefit": "loan_rate_discount", "params": {"bp": True}}, id="bool"),
        pytest.param({"benefit": "loan_rate_discount", "params": {"bp": 30.5}}, id="float"),
        pytest.param({"benefit": "free_money", "params": {}}, id="unknown-benefit"),
    ],
)
def test_benefit_param_out_of_range(pdir: Path, grant: dict[str, Any]) -> None:
    dump(
        pdir / "p.yaml",
        one_rule({"fact": "enterprise.red_listed", "op": "==", "value": True}, grant=grant),
    )
    assert triples(refused(pdir)) == {("p.yaml", "r", "benefit_param_out_of_range")}


@pytest.mark.parametrize(
    "grant",
    [
        {"benefit": "loan_rate_discount", "params": {"bp": 200}},
        {"benefit": "loan_rate_discount", "params": {"bp": 0}},
        {"benefit": "deposit_waiver", "params": {"max_items": 1, "max_value_cny": 0}},
        {"benefit": "deposit_waiver", "params": {"max_value_cny": 99.5}},
    ],
)
def test_benefit_params_at_the_edges_are_accepted(pdir: Path, grant: dict[str, Any]) -> None:
    dump(
        pdir / "p.yaml",
        one_rule({"fact": "enterprise.red_listed", "op": "==", "value": True}, grant=grant),
    )
    load_policy_dir(pdir)


# -- the guard -------------------------------------------------------------------------------


def test_constraint_in_basic_public_service(pdir: Path) -> None:
    dump(pdir / "p.yaml", policy(basic_public_service=True))
    assert triples(refused(pdir)) == {("p.yaml", "listed", "constraint_in_basic_public_service")}


def _derived(inputs: list[str], derive: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "integer",
        "subject": "enterprise",
        "derived_from": inputs,
        "derive": derive,
        "domain": "risk",
        "source": "风险模型",
        **extra,
    }


def test_personal_score_through_a_chain_of_derived_facts(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "enterprise.owner_score": _derived(["person.credit_score"], "owner_score"),
            # a class declared on a derived fact does not launder its inputs
            "enterprise.risk_index": _derived(
                ["enterprise.owner_score"], "risk_index", **{"class": "effective_document"}
            ),
        },
    )
    dump(
        pdir / "p.yaml",
        one_rule(
            {"fact": "enterprise.risk_index", "op": ">=", "value": 3},
            constrain={"measure": "loan.restrict_credit"},
        ),
    )
    problems = refused(pdir)
    problem = only(problems, "personal_score_to_constraint")
    assert (problem.file, problem.rule) == ("p.yaml", "r")
    assert (
        "enterprise.risk_index ← enterprise.owner_score ← person.credit_score (personal_score)"
        in problem.message
    )
    # taint comes from declarations alone: the derivations being unknown changes nothing
    assert {p.code for p in problems} == {"personal_score_to_constraint", "unknown_derivation"}


def test_personal_score_path_follows_the_tainted_input(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "enterprise.mixed": _derived(
                ["enterprise.serious_dishonesty_listed", "person.credit_score"], "mix"
            )
        },
    )
    dump(
        pdir / "p.yaml",
        one_rule(
            {"fact": "enterprise.mixed", "op": ">=", "value": 1},
            constrain={"measure": "loan.restrict_credit"},
        ),
    )
    problem = only(refused(pdir), "personal_score_to_constraint")
    assert "enterprise.mixed ← person.credit_score (personal_score)" in problem.message


def test_personal_score_may_feed_a_grant(pdir: Path) -> None:
    add_facts(pdir, **{"enterprise.owner_score": _derived(["person.credit_score"], "owner_score")})
    dump(pdir / "p.yaml", one_rule({"fact": "enterprise.owner_score", "op": ">=", "value": 3}))
    assert {p.code for p in refused(pdir)} == {"unknown_derivation"}


def test_personal_score_directly_in_a_constraint(pdir: Path) -> None:
    dump(
        pdir / "p.yaml",
        policy(
            subjects=["person"],
            rules=[
                {
                    "id": "low-score",
                    "when": {"fact": "person.credit_score", "op": "<", "value": 400},
                    "constrain": {"measure": "loan.restrict_credit"},
                }
            ],
        ),
    )
    problem = only(refused(pdir), "personal_score_to_constraint")
    assert str(problem).startswith("p.yaml:low-score: personal_score_to_constraint: ")
    assert "person.credit_score (personal_score)" in problem.message


def test_constraint_on_public_record(pdir: Path) -> None:
    dump(
        pdir / "p.yaml",
        one_rule(
            {"fact": "enterprise.red_listed", "op": "==", "value": False},
            constrain={"measure": "loan.restrict_credit"},
        ),
    )
    problem = only(refused(pdir), "constraint_needs_effective_document")
    assert "enterprise.red_listed (public_record)" in problem.message


def test_constraint_on_derived_public_record_shows_path(pdir: Path) -> None:
    dump(
        pdir / "p.yaml",
        one_rule(
            {"fact": "enterprise.clean_record_years", "op": "<", "value": 1},
            constrain={"measure": "loan.restrict_credit"},
        ),
    )
    problem = only(refused(pdir), "constraint_needs_effective_document")
    assert "enterprise.clean_record_years ← enterprise.credit_history" in problem.message


def test_derived_fact_declaring_effective_document_is_still_public_record(pdir: Path) -> None:
    add_facts(
        pdir,
        **{
            "enterprise.years_doc": {
                "type": "integer",
                "subject": "enterprise",
                "class": "effective_document",
                "derived_from": ["enterprise.credit_history"],
                "derive": "clean_record_years",
                "domain": "public_credit_record",
                "source": "x",
            }
        },
    )
    dump(
        pdir / "p.yaml",
        one_rule(
            {"fact": "enterprise.years_doc", "op": "<", "value": 1},
            constrain={"measure": "loan.restrict_credit"},
        ),
    )
    assert triples(refused(pdir)) == {("p.yaml", "r", "constraint_needs_effective_document")}


def test_constraint_on_documents_and_context_is_accepted(pdir: Path) -> None:
    cond = {
        "all": [
            {"fact": "enterprise.dishonest_executed", "op": "==", "value": True},
            {"fact": "context.loan_amount", "op": ">", "value": 0},
        ]
    }
    dump(pdir / "p.yaml", one_rule(cond, constrain={"measure": "loan.restrict_credit"}))
    compiled = load_policy_dir(pdir).active("testloan", dt.date(2025, 1, 1))
    assert compiled is not None
    facts = {"enterprise.dishonest_executed": True, "context.loan_amount": 10}
    assert compiled.evaluate(facts).outcome == "constrained"


def test_taint_classes_are_transitive_unions() -> None:
    catalogue = FactCatalogue.model_validate(
        yaml.safe_load((SHIPPED / "catalogue.yaml").read_text(encoding="utf-8"))
    )
    taint = Taint(catalogue)
    assert taint.classes("enterprise.clean_record_years") == {"public_record"}
    assert taint.classes("person.credit_score") == {"personal_score"}
    assert taint.classes("no.such.fact") == frozenset()


# -- unreachable_rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cond",
    [
        {
            "all": [
                {"fact": "context.loan_amount", "op": ">", "value": 5},
                {"fact": "context.loan_amount", "op": "<", "value": 3},
            ]
        },
        {
            "all": [
                {"fact": "enterprise.red_listed", "op": "==", "value": True},
                {"not": {"fact": "enterprise.red_listed", "op": "==", "value": True}},
            ]
        },
        {
            "all": [
                {"fact": "enterprise.tax_credit_grade", "op": "==", "value": "A"},
                {"fact": "enterprise.tax_credit_grade", "op": "in", "value": ["B"]},
            ]
        },
    ],
)
def test_unreachable_rule(pdir: Path, cond: dict[str, Any]) -> None:
    dump(pdir / "p.yaml", one_rule(cond))
    assert triples(refused(pdir)) == {("p.yaml", "r", "unreachable_rule")}


# -- versions ------------------------------------------------------------------------------


def test_overlapping_versions(pdir: Path) -> None:
    dump(pdir / "a.yaml", policy(version="1"))
    dump(
        pdir / "b.yaml",
        policy(version="2", effective={"from": dt.date(2025, 6, 1), "until": None}),
    )
    problem = only(refused(pdir), "overlapping_versions")
    assert (problem.file, problem.rule) == ("b.yaml", "-")


def test_versions_touching_on_the_inclusive_last_day_overlap(pdir: Path) -> None:
    dump(
        pdir / "a.yaml",
        policy(version="1", effective={"from": dt.date(2025, 1, 1), "until": dt.date(2025, 6, 1)}),
    )
    dump(
        pdir / "b.yaml",
        policy(version="2", effective={"from": dt.date(2025, 6, 1), "until": None}),
    )
    assert {p.code for p in refused(pdir)} == {"overlapping_versions"}


def test_dated_versions_pick_the_one_in_effect(pdir: Path) -> None:
    dump(
        pdir / "a.yaml",
        policy(version="1", effective={"from": dt.date(2025, 1, 1), "until": dt.date(2025, 6, 30)}),
    )
    dump(
        pdir / "b.yaml",
        policy(version="2", effective={"from": dt.date(2025, 7, 1), "until": None}),
    )
    policies: PolicySet = load_policy_dir(pdir)

    def version(day: dt.date) -> str | None:
        compiled = policies.active("testloan", day)
        return compiled.policy.version if compiled else None

    assert version(dt.date(2024, 12, 31)) is None
    assert version(dt.date(2025, 1, 1)) == "1"
    assert version(dt.date(2025, 6, 30)) == "1"
    assert version(dt.date(2025, 7, 1)) == "2"
    assert version(dt.date(2030, 1, 1)) == "2"
    assert policies.active("nosuchscene", dt.date(2025, 7, 1)) is None


# -- policy tests ------------------------------------------------------------------------------


def test_policy_test_failed(pdir: Path) -> None:
    tests = [
        {
            "name": "grade A gets the discount",
            "subject": "enterprise",
            "facts": {"enterprise.tax_credit_grade": "A"},
            "expect": {"outcome": "granted", "benefits": ["loan_rate_discount"]},
        },
        {
            "name": "nothing known is constrained",
            "subject": "enterprise",
            "facts": {},
            "expect": {"outcome": "constrained"},
        },
    ]
    dump(pdir / "p.yaml", policy(tests=tests))
    problem = only(refused(pdir), "policy_test_failed")
    assert (problem.file, problem.rule) == ("p.yaml", "-")
    assert "nothing known is constrained" in problem.message
    assert "grade A" not in problem.message


def test_policy_test_checks_benefit_list(pdir: Path) -> None:
    tests = [
        {
            "name": "wrong benefit",
            "subject": "enterprise",
            "facts": {"enterprise.tax_credit_grade": "A"},
            "expect": {"outcome": "granted", "benefits": ["green_channel"]},
        }
    ]
    dump(pdir / "p.yaml", policy(tests=tests))
    assert triples(refused(pdir)) == {("p.yaml", "-", "policy_test_failed")}


def test_passing_policy_tests_are_accepted(pdir: Path) -> None:
    tests = [
        {
            "name": "forbid wins",
            "subject": "enterprise",
            "facts": {
                "enterprise.tax_credit_grade": "A",
                "enterprise.serious_dishonesty_listed": True,
            },
            "expect": {"outcome": "constrained", "constraints": ["loan.restrict_credit"]},
        }
    ]
    dump(pdir / "p.yaml", policy(tests=tests))
    load_policy_dir(pdir)


# -- invalid_policy ----------------------------------------------------------------------------


def _both_effects(p: dict[str, Any]) -> str:
    p["rules"][0]["constrain"] = {"measure": "loan.restrict_credit"}
    return "grant"


def _no_effect(p: dict[str, Any]) -> str:
    del p["rules"][0]["grant"]
    return "constrain"


def _unknown_op(p: dict[str, Any]) -> str:
    p["rules"][0]["when"]["op"] = "=~"
    return "op"


def _missing_key(p: dict[str, Any]) -> str:
    del p["departments"]
    return "departments"


def _unknown_key(p: dict[str, Any]) -> str:
    p["legl_basis"] = ["typo"]
    return "legl_basis"


def _expression_string(p: dict[str, Any]) -> str:
    p["rules"][0]["when"] = "enterprise.tax_credit_grade == 'A'"
    return "when"


def _bad_scene(p: dict[str, Any]) -> str:
    p["scene"] = "Loan Scene"
    return "scene"


@pytest.mark.parametrize(
    "breaker",
    [
        _both_effects,
        _no_effect,
        _unknown_op,
        _missing_key,
        _unknown_key,
        _expression_string,
        _bad_scene,
    ],
)
def test_invalid_policy_names_the_key(pdir: Path, breaker: Any) -> None:
    data = policy()
    key = breaker(data)
    dump(pdir / "p.yaml", data)
    problems = refused(pdir)
    assert {(p.file, p.code) for p in problems} == {("p.yaml", "invalid_policy")}
    assert any(key in p.message for p in problems), problems


def test_policy_file_that_is_not_a_mapping(pdir: Path) -> None:
    dump(pdir / "p.yaml", ["not", "a", "policy"])
    assert {p.code for p in refused(pdir)} == {"invalid_policy"}


def test_invalid_catalogue_is_refused(pdir: Path) -> None:
    add_facts(
        pdir, **{"person.nameless": {"type": "enum", "subject": "person", "class": "context"}}
    )
    problems = refused(pdir)
    assert {(p.file, p.code) for p in problems} == {("catalogue.yaml", "invalid_policy")}


def test_unreadable_yaml_is_flagged_unreadable(pdir: Path) -> None:
    (pdir / "p.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyLoadError) as info:
        load_policy_dir(pdir)
    assert info.value.unreadable
    assert info.value.problems[0].file == "p.yaml"


def test_missing_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy_dir(tmp_path / "nowhere")
    assert info.value.unreadable
