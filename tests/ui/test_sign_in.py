"""Sign-in, sessions, roles and CSRF on the pages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.ui.sessions import Session, session_digest
from gateway.ui.state import UI
from tests.conftest import Demo
from tests.ui.conftest import csrf_of, page_csrf, password_of, sign_in


async def test_the_sign_in_page_is_chinese_first_and_english_on_request(demo: Demo) -> None:
    page = await demo.client.get("/ui/login")
    html = await page.text()
    assert page.status == 200
    assert '<html lang="zh-CN">' in html
    assert "工作人员登录" in html
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["Cache-Control"] == "no-store"
    switched = await demo.client.get("/ui/lang?to=en&next=/ui/login")
    assert switched.status == 200  # followed back to the sign-in page
    html = await switched.text()
    assert '<html lang="en">' in html
    assert "Staff sign-in" in html


async def test_a_language_switch_never_leaves_the_pages(demo: Demo) -> None:
    response = await demo.client.get("/ui/lang?to=en&next=//evil.example/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui"


async def test_sign_in_sets_a_safe_cookie_and_goes_to_the_role_page(demo: Demo) -> None:
    response = await sign_in(demo, "hall-clerk")
    assert response.status == 303
    assert response.headers["Location"] == "/ui/counter"
    cookie = response.cookies["xinyi_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert not cookie["secure"]  # plain HTTP here; over TLS it is Secure
    counter = await demo.client.get("/ui/counter")
    assert counter.status == 200
    assert "窗口 张敏" in await counter.text()


async def test_a_wrong_password_is_refused(demo: Demo) -> None:
    response = await sign_in(demo, "hall-clerk", "not-the-password")
    assert response.status == 401
    assert "用户名或密码不正确" in await response.text()
    assert "xinyi_session" not in response.cookies
    unknown = await sign_in(demo, "nobody", "whatever")
    assert unknown.status == 401


async def test_guessing_is_slowed_per_account(demo: Demo) -> None:
    statuses = [(await sign_in(demo, "operator", "wrong")).status for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429


async def test_sign_in_without_its_csrf_token_is_refused(demo: Demo) -> None:
    await demo.client.get("/ui/login")
    response = await demo.client.post(
        "/ui/login",
        data={"username": "hall-clerk", "password": "x"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert "安全令牌" in await response.text()


async def test_a_page_without_a_session_sends_to_sign_in(demo: Demo) -> None:
    response = await demo.client.get("/ui/counter", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/login?next=/ui/counter"


async def test_a_page_of_another_role_is_refused(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    refused = await demo.client.get("/ui/dashboard")
    assert refused.status == 403
    assert "无权查看" in await refused.text()
    await demo.client.post("/ui/logout", data={"csrf": await page_csrf(demo, "/ui/counter")})
    await sign_in(demo, "auditor")
    assert (await demo.client.get("/ui/dashboard")).status == 200
    assert (await demo.client.get("/ui/counter")).status == 403
    slip = await demo.client.get("/ui/counter/decisions/dec_x")
    assert slip.status == 403


async def test_a_form_without_its_csrf_token_is_refused(demo: Demo) -> None:
    await sign_in(demo, "hall-clerk")
    body = {"kind": "enterprise", "subject_id": "914403001922038216", "matter_code": "X-1"}
    missing = await demo.client.post("/ui/counter", data=body)
    assert missing.status == 403
    wrong = await demo.client.post("/ui/counter", data={**body, "csrf": "forged"})
    assert wrong.status == 403
    token = await page_csrf(demo, "/ui/counter")
    cross_site = await demo.client.post(
        "/ui/counter", data={**body, "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status == 403
    logout = await demo.client.post("/ui/logout", data={}, allow_redirects=False)
    assert logout.status == 403
    # Nothing was decided (the demo's start put only its consents on the log).
    records = await demo.gateway.store.audit_records(0, 100)
    assert all("kind" in r.entry for r in records)  # a decision record has no kind


async def test_sign_out_ends_the_session_on_the_store(demo: Demo) -> None:
    response = await sign_in(demo, "hall-clerk")
    session_id = response.cookies["xinyi_session"].value
    sessions = demo.client.app[UI].sessions
    assert await sessions.get(session_digest(session_id)) is not None
    token = await page_csrf(demo, "/ui/counter")
    out = await demo.client.post("/ui/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert await sessions.get(session_digest(session_id)) is None
    again = await demo.client.get("/ui/counter", allow_redirects=False)
    assert again.status == 303


async def test_a_session_past_its_maximum_age_ends(demo: Demo) -> None:
    response = await sign_in(demo, "hall-clerk")
    digest = session_digest(response.cookies["xinyi_session"].value)
    sessions = demo.client.app[UI].sessions
    live = await sessions.get(digest)
    assert live is not None
    old = Session(live.username, live.partner, live.name, live.csrf, 0.0, time.time() - 1)
    await sessions.put(digest, old, 60)
    ended = await demo.client.get("/ui/counter", allow_redirects=False)
    assert ended.status == 303
    assert ended.headers["Location"].endswith("&expired=1")
    assert await sessions.get(digest) is None
    login = await demo.client.get(ended.headers["Location"])
    assert "会话已过期" in await login.text()
    assert csrf_of(await login.text())


async def test_the_pages_are_not_in_the_openapi_document(demo: Demo) -> None:
    document = await (await demo.client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/ui")]


async def test_static_assets_are_served_by_the_gateway(demo: Demo) -> None:
    css = await demo.client.get("/ui/static/ui.css")
    assert css.status == 200
    assert "text/css" in css.headers["Content-Type"]
    js = await demo.client.get("/ui/static/ui.js")
    assert js.status == 200
    login = await (await demo.client.get("/ui/login")).text()
    # Nothing is fetched from anywhere else.
    assert "http://" not in login.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in login


async def test_cookies_are_secure_when_the_gateway_is_served_over_tls(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = demo.gateway
    monkeypatch.setattr(gw, "settings", gw.settings.model_copy(update={"base_url": "https://x.cn"}))
    page = await demo.client.get("/ui/login")
    assert page.cookies["xinyi_login_csrf"]["secure"]
    token = csrf_of(await page.text())
    # the test client speaks plain HTTP, so the Secure cookie is sent back by hand
    response = await demo.client.post(
        "/ui/login",
        data={"csrf": token, "username": "hall-clerk", "password": password_of(demo, "hall-clerk")},
        headers={"Cookie": f"xinyi_login_csrf={token}"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.cookies["xinyi_session"]["secure"]


def test_staff_accounts_name_known_partners(tmp_path: Path) -> None:
    from gateway.settings import ConfigError, load_partners, load_settings
    from gateway.ui.users import load_staff

    settings = load_settings(Path(__file__).resolve().parents[2] / "config" / "gateway.yaml")
    partners = {p.id: p for p in load_partners(settings.partners_file)}
    assert settings.ui_users_file is not None
    assert len(load_staff(settings.ui_users_file, partners)) == 0  # the example has none
    bad = tmp_path / "ui-users.yaml"
    bad.write_text(
        "users:\n  - {username: x1, partner: nobody, password_argon2: $argon2id$v=19$x}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="unknown partner 'nobody'"):
        load_staff(bad, partners)
    bad.write_text(
        "users:\n  - {username: x1, partner: library-example, password_argon2: $argon2id$x}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="has no pages"):
        load_staff(bad, partners)
    bad.write_text("users:\n  - {username: x1, partner: hall-example, password: a}\n")
    with pytest.raises(ConfigError, match="staff accounts refused"):
        load_staff(bad, partners)


def test_hash_password_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from argon2 import PasswordHasher

    from gateway.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    assert main(["ui", "hash-password"]) == 0
    digest = capsys.readouterr().out.strip()
    assert PasswordHasher().verify(digest, "a-long-enough-password")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["ui", "hash-password"]) == 2


async def test_an_unknown_page_is_a_page_not_json(demo: Demo) -> None:
    response = await demo.client.get("/ui/nothing/here")
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "没有这个页面" in await response.text()
    assert (await demo.client.get("/ui/static/nothing.css")).status == 404


async def test_a_removed_account_loses_its_session(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.ui.users import StaffDirectory

    response = await sign_in(demo, "hall-clerk")
    assert response.status == 303
    ui = demo.client.app[UI]
    monkeypatch.setattr(ui, "staff", StaffDirectory([]))
    gone = await demo.client.get("/ui/counter", allow_redirects=False)
    assert gone.status == 303
    digest = session_digest(response.cookies["xinyi_session"].value)
    assert await ui.sessions.get(digest) is None
