"""Headless Chromium for the pages' end-to-end tests (Debian's chromium + chromedriver).

Selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium explicitly,
so Selenium Manager never downloads a driver or a browser. axe-core comes from
npm into tests/e2e/.axe (installed by .ci/run; MPL-2.0, not vendored here).
Screenshots go to tests/artifacts/ (or $XINYI_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = Path(os.environ.get("XINYI_AXE_JS", REPO / "tests/e2e/.axe/node_modules/axe-core/axe.min.js"))
ARTIFACTS = Path(os.environ.get("XINYI_ARTIFACTS", REPO / "tests/artifacts"))


def require_browser() -> None:
    """Skip without chromium, chromedriver or axe-core locally; in CI they must be there."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER, AXE) if not p.exists()]
    if missing:
        reason = f"missing for the browser tests: {', '.join(missing)} (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        "--lang=zh-CN",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=str(CHROMEDRIVER))
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch anything
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(60)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str, width: int = 1280) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # The whole page, not only the window: set the window to the document's height.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(600, min(int(height) + 120, 6000)))
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 1000)
    print(f"screenshot: {path}")  # the artefact's path, in the test log
    return path


_RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  (r) => done(r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
  }))),
  (e) => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]),
);
"""


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = driver.execute_async_script(_RUN_AXE)
    return [v for v in found if v["impact"] in ("serious", "critical")]
