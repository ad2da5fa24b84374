"""Response deadlines in working days, under the State Council's holiday schedule.

A bank answers a demand within 10 working days (工作日) of receiving it: the
holidays the State Council announces each year do not count, and its
adjusted workdays (调休, a Saturday or Sunday worked in exchange) do. The
schedule comes from ``chinese-calendar``, which is updated each year once the
State Council publishes the next year's arrangement (usually in November).
For a year it does not cover yet, days are counted Monday to Friday and a
warning is logged once for that year: the deadline may then be a day or two
off around a holiday, never silently.

The deadline is the end (24:00, in the deployment's time zone) of the N-th
working day after the day the demand was received.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["DEFAULT_WORKING_DAYS", "WorkingDays", "iso_utc"]

log = logging.getLogger("xinyi.loans")

DEFAULT_WORKING_DAYS = 10
_warned: set[int] = set()


@lru_cache(maxsize=4096)
def is_workday(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning(
                "the holiday calendar has no schedule for this year; counting Monday to Friday",
                extra={"year": day.year},
            )
        return day.weekday() < 5


def covered(year: int) -> bool:
    """Whether the State Council's schedule for ``year`` is known."""
    try:
        chinese_calendar.is_workday(dt.date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


class WorkingDays:
    def __init__(self, tz: ZoneInfo, days: int = DEFAULT_WORKING_DAYS) -> None:
        self._tz = tz
        self._days = days

    def add(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start``."""
        day = start
        counted = 0
        while counted < n:
            day += dt.timedelta(days=1)
            if is_workday(day):
                counted += 1
        return day

    @lru_cache(maxsize=65_536)  # noqa: B019 - one instance per gateway, bounded
    def _deadline_for_day(self, received: dt.date) -> int:
        last = self.add(received, self._days)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), self._tz)
        return int(end.timestamp())

    def deadline(self, received_at: int) -> int:
        """Epoch seconds at which a demand received at ``received_at`` becomes overdue."""
        day = dt.datetime.fromtimestamp(received_at, self._tz).date()
        return self._deadline_for_day(day)


def iso_utc(epoch: int) -> str:
    """Epoch seconds as ISO 8601 in UTC, as deadlines and expiries are shown."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()
