"""The commitment life cycle: registered open, then fulfilled or breached, once.

open ──fulfil──▶ fulfilled
  │  ──check true──▶ fulfilled          (告知承诺 found true)
  │  ──check false──▶ breached (false_commitment)
  └──past due (sweeper)──▶ breached (overdue)

Every transition is recorded on the audit chain, and closing emits
``commitment_fulfilled`` / ``commitment_breached`` to the hall and upstream in
the same write. A breach withholds 容缺 and 告知承诺 from the subject's later
approval decisions until ``withhold_until`` (``breach_records``) — an
incentive withheld, never a constraint.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from adapters.credit.base import CreditRecord
from gateway.commitments.models import Commitment, CommitmentKind
from gateway.commitments.records import breach_records
from gateway.commitments.rules import allowance
from gateway.commitments.store import CommitmentStore
from gateway.errors import Conflict, FieldError, InvalidRequest, NotFound
from gateway.ids import ordered_id
from gateway.metrics import Metrics
from gateway.outbox.events import Events
from gateway.settings import CommitmentSettings, EventKind, Partner
from gateway.store.admission import BreachRead
from gateway.store.base import AuditEvent, Store
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["CommitmentService"]

log = logging.getLogger("xinyi.commitments")

_SWEEP_BATCH = 200


class CommitmentService:
    def __init__(
        self,
        store: CommitmentStore,
        events: Events,
        audit: Store,
        pseudonyms: Pseudonyms,
        metrics: Metrics,
        settings: CommitmentSettings,
    ) -> None:
        self.store = store
        self._events = events
        self._audit = audit
        self._pseudonyms = pseudonyms
        self._metrics = metrics
        self._settings = settings

    async def register(
        self,
        hall: Partner,
        *,
        decision_id: str,
        kind: CommitmentKind,
        subject_kind: str,
        subject_id: str,
        missing_materials: list[str],
        due: dt.date,
        now: dt.datetime,
        today: dt.date,
    ) -> Commitment:
        found = await self._audit.get_decision(decision_id)
        if found is None or found[0] != hall.id:
            raise InvalidRequest(
                "no such decision",
                errors=[FieldError("/decision_id", "none of your decisions has this id")],
            )
        subject_key = self._pseudonyms.internal(subject_kind, subject_id)
        # The gateway keeps no subject id with a decision: the hall names the
        # applicant again, and the decision's token record must be on that subject.
        tokens = await self._audit.live_tokens(subject_key, int(now.timestamp()))
        if not any(t.decision_id == decision_id for t in tokens):
            raise InvalidRequest(
                "the decision is not on this subject",
                errors=[FieldError("/subject/id", "the decision was not made on this subject")],
            )
        allowed = allowance(
            found[1],
            kind,
            missing_materials,
            due,
            today,
            self._settings.breach_withhold_days,
        )
        commitment = Commitment(
            commitment_id=ordered_id("cmt_"),
            partner=hall.id,
            decision_id=decision_id,
            kind=kind,
            subject_kind=subject_kind,
            subject_key=subject_key,
            subject=self._pseudonyms.of(hall.pseudonym_sector, subject_kind, subject_id),
            missing_materials=tuple(missing_materials),
            due=due,
            created_at=now.isoformat(timespec="seconds"),
            withhold_days=allowed.withhold_days,
        )
        await self.store.register(commitment)
        await self._record(commitment, "commitment_registered", now)
        self._metrics.commitments.labels(hall.id, kind, "open").inc()
        return commitment

    async def own(self, hall: Partner, commitment_id: str) -> Commitment:
        """The hall's commitment; another hall's is indistinguishable from none."""
        commitment = await self.store.get(commitment_id)
        if commitment is None or commitment.partner != hall.id:
            raise NotFound("no such commitment")
        return commitment

    async def fulfil(self, hall: Partner, commitment_id: str, now: dt.datetime) -> Commitment:
        commitment = await self.own(hall, commitment_id)
        if commitment.status == "fulfilled":
            return commitment  # a repeated fulfil changes nothing
        if commitment.kind == "notification":
            raise Conflict(
                "a notification commitment is closed by its check: POST …/check",
                code="commitment_needs_check",
            )
        return await self._close(commitment, "fulfilled", None, now)

    async def check(
        self, hall: Partner, commitment_id: str, result: bool, now: dt.datetime
    ) -> Commitment:
        """告知承诺: the hall's later check found the commitment true or false."""
        commitment = await self.own(hall, commitment_id)
        if commitment.kind != "notification":
            raise Conflict(
                "only a notification commitment is checked", code="commitment_not_checked"
            )
        if commitment.status != "open":
            if commitment.check_result == result:
                return commitment
            raise Conflict("the commitment is closed already", code="commitment_closed")
        if result:
            return await self._close(commitment, "fulfilled", None, now, check=True)
        return await self._close(commitment, "breached", "false_commitment", now, check=False)

    async def sweep(self, today: dt.date, now: dt.datetime) -> int:
        """Breach every open commitment due before ``today``; how many this call breached.

        Safe on many replicas at once: a commitment closes only while open, so
        each is breached, audited and announced by one of them.
        """
        breached = 0
        while True:
            # Each pass closes (here or on another replica) every commitment it read,
            # so the next read starts past them.
            overdue = await self.store.overdue(today, _SWEEP_BATCH)
            for commitment in overdue:
                breached += await self._close_if_open(
                    commitment, "breached", "overdue", now, None, today
                )
            if len(overdue) < _SWEEP_BATCH:
                return breached

    async def breach_records(self, subject_key: str, today: dt.date) -> list[CreditRecord]:
        """The subject's breaches still withholding, as records the fact builder reads."""
        return breach_records(await self.store.breaches(subject_key, today))

    def breach_read(self, subject_key: str, today: dt.date) -> BreachRead:
        """The same breaches, for a decision's admission call to read (``Store.admit``)."""
        return BreachRead(subject_key, today, self.store.breaches)

    async def _close(
        self,
        commitment: Commitment,
        status: Literal["fulfilled", "breached"],
        breach: Literal["overdue", "false_commitment"] | None,
        now: dt.datetime,
        check: bool | None = None,
    ) -> Commitment:
        if commitment.status != "open" or not await self._close_if_open(
            commitment, status, breach, now, check
        ):
            current = await self.store.get(commitment.commitment_id)
            if current is not None and current.status == status:
                return current
            raise Conflict("the commitment is closed already", code="commitment_closed")
        current = await self.store.get(commitment.commitment_id)
        assert current is not None
        return current

    async def _close_if_open(
        self,
        commitment: Commitment,
        status: Literal["fulfilled", "breached"],
        breach: Literal["overdue", "false_commitment"] | None,
        now: dt.datetime,
        check: bool | None,
        today: dt.date | None = None,
    ) -> bool:
        day = today or now.date()  # the local calendar day where the caller knows it
        closed = commitment.closed(
            status=status,
            closed_at=now.isoformat(timespec="seconds"),
            breach=breach,
            withhold_until=day + dt.timedelta(days=commitment.withhold_days)
            if status == "breached"
            else None,
            check_result=check,
        )
        kind: EventKind = "commitment_breached" if status == "breached" else "commitment_fulfilled"
        data = {
            "commitment_id": closed.commitment_id,
            "decision_id": closed.decision_id,
            "kind": closed.kind,
            "hall": closed.partner,
            "subject": closed.subject,
            "subject_kind": closed.subject_kind,
            "due": closed.due.isoformat(),
            "status": status,
        }
        if breach is not None and closed.withhold_until is not None:
            data |= {"breach": breach, "withhold_until": closed.withhold_until.isoformat()}
        items = self._events.items(kind, data, audience=[closed.partner], upstream=True, at=now)
        if not await self.store.close(closed, items):
            return False
        self._events.queued(items)
        await self._record(closed, kind, now)
        self._metrics.commitments.labels(closed.partner, closed.kind, status).inc()
        log.info(
            "commitment closed",
            extra={"commitment_id": closed.commitment_id, "status": status, "breach": breach},
        )
        return True

    async def _record(self, c: Commitment, kind: str, now: dt.datetime) -> None:
        detail: dict[str, object] = {
            "commitment_id": c.commitment_id,
            "decision_id": c.decision_id,
            "kind": c.kind,
            "due": c.due.isoformat(),
            "missing_materials": len(c.missing_materials),
            "status": c.status,
        }
        if c.breach is not None:
            detail["breach"] = c.breach
        await self._audit.append_audit(
            AuditEvent(
                kind=kind,
                time=now.isoformat(timespec="seconds"),
                partner=c.partner,
                record_id=f"{c.commitment_id}:{kind}",
                scene="approval",
                purpose="administrative_approval",
                subject=c.subject,
                outcome=c.status,
                detail=detail,
            )
        )
