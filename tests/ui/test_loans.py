"""The loan desk: a bank's products, 名单推荐 with reasons, responses and its own stats."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import orjson

from gateway.demo import prepare_demo
from gateway.loans.demo import seed_loans
from tests.conftest import Demo
from tests.ui.conftest import csrf_of, sign_in


async def _seed(demo: Demo, tmp_path: Path) -> list[str]:
    setup = prepare_demo(tmp_path / "again", dt.date.today())
    demo_json = tmp_path / "demo.json"
    demo_json.write_bytes(orjson.dumps(demo.data))
    await seed_loans(demo.gateway, setup, demo_json)
    loans = orjson.loads(demo_json.read_bytes())["loans"]
    return [d["demand_id"] for d in loans["demands"]]


async def _product(demo: Demo) -> str:
    page = await demo.client.get("/ui/loans/products/demo-bank.quick")
    assert page.status == 200
    return await page.text()


def _stats_row(html: str, bank: str) -> list[str]:
    row = re.search(rf'<tr id="loan-stats-{bank}">(.*?)</tr>', html, re.S)
    assert row
    return re.findall(r'<td class="num">(\d+)</td>', row.group(1))


async def test_a_loan_officer_sees_recommendations_and_records_a_grant(
    demo: Demo, tmp_path: Path
) -> None:
    demands = await _seed(demo, tmp_path)
    assert (await sign_in(demo, "loan-officer")).status == 303
    desk = await (await demo.client.get("/ui/loans")).text()
    assert "信易贷·快贷（纯信用）" in desk
    assert "demo-bank-2.general" not in desk  # another bank's product is not listed
    assert _stats_row(desk, "demo-bank")[0] == str(len(demands))
    assert "loan-stats-demo-bank-2" not in desk  # nor its statistics
    html = await _product(demo)
    for demand_id in demands:
        assert f'id="rec-{demand_id}"' in html
    assert "匹配理由" in html
    assert "核查了" in html
    assert "国办发〔2021〕52号" in html
    for subject in demo.subjects:  # a disclosed id is masked
        assert subject["id"] not in html
    response = await demo.client.post(
        f"/ui/loans/products/demo-bank.quick/demands/{demands[0]}/responses",
        data={
            "csrf": csrf_of(html),
            "status": "granted",
            "amount": "1000000",
            "rate": "3.9",
            "term_months": "12",
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    after = await (await demo.client.get(response.headers["Location"])).text()
    assert "响应已登记" in after
    row = _stats_row(
        after, "demo-bank"
    )  # received, within, late, overdue, pending, granted, refused
    assert (row[1], row[5], row[6]) == ("1", "1", "0")
    # recorded like an API response, with the officer as staff id
    records = await demo.gateway.store.audit_records(0, 500)
    recorded = [r.entry for r in records if r.entry.get("kind") == "loan_response"]
    assert [(e["outcome"], e["staff_id"]) for e in recorded] == [("granted", "loan-officer")]


async def test_a_refusal_needs_its_reason_at_its_field(demo: Demo, tmp_path: Path) -> None:
    demands = await _seed(demo, tmp_path)
    await sign_in(demo, "loan-officer")
    html = await _product(demo)
    action = f"/ui/loans/products/demo-bank.quick/demands/{demands[0]}/responses"
    response = await demo.client.post(action, data={"csrf": csrf_of(html), "status": "refused"})
    assert response.status == 422
    page = await response.text()
    assert f'<a href="#reason_code-{demands[0]}">拒绝原因</a>' in page
    assert re.search(rf'id="reason_code-{demands[0]}"[^>]*aria-invalid="true"', page)
    ok = await demo.client.post(
        action,
        data={"csrf": csrf_of(page), "status": "refused", "reason_code": "collateral_required"},
        allow_redirects=False,
    )
    assert ok.status == 303
    after = await (await demo.client.get("/ui/loans")).text()
    assert _stats_row(after, "demo-bank")[6] == "1"


async def test_a_bank_sees_only_its_own(demo: Demo, tmp_path: Path) -> None:
    demands = await _seed(demo, tmp_path)
    await sign_in(demo, "loan-officer")
    other = await demo.client.get("/ui/loans/products/demo-bank-2.general")
    assert other.status == 404
    html = await _product(demo)
    forged = await demo.client.post(
        f"/ui/loans/products/demo-bank-2.general/demands/{demands[0]}/responses",
        data={"csrf": csrf_of(html), "status": "withdrawn"},
    )
    assert forged.status == 404
    no_csrf = await demo.client.post(
        f"/ui/loans/products/demo-bank.quick/demands/{demands[0]}/responses",
        data={"status": "withdrawn"},
    )
    assert no_csrf.status == 403


async def test_other_roles_have_no_loan_desk(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    assert (await demo.client.get("/ui/loans")).status == 403
    await demo.client.post(
        "/ui/logout", data={"csrf": csrf_of(await (await demo.client.get("/ui/counter")).text())}
    )
    await sign_in(demo, "loan-officer")
    assert (await demo.client.get("/ui/counter")).status == 403
    assert (await demo.client.get("/ui/dashboard")).status == 403
