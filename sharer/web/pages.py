"""The editors' pages (GET): compose, shares, share detail, schedule, accounts — server-rendered.

Templates autoescape everything (an article titled ``<script>`` shows as text); times are rendered as
``<time datetime="…Z">`` in UTC and the browser shows them in the viewer's zone.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import service
from ..errors import ArticleError, ComposeError, InputError, NotFound
from ..platforms import REGISTRY
from ..store.deliveries import STATUSES
from . import calendar, i18n, present, previews, wording
from .auth import Ctx, PageEditor, PageReader, Principal, Reader, WebContext, identify
from .i18n import N_
from .prefs import PrefsStore
from .schemas import PreviewRequest
from .sessions import LOGIN_CSRF_COOKIE
from .views import (
    account_rows,
    article_from,
    known_accounts,
    parse_bound,
    platform_groups,
    preview_json,
    to_local_input,
)


async def language(request: Request, ctx: Ctx) -> None:
    """Every page and form handler speaks the reader's language from its first message on (an async
    dependency: the context variable it sets is the handler's own). Who is asking and their settings
    are read from Redis in a worker thread; back on the loop, ``present.values`` answers from the
    request's cache and only sets the language."""
    who = await run_in_threadpool(_reader_values, ctx, request)
    present.values(ctx, request, who)


def _reader_values(ctx: WebContext, request: Request) -> Principal | None:
    who = identify(request, ctx)
    present.values(ctx, request, who)
    return who


router = APIRouter(include_in_schema=False, dependencies=[Depends(language)])
ARTICLE_FIELDS = ("title", "url", "summary", "body_html", "image", "author", "tags", "published_at", "lang")
_ZONES: list[str] = []


def zones() -> list[str]:
    if not _ZONES:
        _ZONES.extend(sorted(available_timezones()))
    return _ZONES


def render(ctx: WebContext, request: Request, name: str, who: Principal | None, status: int = 200,
           **values: Any) -> HTMLResponse:
    base = present.values(ctx, request, who)
    tz = base["user_tz"]
    base.update(request=request, who=who, csrf=who.csrf if who else "", default_tz=ctx.rt.settings.timezone,
                local_input=lambda ts: to_local_input(ts, tz))
    base.update(values)
    if isinstance(base.get("error"), str):
        base["error"] = translate_problem(base["error"])
    return ctx.templates.TemplateResponse(request, name, base, status_code=status)


def translate_problem(message: str) -> str:
    """Core messages that have a catalog entry are shown translated; the others as they are."""
    return i18n.gettext(message) if message else message


def error_message(e: Exception) -> str:
    """``field: problem`` with the problem translated when the catalog knows it."""
    if isinstance(e, ArticleError):
        return i18n.gettext("article %(field)s: %(problem)s") % {"field": e.field, "problem": problem_words(e.problem)}
    if isinstance(e, ComposeError):
        return f"{e.account}: {problem_words(e.problem)}"
    if isinstance(e, InputError):
        return f"{_field(e.field)}: {problem_words(e.problem)}"
    return str(e)


FIELDS = {"accounts": N_("accounts"), "at": N_("date and time"), "tz": N_("time zone"), "file": N_("file"),
          "language": N_("language"), "timezone": N_("time zone"), "status": N_("status"), "date": N_("date"),
          "view": N_("view"), "from": N_("from"), "to": N_("to"), "account": N_("account"),
          "platform": N_("platform"), "share": N_("share"), "delivery": N_("delivery"), "confirm": N_("confirm")}


def _field(name: str) -> str:
    return i18n.gettext(FIELDS[name]) if name in FIELDS else name


def problem_words(problem: str) -> str:
    said = wording.say(problem)
    return said if said != problem else i18n.gettext(problem)


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


def user_tz(ctx: WebContext, who: Principal | None) -> str:
    prefs = PrefsStore(ctx.rt.redis, ctx.rt.keys.root).get(who.user.name) if who else None
    return (prefs.timezone if prefs else None) or ctx.rt.settings.timezone


def compose_page(ctx: WebContext, request: Request, who: Principal, *, article: dict[str, Any] | None = None,
                 form: dict[str, Any] | None = None, error: str | None = None, notice: str | None = None,
                 status: int = 200) -> HTMLResponse:
    form = dict(form or {})
    form.setdefault("idempotency_key", secrets.token_urlsafe(16))
    form.setdefault("when", "now")
    form["tz"] = form.get("tz") or user_tz(ctx, who)
    art = {k: (article or {}).get(k) or "" for k in ARTICLE_FIELDS}
    if isinstance((article or {}).get("tags"), list | tuple):
        art["tags"] = ", ".join(article["tags"])  # type: ignore[index]
    groups = platform_groups(ctx.rt)
    for g in groups:
        for a in g["accounts"]:
            a["mode"] = mode_words(ctx, a["name"]) if g["platform"] == "wechat" else ""
    return render(ctx, request, "compose.html", who, status, article=art, form=form, error=error, notice=notice,
                  groups=groups, zones=zones())


def mode_words(ctx: WebContext, account: str) -> str:
    """How the post goes out: for WeChat the account's ``publish_mode`` (mass/publish/draft, default publish)."""
    acc = ctx.rt.settings.accounts[account]
    if acc.platform != "wechat":
        return i18n.gettext("post")
    mode = acc.options.publish_mode or "publish"
    return i18n.gettext(present.PUBLISH_MODES.get(mode, mode))


@router.get("/compose")
def compose(request: Request, ctx: Ctx, who: PageEditor) -> Response:
    return compose_page(ctx, request, who)


@router.post("/compose/preview")
def compose_preview(body: PreviewRequest, request: Request, ctx: Ctx, who: Reader) -> JSONResponse:
    """The compose page's live cards: the API's previews plus each post drawn as its platform shows it
    (server-rendered from the same ``Post``), so the page needs no client-side templates."""
    rt = ctx.rt
    present.values(ctx, request, who)  # the request's language, for the drawn cards
    article = article_from(body.article.model_dump())
    accounts = known_accounts(rt, body.accounts)
    known_accounts(rt, list(body.texts), "texts")
    out = preview_json(service.preview_each(rt, article, accounts, body.texts or None))
    # a template macro: jinja's module type does not declare it, hence getattr
    macro = getattr(ctx.templates.env.get_template("_look.html").make_module({}), "draw")  # noqa: B009
    for p in out:
        p["look"] = str(macro(previews.look(p, rt.settings.media_rewrite, rt.settings.accounts[p["account"]].options),
                              p["account"])) if p["payload"] is not None else ""
        p["warnings"] = [wording.say(w) for w in p["warnings"]]
        p["unit_words"] = present.unit(p["unit"]) if p["unit"] else ""
        if p["error"]:
            p["error"] = problem_words(p["error"])
    return JSONResponse({"posts": out}, headers={"Cache-Control": "no-store"})


def _shares_query(ctx: WebContext, params: dict[str, str], tz: str) -> dict[str, Any]:
    """The filters; dates are whole days in the reader's zone."""
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
    items: list[Any] = []
    error, next_cursor, status = None, None, 200
    try:
        items, next_cursor = service.list_shares(ctx.rt, limit=20, **_shares_query(ctx, params, user_tz(ctx, who)))
    except InputError as e:
        error, status = error_message(e), 422
    counts = service.counts(ctx.rt)
    nav = {k: v for k, v in params.items() if k != "cursor" and v}
    return render(ctx, request, "shares.html", who, status, shares=items, next_cursor=next_cursor,
                  counts=[(s, counts.get(s, 0)) for s in STATUSES], params=params, nav=nav, error=error,
                  statuses=STATUSES, platforms=list(REGISTRY), accounts=sorted(ctx.rt.settings.accounts),
                  by=shared_by(ctx.rt, [sh.id for sh in items]))


@router.get("/shares/{share_id}")
def share_detail(share_id: str, request: Request, ctx: Ctx, who: PageReader) -> Response:
    notice = None
    if request.query_params.get("duplicate"):
        notice = i18n.gettext("This article had been shared to these accounts recently: this is that share. "
                              "To post it again, compose it again with “Share again”.")
    elif request.query_params.get("duplicate_of"):
        notice = i18n.gettext("This article was shared to these accounts recently, in share %(id)s.") % {
            "id": request.query_params["duplicate_of"][:64]}
    return share_page(ctx, request, who, share_id, notice=notice)


def _with_looks(ctx: WebContext, share: Any) -> Any:
    for d in share.deliveries:
        d.look = previews.look(d.post, ctx.rt.settings.media_rewrite,
                               ctx.rt.settings.accounts[d.account].options if d.account in ctx.rt.settings.accounts
                               else {}) if d.post else None
    return share


def share_page(ctx: WebContext, request: Request, who: Principal, share_id: str, error: str | None = None,
               status: int = 200, notice: str | None = None) -> HTMLResponse:
    share = _with_looks(ctx, service.get_share(ctx.rt, share_id))
    return render(ctx, request, "share.html", who, status, share=share, error=error, notice=notice,
                  shared_by=shared_by(ctx.rt, [share_id]).get(share_id), **share_state(ctx, who, share))


def share_state(ctx: WebContext, who: Principal, share: Any) -> dict[str, Any]:
    """What the share page's live part shows besides the deliveries: counts and the share's actions."""
    tz = user_tz(ctx, who)
    scheduled = [d for d in share.deliveries if d.status == "scheduled"]
    first = min((d.scheduled_for or 0 for d in scheduled), default=None)
    return {"share_counts": status_counts(share), "scheduled": bool(scheduled),
            "cancellable": sum(d.status in ("scheduled", "queued", "retrying") for d in share.deliveries),
            "resched_at": to_local_input(first, tz) if first else "", "resched_tz": tz}


def status_counts(share: Any) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for d in share.deliveries:
        counts[d.status] = counts.get(d.status, 0) + 1
    return [(s, counts[s]) for s in STATUSES if s in counts]


@router.get("/shares/{share_id}/deliveries")
def share_deliveries(share_id: str, request: Request, ctx: Ctx, who: PageReader) -> Response:
    """The deliveries part of the share page, re-fetched by the browser on each live event."""
    share = _with_looks(ctx, service.get_share(ctx.rt, share_id))
    resp = render(ctx, request, "_deliveries.html", who, share=share, **share_state(ctx, who, share))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/schedule")
def schedule(request: Request, ctx: Ctx, who: PageReader) -> Response:
    return schedule_page(ctx, request, who)


SCHEDULE_PAGE = 500  # deliveries per schedule page


def schedule_page(ctx: WebContext, request: Request, who: Principal, error: str | None = None,
                  status: int = 200) -> HTMLResponse:
    rt = ctx.rt
    tz_name = user_tz(ctx, who)
    tz = ZoneInfo(tz_name)
    cursor = request.query_params.get("cursor") or None
    try:
        found, next_cursor = service.schedule_page(rt, limit=SCHEDULE_PAGE, cursor=cursor)
    except InputError as e:
        found, next_cursor, error, status = [], None, error_message(e), 422
    by_share: dict[str, list] = defaultdict(list)
    for d in found:
        by_share[d.share_id].append(d)
    titles = service.schedule_titles(rt, list(by_share))
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for share_id, ds in by_share.items():
        if share_id not in titles:
            continue
        first = min(d.scheduled_for or 0 for d in ds)
        day = datetime.fromtimestamp(first, tz).strftime("%Y-%m-%d")
        days[day].append({"share_id": share_id, "title": titles[share_id], "deliveries": ds, "first": first,
                          "at_input": to_local_input(first, ds[0].timezone or tz_name),
                          "tz": ds[0].timezone or tz_name})
    present.values(ctx, request, who)
    ordered = [(i18n.when(min(x["first"] for x in items), tz, 1), sorted(items, key=lambda x: x["first"]))
               for _, items in sorted(days.items())]
    return render(ctx, request, "schedule.html", who, status, days=ordered, zones=zones(), error=error,
                  next_cursor=next_cursor, paged=bool(cursor))


@router.get("/calendar")
def calendar_page(request: Request, ctx: Ctx, who: PageReader, view: str = "week", date: str | None = None,
                  account: str | None = None) -> Response:
    rt = ctx.rt
    tz = ZoneInfo(user_tz(ctx, who))
    if account and account not in rt.settings.accounts:
        raise InputError("account", f"unknown account {account!r}")
    anchor = calendar.parse_day(date, tz)
    days = calendar.grid(view, anchor, tz, calendar.entries(rt, view, anchor, tz, account or None))
    present.values(ctx, request, who)
    _, _, first, last = calendar.bounds(view, anchor)
    noon = {d.day: datetime.combine(d.day, time(12), tz).timestamp() for d in days}
    period = (i18n.when(noon[first], tz, 2) if view == "month"
              else f"{i18n.when(noon[first], tz, 1)} – {i18n.when(noon[last], tz, 1)}")
    back = f"/calendar?view={view}&date={anchor.isoformat()}" + (f"&account={account}" if account else "")
    return render(ctx, request, "calendar.html", who, days=days, view=view, anchor=anchor, account=account or "",
                  accounts=sorted(rt.settings.accounts), prev=calendar.step(view, anchor, False),
                  next=calendar.step(view, anchor, True), period=period, day_ts=noon, back=back)


@router.get("/settings")
def settings_page(request: Request, ctx: Ctx, who: PageReader) -> Response:
    return render(ctx, request, "settings.html", who, zones=zones(),
                  notice=i18n.gettext("Saved.") if request.query_params.get("saved") else None)


@router.get("/accounts")
def accounts(request: Request, ctx: Ctx, who: PageReader) -> Response:
    rows = account_rows(ctx.rt, check=True)
    present.values(ctx, request, who)
    for row in rows:
        opts = ctx.rt.settings.accounts[row["name"]].options
        row["limits"] = present.limits(row, opts)
        row["mode"] = mode_words(ctx, row["name"]) if row["platform"] == "wechat" else ""
        bad = row["last_failure"]
        if bad and bad.get("error") and "error_kind" not in bad:  # the kind picks the plain-word explanation
            try:
                bad["error_kind"] = service.delivery(ctx.rt, bad["delivery_id"]).error_kind
            except NotFound:
                bad["error_kind"] = None
    return render(ctx, request, "accounts.html", who, rows=rows)


def shared_by(rt: Any, share_ids: list[str]) -> dict[str, str]:
    """Who started each share (``shared_by`` on the share record; absent on shares from before it)."""
    if not share_ids:
        return {}
    return {sid: head.shared_by for sid, head in rt.store.share_heads(share_ids).items() if head.shared_by}
