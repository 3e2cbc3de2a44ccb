"""The editors' pages (GET): compose, shares, share detail, schedule, accounts — server-rendered.

Templates autoescape everything (an article titled ``<script>`` shows as text); times are rendered as
``<time datetime="…Z">`` in UTC and the browser shows them in the viewer's zone.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import service
from ..errors import ArticleError, ComposeError, InputError, NotFound
from ..platforms import REGISTRY
from ..store.deliveries import STATUSES
from .auth import Ctx, PageEditor, PageReader, Principal, WebContext, identify
from .sessions import LOGIN_CSRF_COOKIE
from .views import account_rows, parse_bound, platform_groups, to_local_input

router = APIRouter(include_in_schema=False)
COUNTED = ("delivered", "retrying", "failed", "needs_review", "scheduled")
ARTICLE_FIELDS = ("title", "url", "summary", "body_html", "image", "author", "tags", "published_at", "lang")
_ZONES: list[str] = []


def zones() -> list[str]:
    if not _ZONES:
        _ZONES.extend(sorted(available_timezones()))
    return _ZONES


def render(ctx: WebContext, request: Request, name: str, who: Principal | None, status: int = 200,
           **values: Any) -> HTMLResponse:
    values.update(request=request, who=who, csrf=who.csrf if who else "", default_tz=ctx.rt.settings.timezone)
    return ctx.templates.TemplateResponse(request, name, values, status_code=status)


def error_message(e: Exception) -> str:
    if isinstance(e, ArticleError):
        return f"article {e.field}: {e.problem}"
    if isinstance(e, ComposeError):
        return f"{e.account}: {e.problem}"
    if isinstance(e, InputError):
        return f"{e.field}: {e.problem}"
    return str(e)


@router.get("/login")
def login(request: Request, ctx: Ctx, next: str = "/shares") -> Response:
    if identify(request, ctx) is not None:
        return RedirectResponse(safe_next(next), 303)
    return login_page(ctx, request, next)


def login_page(ctx: WebContext, request: Request, next: str | None, error: str | None = None,
               status: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    resp = render(ctx, request, "login.html", None, status, next=safe_next(next), error=error,
                  login_csrf=ctx.sessions.login_csrf(nonce))
    resp.set_cookie(LOGIN_CSRF_COOKIE, nonce, httponly=True, samesite="lax", path="/login",
                    secure=request.url.scheme == "https")
    return resp


def safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no //host) — an open redirect would help phishing."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/shares"
    return value


@router.get("/")
def home(who: PageReader) -> Response:
    return RedirectResponse("/shares", 303)


def compose_page(ctx: WebContext, request: Request, who: Principal, *, article: dict[str, Any] | None = None,
                 form: dict[str, Any] | None = None, error: str | None = None, notice: str | None = None,
                 status: int = 200) -> HTMLResponse:
    form = dict(form or {})
    form.setdefault("idempotency_key", secrets.token_urlsafe(16))
    form.setdefault("when", "now")
    form.setdefault("tz", ctx.rt.settings.timezone)
    art = {k: (article or {}).get(k) or "" for k in ARTICLE_FIELDS}
    if isinstance((article or {}).get("tags"), list | tuple):
        art["tags"] = ", ".join(article["tags"])  # type: ignore[index]
    return render(ctx, request, "compose.html", who, status, article=art, form=form, error=error, notice=notice,
                  groups=platform_groups(ctx.rt), zones=zones())


@router.get("/compose")
def compose(request: Request, ctx: Ctx, who: PageEditor) -> Response:
    return compose_page(ctx, request, who)


def _shares_query(ctx: WebContext, params: dict[str, str]) -> dict[str, Any]:
    tz = ctx.rt.settings.timezone
    status = params.get("status") or None
    if status and status not in STATUSES:
        raise InputError("status", f"unknown status {status!r}")
    platform = params.get("platform") or None
    if platform and platform not in REGISTRY:
        raise InputError("platform", f"unknown platform {platform!r}")
    account = params.get("account") or None
    if account and account not in ctx.rt.settings.accounts:
        raise InputError("account", f"unknown account {account!r}")
    return {"status": status, "platform": platform, "account": account, "q": params.get("q") or None,
            "since": parse_bound(params.get("from"), tz, "from"),
            "until": parse_bound(params.get("to"), tz, "to", end=True), "cursor": params.get("cursor") or None}


@router.get("/shares")
def shares(request: Request, ctx: Ctx, who: PageReader) -> Response:
    params = dict(request.query_params)
    error, items, next_cursor, status = None, [], None, 200
    try:
        items, next_cursor = service.list_shares(ctx.rt, limit=20, **_shares_query(ctx, params))
    except InputError as e:
        error, status = error_message(e), 422
    counts = service.counts(ctx.rt)
    nav = {k: v for k, v in params.items() if k != "cursor" and v}
    return render(ctx, request, "shares.html", who, status, shares=items, next_cursor=next_cursor,
                  counts=[(s, counts.get(s, 0)) for s in COUNTED], params=params, nav=nav, error=error,
                  statuses=STATUSES, platforms=list(REGISTRY), accounts=sorted(ctx.rt.settings.accounts))


@router.get("/shares/{share_id}")
def share_detail(share_id: str, request: Request, ctx: Ctx, who: PageReader) -> Response:
    return share_page(ctx, request, who, share_id)


def share_page(ctx: WebContext, request: Request, who: Principal, share_id: str, error: str | None = None,
               status: int = 200) -> HTMLResponse:
    share = service.get_share(ctx.rt, share_id)
    return render(ctx, request, "share.html", who, status, share=share, error=error)


@router.get("/shares/{share_id}/deliveries")
def share_deliveries(share_id: str, request: Request, ctx: Ctx, who: PageReader) -> Response:
    """The deliveries part of the share page, re-fetched by the browser on each live event."""
    share = service.get_share(ctx.rt, share_id)
    resp = render(ctx, request, "_deliveries.html", who, share=share)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/schedule")
def schedule(request: Request, ctx: Ctx, who: PageReader) -> Response:
    return schedule_page(ctx, request, who)


def schedule_page(ctx: WebContext, request: Request, who: Principal, error: str | None = None,
                  status: int = 200) -> HTMLResponse:
    rt = ctx.rt
    tz = ZoneInfo(rt.settings.timezone)
    by_share: dict[str, list] = defaultdict(list)
    for d in service.schedule_list(rt):
        by_share[d.share_id].append(d)
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for share_id, ds in by_share.items():
        first = min(d.scheduled_for or 0 for d in ds)
        try:
            title = service.get_share(rt, share_id).title
        except NotFound:
            continue
        day = datetime.fromtimestamp(first, tz).strftime("%Y-%m-%d (%a)")
        days[day].append({"share_id": share_id, "title": title, "deliveries": ds, "first": first,
                          "at_input": to_local_input(first, ds[0].timezone or rt.settings.timezone),
                          "tz": ds[0].timezone or rt.settings.timezone})
    ordered = [(day, sorted(items, key=lambda x: x["first"])) for day, items in sorted(days.items())]
    return render(ctx, request, "schedule.html", who, status, days=ordered, zones=zones(), error=error)


@router.get("/accounts")
def accounts(request: Request, ctx: Ctx, who: PageReader) -> Response:
    return render(ctx, request, "accounts.html", who, rows=account_rows(ctx.rt, check=True))
