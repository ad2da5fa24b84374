"""Sign-in, sign-out, language and the start page."""

from __future__ import annotations

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.auth import (
    check_csrf,
    check_login_csrf,
    current,
    end_session,
    new_login_csrf,
    served_over_tls,
    set_login_csrf,
    start_session,
)
from gateway.ui.i18n import LANGS
from gateway.ui.render import LANG_COOKIE, UiError, page, redirect, render, safe_next
from gateway.ui.state import UI
from gateway.ui.users import ROLE_PAGES

__all__ = ["PAGE_ORDER", "home_of", "routes"]

routes = web.RouteTableDef()

# The pages this build serves, in navigation order (a page module adds itself here).
PAGE_ORDER = ("counter", "loans", "dashboard")


def home_of(pages: frozenset[str]) -> str:
    return next((f"/ui/{p}" for p in PAGE_ORDER if p in pages), "/ui/login")


@routes.get("/ui")
@routes.get("/ui/")
@page
async def start(request: web.Request) -> web.StreamResponse:
    signed = await current(request)
    return redirect(home_of(signed.pages) if signed else "/ui/login")


def _login_page(
    request: web.Request, message: str | None, status: int = 200, username: str = ""
) -> web.Response:
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        {
            "signed": None,
            "message": message,
            "username": username,
            "next": safe_next(request.query.get("next"), ""),
            "csrf": token,
        },
        status=status,
    )
    set_login_csrf(response, request, token)
    return response


@routes.get("/ui/login")
@page
async def login_form(request: web.Request) -> web.StreamResponse:
    signed = await current(request)
    if signed is not None:
        return redirect(home_of(signed.pages))
    message = "login.expired" if request.query.get("expired") else None
    return _login_page(request, message)


@routes.post("/ui/login")
@page
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    check_login_csrf(request, form)
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    gw = request.app[GATEWAY]
    # Guessing is slowed per account on every replica: 5 tries, then one per 10 s.
    wait = await gw.store.rate_limit(f"ui-login:{username.lower()}", 0.1, 5)
    if wait > 0:
        return _login_page(request, "login.throttled", 429, username)
    user = await request.app[UI].staff.verify(username, password)
    if user is None:
        return _login_page(request, "login.failed", 401, username)
    partner = gw.partners.by_id.get(user.partner)
    pages = ROLE_PAGES.get(partner.kind, frozenset()) if partner else frozenset()
    target = safe_next(str(form.get("next", "")), home_of(pages))
    response = redirect(target)
    await start_session(request, user, response)
    return response


@routes.post("/ui/logout")
@page
async def logout(request: web.Request) -> web.StreamResponse:
    signed = await current(request)
    if signed is None:
        return redirect("/ui/login")
    check_csrf(request, signed, await request.post())
    response = redirect("/ui/login")
    await end_session(request, response)
    return response


@routes.get("/ui/lang")
@page
async def language(request: web.Request) -> web.StreamResponse:
    lang = request.query.get("to", "")
    if lang not in LANGS:
        raise UiError(404, "error.not_found")
    response = redirect(safe_next(request.query.get("next"), "/ui"))
    response.set_cookie(
        LANG_COOKIE,
        lang,
        path="/ui",
        max_age=365 * 86_400,
        httponly=True,
        samesite="Lax",
        secure=served_over_tls(request),
    )
    return response


@page
async def not_found(request: web.Request) -> web.StreamResponse:
    raise UiError(404, "error.no_page", await current(request))
