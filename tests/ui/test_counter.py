"""The counter: a clerk looks an applicant up and gets a decision in plain language."""

from __future__ import annotations

import re

from tests.conftest import Demo
from tests.ui.conftest import page_csrf, sign_in


async def _decide(demo: Demo, subject_id: str, **fields: str) -> tuple[int, str]:
    token = await page_csrf(demo, "/ui/counter")
    data = {
        "csrf": token,
        "kind": "enterprise",
        "subject_id": subject_id,
        "matter_code": "LN-210100-0001",
        "key_missing": "no",
        **fields,
    }
    response = await demo.client.post("/ui/counter", data=data)
    return response.status, await response.text()


async def test_a_red_list_enterprise_gets_the_green_channel_and_tolerant_acceptance(
    demo: Demo,
) -> None:
    await sign_in(demo, "hall-clerk")
    subject = next(s for s in demo.subjects if s["label"].startswith("red-list"))
    status, html = await _decide(demo, subject["id"])
    assert status == 200
    assert "给予守信激励" in html
    assert "可走绿色通道" in html
    assert "最多缺 3 项非核心材料，书面承诺 30 日内补齐" in html
    # the reasons, in plain language, with the policy's legal bases
    assert "给予“绿色通道”：核查了 红名单" in html
    assert "守信联合激励和失信联合惩戒制度" in html
    # the id is masked on the slip; the full one only behind an explicit "show"
    masked = subject["id"][:4] + "*" * 10 + subject["id"][-4:]
    assert f'<span class="masked">{masked}</span>' in html
    # shown only behind the reveal, and carried by the 容缺 commitment form's hidden field
    assert html.count(subject["id"]) == 2
    assert f'<input type="hidden" name="subject_id" value="{subject["id"]}">' in html
    assert re.search(r"<details[^>]*><summary>显示完整证件号</summary>", html)
    # the decision was made and audited like an API decision, with the clerk as 使用人
    # (the demo's start puts its consents on the log first)
    records = [r for r in await demo.gateway.store.audit_records(0, 100) if "kind" not in r.entry]
    assert len(records) == 1
    entry = records[0].entry
    assert (entry["partner"], entry["staff_id"], entry["outcome"]) == (
        "demo-service-hall",
        "hall-clerk",
        "granted",
    )
    # the slip can be opened again from the store
    slip = await demo.client.get(f"/ui/counter/decisions/{entry['decision_id']}")
    assert slip.status == 200
    assert "可走绿色通道" in await slip.text()
    assert subject["id"] not in await slip.text()


async def test_missing_key_materials_withholds_tolerant_acceptance(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    subject = next(s for s in demo.subjects if s["label"].startswith("tax grade A"))
    status, html = await _decide(demo, subject["id"], key_missing="yes")
    assert status == 200
    assert "可走绿色通道" in html
    assert "容缺受理：" not in html


async def test_a_listed_enterprise_is_handled_the_ordinary_way_not_punished(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    subject = next(s for s in demo.subjects if s["label"].startswith("on the serious-dishonesty"))
    status, html = await _decide(demo, subject["id"])
    assert status == 200
    assert "按一般程序办理" in html
    assert "这不是惩戒" in html


async def test_a_wrong_id_is_shown_at_its_field(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    status, html = await _decide(demo, "914403001922038217")
    assert status == 422
    assert '<a href="#subject_id">统一社会信用代码或居民身份证号</a>' in html
    assert 'id="subject_id"' in html
    assert 'aria-invalid="true"' in html
    records = await demo.gateway.store.audit_records(0, 100)
    assert all("kind" in r.entry for r in records)  # a decision record has no kind


async def test_a_person_without_consent_is_told_what_is_missing(demo: Demo) -> None:
    # 信易批 serves persons too, but only with the person's consent (POLICY.md).
    await sign_in(demo, "hall-clerk")
    person = demo.subject("person")
    status, html = await _decide(demo, person["id"], kind="person")
    assert status == 403
    assert '<a href="#kind">' in html
    assert "须经本人授权" in html
    assert "consent_id" not in html


async def test_the_counter_in_english(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    await demo.client.get("/ui/lang?to=en&next=/ui/counter")
    subject = next(s for s in demo.subjects if s["label"].startswith("red-list"))
    status, html = await _decide(demo, subject["id"])
    assert status == 200
    assert "Incentive granted" in html
    assert "Tolerant acceptance: up to 3 non-key materials" in html


async def test_another_halls_decision_slip_is_not_found(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    made = await demo.decide(subject, "library")
    decision_id = (await made.json())["decision_id"]
    await sign_in(demo, "hall-clerk")
    slip = await demo.client.get(f"/ui/counter/decisions/{decision_id}")
    assert slip.status == 404
