"""The pages in real headless Chromium against the real demo server.

A clerk looks up a demo enterprise and gets the decision and its reasons; an
operator sees the dashboard's charts populated after traffic; every page is
screenshotted (tests/artifacts/) and checked by axe-core, and works by keyboard.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.e2e.browser import REPO, axe_violations, chromium, require_browser, screenshot
from tests.e2e.test_demo_server import call, free_port, wait_ready

pytestmark = pytest.mark.slow


@dataclass
class Server:
    base: str
    demo: dict[str, Any]

    def password(self, username: str) -> str:
        return str(next(u["password"] for u in self.demo["ui_users"] if u["username"] == username))

    def subject(self, label_start: str) -> dict[str, Any]:
        return next(s for s in self.demo["subjects"] if s["label"].startswith(label_start))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser()
    state_dir = tmp_path_factory.mktemp("pages-server")
    log_path = state_dir.parent / "pages-server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, process, log_path)
        yield Server(base, orjson.loads((state_dir / "demo.json").read_bytes()))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


@pytest.fixture
def driver(browser: Any, server: Server) -> Any:
    """The browser, signed out and in Chinese, at the start of each test."""
    browser.get(server.base + "/ui/login")
    browser.delete_all_cookies()
    return browser


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def arrive(driver: Any, path_part: str) -> None:
    """Wait until the browser has navigated to a URL containing ``path_part``.

    A click or an Enter returns before the next page loads; under load the old
    page is still there when the test reads it.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: path_part in d.current_url)
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def submit_and_wait(driver: Any, field: Any) -> None:
    """Enter in a form field, then wait until the answer's page has replaced this one."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(_by("TAG_NAME"), "html")
    field.send_keys(Keys.ENTER)
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(old))
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def sign_in(driver: Any, server: Server, username: str) -> None:
    driver.get(server.base + "/ui/login")
    driver.find_element(_by("ID"), "username").send_keys(username)
    field = driver.find_element(_by("ID"), "password")
    field.send_keys(server.password(username))
    submit_and_wait(driver, field)


def assert_accessible(driver: Any, page: str) -> None:
    violations = axe_violations(driver)
    assert violations == [], f"axe-core on {page}: {violations}"


def test_the_sign_in_page_works_by_keyboard(driver: Any, server: Server) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.get(server.base + "/ui/login")
    screenshot(driver, "login")
    assert_accessible(driver, "login")
    body = driver.find_element(_by("TAG_NAME"), "body")
    body.send_keys(Keys.TAB)
    reached = []
    for _ in range(8):
        active = driver.switch_to.active_element
        reached.append(active.get_attribute("id") or active.text or active.tag_name)
        active.send_keys(Keys.TAB)
    assert reached[0] == driver.find_element(_by("CLASS_NAME"), "skip").get_attribute("textContent")
    assert {"username", "password"} <= set(reached)
    # Enter on the password field signs in, with no mouse at all
    driver.find_element(_by("ID"), "username").send_keys("hall-clerk")
    field = driver.find_element(_by("ID"), "password")
    field.send_keys(server.password("hall-clerk"))
    submit_and_wait(driver, field)
    assert driver.current_url.endswith("/ui/counter"), driver.find_element(
        _by("TAG_NAME"), "main"
    ).text


def test_a_clerk_looks_up_an_enterprise_and_prints_the_slip(driver: Any, server: Server) -> None:

    sign_in(driver, server, "hall-clerk")
    assert driver.current_url.endswith("/ui/counter")
    assert_accessible(driver, "counter (empty)")
    subject = server.subject("red-list")
    driver.find_element(_by("ID"), "subject_id").send_keys(subject["id"])
    matter = driver.find_element(_by("ID"), "matter_code")
    matter.send_keys("LN-210100-0001")
    submit_and_wait(driver, matter)
    slip = driver.find_element(_by("CLASS_NAME"), "slip")
    text = slip.text
    assert "给予守信激励" in text
    assert "可走绿色通道" in text
    assert "可容缺受理" in text
    assert "核查了 红名单" in text
    assert subject["id"] not in text  # masked until asked for
    assert subject["id"][:4] + "*" * 10 + subject["id"][-4:] in text
    # the print button is there (the script shows it) and focus moved to the result
    assert driver.find_element(_by("CSS_SELECTOR"), "button[data-print]").is_displayed()
    assert driver.switch_to.active_element.get_attribute("id") == "result"
    screenshot(driver, "counter")
    assert_accessible(driver, "counter (decision)")
    # the standalone slip prints nothing but the slip
    driver.find_element(_by("PARTIAL_LINK_TEXT"), "决定单").click()
    arrive(driver, "/ui/counter/decisions/dec_")
    assert "/ui/counter/decisions/dec_" in driver.current_url
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not driver.find_element(_by("CLASS_NAME"), "top").is_displayed()
        assert driver.find_element(_by("CLASS_NAME"), "slip").is_displayed()
        screenshot(driver, "slip-print")
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert_accessible(driver, "slip")


def test_a_clerk_registers_a_commitment_and_sees_it_listed(driver: Any, server: Server) -> None:
    sign_in(driver, server, "hall-clerk")
    subject = server.subject("red-list")
    driver.find_element(_by("ID"), "subject_id").send_keys(subject["id"])
    matter = driver.find_element(_by("ID"), "matter_code")
    matter.send_keys("LN-210100-0002")
    submit_and_wait(driver, matter)
    form = driver.find_element(_by("ID"), "commit-form")
    due = driver.find_element(_by("ID"), "due")
    # the due date starts at the latest the decision allows, and cannot go past it
    assert due.get_attribute("value") == due.get_attribute("max")
    driver.find_element(_by("ID"), "materials").send_keys("企业章程修正案")
    assert_accessible(driver, "counter (commitment form)")
    button = form.find_element(_by("CSS_SELECTOR"), "button[type=submit]")
    submit_and_wait(driver, button)  # Enter on the focused button: no mouse
    assert "/ui/counter?registered=1" in driver.current_url
    assert "承诺已登记" in driver.find_element(_by("CLASS_NAME"), "notice").text
    panel = driver.find_element(_by("ID"), "panel-commitments")
    assert "企业章程修正案" in panel.text
    assert subject["id"] not in panel.text
    screenshot(driver, "counter-commitments")
    assert_accessible(driver, "counter (commitments)")


def test_a_loan_officer_records_a_response_that_the_stats_show(driver: Any, server: Server) -> None:
    sign_in(driver, server, "loan-officer")
    assert driver.current_url.endswith("/ui/loans")
    assert_accessible(driver, "loan desk")
    driver.find_element(_by("PARTIAL_LINK_TEXT"), "信易贷·快贷").click()
    arrive(driver, "/ui/loans/products/demo-bank.quick")
    first = driver.find_element(_by("CSS_SELECTOR"), "article.rec")
    assert "匹配理由" in first.text
    assert "核查了" in first.text
    for subject in server.demo["subjects"]:
        assert subject["id"] not in first.text
    screenshot(driver, "loans-recommendations")
    assert_accessible(driver, "loan recommendations")
    first.find_element(_by("CSS_SELECTOR"), "input[value=granted]").click()
    demand = first.get_attribute("id").removeprefix("rec-")
    driver.find_element(_by("ID"), f"amount-{demand}").send_keys("800000")
    driver.find_element(_by("ID"), f"rate-{demand}").send_keys("3.9")
    term = driver.find_element(_by("ID"), f"term_months-{demand}")
    term.send_keys("12")
    submit_and_wait(driver, term)
    assert "?responded=1" in driver.current_url
    assert "响应已登记" in driver.find_element(_by("CLASS_NAME"), "notice").text
    row = driver.find_element(_by("ID"), "loan-stats-demo-bank")
    cells = [c.text for c in row.find_elements(_by("CSS_SELECTOR"), "td")]
    assert cells[5] == "1"  # granted
    screenshot(driver, "loans-responded")
    assert_accessible(driver, "loan desk (responded)")


def test_a_wrong_id_is_announced_at_its_field(driver: Any, server: Server) -> None:

    sign_in(driver, server, "hall-clerk")
    field = driver.find_element(_by("ID"), "subject_id")
    field.send_keys("914403001922038217")
    matter = driver.find_element(_by("ID"), "matter_code")
    matter.send_keys("LN-210100-0001")
    submit_and_wait(driver, matter)
    errors = driver.find_element(_by("ID"), "form-errors")
    assert errors.get_attribute("role") == "alert"
    assert driver.switch_to.active_element.get_attribute("id") == "form-errors"
    assert driver.find_element(_by("ID"), "subject_id").get_attribute("aria-invalid") == "true"
    screenshot(driver, "counter-error")
    assert_accessible(driver, "counter (refused)")


def test_an_operator_sees_the_charts_after_traffic(driver: Any, server: Server) -> None:
    keys = {p["id"]: {"Authorization": f"Bearer {p['api_key']}"} for p in server.demo["partners"]}
    askers = {scene: p for p in server.demo["partners"] for scene in p["scenes"]}
    for subject in server.demo["subjects"]:
        for scene in subject["expected"]:
            partner = askers[scene]["id"]
            body = {
                "subject": {"kind": subject["kind"], "id": subject["id"]},
                "purpose": askers[scene]["purposes"][0],
                "context": subject["context"][scene],
            }
            if partner in subject["consents"]:
                body["consent_id"] = subject["consents"][partner]["consent_id"]
            answer = call(
                server.base,
                "POST",
                f"/v1/scenes/{scene}/decisions",
                body=body,
                headers=keys[partner],
            )
            assert answer.status == 200
    sign_in(driver, server, "operator")
    assert driver.current_url.endswith("/ui/dashboard")
    charts = driver.find_elements(_by("CSS_SELECTOR"), "svg.chart")
    # one chart per scene of the policy set (a row each in the policies panel)
    scenes = driver.find_elements(_by("CSS_SELECTOR"), "#panel-policies tbody tr")
    assert len(charts) == len(scenes) >= 4
    bars = driver.find_elements(_by("CSS_SELECTOR"), "svg.chart rect")
    assert bars
    issued = int(driver.find_element(_by("ID"), "tokens-issued").text)
    assert issued >= sum(
        1 for s in server.demo["subjects"] for o in s["expected"].values() if o == "granted"
    )
    screenshot(driver, "dashboard")
    assert_accessible(driver, "dashboard")
    # English is one link away
    driver.find_element(_by("LINK_TEXT"), "English").click()
    arrive(driver, "/ui/dashboard")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(_by("TAG_NAME"), "html").get_attribute("lang") == "en"
    )
    assert driver.find_element(_by("TAG_NAME"), "h1").text == "Credit office dashboard"
    screenshot(driver, "dashboard-en")
    assert_accessible(driver, "dashboard (English)")
    driver.find_element(_by("LINK_TEXT"), "中文").click()
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(_by("TAG_NAME"), "html").get_attribute("lang") == "zh-CN"
    )


def test_a_page_of_another_role_is_refused_in_the_browser(driver: Any, server: Server) -> None:
    sign_in(driver, server, "hall-clerk")
    driver.get(server.base + "/ui/dashboard")
    assert "无权查看此页面" in driver.find_element(_by("TAG_NAME"), "main").text
    screenshot(driver, "forbidden")
    assert_accessible(driver, "forbidden")
    driver.find_element(_by("CSS_SELECTOR"), "form[action='/ui/logout'] button").click()
    arrive(driver, "/ui/login")


def test_a_narrow_counter_screen(driver: Any, server: Server) -> None:
    sign_in(driver, server, "hall-clerk")
    driver.set_window_size(400, 900)
    try:
        width = driver.execute_script("return document.documentElement.clientWidth")
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width  # nothing runs off a small counter screen
        screenshot(driver, "counter-narrow", width=400)
    finally:
        driver.set_window_size(1280, 1000)
