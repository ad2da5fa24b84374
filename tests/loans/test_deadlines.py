"""Response deadlines count the State Council's working days, 调休 included."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest

from gateway.loans import deadlines
from gateway.loans.deadlines import WorkingDays

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_national_day_is_skipped_and_the_adjusted_saturday_counts() -> None:
    days = WorkingDays(SHANGHAI)
    # Received Tuesday 29 September 2026: 30 Sep, then 1–7 October off, 10 October
    # (a Saturday) worked in exchange.
    assert days.add(dt.date(2026, 9, 29), 10) == dt.date(2026, 10, 19)
    received = int(dt.datetime(2026, 9, 29, 16, 30, tzinfo=SHANGHAI).timestamp())
    assert days.deadline(received) == int(dt.datetime(2026, 10, 20, tzinfo=SHANGHAI).timestamp())


def test_the_deadline_is_the_end_of_the_local_day() -> None:
    days = WorkingDays(SHANGHAI)
    # 23:30 UTC on a Sunday is Monday morning in Shanghai: received on the Monday.
    received = int(dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC).timestamp())
    assert dt.datetime.fromtimestamp(days.deadline(received), SHANGHAI) == dt.datetime(
        2026, 11, 17, tzinfo=SHANGHAI
    )


def test_a_year_without_a_published_schedule_counts_weekdays_and_says_so(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadlines, "_warned", set())
    deadlines.is_workday.cache_clear()
    if deadlines.covered(2027):
        pytest.skip("the installed calendar already knows 2027")
    with caplog.at_level(logging.WARNING, logger="xinyi.loans"):
        assert WorkingDays(SHANGHAI).add(dt.date(2026, 12, 31), 10) == dt.date(2027, 1, 14)
    assert [r.year for r in caplog.records] == [2027]  # type: ignore[attr-defined]
