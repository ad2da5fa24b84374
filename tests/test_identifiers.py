"""Tests for gateway.identifiers (GB 32100 unified social credit codes, GB 11643 resident ids)."""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from gateway import identifiers
from gateway.identifiers import (
    InvalidIdentifier,
    synthetic_ric,
    synthetic_uscc,
    validate_ric,
    validate_subject_id,
    validate_uscc,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
RIC_CHECK_ALPHABET = "0123456789X"
TODAY = datetime.date(2025, 6, 1)

# Published codes of real companies (DOMAIN.md); companies, not persons.
PUBLISHED_USCC = [
    "914403001922038216",
    "9144030071526726XG",
    "91110000710926094P",
    "91310000631696382C",
    "91440300708461136T",
]

# Fixed seeds, no example database: deterministic, fast, and nothing written to disk.
PROPERTY = settings(max_examples=40, deadline=None, database=None, derandomize=True)


# Independent implementations of the check characters, straight from the
# standards' text (DOMAIN.md), so the module is not only checked against stdnum.
def uscc_check(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def ric_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


def with_uscc_check(first17: str) -> str:
    return first17 + uscc_check(first17)


def with_ric_check(first17: str) -> str:
    return first17 + ric_check(first17)


def rejection(func: Callable[..., str], value: str, *args: object) -> str:
    """Assert ``func(value)`` is refused and the message does not leak the value."""
    with pytest.raises(InvalidIdentifier) as info:
        func(value, *args)
    message = str(info.value)
    assert message
    for shown in {value, value.strip(), value.strip().upper()} - {""}:
        assert shown not in message
        assert shown not in repr(info.value)
    return message


def refused(func: Callable[..., str], value: str, *args: object) -> bool:
    """Cheaper than pytest.raises for the many calls in the property tests."""
    try:
        func(value, *args)
    except InvalidIdentifier:
        return True
    return False


# --- USCC -------------------------------------------------------------------


def test_public_surface() -> None:
    assert sorted(identifiers.__all__) == [
        "InvalidIdentifier",
        "synthetic_ric",
        "synthetic_uscc",
        "validate_ric",
        "validate_subject_id",
        "validate_uscc",
    ]
    assert issubclass(InvalidIdentifier, ValueError)


@pytest.mark.parametrize("code", PUBLISHED_USCC)
def test_published_uscc_accepted(code: str) -> None:
    assert uscc_check(code[:17]) == code[17]  # the helper agrees with the standard
    assert validate_uscc(code) == code


@pytest.mark.parametrize("code", PUBLISHED_USCC)
def test_published_uscc_with_changed_check_rejected(code: str) -> None:
    for other in USCC_ALPHABET.replace(code[-1], ""):
        message = rejection(validate_uscc, code[:-1] + other)
        assert "check character does not match" in message


@pytest.mark.parametrize("code", PUBLISHED_USCC)
def test_position_17_organisation_check_is_not_enforced(code: str) -> None:
    # Break the GB 11714 check at position 17, then repair the final check.
    pos17 = "0" if code[16] != "0" else "1"
    assert validate_uscc(with_uscc_check(code[:16] + pos17)) == with_uscc_check(code[:16] + pos17)


@pytest.mark.parametrize(
    "first17",
    [
        "N2330521MF1234567",  # 农业: rural collective economic organisation
        "A1000000MB1234567",  # 军队
        "Y1110000MA0123456",  # other authorities
        "51100000500012345",  # 民政
        "99999999AAAAAAAAA",  # unknown area code and authority/type pair
    ],
)
def test_uscc_not_rejected_for_authority_area_or_letters(first17: str) -> None:
    code = with_uscc_check(first17)
    assert validate_uscc(code) == code


def test_stdnum_validate_would_reject_an_n_code() -> None:
    # Documents why the module does not call stdnum's validate().
    code = with_uscc_check("N2330521MF1234567")
    assert not stdnum_uscc.is_valid(code)
    assert validate_uscc(code) == code


@pytest.mark.parametrize("letter", "IOZSV")
def test_forbidden_letters_rejected(letter: str) -> None:
    base = "91440300708461136T"
    for pos in (0, 1, 8, 12, 17):
        code = base[:pos] + letter + base[pos + 1 :]
        message = rejection(validate_uscc, code)
        assert "outside the allowed alphabet" in message


@pytest.mark.parametrize(
    "code",
    [
        "91440300708461136-",
        "9144030070846113 T",
        "9144030070846113\u0307T",  # combining mark
        "９1440300708461136T",  # full-width digit
        "91440300708461136Ｔ",  # full-width letter
        "914403007084611_6T",
    ],
)
def test_other_characters_rejected(code: str) -> None:
    rejection(validate_uscc, code)


def test_ligature_is_not_uppercased_into_valid_letters() -> None:
    # 'ﬀ'.upper() == 'FF': a 17-character input must not become a valid 18-character code.
    code = with_uscc_check("91440300708461AFF")
    assert validate_uscc(code) == code
    rejection(validate_uscc, code.replace("FF", "ﬀ"))


def test_uscc_lowercase_and_whitespace_normalised() -> None:
    assert validate_uscc("9144030071526726xg") == "9144030071526726XG"
    assert validate_uscc("  91310000631696382c\n") == "91310000631696382C"
    assert validate_uscc("\t914403001922038216 ") == "914403001922038216"


@pytest.mark.parametrize(
    "code", ["", "91440300708461136", "91440300708461136TT", "9144 0300 7084 6113 6T"]
)
def test_uscc_wrong_length_rejected(code: str) -> None:
    message = rejection(validate_uscc, code)
    assert "must be 18 characters" in message


def test_non_string_rejected() -> None:
    with pytest.raises(InvalidIdentifier):
        validate_uscc(914403001922038216)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier):
        validate_ric(None)  # type: ignore[arg-type]


# --- resident ids -------------------------------------------------------------

# Synthetic resident ids (not real persons): area + birth date + sequence + check.
RIC_1985 = with_ric_check("11010219850315123")  # 西城区, 1985-03-15, male
RIC_X = with_ric_check("44030419900101002")


def test_ric_helper_matches_stdnum() -> None:
    assert stdnum_ric.calc_check_digit(RIC_1985) == RIC_1985[-1]
    assert RIC_X.endswith("X")


def test_ric_accepted() -> None:
    assert validate_ric(RIC_1985, TODAY) == RIC_1985
    assert validate_ric(f" {RIC_1985}\n", TODAY) == RIC_1985


def test_ric_check_x_and_lowercase_x() -> None:
    assert validate_ric(RIC_X, TODAY) == RIC_X
    assert validate_ric(RIC_X[:-1] + "x", TODAY) == RIC_X


def test_ric_retired_area_code_accepted() -> None:
    # 110110 燕山区 was abolished in 1986; stdnum refuses it for later birth years.
    rid = with_ric_check("11011019900704002")
    assert not stdnum_ric.is_valid(rid)
    assert validate_ric(rid, TODAY) == rid


def test_ric_unknown_area_code_accepted() -> None:
    rid = with_ric_check("99999920000229005")  # also a real leap day
    assert validate_ric(rid, TODAY) == rid


def test_ric_invalid_date_rejected() -> None:
    for date_part in ("19900230", "19900431", "19901301", "19900000", "19000229"):
        rid = with_ric_check("110102" + date_part + "123")
        message = rejection(validate_ric, rid, TODAY)
        assert "birth date is not a real date" in message


def test_ric_future_birth_date_rejected() -> None:
    rid = with_ric_check("11010220250602123")
    message = rejection(validate_ric, rid, TODAY)
    assert "birth date is in the future" in message
    # Born today is fine.
    assert validate_ric(with_ric_check("11010220250601123"), TODAY)


def test_ric_future_uses_today_by_default() -> None:
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    rid = with_ric_check(f"110102{tomorrow:%Y%m%d}123")
    rejection(validate_ric, rid)


def test_ric_birth_before_1900_rejected() -> None:
    rid = with_ric_check("11010218991231123")
    message = rejection(validate_ric, rid, TODAY)
    assert "1900" in message
    assert validate_ric(with_ric_check("11010219000101123"), TODAY)


@pytest.mark.parametrize("rid", [RIC_1985[:-1], RIC_1985 + "1", "", "11010219850315123 4"])
def test_ric_wrong_length_rejected(rid: str) -> None:
    message = rejection(validate_ric, rid, TODAY)
    assert "must be 18 characters" in message


def test_ric_wrong_check_rejected() -> None:
    for other in RIC_CHECK_ALPHABET.replace(RIC_1985[-1], ""):
        message = rejection(validate_ric, RIC_1985[:-1] + other, TODAY)
        assert "check character does not match" in message


@pytest.mark.parametrize(
    "rid",
    [
        "X" + RIC_1985[1:],
        RIC_1985[:-1] + "A",
        "1101021985_315123" + "4",
        "１" + RIC_1985[1:],  # full-width digit
        "١" + RIC_1985[1:],  # Arabic-Indic digit: str.isdigit() is True
    ],
)
def test_ric_other_characters_rejected(rid: str) -> None:
    message = rejection(validate_ric, rid, TODAY)
    assert "outside the allowed alphabet" in message


# --- dispatch -----------------------------------------------------------------


def test_validate_subject_id() -> None:
    assert validate_subject_id("enterprise", " 91310000631696382c") == "91310000631696382C"
    assert validate_subject_id("person", RIC_X[:-1] + "x", TODAY) == RIC_X
    with pytest.raises(InvalidIdentifier):
        validate_subject_id("person", PUBLISHED_USCC[0], TODAY)
    with pytest.raises(InvalidIdentifier):
        validate_subject_id("enterprise", RIC_1985)


@pytest.mark.parametrize("kind", ["Enterprise", "company", "", "91310000631696382C"])
def test_validate_subject_id_unknown_kind(kind: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        validate_subject_id(kind, PUBLISHED_USCC[3])
    assert PUBLISHED_USCC[3] not in str(info.value)
    if kind:
        assert kind not in str(info.value)


# --- synthetic data -------------------------------------------------------------


def org_code_check(body: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    return "0123456789X0"[11 - total % 11]


def test_org_code_check_helper_against_published_codes() -> None:
    for code in PUBLISHED_USCC:
        assert org_code_check(code[8:16]) == code[16]


def test_synthetic_ric_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sex"):
        synthetic_ric(random.Random(1), datetime.date(1990, 1, 1), "m")
    with pytest.raises(ValueError, match="1900"):
        synthetic_ric(random.Random(1), datetime.date(1899, 12, 31))


@PROPERTY
@given(first17=st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_check_character_agrees_with_stdnum(first17: str) -> None:
    # The module computes it itself (speed); stdnum's and the standard's must agree.
    expected = stdnum_uscc.calc_check_digit(first17)
    assert expected == uscc_check(first17)
    assert validate_uscc(first17 + expected) == first17 + expected
    for other in USCC_ALPHABET.replace(expected, ""):
        assert refused(validate_uscc, first17 + other)


@PROPERTY
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_synthetic_uscc_validates_and_detects_any_substitution(seed: int) -> None:
    code = synthetic_uscc(random.Random(seed))
    assert validate_uscc(code) == code
    assert code[0] in "19ANY"
    assert code[2] != "0"
    assert code[2:8].isdigit()
    assert org_code_check(code[8:16]) == code[16]
    for pos, original in enumerate(code):
        for other in USCC_ALPHABET.replace(original, ""):
            assert refused(validate_uscc, code[:pos] + other + code[pos + 1 :])


@PROPERTY
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    birth=st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY),
    sex=st.sampled_from([None, "M", "F"]),
)
def test_synthetic_ric_validates_and_detects_any_substitution(
    seed: int, birth: datetime.date, sex: str | None
) -> None:
    rid = synthetic_ric(random.Random(seed), birth, sex)
    assert validate_ric(rid, TODAY) == rid
    assert rid[0] != "0"
    assert rid[6:14] == f"{birth:%Y%m%d}"
    if sex is not None:
        assert int(rid[14:17]) % 2 == (1 if sex == "M" else 0)
    for pos, original in enumerate(rid):
        allowed = RIC_CHECK_ALPHABET if pos == 17 else RIC_CHECK_ALPHABET[:10]
        for other in allowed.replace(original, ""):
            assert refused(validate_ric, rid[:pos] + other + rid[pos + 1 :], TODAY)


def test_synthetic_generators_are_deterministic_per_seed() -> None:
    birth = datetime.date(1970, 1, 1)
    assert synthetic_uscc(random.Random(7)) == synthetic_uscc(random.Random(7))
    assert synthetic_ric(random.Random(7), birth) == synthetic_ric(random.Random(7), birth)
