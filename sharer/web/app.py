"""The app factory: settings checked, routes mounted, errors mapped (never a 500 for bad input).

``create_app`` refuses to build an app that would be unsafe where it binds: a non-loopback host with a
demo user or the ``sandbox:`` secret key is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from ..errors import ArticleError, BrokerUnavailable, ComposeError, ConfigError, FetchError, InputError, NotFound
from ..redact import redact
from ..runtime import Runtime
from . import actions, api, approvals, i18n, pages, present, richtext, sse
from . import metrics as metrics_route
from .auth import LoginRequired, WebContext, identify
from .hub import EventHub
from .requestlog import RequestLog
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
    templates.env.filters.update(richtext.FILTERS)  # the platform text formats the looks/ drawings use
    templates.env.add_extension("jinja2.ext.i18n")  # {{ _("…") }} from the request's catalog (sharer.web.i18n)
    templates.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    app = FastAPI(title="sharer", version=_version(), docs_url=None, redoc_url=None, lifespan=_lifespan,
                  description="Share one article to many platforms, and see what happened. Authenticate with "
                              "`Authorization: Bearer shr_…` (create one with `sharer user token NAME`). "
                              "Delivery objects are the CLI's `--json` contract.")
    app.state.web = WebContext(rt, web, Sessions(rt.redis, rt.keys.root, web.secret_key.reveal(),
                                                 web.session_seconds),
                               Tokens(rt.redis, rt.keys.root), LoginLimiter(rt.redis, rt.keys.root),
                               templates)
    app.state.hub = EventHub(rt.settings.redis_url, rt.keys.events_channel)  # one subscription for all SSE
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.sse = sse.StreamLimits(web.sse_per_user, web.sse_total)
    for router in (api.health, metrics_route.router, api.router, sse.router, pages.router, actions.router):
        app.include_router(router)
    approvals.install(app)  # sign-off, audit log, tokens (sharer/web/approvals.py)
    _errors(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=web.max_body_bytes)  # outermost of ours: before auth and parsing
    if web.trusted_proxies:  # X-Forwarded-For/-Proto believed only from these peers (never by default)
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(web.trusted_proxies))
    app.add_middleware(RequestLog)  # outermost: every line of the request can name its actor
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The event hub starts with the first stream; on shutdown its subscription is closed."""
    yield
    await app.state.hub.close()


def _version() -> str:
    try:
        return version("sharer")
    except PackageNotFoundError:
        return "0"


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/healthz", "/openapi.json", "/metrics")


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
    """The handlers are plain functions on purpose: Starlette runs those in a worker thread, and an
    HTML error page reads the signed-in user (Redis) — nothing blocking runs on the event loop."""

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            msg = "must be an http(s) URL" if e.get("type") == "string_pattern_mismatch" else e.get("msg", "")
            detail.append({"loc": loc, "field": ".".join(loc[1:]) or ".".join(loc), "msg": msg,
                           "type": e.get("type", "value_error")})
        return _problem(request, 422, detail)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):  # FastAPI's JSON body reader
            return _problem(request, 422, _field("body", "is nested too deeply", "value_error"))
        return _problem(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = request.headers.get("referer", "/shares")
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/shares"
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", 303)

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> Response:
        return _problem(request, 404, str(exc))

    @app.exception_handler(InputError)
    def bad_input(request: Request, exc: InputError) -> Response:
        if exc.field in CONFLICT_FIELDS:
            return _problem(request, 409, exc.problem)
        where = "query" if request.method == "GET" else "body"
        return _problem(request, 422, _field(exc.field, exc.problem, "value_error", where))

    @app.exception_handler(ArticleError)
    def bad_article(request: Request, exc: ArticleError) -> Response:
        return _problem(request, 422, _field(f"article.{exc.field}", exc.problem, "article_error"))

    @app.exception_handler(ComposeError)
    def bad_post(request: Request, exc: ComposeError) -> Response:
        return _problem(request, 422, _field(f"accounts.{exc.account}", exc.problem, "compose_error"))

    @app.exception_handler(ConfigError)
    def bad_account(request: Request, exc: ConfigError) -> Response:
        ctx: WebContext = request.app.state.web
        message = str(exc).replace(f"{ctx.rt.settings.path}: ", "")
        return _problem(request, 422, _field("accounts", message, "value_error"))

    @app.exception_handler(redis.exceptions.RedisError)
    def no_redis(request: Request, exc: Exception) -> Response:
        return _problem(request, 503, "cannot reach Redis (or it did not answer in time); try again shortly")

    @app.exception_handler(BrokerUnavailable)
    def no_broker(request: Request, exc: Exception) -> Response:
        return _problem(request, 503, str(exc))

    @app.exception_handler(FetchError)
    def bad_fetch(request: Request, exc: FetchError) -> Response:
        return _problem(request, 422, _field("url", str(exc), "fetch_error"))

    @app.exception_handler(RecursionError)
    def too_deep(request: Request, exc: Exception) -> Response:
        return _problem(request, 422, _field("body", "is nested too deeply", "value_error"))

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> Response:
        ctx: WebContext = request.app.state.web
        secrets = [s.reveal() for a in ctx.rt.settings.accounts.values() for s in a.credentials.values()]
        secrets.append(ctx.web.secret_key.reveal())
        log.error("unhandled %s on %s %s: %s\n%s", type(exc).__name__, request.method, request.url.path,
                  redact(str(exc), secrets), "".join(traceback.format_tb(exc.__traceback__)))
        return _problem(request, 500, "internal error (logged)")


class SecurityHeaders:
    """CSP and friends on every response (pure ASGI: leaves the SSE stream unbuffered); every response
    but the static assets also says ``Cache-Control: no-store``, so no signed-in page or API answer is
    kept by a browser or a shared cache."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]
    NO_STORE = (b"cache-control", b"no-store")

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not static and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append(self.NO_STORE)
                message["headers"] = headers + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)



class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body reader lets it through to the 413 handler."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body larger than {max_bytes / 1024 / 1024:g} MB ([web] max_body_bytes)")


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before anything reads them: a declared
    Content-Length is checked first, and the stream is counted as it arrives (chunked uploads), so an
    anonymous 150 MB body is never buffered, parsed or authenticated."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._refuse(scope, send)
                    return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        problem = BodyTooLarge(self.max_bytes).detail
        detail = [{"loc": ["body"], "field": "body", "msg": problem, "type": "too_large"}]
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), SecurityHeaders.NO_STORE, *SecurityHeaders.HEADERS]})
        await send({"type": "http.response.body", "body": body})
