"""Validation and synthesis of subject identifiers.

* 统一社会信用代码 (unified social credit code, USCC), GB 32100-2015.
* 居民身份证号 (resident identity number, RIC), GB 11643-1999.

Only what the standards make certain is enforced: length, alphabet, the final
check character and, for resident ids, a real birth date that is not in the
future. python-stdnum's ``validate()`` is not used because it rejects real,
well-formed ids: USCCs whose first eight characters are not all digits (codes
issued by authorities N, A, Y, ...) and resident ids whose area code was not in
force in the birth year. Its resident-id check character is used as it is; the
USCC's is computed here (the same GB 32100 sum, tested against stdnum's):
stdnum's re-cleans the code and looks each character up in a string, ~10 µs,
paid by every decision for an enterprise not asked about recently.
"""

from __future__ import annotations

import datetime
import functools
import operator
import random

from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc

__all__ = [
    "InvalidIdentifier",
    "synthetic_ric",
    "synthetic_uscc",
    "validate_ric",
    "validate_subject_id",
    "validate_uscc",
]

# GB 32100 alphabet: 0-9 and A-Z without I, O, Z, S, V (31 characters).
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_CHARS = frozenset(_USCC_ALPHABET)
_DIGITS = "0123456789"
_DIGIT_CHARS = frozenset(_DIGITS)
_LENGTH = 18
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)

# Entity-type codes (position 2) used with each registering authority (position 1).
_USCC_ENTITY_TYPES = {"1": "1239", "9": "123", "A": "19", "N": "1239", "Y": "1"}
# GB 32100 check: the characters' values weighted 3**i mod 31 (positions 1-17).
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
# GB 11714 organisation-code check weights for positions 9-16 of a USCC.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


class InvalidIdentifier(ValueError):
    """Raised with a message safe to show to a caller.

    The message never contains the identifier itself: these are personal ids
    and the message may be logged or sent back in an error response.
    """


def _normalise(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{what} must be a string")
    value = value.strip()
    if len(value) != _LENGTH:
        raise InvalidIdentifier(f"{what} must be {_LENGTH} characters")
    # ASCII first, so that upper() cannot turn a look-alike or a ligature
    # (e.g. 'ﬀ' -> 'FF') into an allowed character.
    if not value.isascii():
        raise InvalidIdentifier(f"{what} contains a character outside the allowed alphabet")
    return value.upper()


def _uscc_check(first17: str) -> str:
    """The GB 32100 check character of a code's first 17 characters (all in the alphabet)."""
    total = sum(map(operator.mul, map(_USCC_VALUES.__getitem__, first17), _USCC_WEIGHTS))
    return _USCC_ALPHABET[-total % 31]


def validate_uscc(value: str) -> str:
    """Return the normalised USCC (stripped, uppercase) or raise InvalidIdentifier.

    The registering-authority letter, the area code and the position-17
    organisation-code check are deliberately not checked: valid codes exist
    that stdnum or a strict reading of GB 11714 would refuse.
    """
    what = "unified social credit code"
    code = _normalise(value, what)
    if not _USCC_CHARS.issuperset(code):
        raise InvalidIdentifier(f"{what} contains a character outside the allowed alphabet")
    if _uscc_check(code[:-1]) != code[-1]:
        raise InvalidIdentifier(f"{what} check character does not match")
    return code


def validate_ric(value: str, today: datetime.date | None = None) -> str:
    """Return the normalised resident id (check 'x' -> 'X') or raise InvalidIdentifier.

    Area codes are not checked: retired codes stay valid for the people who
    hold them, and new ones are issued to people born before they existed.
    """
    what = "resident id"
    rid = _normalise(value, what)
    # Check the digits explicitly: str.isdigit() accepts non-ASCII digits and
    # stdnum's calc_check_digit() parses with int(), which tolerates '_'.
    if not _DIGIT_CHARS.issuperset(rid[:-1]) or rid[-1] not in "0123456789X":
        raise InvalidIdentifier(f"{what} contains a character outside the allowed alphabet")
    # stdnum expects the check position to be present and ignores it.
    if _ric.calc_check_digit(rid) != rid[-1]:
        raise InvalidIdentifier(f"{what} check character does not match")
    try:
        birth = datetime.date(int(rid[6:10]), int(rid[10:12]), int(rid[12:14]))
    except ValueError:
        raise InvalidIdentifier(f"{what} birth date is not a real date") from None
    if birth > (today if today is not None else datetime.date.today()):
        raise InvalidIdentifier(f"{what} birth date is in the future")
    if birth < _EARLIEST_BIRTH:
        raise InvalidIdentifier(f"{what} birth date is before 1900")
    return rid


def validate_subject_id(kind: str, value: str, today: datetime.date | None = None) -> str:
    """Validate ``value`` as the identifier for a subject of ``kind``.

    "enterprise" takes a USCC, "person" a resident id.
    """
    if not isinstance(kind, str) or not isinstance(value, str):
        raise InvalidIdentifier("subject kind and id must be strings")
    return _validated(kind, value, today or datetime.date.today())


# Partners ask about the same subjects again and again; a valid id is checked
# once a day (the date matters for birth dates). Failures are never cached.
# Each entry holds ~0.35 kB and a check costs a few µs, so a small memo keeps the
# repeat callers' benefit without holding ~23 MB for subjects asked about once.
@functools.lru_cache(maxsize=4_096)
def _validated(kind: str, value: str, today: datetime.date) -> str:
    if kind == "enterprise":
        return validate_uscc(value)
    if kind == "person":
        return validate_ric(value, today)
    # The kind is not echoed either: a caller may have swapped the arguments.
    raise InvalidIdentifier("subject kind must be 'enterprise' or 'person'")


def _org_code_check(body: str) -> str:
    """GB 11714 check character for an 8-character organisation-code body."""
    # GB 11714 values letters A=10 ... Z=35, i.e. base-36 digits.
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else str(check % 11)


def synthetic_uscc(rng: random.Random) -> str:
    """A synthetic, well-formed USCC for demo and test data (never a real one on purpose).

    Position 17 carries a correct GB 11714 check so the code also passes
    stricter checkers than ours.
    """
    authority = rng.choice("19ANY")
    entity_type = rng.choice(_USCC_ENTITY_TYPES[authority])
    area = rng.choice("12345678") + "".join(rng.choices(_DIGITS, k=5))
    org_body = "".join(rng.choices(_USCC_ALPHABET, k=8))
    head = authority + entity_type + area + org_body + _org_code_check(org_body)
    return head + _uscc.calc_check_digit(head)


def synthetic_ric(rng: random.Random, birth: datetime.date, sex: str | None = None) -> str:
    """A synthetic resident id for demo and test data.

    The sequence number (positions 15-17) is odd for sex 'M' and even for 'F',
    as GB 11643 prescribes. A birth date in the future is allowed (useful for
    testing rejection); one before 1900 raises ValueError, since such an id
    could never validate.
    """
    if birth < _EARLIEST_BIRTH:
        raise ValueError("birth date must not be before 1900")
    if sex == "M":
        sequence = rng.randrange(1, 1000, 2)
    elif sex == "F":
        sequence = rng.randrange(2, 1000, 2)
    elif sex is None:
        sequence = rng.randrange(1, 1000)
    else:
        raise ValueError("sex must be 'M', 'F' or None")
    area = rng.choice("123456789") + "".join(rng.choices(_DIGITS, k=5))
    body = f"{area}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    # stdnum ignores the last character; append a placeholder for it.
    return body + _ric.calc_check_digit(body + "0")
