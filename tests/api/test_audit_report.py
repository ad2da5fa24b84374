"""The monthly 备案 report over HTTP: one row per use, the form's columns, honest counts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import TYPE_CHECKING

import openpyxl

from gateway.audit.events import audit_event
from gateway.audit.report import COLUMNS

if TYPE_CHECKING:
    from conftest import Demo


def _sections(body: bytes) -> list[list[list[str]]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    sections: list[list[list[str]]] = [[]]
    for row in rows:
        if row:
            sections[-1].append(row)
        else:
            sections.append([])
    return sections


async def test_the_month_has_one_row_per_record_with_the_forms_columns(demo: Demo) -> None:
    gw = demo.gateway
    person = demo.subject("person", {"library": "granted"})
    for _ in range(3):
        assert (await demo.decide(person, "library")).status == 200
    assert (await demo.decide(demo.subject("enterprise"), "loan")).status == 200
    # records of other months must stay out of this month's report
    for when in (dt.datetime(2025, 1, 15, tzinfo=dt.UTC), gw.now() + dt.timedelta(days=40)):
        await gw.store.append_audit(audit_event("policy_reload_refused", "demo-operator", when))
    month = gw.now().astimezone(gw.tz).strftime("%Y-%m")
    in_month = [
        r
        for r in await gw.store.audit_records(0, 100_000)
        if dt.datetime.fromisoformat(r.entry["time"]).astimezone(gw.tz).strftime("%Y-%m") == month
    ]

    response = await demo.client.get(
        "/v1/audit/report", params={"month": month}, headers=demo.auth("demo-auditor")
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    table, *summaries = _sections(await response.read())
    assert table[1] == list(COLUMNS)
    rows = table[2:]
    assert len(rows) == len(in_month)
    assert [int(r[0]) for r in rows] == [r.seq for r in in_month]
    by_column = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    library = [r for r in by_column if r["应用领域"] == "library"]
    assert len(library) == 3
    first = library[0]
    assert first["事项"] == "deposit_waiver"
    assert first["主体"] == "demo library"
    assert first["使用人"] == "staff-0001"
    assert first["情况"] == "granted"
    assert first["批准使用科室"] == "市场秩序科"
    assert first["批准使用分管领导"] == "分管副局长"
    assert dt.date.fromisoformat(first["科室批准日期"])
    assert first["对象"] == next(
        r.entry["subject"] for r in in_month if r.seq == int(first["序号"])
    )
    by_partner = {name: int(count) for name, count in summaries[0][1:]}
    assert sum(by_partner.values()) == len(in_month)
    assert by_partner["demo-library"] == 3
    by_scene = {name: int(count) for name, count in summaries[1][1:]}
    assert by_scene["library"] == 3
    assert by_scene["loan"] == 1
    assert summaries[3][1:] == []  # no guard event this month

    # an operator reads it masked; xlsx has the same rows
    response = await demo.client.get(
        "/v1/audit/report",
        params={"month": month, "format": "xlsx"},
        headers=demo.auth("demo-operator"),
    )
    assert response.status == 200
    book = openpyxl.load_workbook(io.BytesIO(await response.read()))
    sheet = book["备案表"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == list(COLUMNS)
    assert len(values) - 1 == len(in_month)
    masked = next(v for v in values[1:] if v[3] == "library")
    assert str(masked[4]).endswith("****")
    assert masked[6] == "st****"

    january = await demo.client.get(
        "/v1/audit/report", params={"month": "2025-01"}, headers=demo.auth("demo-auditor")
    )
    table, *summaries = _sections(await january.read())
    assert len(table) == 3
    assert summaries[3][1][2] == "policy_reload_refused"

    for params, status, who in (
        ({"month": month}, 403, "demo-library"),
        ({"month": "2025-13"}, 422, "demo-auditor"),
        ({"month": month, "format": "pdf"}, 422, "demo-auditor"),
    ):
        refused = await demo.client.get("/v1/audit/report", params=params, headers=demo.auth(who))
        assert refused.status == status
