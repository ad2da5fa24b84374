"""Who is asking a page: the session cookie, the role it carries, CSRF on every form.

- The cookie holds a random id (HttpOnly, SameSite=Strict, Secure over TLS,
  path /ui); the store holds its digest (gateway.ui.sessions).
- Every state-changing form carries the session's CSRF token; the sign-in
  form, before any session exists, carries a double-submit token instead.
- A page the partner's kind may not open is refused with 403.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from gateway.api.keys import GATEWAY
from gateway.settings import Partner
from gateway.ui.render import SignInRequired, UiError
from gateway.ui.sessions import Session, new_session_id, session_digest
from gateway.ui.state import UI
from gateway.ui.users import ROLE_PAGES, StaffUser

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "Signed",
    "check_csrf",
    "check_login_csrf",
    "current",
    "end_session",
    "new_login_csrf",
    "require",
    "served_over_tls",
    "set_login_csrf",
    "start_session",
]

SESSION_COOKIE = "xinyi_session"
LOGIN_CSRF_COOKIE = "xinyi_login_csrf"


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed-in request: its session, the partner it acts for, the pages it may open."""

    session: Session
    partner: Partner
    pages: frozenset[str]


def served_over_tls(request: web.Request) -> bool:
    """TLS here, or at the proxy in front (the configured public URL is https)."""
    return request.secure or request.app[GATEWAY].settings.issuer.startswith("https://")


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path="/ui", httponly=True, samesite="Strict", secure=served_over_tls(request)
    )


async def current(request: web.Request) -> Signed | None:
    """The live session of this request, refreshed (idle timeout starts again)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    ui = request.app[UI]
    digest = session_digest(session_id)
    session = await ui.sessions.get(digest)
    if session is None:
        return None
    now = time.time()
    if session.expires <= now:
        await ui.sessions.delete(digest)
        return None
    user = ui.staff.get(session.username)
    partner = request.app[GATEWAY].partners.by_id.get(session.partner)
    if user is None or user.partner != session.partner or partner is None:
        # the account or its partner left the configuration (read at start)
        await ui.sessions.delete(digest)
        return None
    await ui.sessions.put(digest, session, min(ui.idle_s, session.expires - now))
    return Signed(session, partner, ROLE_PAGES.get(partner.kind, frozenset()))


async def require(request: web.Request, page_name: str) -> Signed:
    """The signed-in request allowed ``page_name``; else sign-in (303) or 403."""
    signed = await current(request)
    if signed is None:
        raise SignInRequired(expired=SESSION_COOKIE in request.cookies)
    if page_name not in signed.pages:
        raise UiError(403, "error.forbidden", signed)
    return signed


async def start_session(request: web.Request, user: StaffUser, response: web.Response) -> None:
    ui = request.app[UI]
    session_id = new_session_id()
    now = time.time()
    session = Session(
        username=user.username,
        partner=user.partner,
        name=user.name or user.username,
        csrf=secrets.token_urlsafe(32),
        created=now,
        expires=now + ui.max_age_s,
    )
    await ui.sessions.put(session_digest(session_id), session, min(ui.idle_s, ui.max_age_s))
    _cookie(response, request, SESSION_COOKIE, session_id)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/ui")


async def end_session(request: web.Request, response: web.Response) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await request.app[UI].sessions.delete(session_digest(session_id))
    response.del_cookie(SESSION_COOKIE, path="/ui")


def _same_origin(request: web.Request) -> bool:
    """A browser names the form's origin; one from another site is refused outright."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.scheme}://{request.host}"


def check_csrf(request: web.Request, signed: Signed, form: MultiDictProxy[Any]) -> None:
    sent = form.get("csrf")
    if (
        not isinstance(sent, str)
        or not _same_origin(request)
        or not hmac.compare_digest(sent.encode(), signed.session.csrf.encode())
    ):
        raise UiError(403, "error.csrf")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """The sign-in form's token goes into the page and a cookie together (double submit)."""
    _cookie(response, request, LOGIN_CSRF_COOKIE, token)


def check_login_csrf(request: web.Request, form: MultiDictProxy[Any]) -> None:
    sent = form.get("csrf")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if (
        not isinstance(sent, str)
        or not cookie
        or not _same_origin(request)
        or not hmac.compare_digest(sent.encode(), cookie.encode())
    ):
        raise UiError(403, "error.csrf")
