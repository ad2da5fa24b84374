"""HTML answers: templates (Jinja2, autoescaped), security headers, errors as pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.errors import DependencyUnavailable
from gateway.store.base import StoreUnavailable
from gateway.ui.i18n import DEFAULT_LANG, LANGS, Translator
from gateway.ui.state import UI

__all__ = [
    "LANG_COOKIE",
    "SignInRequired",
    "UiError",
    "page",
    "redirect",
    "render",
    "safe_next",
    "secure_headers",
    "template_environment",
    "translator",
]

LANG_COOKIE = "xinyi_lang"
_TEMPLATES = Path(__file__).parent / "templates"

# Everything comes from the gateway itself; no inline script, no inline style.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def template_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class SignInRequired(Exception):
    """No live session: the page answers with the sign-in form (303)."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in")
        self.expired = expired


class UiError(Exception):
    """A page refused: shown as an HTML page with this status and catalog message."""

    def __init__(self, status: int, message_key: str, signed: Any = None) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key
        self.signed = signed  # who was refused, so the page still offers sign-out


def translator(request: web.Request) -> Translator:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANG)
    return request.app[UI].catalogs.get(lang if lang in LANGS else DEFAULT_LANG)


def secure_headers(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on
    # its own forms, which the CSRF check must refuse.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    # Pages may show personal data: never kept by a browser or proxy cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    t = translator(request)
    html = (
        request.app[UI]
        .templates.get_template(template)
        .render(t=t, lang=t.lang, path=request.path_qs, **context)
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    secure_headers(response)
    return response


def redirect(location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    secure_headers(response)
    return response


def safe_next(value: str | None, default: str) -> str:
    """Only a path on these pages: never another site (no open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return default


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: Handler) -> Handler:
    """A page handler: a refusal becomes an HTML page, not problem+json."""

    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SignInRequired as exc:
            target = f"/ui/login?next={quote(request.path_qs, safe='/')}"
            return redirect(target + ("&expired=1" if exc.expired else ""))
        except (DependencyUnavailable, StoreUnavailable):
            return _error(request, UiError(503, "error.unavailable"))
        except UiError as exc:
            return _error(request, exc)

    return wrapped


def _error(request: web.Request, exc: UiError) -> web.Response:
    return render(
        request,
        "error.html",
        {"message_key": exc.message_key, "signed": exc.signed},
        status=exc.status,
    )
