"""The command line: policy lint / test exit codes and output, audit verify, keys list."""

from __future__ import annotations

import asyncio
import gc
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.resources import shipped
from gateway.store.base import AuditEntry, DecisionWrite
from gateway.store.embedded import EmbeddedStore

SHIPPED = shipped("policies")
LINE = re.compile(r"^[^:\s]+:[^:\s]+: [a-z_]+: \S.*$")


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    shutil.copytree(SHIPPED, d)
    return d


def edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_lint_accepts_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "lint"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 8 policies accepted (sha256:")


def test_lint_with_dir_and_file(pdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "lint", "--dir", str(pdir), str(pdir / "loan.yaml")]) == 0
    assert capsys.readouterr().out.startswith("ok: 1 policies accepted")


def test_lint_prints_every_refusal_as_file_rule_code_message(
    pdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loan = yaml.safe_load((pdir / "loan.yaml").read_text(encoding="utf-8"))
    loan["rules"][-1]["constrain"]["measure"] = "loan.no_such_measure"
    loan["legal_basis"] = []
    edit(pdir / "loan.yaml", **loan)
    edit(pdir / "library.yaml", basic_public_service="yes please")
    assert main(["policy", "lint", "--dir", str(pdir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines
    assert all(LINE.match(line) for line in lines), lines
    assert "loan.yaml:serious-dishonesty: unknown_measure: " in "\n".join(lines)
    assert any(line.startswith("loan.yaml:-: missing_legal_basis: ") for line in lines)
    assert any(line.startswith("library.yaml:-: invalid_policy: ") for line in lines)
    assert not any(line.startswith("ok") for line in lines)


def test_lint_refuses_a_catalogue_problem(pdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = yaml.safe_load((pdir / "catalogue.yaml").read_text(encoding="utf-8"))
    catalogue["facts"]["person.red_light"] = {
        "type": "boolean",
        "subject": "person",
        "class": "public_record",
        "domain": "traffic",
        "source": "闯红灯抓拍记录",
    }
    edit(pdir / "catalogue.yaml", **catalogue)
    assert main(["policy", "lint", "--dir", str(pdir)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("catalogue.yaml:person.red_light: prohibited_domain: ")


def test_lint_personal_score_constraint_shows_the_path(
    pdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = yaml.safe_load((pdir / "library.yaml").read_text(encoding="utf-8"))
    library["basic_public_service"] = False
    library["rules"].append(
        {
            "id": "low-score",
            "when": {"fact": "person.credit_score", "op": "<", "value": 300},
            "constrain": {"measure": "loan.restrict_credit"},
        }
    )
    edit(pdir / "library.yaml", **library)
    assert main(["policy", "lint", "--dir", str(pdir)]) == 1
    out = capsys.readouterr().out
    assert (
        "library.yaml:low-score: personal_score_to_constraint: constrain reads "
        "person.credit_score (personal_score)"
    ) in out


def test_lint_missing_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "lint", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "unreadable" in capsys.readouterr().out


def test_lint_dir_that_is_a_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "file.yaml"
    path.write_text("{}", encoding="utf-8")
    assert main(["policy", "lint", "--dir", str(path)]) == 2


def test_lint_bad_yaml_exits_2(pdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (pdir / "broken.yaml").write_text("id: [unterminated\n  - : :\n", encoding="utf-8")
    assert main(["policy", "lint", "--dir", str(pdir)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("broken.yaml:-: unreadable: ")


def test_lint_bad_catalogue_yaml_exits_2(pdir: Path) -> None:
    (pdir / "benefits.yaml").write_text("benefits: {a: [\n", encoding="utf-8")
    assert main(["policy", "lint", "--dir", str(pdir)]) == 2


def test_lint_missing_catalogue_exits_2(pdir: Path) -> None:
    (pdir / "measures.yaml").unlink()
    assert main(["policy", "lint", "--dir", str(pdir)]) == 2


def test_lint_missing_file_argument_exits_2(pdir: Path) -> None:
    assert main(["policy", "lint", "--dir", str(pdir), str(pdir / "absent.yaml")]) == 2


def test_policy_test_passes_on_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test"]) == 0
    out = capsys.readouterr().out
    assert re.match(r"^ok: \d+ policy tests passed$", out.strip())
    assert int(out.split()[1]) > 0


def test_policy_test_fails_on_a_wrong_expectation(
    pdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = yaml.safe_load((pdir / "library.yaml").read_text(encoding="utf-8"))
    library["tests"][0]["expect"] = {"outcome": "standard"}
    edit(pdir / "library.yaml", **library)
    assert main(["policy", "test", "--dir", str(pdir)]) == 1
    assert capsys.readouterr().out.startswith("library.yaml:-: policy_test_failed: ")


def test_no_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


# -- audit verify and keys -----------------------------------------------------------------


def _record_decisions(db: Path, n: int) -> None:
    async def run() -> None:
        store = EmbeddedStore(db)
        await store.open()
        try:
            for i in range(n):
                entry = AuditEntry(
                    "2025-06-01T00:00:00Z",
                    "p",
                    None,
                    "loan",
                    "x",
                    "s",
                    "granted",
                    "pol",
                    "h",
                    "set",
                    None,
                    "c",
                    f"d{i}",
                    None,
                )
                await store.record_decision(DecisionWrite(f"d{i}", "p", b"{}", entry, None))
        finally:
            await store.close()

    asyncio.run(run())


def test_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "state.sqlite3"
    _record_decisions(db, 3)
    assert main(["audit", "verify", "--store", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert "intact: 3 records" in out
    assert "signatures NOT checked: no key ring" in out  # no keys next to a bare --store
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET entry = replace(entry, 'granted', 'standard') WHERE seq = 2")
    assert main(["audit", "verify", "--store", f"sqlite:///{db}"]) == 1
    assert "broken" in capsys.readouterr().out


def test_audit_verify_with_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record_decisions(tmp_path / "state.sqlite3", 2)
    assert main(["audit", "verify", "--state-dir", str(tmp_path)]) == 0
    assert "intact: 2 records" in capsys.readouterr().out


def test_audit_verify_on_a_missing_state_dir(tmp_path: Path) -> None:
    assert main(["audit", "verify", "--state-dir", str(tmp_path / "nowhere")]) == 1
    assert not (tmp_path / "nowhere").exists()


def test_keys_add_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XINYI_KEY_PASSPHRASE", raising=False)
    assert main(["keys", "add", "--alg", "ES256", "--state-dir", str(tmp_path)]) == 0
    assert main(["keys", "list", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "published" in out
    assert "ES256" in out
    assert main(["keys", "activate", "no-such-kid", "--state-dir", str(tmp_path)]) == 1


def test_serving_keeps_the_collector_off_the_start_up_heap() -> None:
    from gateway.cli import _settle_gc

    threshold = gc.get_threshold()
    try:
        _settle_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_audit_verify_keys_and_serve_default_to_one_state_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: `audit verify` looked in ./.xinyi-demo while serve and keys use ./.xinyi-state."""
    from gateway.settings import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XINYI_STATE_DIR", raising=False)
    monkeypatch.delenv("XINYI_KEY_PASSPHRASE", raising=False)
    served = load_settings(None).state_dir
    _record_decisions(served / "state.sqlite3", 2)
    assert main(["audit", "verify"]) == 0
    assert "intact: 2 records" in capsys.readouterr().out
    assert main(["keys", "add"]) == 0
    assert (served / "keys" / "ring.json").is_file()


def test_audit_verify_reads_beside_a_running_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state.sqlite3"
    _record_decisions(db, 1)

    import fcntl
    import os

    # The lock as a serving gateway (another process) holds it.
    fd = os.open(tmp_path / "gateway.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert main(["audit", "verify", "--state-dir", str(tmp_path)]) == 0
    finally:
        os.close(fd)
    assert "intact: 1 records" in capsys.readouterr().out


def test_audit_verify_checks_signed_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.audit.log import AuditLog
    from gateway.audit.store import audit_tree_store
    from gateway.tokens.keys import KeyRing

    db = tmp_path / "state.sqlite3"
    _record_decisions(db, 4)

    async def checkpoint() -> None:
        ring = KeyRing.load(tmp_path / "keys", create=True)
        store = EmbeddedStore(db)
        await store.open()
        try:
            audit = AuditLog(store, audit_tree_store(store), lambda: ring, origin="t.example/a")
            await audit.open()
            await audit.checkpoint_now()
        finally:
            await store.close()

    asyncio.run(checkpoint())
    assert main(["audit", "verify", "--state-dir", str(tmp_path)]) == 0
    assert "intact: 4 records, 1 signed checkpoints verified" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 4")
    assert main(["audit", "verify", "--state-dir", str(tmp_path)]) == 1
    assert "broken at record 4: deleted" in capsys.readouterr().out


def test_audit_report_writes_the_months_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    _record_decisions(tmp_path / "state.sqlite3", 3)
    out = tmp_path / "june.csv"
    args = ["audit", "report", "--state-dir", str(tmp_path), "--month", "2025-06"]
    assert main([*args, "--out", str(out)]) == 0
    assert "3 uses in 2025-06" in capsys.readouterr().out
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1][:8] == ["序号", "时间", "事项", "应用领域", "对象", "主体", "使用人", "情况"]
    assert [r[0] for r in rows[2:5]] == ["1", "2", "3"]
    assert rows[5] == []
    xlsx = tmp_path / "may.xlsx"
    month = ["--month", "2025-05", "--format", "xlsx", "--out", str(xlsx)]
    assert main([*args[:4], *month]) == 0
    assert "0 uses in 2025-05" in capsys.readouterr().out
    assert xlsx.read_bytes()[:2] == b"PK"
    assert main([*args[:4], "--month", "June"]) == 2
