"""End to end on the embedded store: 容缺 granted, a commitment registered, another
breached by the sweeper, the breach delivered (signed, retried, once) to the hall's
webhook and upstream, and the subject's next decision without 容缺."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.commitments.models import Commitment
from tests.events.conftest import HALL, EventDemo
from tests.events.receiver import eventually


def _benefits(body: dict[str, Any]) -> list[str]:
    return [b["code"] for b in body["benefits"]]


async def test_a_breach_reaches_the_hall_once_and_withholds_tolerant_acceptance(
    events_demo: EventDemo,
) -> None:
    demo, receiver = events_demo.demo, events_demo.receiver
    gw = demo.gateway
    subject = demo.subject("enterprise", {"approval": "granted"})
    first = await (await demo.decide(subject, "approval")).json()
    assert "tolerant_acceptance" in _benefits(first)
    today = gw.today()

    answer = await demo.client.post(
        "/v1/commitments",
        json={
            "decision_id": first["decision_id"],
            "subject": {"kind": "enterprise", "id": subject["id"]},
            "missing_materials": ["法定代表人身份证明"],
            "due": (today + dt.timedelta(days=20)).isoformat(),
        },
        headers=demo.auth(HALL),
    )
    assert answer.status == 201, await answer.text()
    registered = await answer.json()
    assert registered["status"] == "open"
    assert subject["id"] not in await answer.text()

    # A commitment the hall registered weeks ago, now past its due date.
    earlier = await gw.commitments.store.get(registered["commitment_id"])
    assert earlier is not None
    overdue = Commitment(
        **{
            **{f: getattr(earlier, f) for f in earlier.__dataclass_fields__},
            "commitment_id": "cmt_overdue_" + registered["commitment_id"][-8:],
            "due": today - dt.timedelta(days=1),
            "created_at": (gw.now() - dt.timedelta(days=30)).isoformat(timespec="seconds"),
        }
    )
    assert await gw.commitments.store.register(overdue)

    def breach_acknowledged() -> bool:
        return bool(receiver.events("/hall", "commitment_breached")) and bool(
            receiver.events("/platform/events", "commitment_breached")
        )

    await eventually(breach_acknowledged)
    ((event_id, payload),) = receiver.events("/hall", "commitment_breached").items()
    assert payload["data"]["commitment_id"] == overdue.commitment_id
    assert payload["data"]["breach"] == "overdue"
    assert payload["data"]["subject"] == overdue.subject  # a pseudonym, never the USCC
    assert subject["id"] not in str(payload)
    attempts = receiver.attempts_for("/hall", event_id)
    assert [a.status for a in attempts] == [500, 500, 204]  # retried until acknowledged
    assert all(a.verified for a in attempts)  # standardwebhooks verified every signature
    # Upstream got the same event id through the platform adapter.
    assert event_id in receiver.events("/platform/events", "commitment_breached")

    shown = await (
        await demo.client.get(f"/v1/commitments/{overdue.commitment_id}", headers=demo.auth(HALL))
    ).json()
    assert shown["status"] == "breached"
    assert shown["breach"] == "overdue"

    # The breach withholds 容缺 (an incentive), not the green channel, and constrains nothing.
    later = await (await demo.decide(subject, "approval")).json()
    assert later["outcome"] == "granted"
    assert _benefits(later) == ["green_channel"]
    assert later["constraints"] == []

    # Fulfilling the open commitment announces that too, once.
    done = await demo.client.post(
        f"/v1/commitments/{registered['commitment_id']}/fulfil", headers=demo.auth(HALL)
    )
    assert (await done.json())["status"] == "fulfilled"
    await eventually(lambda: bool(receiver.events("/hall", "commitment_fulfilled")))
    assert len(receiver.events("/hall", "commitment_fulfilled")) == 1

    # Everything is on the audit chain.
    kinds = [
        r.entry.get("kind")
        for r in await gw.store.audit_records(0, 1000)
        if r.entry.get("kind", "").startswith("commitment_")
    ]
    assert kinds.count("commitment_registered") == 1
    assert kinds.count("commitment_breached") == 1
    assert kinds.count("commitment_fulfilled") == 1
    assert await gw.dispatcher.run_once() == 0  # nothing left to deliver
