"""告知承诺: approval on a notification commitment, checked later; a false one is a
breach that withholds 容缺 and 告知承诺, and the hall's statistics count it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.events.conftest import HALL, EventDemo
from tests.events.receiver import eventually


def _benefits(body: dict[str, Any]) -> list[str]:
    return [b["code"] for b in body["benefits"]]


async def test_a_false_notification_commitment_is_a_breach(events_demo: EventDemo) -> None:
    demo, receiver = events_demo.demo, events_demo.receiver
    subject = demo.subject("enterprise", {"approval": "granted"})
    context = {**subject["context"]["approval"], "notification_commitment": True}
    first = await (await demo.decide(subject, "approval", context=context)).json()
    assert "notification_commitment" in _benefits(first)
    body = {
        "decision_id": first["decision_id"],
        "kind": "notification",
        "subject": {"kind": "enterprise", "id": subject["id"]},
        "due": (demo.gateway.today() + dt.timedelta(days=60)).isoformat(),
    }
    made = await demo.client.post("/v1/commitments", json=body, headers=demo.auth(HALL))
    assert made.status == 201, await made.text()
    commitment = await made.json()
    assert commitment["kind"] == "notification"
    path = f"/v1/commitments/{commitment['commitment_id']}"

    refused = await demo.client.post(f"{path}/fulfil", headers=demo.auth(HALL))
    assert refused.status == 409
    bad = await demo.client.post(f"{path}/check", json={"result": "maybe"}, headers=demo.auth(HALL))
    assert bad.status == 422
    checked = await demo.client.post(
        f"{path}/check", json={"result": "false"}, headers=demo.auth(HALL)
    )
    shown = await checked.json()
    assert shown["status"] == "breached"
    assert shown["breach"] == "false_commitment"
    assert shown["check_result"] == "false"

    await eventually(lambda: bool(receiver.events("/hall", "commitment_breached")))
    (event,) = receiver.events("/hall", "commitment_breached").values()
    assert event["data"]["breach"] == "false_commitment"

    later = await (await demo.decide(subject, "approval", context=context)).json()
    assert _benefits(later) == ["green_channel"]

    stats = await (await demo.client.get("/v1/commitments/stats", headers=demo.auth(HALL))).json()
    assert stats["commitments"]["notification"] == {
        "open": 0,
        "fulfilled": 0,
        "breached": 1,
        "registered": 1,
    }


async def test_registration_is_bounded_by_the_decision(events_demo: EventDemo) -> None:
    demo = events_demo.demo
    subject = demo.subject("enterprise", {"approval": "granted"})
    decided = await (await demo.decide(subject, "approval")).json()
    today = demo.gateway.today()
    base = {
        "decision_id": decided["decision_id"],
        "subject": {"kind": "enterprise", "id": subject["id"]},
        "missing_materials": ["a"],
        "due": (today + dt.timedelta(days=5)).isoformat(),
    }
    cases = [
        ({"missing_materials": ["a", "b", "c", "d"]}, "/missing_materials"),
        ({"due": (today + dt.timedelta(days=31)).isoformat()}, "/due"),
        ({"due": (today - dt.timedelta(days=1)).isoformat()}, "/due"),
        ({"kind": "notification"}, "/decision_id"),
        ({"decision_id": "dec_nope"}, "/decision_id"),
        (
            {
                "subject": demo.body(
                    demo.subject("enterprise", {"approval": "standard"}), "approval"
                )["subject"]
            },
            "/subject/id",
        ),
        ({"due": "tomorrow"}, "/due"),
    ]
    for change, pointer in cases:
        answer = await demo.client.post(
            "/v1/commitments", json=base | change, headers=demo.auth(HALL)
        )
        assert answer.status == 422, (change, await answer.text())
        problem = await answer.json()
        assert pointer in [e["pointer"] for e in problem["errors"]], (change, problem)
    # Another partner kind may not register, nor see a hall's commitments.
    other = await demo.client.post("/v1/commitments", json=base, headers=demo.auth("demo-bank"))
    assert other.status == 403
    ok = await demo.client.post("/v1/commitments", json=base, headers=demo.auth(HALL))
    assert ok.status == 201
    listed = await (
        await demo.client.get("/v1/commitments?status=open", headers=demo.auth(HALL))
    ).json()
    assert [c["commitment_id"] for c in listed["commitments"]] == [
        (await ok.json())["commitment_id"]
    ]
    bad = await demo.client.get("/v1/commitments?cursor=%%%", headers=demo.auth(HALL))
    assert bad.status == 422
    # An empty filter is a bad value, not an absent one (found by the fuzzer).
    for query in ("due_before=", "status="):
        empty = await demo.client.get(f"/v1/commitments?{query}", headers=demo.auth(HALL))
        assert empty.status == 422, query
        pointer = "/" + query.rstrip("=")
        assert [e["pointer"] for e in (await empty.json())["errors"]] == [pointer]
