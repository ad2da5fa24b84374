"""The counter's 容缺 commitments: registered after a decision, listed by due date, fulfilled."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tests.conftest import Demo
from tests.ui.conftest import csrf_of, page_csrf, sign_in


async def _decide(demo: Demo, label: str, key_missing: str = "no") -> tuple[dict[str, Any], str]:
    subject = next(s for s in demo.subjects if s["label"].startswith(label))
    token = await page_csrf(demo, "/ui/counter")
    response = await demo.client.post(
        "/ui/counter",
        data={
            "csrf": token,
            "kind": "enterprise",
            "subject_id": subject["id"],
            "matter_code": "LN-210100-0001",
            "key_missing": key_missing,
        },
    )
    assert response.status == 200
    return subject, await response.text()


def _latest(html: str) -> str:
    """The latest due date the decision allows, as the form bounds it."""
    found = re.search(r'id="due"[^>]* max="([0-9-]+)"', html)
    assert found
    return found.group(1)


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', html)
    assert found, name
    return found.group(1)


async def _register(demo: Demo, html: str, materials: str, due: str) -> Any:
    return await demo.client.post(
        "/ui/counter/commitments",
        data={name: _hidden(html, name) for name in ("csrf", "decision_id", "kind", "subject_id")}
        | {"materials": materials, "due": due},
        allow_redirects=False,
    )


async def test_a_clerk_registers_a_commitment_and_sees_it_then_fulfils_it(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    subject, html = await _decide(demo, "red-list")
    assert "登记容缺承诺" in html
    latest = _latest(html)
    assert dt.date.fromisoformat(latest) - demo.gateway.today() <= dt.timedelta(days=30)
    assert "本决定最多允许缺 3 项" in html
    response = await _register(demo, html, "营业执照副本\n法定代表人身份证明", latest)
    assert response.status == 303
    assert response.headers["Location"].startswith("/ui/counter?registered=1")
    page = await (await demo.client.get("/ui/counter?registered=1")).text()
    assert "承诺已登记" in page
    assert "营业执照副本、法定代表人身份证明" in page
    assert latest in page
    assert subject["id"] not in page  # the list shows no personal id
    listed = await demo.gateway.commitments.store.list_for(
        "demo-service-hall", "open", None, None, 10
    )
    assert [c.due.isoformat() for c in listed] == [latest]
    # the audit chain has the registration, like an API registration
    kinds = [r.entry.get("kind") for r in await demo.gateway.store.audit_records(0, 100)]
    assert "commitment_registered" in kinds
    # fulfil with one action
    action = f"/ui/counter/commitments/{listed[0].commitment_id}/fulfil"
    assert f'action="{action}"' in page
    done = await demo.client.post(action, data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert done.status == 303
    after = await (await demo.client.get("/ui/counter?fulfilled=1")).text()
    assert "承诺已履行" in after
    assert "没有未结的承诺" in after
    got = await demo.gateway.commitments.store.get(listed[0].commitment_id)
    assert got is not None
    assert got.status == "fulfilled"


async def test_a_due_date_beyond_the_decision_is_shown_at_its_field(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    _, html = await _decide(demo, "red-list")
    too_late = (dt.date.fromisoformat(_latest(html)) + dt.timedelta(days=1)).isoformat()
    response = await _register(demo, html, "营业执照副本", too_late)
    assert response.status == 422
    page = await response.text()
    assert '<a href="#due">补齐期限</a>' in page
    assert re.search(r'id="due"[^>]*aria-invalid="true"', page)
    assert "营业执照副本" in page  # the clerk's entries are kept
    assert (
        await demo.gateway.commitments.store.list_for("demo-service-hall", "open", None, None, 10)
        == []
    )


async def test_too_many_materials_are_refused(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    _, html = await _decide(demo, "red-list")
    latest = _latest(html)
    response = await _register(demo, html, "a\nb\nc\nd", latest)
    assert response.status == 422
    assert '<a href="#materials">' in await response.text()


async def test_no_form_without_tolerant_acceptance(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    _, html = await _decide(demo, "tax grade A", key_missing="yes")
    assert "登记容缺承诺" not in html


async def test_overdue_commitments_come_first_and_are_marked(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    _, html = await _decide(demo, "red-list")
    soon = (demo.gateway.today() + dt.timedelta(days=2)).isoformat()
    later = (demo.gateway.today() + dt.timedelta(days=20)).isoformat()
    assert later < _latest(html)
    assert (await _register(demo, html, "后到期", later)).status == 303
    assert (await _register(demo, html, "先到期", soon)).status == 303
    page = await (await demo.client.get("/ui/counter")).text()
    assert page.index("先到期") < page.index("后到期")
    assert "已逾期" not in page
    # the day after the earlier one is due (and before the sweeper breaches it)
    demo.gateway.today = lambda: dt.date.fromisoformat(soon) + dt.timedelta(days=1)  # type: ignore[method-assign]
    page = await (await demo.client.get("/ui/counter")).text()
    assert page.count("已逾期") == 1
    assert re.search(r'<tr id="commitment-[^"]+" class="overdue">\s*<td>' + soon, page)


async def test_fulfilling_another_halls_or_without_csrf_is_refused(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    _, html = await _decide(demo, "red-list")
    latest = _latest(html)
    assert (await _register(demo, html, "营业执照副本", latest)).status == 303
    (c,) = await demo.gateway.commitments.store.list_for(
        "demo-service-hall", "open", None, None, 10
    )
    action = f"/ui/counter/commitments/{c.commitment_id}/fulfil"
    refused = await demo.client.post(action, data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    token = await page_csrf(demo, "/ui/counter")
    missing = await demo.client.post(
        "/ui/counter/commitments/cmt_nope/fulfil", data={"csrf": token}, allow_redirects=False
    )
    assert missing.status == 404
    got = await demo.gateway.commitments.store.get(c.commitment_id)
    assert got is not None
    assert got.status == "open"


async def test_a_commitment_on_another_applicant_is_refused(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    _, html = await _decide(demo, "red-list")
    other = next(s for s in demo.subjects if s["label"].startswith("tax grade A"))
    fields = {name: _hidden(html, name) for name in ("csrf", "decision_id", "kind")}
    response = await demo.client.post(
        "/ui/counter/commitments",
        data=fields
        | {"subject_id": other["id"], "materials": "营业执照副本", "due": _latest(html)},
    )
    assert response.status == 422
    assert other["id"] not in await response.text()
    assert (
        await demo.gateway.commitments.store.list_for("demo-service-hall", "open", None, None, 10)
        == []
    )
