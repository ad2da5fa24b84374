"""The fact builder: which records count, how facts are extracted, and clean_record_years."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from adapters.credit.base import CreditRecord, RecordStatus
from gateway.facts.builder import FactPlan, record_counts
from gateway.facts.derivations import DERIVATIONS, whole_years
from gateway.policy.model import FactCatalogue
from gateway.resources import shipped

CATALOGUE = FactCatalogue.model_validate(
    yaml.safe_load((shipped("policies") / "catalogue.yaml").read_text(encoding="utf-8"))
)
AS_OF = dt.date(2025, 6, 15)

_ids = iter(range(1_000_000))


def rec(
    type_: str,
    *,
    decided_on: dt.date = dt.date(2024, 1, 1),
    value: Any = None,
    adverse: bool = False,
    effective_document: bool = True,
    status: RecordStatus = RecordStatus.ACTIVE,
    publication_until: dt.date | None = None,
    domain: str = "public_credit_record",
    title: str | None = None,
) -> CreditRecord:
    return CreditRecord(
        record_id=f"r{next(_ids)}",
        type=type_,
        domain=domain,
        effective_document=effective_document,
        adverse=adverse,
        decided_on=decided_on,
        publication_until=publication_until,
        status=status,
        value=value,
        title=title,
    )


def build(needed: list[str], records: list[CreditRecord], context: Any = None) -> dict[str, Any]:
    return FactPlan(CATALOGUE, needed).build(records, context or {}, AS_OF)


# -- which records count ------------------------------------------------------------------


def test_active_record_counts() -> None:
    assert record_counts(rec("x", adverse=True), AS_OF)


@pytest.mark.parametrize("status", [RecordStatus.REPAIRED, RecordStatus.EXPIRED])
@pytest.mark.parametrize("adverse", [True, False])
def test_repaired_and_expired_records_do_not_count(status: RecordStatus, adverse: bool) -> None:
    assert not record_counts(rec("x", status=status, adverse=adverse), AS_OF)


def test_record_past_its_publication_period_does_not_count() -> None:
    assert not record_counts(rec("x", publication_until=AS_OF - dt.timedelta(days=1)), AS_OF)
    # the last day of publication still counts
    assert record_counts(rec("x", publication_until=AS_OF), AS_OF)


def test_objection_suspends_adverse_but_not_favourable_records() -> None:
    assert not record_counts(rec("x", adverse=True, status=RecordStatus.UNDER_OBJECTION), AS_OF)
    assert record_counts(rec("x", adverse=False, status=RecordStatus.UNDER_OBJECTION), AS_OF)


def test_record_decided_after_the_evaluation_date_does_not_count() -> None:
    assert not record_counts(rec("x", decided_on=AS_OF + dt.timedelta(days=1)), AS_OF)
    assert record_counts(rec("x", decided_on=AS_OF), AS_OF)


@pytest.mark.parametrize(
    "domain", ["petitioning", "demolition", "minor_traffic_offence", "dog_keeping"]
)
def test_prohibited_domain_records_are_ignored(domain: str) -> None:
    assert not record_counts(rec("x", domain=domain, adverse=True), AS_OF)


@pytest.mark.parametrize("term", ["信访", "拆迁", "闯红灯", "养犬", "物业费", "垃圾分类"])
def test_records_titled_with_prohibited_behaviour_are_ignored(term: str) -> None:
    assert not record_counts(rec("x", adverse=True, title=f"未按规定{term}处理"), AS_OF)


# -- base facts ------------------------------------------------------------------------


def test_ignored_records_do_not_reach_facts() -> None:
    listed = "enterprise.serious_dishonesty_listed"
    records = [
        rec("serious_dishonesty_listed", adverse=True, status=RecordStatus.REPAIRED),
        rec("serious_dishonesty_listed", adverse=True, status=RecordStatus.EXPIRED),
        rec("serious_dishonesty_listed", adverse=True, publication_until=dt.date(2025, 1, 1)),
        rec("serious_dishonesty_listed", adverse=True, status=RecordStatus.UNDER_OBJECTION),
        rec("serious_dishonesty_listed", adverse=True, domain="petitioning"),
        rec("serious_dishonesty_listed", adverse=True, title="信访记录"),
    ]
    assert build([listed], records) == {}
    # and one that counts does
    assert build([listed], [*records, rec("serious_dishonesty_listed", adverse=True)]) == {
        listed: True
    }


def test_favourable_record_under_objection_still_counts() -> None:
    records = [rec("red_listed", value=True, status=RecordStatus.UNDER_OBJECTION)]
    assert build(["enterprise.red_listed"], records) == {"enterprise.red_listed": True}


def test_effective_document_fact_ignores_records_without_a_document() -> None:
    listed = "enterprise.serious_dishonesty_listed"
    assert build([listed], [rec("serious_dishonesty_listed", effective_document=False)]) == {}
    assert build([listed], [rec("serious_dishonesty_listed", effective_document=True)]) == {
        listed: True
    }


def test_public_record_fact_reads_records_without_a_document() -> None:
    records = [rec("red_listed", value=True, effective_document=False)]
    assert build(["enterprise.red_listed"], records) == {"enterprise.red_listed": True}


def test_boolean_record_may_say_false_explicitly() -> None:
    assert build(["enterprise.red_listed"], [rec("red_listed", value=False)]) == {
        "enterprise.red_listed": False
    }


def test_absent_fact_is_left_out_so_the_default_applies_later() -> None:
    assert build(["enterprise.red_listed", "enterprise.tax_credit_grade"], []) == {}


@pytest.mark.parametrize("reverse", [False, True])
def test_latest_value_wins(reverse: bool) -> None:
    records = [
        rec("tax_credit_grade", value="B", decided_on=dt.date(2022, 4, 1)),
        rec("tax_credit_grade", value="A", decided_on=dt.date(2024, 4, 1)),
        rec("tax_credit_grade", value="C", decided_on=dt.date(2023, 4, 1)),
    ]
    if reverse:
        records.reverse()
    assert build(["enterprise.tax_credit_grade"], records) == {"enterprise.tax_credit_grade": "A"}


def test_latest_value_wins_only_among_records_that_count() -> None:
    records = [
        rec("tax_credit_grade", value="B", decided_on=dt.date(2022, 4, 1)),
        rec(
            "tax_credit_grade",
            value="D",
            decided_on=dt.date(2024, 4, 1),
            adverse=True,
            status=RecordStatus.UNDER_OBJECTION,
        ),
    ]
    assert build(["enterprise.tax_credit_grade"], records) == {"enterprise.tax_credit_grade": "B"}


@pytest.mark.parametrize("value", ["Z", "a", 1, True, None])
def test_enum_value_outside_values_is_absent(value: Any) -> None:
    records = [rec("tax_credit_grade", value=value)]
    assert build(["enterprise.tax_credit_grade"], records) == {}


def test_integer_fact_refuses_booleans_and_text() -> None:
    for value in (True, "650", 650.5):
        assert build(["person.credit_score"], [rec("credit_score", value=value)]) == {}
    assert build(["person.credit_score"], [rec("credit_score", value=650)]) == {
        "person.credit_score": 650
    }


def test_facts_only_read_their_own_record_type() -> None:
    records = [rec("credit_score", value=700), rec("tax_credit_grade", value="A")]
    assert build(["person.credit_score"], records) == {"person.credit_score": 700}


def test_select_types_chooses_the_records() -> None:
    records = [rec("commitment_breached", adverse=True, effective_document=False)]
    assert build(["enterprise.breached_commitment"], records) == {
        "enterprise.breached_commitment": True
    }
    assert build(["enterprise.breached_commitment"], [rec("other", adverse=True)]) == {}


def test_context_facts_come_from_the_request() -> None:
    facts = build(["context.loan_amount", "context.matter_code"], [], {"loan_amount": 1000})
    assert facts == {"context.loan_amount": 1000}


def test_records_fact_holds_only_counting_records() -> None:
    good = rec("penalty", adverse=True)
    repaired = rec("penalty", adverse=True, status=RecordStatus.REPAIRED)
    facts = build(["enterprise.credit_history"], [good, repaired])
    assert facts == {"enterprise.credit_history": [good]}


# -- clean_record_years ---------------------------------------------------------------------

YEARS = "enterprise.clean_record_years"


def years(records: list[CreditRecord], name: str = YEARS) -> int | None:
    """The derived fact alone (the facts also hold the records it was derived from)."""
    facts = build([name], records)
    return facts.get(name)


def test_clean_years_from_latest_adverse_record() -> None:
    records = [
        rec("registration", decided_on=dt.date(2010, 1, 1)),
        rec("penalty", adverse=True, decided_on=dt.date(2019, 3, 1)),
        rec("penalty", adverse=True, decided_on=dt.date(2021, 6, 16)),
        rec("award", adverse=False, decided_on=dt.date(2024, 1, 1)),
    ]
    # 2021-06-16 → 2025-06-15 is one day short of four years
    assert years(records) == 3


def test_clean_years_skip_adverse_records_that_do_not_count() -> None:
    records = [
        rec("registration", decided_on=dt.date(2015, 6, 15)),
        rec("penalty", adverse=True, decided_on=dt.date(2018, 1, 1)),
        rec("penalty", adverse=True, decided_on=dt.date(2024, 1, 1), status=RecordStatus.REPAIRED),
        rec(
            "penalty",
            adverse=True,
            decided_on=dt.date(2024, 2, 1),
            status=RecordStatus.UNDER_OBJECTION,
        ),
        rec(
            "penalty",
            adverse=True,
            decided_on=dt.date(2024, 3, 1),
            publication_until=dt.date(2025, 3, 1),
        ),
        rec("petition", adverse=True, decided_on=dt.date(2025, 1, 1), domain="petitioning"),
    ]
    assert years(records) == 7


def test_clean_years_from_registration_without_adverse_records() -> None:
    records = [rec("registration", decided_on=dt.date(2015, 6, 15))]
    assert years(records) == 10


def test_clean_years_fall_back_to_registration_when_every_adverse_record_is_gone() -> None:
    records = [
        rec("registration", decided_on=dt.date(2020, 6, 16)),
        rec("penalty", adverse=True, decided_on=dt.date(2024, 1, 1), status=RecordStatus.REPAIRED),
    ]
    assert years(records) == 4


def test_clean_years_count_from_the_record_start_without_history() -> None:
    # No record held is no adverse record: the catalogue's record_start (2014-06-14)
    # is where absence starts to count, so doubt favours the subject.
    assert years([], "person.clean_record_years") == 11
    assert years([rec("award", decided_on=dt.date(2020, 1, 1))], "person.clean_record_years") == 11
    # an enterprise counts from its registration, which the platform holds for every one
    assert years([]) is None
    assert years([rec("award", decided_on=dt.date(2020, 1, 1))]) is None


def test_clean_years_unknown_without_history_or_record_start() -> None:
    derivation = DERIVATIONS["clean_record_years"]
    assert derivation.compute([[]], AS_OF) is None
    assert derivation.compute([[]], AS_OF, dt.date(2014, 6, 14)) == 11
    # a record start after the evaluation date is no start at all
    assert derivation.compute([[]], AS_OF, dt.date(2030, 1, 1)) is None


def test_a_registration_after_the_record_start_bounds_clean_years() -> None:
    registered = [rec("registration", decided_on=dt.date(2023, 1, 1))]
    assert years(registered, "person.clean_record_years") == 2


def test_person_clean_years_read_the_person_history() -> None:
    records = [rec("registration", decided_on=dt.date(2019, 1, 1))]
    assert years(records, "person.clean_record_years") == 6


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (dt.date(2020, 3, 15), dt.date(2023, 3, 14), 2),
        (dt.date(2020, 3, 15), dt.date(2023, 3, 15), 3),
        (dt.date(2020, 3, 15), dt.date(2023, 3, 16), 3),
        (dt.date(2020, 12, 31), dt.date(2021, 12, 30), 0),
        (dt.date(2020, 12, 31), dt.date(2021, 12, 31), 1),
        (dt.date(2020, 1, 1), dt.date(2020, 1, 1), 0),
        (dt.date(2025, 1, 1), dt.date(2020, 1, 1), 0),
    ],
)
def test_whole_years(start: dt.date, end: dt.date, expected: int) -> None:
    assert whole_years(start, end) == expected


def test_derivation_receives_only_its_inputs() -> None:
    derivation = DERIVATIONS["clean_record_years"]
    assert derivation.inputs == ("records",)
    assert derivation.output == "integer"
    assert derivation.compute([None], AS_OF) is None


# -- record facts are worked out once per record set and day --------------------------------


def test_one_record_set_gives_the_same_facts_with_each_context() -> None:
    plan = FactPlan(CATALOGUE, [YEARS, "context.loan_amount"])
    records = (
        rec("registration", decided_on=dt.date(2010, 1, 1)),
        rec("penalty", adverse=True, decided_on=dt.date(2021, 6, 16)),
    )
    first = plan.build(records, {"loan_amount": 1000}, AS_OF)
    second = plan.build(records, {}, AS_OF)
    assert first[YEARS] == second[YEARS] == 3
    assert first["context.loan_amount"] == 1000
    assert "context.loan_amount" not in second  # the shared part was not written to


def test_record_facts_follow_the_date_and_a_new_record_set() -> None:
    plan = FactPlan(CATALOGUE, [YEARS])
    records = (
        rec("registration", decided_on=dt.date(2010, 1, 1)),
        rec("penalty", adverse=True, decided_on=dt.date(2021, 6, 16)),
    )
    assert plan.build(records, {}, AS_OF)[YEARS] == 3
    assert plan.build(records, {}, AS_OF + dt.timedelta(days=1))[YEARS] == 4
    # A credit event replaces the cached sequence: the repaired penalty stops counting.
    repaired = (
        records[0],
        rec("penalty", adverse=True, decided_on=dt.date(2021, 6, 16), status=RecordStatus.REPAIRED),
    )
    assert plan.build(repaired, {}, AS_OF)[YEARS] == 15


def test_a_policy_for_both_kinds_reads_no_facts_of_the_other_kind() -> None:
    # person.clean_record_years reads every record; an enterprise's records must not
    # become a person's clean years (and the other way round)
    plan = FactPlan(CATALOGUE, ["person.clean_record_years", "enterprise.clean_record_years"])
    records = [rec("registration", decided_on=dt.date(2015, 6, 15))]
    both = plan.build(records, {}, AS_OF)
    assert both["person.clean_record_years"] == both["enterprise.clean_record_years"] == 10
    as_enterprise = plan.build(records, {}, AS_OF, "enterprise")
    assert "person.clean_record_years" not in as_enterprise
    assert "person.credit_history" not in as_enterprise
    assert as_enterprise["enterprise.clean_record_years"] == 10
    as_person = plan.build(records, {}, AS_OF, "person")
    assert set(as_person) == {"person.credit_history", "person.clean_record_years"}
    penalty = rec("penalty", adverse=True)
    assert plan.evidence([penalty], ["person.clean_record_years"], AS_OF, "enterprise") == []
    assert plan.evidence([penalty], ["person.clean_record_years"], AS_OF, "person") == [penalty]
