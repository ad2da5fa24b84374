"""The dashboard: policies, decisions over time from the audit log, tokens, keys, upstream."""

from __future__ import annotations

import datetime as dt

from gateway.store.base import AuditEvent
from gateway.ui.stats import DecisionStats, _head
from tests.conftest import Demo
from tests.ui.conftest import sign_in


async def test_the_dashboard_shows_every_panel_after_traffic(demo: Demo) -> None:
    for subject in demo.subjects:
        for scene, expected in subject["expected"].items():
            response = await demo.decide(subject, scene)
            assert response.status == 200
            assert (await response.json())["outcome"] == expected
    granted = sum(1 for s in demo.subjects for o in s["expected"].values() if o == "granted")
    await sign_in(demo, "operator")
    page = await demo.client.get("/ui/dashboard")
    html = await page.text()
    assert page.status == 200
    # policy set and guard per scene
    assert demo.gateway.policies.hash in html
    scenes = len(demo.gateway.policies.by_scene)
    assert html.count("通过（加载时检查；运行时拦截 0 次）") == scenes
    # one chart per scene, drawn inline, with the counts it draws
    assert html.count('<svg class="chart"') == scenes
    loan = [s for s in demo.subjects if "loan" in s["expected"]]
    loan_granted = sum(1 for s in loan if s["expected"]["loan"] == "granted")
    assert f"信易贷：最近 60 分钟共 {len(loan)} 个决定（给予 {loan_granted}" in html
    # tokens issued, counted from the audit records
    assert f'<dd class="num" id="tokens-issued">{granted}</dd>' in html
    # the key ring with its dates, and the upstream source
    assert demo.gateway.keys.active("EdDSA").kid in html  # type: ignore[union-attr]
    assert "签名中" in html
    assert "sqlite" in html


async def test_an_auditor_sees_the_dashboard_too(demo: Demo) -> None:
    await sign_in(demo, "auditor")
    page = await demo.client.get("/ui/dashboard")
    assert page.status == 200
    assert "最近 60 分钟没有决定" in await page.text()


async def test_the_fold_reads_only_new_records_and_skips_other_events(demo: Demo) -> None:
    store = demo.gateway.store
    base = await _head(store)  # the demo's start puts its consents on the log
    subject = demo.subject("person", {"library": "granted"})
    assert (await demo.decide(subject, "library")).status == 200
    await store.append_audit(
        AuditEvent(
            kind="consent_recorded",
            time=demo.gateway.now().isoformat(),
            partner="p",
            record_id="rec_1",
        )
    )
    stats = DecisionStats()
    view = await stats.view(store, demo.gateway.now())
    assert view.total("library") == 1
    assert view.tokens_issued == 1
    assert (await _head(store)) == base + 2
    assert (await demo.decide(subject, "library")).status == 200
    view = await stats.view(store, demo.gateway.now())
    assert view.total("library", "granted") == 2
    assert view.read == base + 3
    # an hour later the window is empty
    later = await stats.view(store, demo.gateway.now() + dt.timedelta(hours=2))
    assert later.total("library") == 0


async def test_a_long_log_is_read_from_its_tail_and_says_so(demo: Demo) -> None:
    store = demo.gateway.store
    base = await _head(store)
    subject = demo.subject("person", {"library": "granted"})
    for _ in range(7):
        assert (await demo.decide(subject, "library")).status == 200
    assert await _head(store) == base + 7
    stats = DecisionStats(max_scan=3)
    view = await stats.view(store, demo.gateway.now())
    assert view.total("library") == 3
    assert view.first_seq == base + 5
    assert view.capped


async def test_the_audit_panel_checks_the_chain_it_reads(demo: Demo) -> None:
    store = demo.gateway.store
    base = await _head(store)
    subject = demo.subject("person", {"library": "granted"})
    for _ in range(4):
        assert (await demo.decide(subject, "library")).status == 200
    # a tail read from the middle starts from the record before it, and links up
    view = await DecisionStats(max_scan=2).view(store, demo.gateway.now())
    assert view.chain_problem is None
    assert view.first_seq == base + 3
    assert view.head_hash == (await store.audit_records(base + 3, 1))[0].hash
    await sign_in(demo, "auditor")
    html = await (await demo.client.get("/ui/dashboard")).text()
    assert f'<dd class="num" id="audit-records">{base + 4}</dd>' in html
    assert f"完好（已核验第 1–{base + 4} 条）" in html


async def test_an_altered_record_shows_as_a_broken_chain(demo: Demo) -> None:
    store = demo.gateway.store
    base = await _head(store)
    subject = demo.subject("person", {"library": "granted"})
    for _ in range(3):
        assert (await demo.decide(subject, "library")).status == 200
    # tamper with record 2 in the embedded store's file, as an intruder would
    conn = store.reader  # type: ignore[attr-defined]
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    import sqlite3

    with sqlite3.connect(path) as writer:
        writer.execute(
            "UPDATE audit SET entry = replace(entry, 'granted', 'standard') WHERE seq = ?",
            (base + 2,),
        )
    view = await DecisionStats().view(store, demo.gateway.now())
    assert (
        view.chain_problem == f"record {base + 2} was altered: its hash does not match its content"
    )
