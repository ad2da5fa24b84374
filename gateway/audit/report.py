"""The monthly 备案 report: every use of credit information in a month, as the form has it.

The 备案表 (查询使用信用信息产品备案表) records, per use: 事项 (what for),
应用领域 (scene), 对象 (whose data), 主体 (who used it), 使用人 (the member of
staff), 情况 (what came of it) and 批准 (the approving department and leader,
with dates). One audit record is one use, so one record is one row; the
approval comes from the partner's contract in configuration. Summaries count
uses per partner and per scene, and list guard and runtime-guard events.

Months are calendar months in the deployment's time zone. Masking follows the
reader's role: the credit office's auditor sees pseudonyms and staff ids
whole, an operator only their first characters.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from gateway.settings import Partner
from gateway.store.base import AuditRecord

__all__ = ["COLUMNS", "GUARD_KINDS", "MonthReport", "build_report", "parse_month"]

Role = Literal["auditor", "operator"]
Reader = Callable[[int, int], Awaitable[list[AuditRecord]]]

COLUMNS = (
    "序号",
    "时间",
    "事项",
    "应用领域",
    "对象",
    "主体",
    "使用人",
    "情况",
    "批准使用科室",
    "科室批准日期",
    "批准使用分管领导",
    "领导批准日期",
    "记录类型",
    "编号",
)
# Records that say a guard refused a policy set or dropped a rule at run time.
GUARD_KINDS = frozenset({"policy_reload_refused", "runtime_guard_dropped"})
_PAGE = 5_000


def parse_month(value: str) -> tuple[int, int]:
    try:
        year, month = value.split("-")
        parsed = dt.date(int(year), int(month), 1)
    except ValueError:
        raise ValueError("a month is written YYYY-MM, e.g. 2026-11") from None
    if len(year) != 4 or len(month) != 2:
        raise ValueError("a month is written YYYY-MM, e.g. 2026-11")
    return parsed.year, parsed.month


def _mask(value: str | None, keep: int, role: Role) -> str:
    if not value:
        return ""
    return value if role == "auditor" else value[:keep] + "****"


@dataclass
class MonthReport:
    month: str
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    by_partner: Counter[str] = field(default_factory=Counter)
    by_scene: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    guard_events: list[tuple[Any, ...]] = field(default_factory=list)

    def csv(self) -> bytes:
        """The rows, then the summaries, one CSV (UTF-8 with BOM, which spreadsheets expect)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([f"使用信用信息、信用产品情况备案 {self.month}"])
        writer.writerow(COLUMNS)
        writer.writerows(self.rows)
        for title, counts in (
            ("按合作方统计 (主体, 次数)", self.by_partner),
            ("按应用领域统计 (应用领域, 次数)", self.by_scene),
            ("按记录类型统计 (记录类型, 次数)", self.by_kind),
        ):
            writer.writerow([])
            writer.writerow([title])
            writer.writerows(sorted(counts.items()))
        writer.writerow([])
        writer.writerow(["守卫事件 (序号, 时间, 记录类型, 主体, 情况)"])
        writer.writerows(self.guard_events)
        return out.getvalue().encode("utf-8-sig")

    def xlsx(self) -> bytes:
        try:
            from openpyxl import Workbook
        except ImportError:  # pragma: no cover - the optional extra
            raise RuntimeError("xlsx needs openpyxl: pip install 'xinyi-gateway[xlsx]'") from None
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "备案表"
        sheet.append(list(COLUMNS))
        for row in self.rows:
            sheet.append(list(row))
        for title, header, counts in (
            ("按合作方", "主体", self.by_partner),
            ("按应用领域", "应用领域", self.by_scene),
            ("按记录类型", "记录类型", self.by_kind),
        ):
            summary = book.create_sheet(title)
            summary.append([header, "次数"])
            for name, count in sorted(counts.items()):
                summary.append([name, count])
        guard = book.create_sheet("守卫事件")
        guard.append(["序号", "时间", "记录类型", "主体", "情况"])
        for event in self.guard_events:
            guard.append(list(event))
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


def _matter(entry: dict[str, Any]) -> str:
    kind = entry.get("kind")
    purpose = entry.get("purpose") or ""
    if kind is None:
        return purpose
    return f"{kind}:{purpose}" if purpose else str(kind)


async def build_report(
    read: Reader,
    partners: dict[str, Partner],
    tz: ZoneInfo,
    month: str,
    role: Role = "auditor",
) -> MonthReport:
    """Walk the log (hot state and archives, through ``read``) and keep the month's records."""
    year, number = parse_month(month)
    report = MonthReport(month)
    after = 0
    while True:
        page = await read(after, _PAGE)
        if not page:
            break
        after = page[-1].seq
        for record in page:
            entry = record.entry
            local = dt.datetime.fromisoformat(entry["time"]).astimezone(tz)
            if (local.year, local.month) != (year, number):
                continue
            partner = partners.get(entry["partner"])
            approval = partner.approval if partner else None
            kind = entry.get("kind", "decision")
            subject = _mask(entry.get("subject"), 6, role)
            report.rows.append(
                (
                    record.seq,
                    local.isoformat(timespec="seconds"),
                    _matter(entry),
                    entry.get("scene") or "",
                    subject,
                    partner.title or partner.id if partner else entry["partner"],
                    _mask(entry.get("staff_id"), 2, role),
                    entry.get("outcome") or "",
                    approval.department if approval else "",
                    approval.department_approved_on.isoformat() if approval else "",
                    approval.leader if approval else "",
                    approval.leader_approved_on.isoformat() if approval else "",
                    kind,
                    entry.get("decision_id") or entry.get("record_id") or "",
                )
            )
            report.by_partner[entry["partner"]] += 1
            report.by_scene[entry.get("scene") or "-"] += 1
            report.by_kind[kind] += 1
            if kind in GUARD_KINDS:
                report.guard_events.append(
                    (
                        record.seq,
                        local.isoformat(timespec="seconds"),
                        kind,
                        entry["partner"],
                        entry.get("outcome") or "",
                    )
                )
    return report
