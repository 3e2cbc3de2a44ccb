"""The app factory: settings checked, routes mounted, errors mapped (never a 500 for bad input).

``create_app`` refuses to build an app that would be unsafe where it binds: a non-loopback host with a
demo user or the ``sandbox:`` secret key is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import logging
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import iso
from ..config import Settings, load_settings
from ..errors import ArticleError, ComposeError, ConfigError, InputError, NotFound
from ..redact import redact
from ..runtime import Runtime
from . import actions, api, approvals, i18n, pages, present, sse
from .auth import LoginRequired, WebContext, identify
from .sessions import LoginLimiter, Sessions
from .settings import WebSettings, check_bind, load_web_settings
from .users import Tokens

HERE = Path(__file__).resolve().parent
log = logging.getLogger("sharer.web")
CONFLICT_FIELDS = ("delivery", "share", "idempotency_key")  # a record's state, not the input: 409
# img-src allows remote images: previews show the post's pictures from where the platform will fetch them
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(settings: Settings | None = None, *, config: str | None = None, host: str | None = None,
               port: int | None = None, env: dict[str, str] | None = None) -> FastAPI:
    settings = settings or load_settings(config)
    web = load_web_settings(settings, host, port, env)
    check_bind(web)
    return build(Runtime(settings), web)


def build(rt: Runtime, web: WebSettings) -> FastAPI:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(iso=lambda ts: iso(ts) if ts else "", app_version=_version())
    templates.env.add_extension("jinja2.ext.i18n")  # {{ _("…") }} from the request's catalog (sharer.web.i18n)
    templates.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    app = FastAPI(title="sharer", version=_version(), docs_url=None, redoc_url=None,
                  description="Share one article to many platforms, and see what happened. Authenticate with "
                              "`Authorization: Bearer shr_…` (create one with `sharer user token NAME`). "
                              "Delivery objects are the CLI's `--json` contract.")
    app.state.web = WebContext(rt, web, Sessions(rt.redis, rt.settings.prefix, web.secret_key.reveal(),
                                                 web.session_seconds),
                               Tokens(rt.redis, rt.settings.prefix), LoginLimiter(rt.redis, rt.settings.prefix),
                               templates)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for router in (api.health, api.router, sse.router, pages.router, actions.router):
        app.include_router(router)
    approvals.install(app)  # sign-off, audit log, tokens (sharer/web/approvals.py)
    _errors(app)
    app.add_middleware(SecurityHeaders)
    return app


def _version() -> str:
    try:
        return version("sharer")
    except PackageNotFoundError:
        return "0"


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/healthz", "/openapi.json")


def _problem(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    ctx: WebContext = request.app.state.web
    message = detail if isinstance(detail, str) else "; ".join(f"{d.get('field')}: {d.get('msg')}" for d in detail)
    who = identify(request, ctx) if status != 503 else None
    values = {**present.values(ctx, request, who), "status": status, "message": message, "who": who,
              "csrf": who.csrf if who else ""}
    return ctx.templates.TemplateResponse(request, "error.html", values,
                                          status_code=status, headers=headers)


def _field(field: str, msg: str, kind: str, where: str = "body") -> list[dict[str, Any]]:
    return [{"loc": [where, *field.split(".")], "field": field, "msg": msg, "type": kind}]


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            msg = "must be an http(s) URL" if e.get("type") == "string_pattern_mismatch" else e.get("msg", "")
            detail.append({"loc": loc, "field": ".".join(loc[1:]) or ".".join(loc), "msg": msg,
                           "type": e.get("type", "value_error")})
        return _problem(request, 422, detail)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _problem(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = request.headers.get("referer", "/shares")
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/shares"
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", 303)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _problem(request, 404, str(exc))

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> Response:
        if exc.field in CONFLICT_FIELDS:
            return _problem(request, 409, exc.problem)
        where = "query" if request.method == "GET" else "body"
        return _problem(request, 422, _field(exc.field, exc.problem, "value_error", where))

    @app.exception_handler(ArticleError)
    async def bad_article(request: Request, exc: ArticleError) -> Response:
        return _problem(request, 422, _field(f"article.{exc.field}", exc.problem, "article_error"))

    @app.exception_handler(ComposeError)
    async def bad_post(request: Request, exc: ComposeError) -> Response:
        return _problem(request, 422, _field(f"accounts.{exc.account}", exc.problem, "compose_error"))

    @app.exception_handler(ConfigError)
    async def bad_account(request: Request, exc: ConfigError) -> Response:
        ctx: WebContext = request.app.state.web
        message = str(exc).replace(f"{ctx.rt.settings.path}: ", "")
        return _problem(request, 422, _field("accounts", message, "value_error"))

    @app.exception_handler(redis.exceptions.ConnectionError)
    async def no_redis(request: Request, exc: Exception) -> Response:
        return _problem(request, 503, "cannot reach Redis; try again shortly")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        ctx: WebContext = request.app.state.web
        secrets = [s.reveal() for a in ctx.rt.settings.accounts.values() for s in a.credentials.values()]
        secrets.append(ctx.web.secret_key.reveal())
        log.error("unhandled %s on %s %s: %s\n%s", type(exc).__name__, request.method, request.url.path,
                  redact(str(exc), secrets), "".join(traceback.format_tb(exc.__traceback__)))
        return _problem(request, 500, "internal error (logged)")


class SecurityHeaders:
    """CSP and friends on every response (pure ASGI: leaves the SSE stream unbuffered)."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

