"""Each bank's response record: what the credit office watches (发起—响应—反馈).

For every demand a bank received in a window: did it answer within the
deadline, late, or not at all (overdue); what did it finally decide. A demand
counts as overdue for a bank when the deadline passed with no answer while
the demand was still open — a demand the enterprise closed, or that expired,
before the deadline owes no answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.loans.models import LoanDemand, LoanResponse

__all__ = ["OverduePair", "bank_stats", "overdue_pairs", "state_for"]

Deadline = Callable[[LoanDemand], int]


@dataclass(frozen=True, slots=True)
class OverduePair:
    demand_id: str
    bank: str
    deadline: int
    platform: str


def _open_until(demand: LoanDemand) -> int:
    end = demand.expires_at
    if demand.closed_at is not None:
        end = min(end, demand.closed_at)
    return end


def state_for(
    demand: LoanDemand, responses: Sequence[LoanResponse], deadline: int, now: int
) -> str:
    """A bank's state on a demand: its latest answer, or pending / overdue."""
    if responses:
        return responses[-1].status
    if deadline < min(now, _open_until(demand)):
        return "overdue"
    return "pending"


def bank_stats(
    bank: str,
    demands: Iterable[LoanDemand],
    responses: Mapping[str, Sequence[LoanResponse]],
    deadline_of: Deadline,
    now: int,
) -> dict[str, Any]:
    received = within = late = overdue = pending = granted = 0
    granted_amount = 0
    refused: dict[str, int] = {}
    waits: list[int] = []
    for demand in demands:
        if not demand.authorises(bank):
            continue
        received += 1
        own = [r for r in responses.get(demand.id, ()) if r.bank == bank]
        deadline = deadline_of(demand)
        if own:
            first = own[0].at
            waits.append(first - demand.created_at)
            if first <= deadline:
                within += 1
            else:
                late += 1
            last = own[-1]
            if last.status == "granted":
                granted += 1
                granted_amount += last.amount or 0
            elif last.status == "refused" and last.reason_code:
                refused[last.reason_code] = refused.get(last.reason_code, 0) + 1
        elif state_for(demand, own, deadline, now) == "overdue":
            overdue += 1
        else:
            pending += 1
    median = statistics.median(waits) if waits else None
    return {
        "bank": bank,
        "demands_received": received,
        "responded_within_deadline": within,
        "responded_late": late,
        "overdue": overdue,
        "pending": pending,
        "granted": {"count": granted, "amount": granted_amount},
        "refused_by_reason": dict(sorted(refused.items())),
        "median_response_seconds": median,
    }


def overdue_pairs(
    demands: Iterable[LoanDemand],
    responses: Mapping[str, Sequence[LoanResponse]],
    banks: Sequence[str],
    deadline_of: Deadline,
    now: int,
    since: int | None = None,
) -> list[OverduePair]:
    """(demand, bank) pairs whose deadline passed unanswered, by deadline.

    With ``since``, only pairs that became overdue after it: a caller that
    remembers when it last asked (the outbox emitting ``loan_response_overdue``)
    gets each pair once.
    """
    found = []
    for demand in demands:
        deadline = deadline_of(demand)
        if deadline >= min(now, _open_until(demand)):
            continue
        if since is not None and deadline < since:
            continue
        answered = {r.bank for r in responses.get(demand.id, ())}
        for bank in banks:
            if demand.authorises(bank) and bank not in answered:
                found.append(OverduePair(demand.id, bank, deadline, demand.platform))
    found.sort(key=lambda p: (p.deadline, p.demand_id, p.bank))
    return found
