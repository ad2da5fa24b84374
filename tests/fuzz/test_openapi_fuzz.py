"""Schemathesis against the served OpenAPI document, as every demo partner kind.

One ``serve --demo`` gateway (embedded store) runs for the module. For each
partner kind the schemathesis CLI loads ``GET /openapi.json`` from it and runs
its coverage, fuzzing and stateful phases (the stateful phase follows the
document's ``links``) with that partner's API key. Nothing here names an
endpoint: whatever the document describes is fuzzed, so new operations are
covered as they are declared.

What must hold: no 5xx, and every response conforms to the document (status
code, content type, headers, body schema); schema-invalid requests are refused;
authentication is enforced; undocumented methods get 405.

``positive_data_acceptance`` is left out: a body can be schema-valid yet refused
on grounds a JSON Schema cannot state (an identifier's check character, an
unknown partner, a missing consent), and the 422 that follows is documented.

Bounds, so CI stays quick and reproducible: ``MAX_EXAMPLES`` per operation and
phase, deterministic generation (no seed, no example database), one worker.
Measured: about 5 s per partner kind on an idle 2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replicas.conftest import DemoData, Replica, demo_replica

pytestmark = pytest.mark.slow

KINDS = ("bank", "service_hall", "library", "transit", "platform", "auditor", "operator")
MAX_EXAMPLES = 15
RUN_TIMEOUT_S = 120
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
    )
)
# The CLI's entry point, run with this interpreter (the venv's ``schemathesis`` script).
CLI = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, DemoData, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    state = root / "state"
    store = f"sqlite:///{(state / 'state.sqlite3').resolve()}"
    # A rate limit far above what the fuzzer sends: 429s would hide the handlers.
    with demo_replica(state, store, rate=100_000, extra=("--no-access-log",)) as gateway:
        yield gateway, DemoData.load(state), root


def api_key(demo: DemoData, kind: str) -> str:
    return str(next(p["api_key"] for p in demo.raw["partners"] if p["kind"] == kind))


@pytest.mark.parametrize("kind", KINDS)
def test_document_holds_under_fuzzing(fuzzed: tuple[Replica, DemoData, Path], kind: str) -> None:
    gateway, demo, root = fuzzed
    command = [
        sys.executable,
        "-c",
        CLI,
        "run",
        f"{gateway.base}/openapi.json",
        "--header",
        f"Authorization: Bearer {api_key(demo, kind)}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output[output.find("SUMMARY") :])  # shown with pytest -rA: what was tested
    assert result.returncode == 0, f"schemathesis as {kind}:\n{output[-12000:]}"
    # It really ran: every phase, the stateful one following the document's links.
    assert "Tested:" in output, output[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-3000:]
    assert gateway.alive(), gateway.log_tail()
    log = gateway.log.read_text(encoding="utf-8", errors="replace")
    assert "unhandled error" not in log, log[-4000:]
