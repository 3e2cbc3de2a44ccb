"""The pages' form posts: sign in/out, load and share an article, retry/cancel/mark/reschedule.

Each handler checks the form's CSRF token, calls one ``sharer.service`` function and redirects (303) to
the page that shows the result, or re-renders the form with the error (422/409) — never a 500.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from .. import service
from ..actor import Actor
from ..article import Article
from ..errors import ArticleError, ComposeError, ConfigError, FetchError, InputError
from ..loaders import Limits, load_article
from ..platforms import get_platform
from ..runtime import Runtime
from ..store.audit import AuditAction, AuditEntry
from . import i18n, present, previews
from .auth import Ctx, PageEditor, PageReader, Principal, WebContext, checked_form
from .i18n import N_
from .pages import (
    ARTICLE_FIELDS,
    compose_page,
    error_message,
    language,
    login_page,
    mode_words,
    problem_words,
    render,
    safe_next,
    schedule_page,
    share_page,
    shared_by,
)
from .prefs import PrefsStore
from .requestlog import note_actor
from .sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from .views import article_from, from_local_input, known_accounts

router = APIRouter(include_in_schema=False, dependencies=[Depends(language)])
HASH_THREADS = 2
_limiters: dict[int, anyio.CapacityLimiter] = {}


def _hash_limiter() -> anyio.CapacityLimiter:
    """One limiter per event loop (anyio objects belong to the loop that made them)."""
    import asyncio

    key = id(asyncio.get_running_loop())
    if key not in _limiters:
        _limiters.clear()
        _limiters[key] = anyio.CapacityLimiter(HASH_THREADS)
    return _limiters[key]


BAD = (ArticleError, ComposeError, InputError, ConfigError, FetchError)


def too_many(wait: int) -> str:
    return i18n.gettext("Too many failed attempts; try again in %(n)s min.") % {"n": wait // 60 + 1}


def loaded(title: str) -> str:
    return i18n.gettext("loaded “%(title)s”") % {"title": title}


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    user, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    nxt = safe_next(str(form.get("next") or ""))
    if not ctx.sessions.check_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf_token") or "")):
        return login_page(ctx, request, nxt, N_("The sign-in form expired; please try again."), 403)
    ip = request.client.host if request.client else "-"  # the real peer, or a trusted proxy's client
    wait = await run_in_threadpool(ctx.limiter.blocked_for, user, ip)
    if wait:
        resp = login_page(ctx, request, nxt, too_many(wait), 429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    from .users import verify_password

    known = ctx.web.user(user)
    # argon2 is slow and memory-hard on purpose: verified in worker threads, never on the event loop, at
    # most HASH_THREADS at once (48 parallel sign-ins must not take every thread or gigabytes of memory)
    ok = await anyio.to_thread.run_sync(verify_password, known.password_hash if known else None, password,
                                        limiter=_hash_limiter())
    if not ok or known is None:
        await run_in_threadpool(ctx.limiter.failed, user, ip)
        await run_in_threadpool(audit_sign_in, ctx, user, ip, ok=False)
        return login_page(ctx, request, nxt, N_("Wrong user name or password."), 401)
    await run_in_threadpool(ctx.limiter.reset, user, ip)
    await run_in_threadpool(audit_sign_in, ctx, known.name, ip, ok=True)
    session = await run_in_threadpool(ctx.sessions.create, known.name)
    note_actor(request.scope, Actor.web(known.name))  # the sign-in's own log line names who signed in
    done = RedirectResponse(nxt, 303)
    done.set_cookie(SESSION_COOKIE, session.id, max_age=int(ctx.web.session_seconds), httponly=True,
                    samesite="lax", secure=request.url.scheme == "https", path="/")
    done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return done


def audit_sign_in(ctx: WebContext, user: str, ip: str, ok: bool) -> None:
    """Sign-ins and failed attempts (the name as typed: it may be nobody's) go in the audit log."""
    name = user[:64] or "(empty)"
    if ok:
        entry = AuditEntry(AuditAction.SIGN_IN, name, name, f"signed in from {ip}")
    else:
        entry = AuditEntry(AuditAction.SIGN_IN_FAILED, name, name, f"wrong user name or password from {ip}")
    ctx.rt.audit.record(entry)


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, who: PageReader) -> Response:
    await checked_form(request, who)
    await run_in_threadpool(sign_out, ctx, who)
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


def sign_out(ctx: WebContext, who: Principal) -> None:
    """End the session and say so in the audit log (Redis: in a worker thread, never on the event loop)."""
    if who.session_id:
        ctx.sessions.delete(who.session_id)
    ctx.rt.audit.record(AuditEntry(AuditAction.SIGN_OUT, who.actor.name, who.actor.user, "signed out"))


@router.post("/compose/load")
async def load(request: Request, ctx: Ctx, who: PageEditor) -> Response:
    """An article from an uploaded file (.json/.md/.html/.txt) or a URL, into the compose form."""
    form = await checked_form(request, who)
    upload = request.state.form.get("file")
    url = (form.get("source_url") or [""])[0].strip() or None
    limits = Limits.of(ctx.rt.settings)
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            article = await _load_upload(upload, url, limits)
        elif url:  # the guarded fetcher, in a worker thread: a slow site never stalls other requests
            article = await run_in_threadpool(load_article, url, limits=limits)
        else:
            raise InputError("file", N_("choose a file or give a URL"))
    except BAD as e:
        return await run_in_threadpool(partial(compose_page, ctx, request, who, error=error_message(e), status=422))
    return await run_in_threadpool(partial(compose_page, ctx, request, who, article=article.to_dict(),
                                           notice=loaded(article.title)))


async def _load_upload(upload: UploadFile, url: str | None, limits: Limits) -> Article:
    raw_name = upload.filename or "article"
    if any(ord(c) < 32 or ord(c) == 127 for c in raw_name):
        raise InputError("file", "the file name contains control characters (e.g. NUL); rename the file")
    name = Path(raw_name).name[:200]
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ArticleError(name, "(file)", f"larger than {limits.max_bytes / 1024 / 1024:g} MB")
    return await run_in_threadpool(_load_bytes, name, data, url, limits)


def _load_bytes(name: str, data: bytes, url: str | None, limits: Limits) -> Article:
    suffix = Path(name).suffix.lower()
    if not suffix.isascii() or not suffix[1:].isalnum():
        suffix = suffix if suffix == "" else ".unknown"
    with tempfile.TemporaryDirectory(prefix="sharer-upload-") as tmp:
        path = Path(tmp) / ("upload" + suffix)
        path.write_bytes(data)
        try:
            return load_article(str(path), url=url, limits=limits)
        except ArticleError as e:  # name the editor's file, not our temporary copy
            raise ArticleError(name, e.field, e.problem) from None


HIDDEN_SKIP = ("csrf_token", "step")


@router.post("/compose")
async def submit(request: Request, ctx: Ctx, who: PageEditor) -> Response:
    """Two steps: the compose form posts here to see a confirmation page (accounts, mode, time, the
    drawn posts, any recent share of the article); only that page's ``step=confirm`` shares. A form
    posted without it (no JavaScript, a stale tab, a script) can never send anything by itself."""
    form = await checked_form(request, who)
    return await run_in_threadpool(_submit, ctx, request, who, form)


def _submit(ctx: WebContext, request: Request, who: Principal, form: dict[str, list[str]]) -> Response:
    # browsers submit textarea line breaks as CRLF; the preview (JSON) saw LF: send what was previewed
    one = {k: v[-1].replace("\r\n", "\n") for k, v in form.items()}
    article: dict[str, Any] = {k: one.get(k, "").strip() or None for k in ARTICLE_FIELDS}
    article["body_html"] = one.get("body_html", "")
    article["tags"] = [t.strip() for t in (one.get("tags") or "").split(",") if t.strip()]
    accounts = form.get("accounts", [])
    texts = {k[5:]: v for k, v in one.items() if k.startswith("text.") and k[5:] in accounts}
    state: dict[str, Any]
    state = {"accounts": accounts, "texts": texts, "when": one.get("when", "now"), "at": one.get("at", ""),
             "tz": one.get("tz", ""), "force": one.get("force") == "1",
             "idempotency_key": one.get("idempotency_key") or None}
    step = one.get("step", "review")
    if step == "edit":
        return compose_page(ctx, request, who, article=article, form=state)
    try:
        if not accounts:
            raise InputError("accounts", N_("choose at least one account"))
        known_accounts(ctx.rt, accounts)
        art = article_from(article)
        when = state["when"]
        if when == "at" and not state["at"]:
            raise InputError("at", N_("give a date and time, or choose “now”"))
        if when != "at" and state["at"].strip():  # the "When" trap: a date typed while "Now" stayed chosen
            raise InputError("at", N_("you gave a date and time but chose “now”: choose “at” to schedule it, or "
                                      "clear the date to share now"))
        at = from_local_input(state["at"]) if when == "at" else None
        if step != "confirm":
            return confirm_page(ctx, request, who, art, accounts, texts, state, at, form)
        result = service.share(ctx.rt, art, accounts, texts or None, idempotency_key=state["idempotency_key"],
                               force=state["force"], at=at, tz=state["tz"] or None, next_slot=when == "next_slot",
                               shared_by=who.user.name, scope=f"user:{who.user.name}", actor=who.actor)
    except BAD as e:
        return compose_page(ctx, request, who, article=article, form=state, error=error_message(e), status=422)
    # an earlier share returned (same key or same article): say so on the share page. Results may also
    # name the share a post duplicates (``duplicate_of``, on the result or per delivery) — shown if present.
    earlier = getattr(result, "duplicate_of", None) or next(
        (x for x in (getattr(d, "duplicate_of", None) for d in result.deliveries) if x), None)
    query = ""
    if earlier and isinstance(earlier, str) and earlier != result.share_id:
        query = "?duplicate_of=" + quote(earlier)
    elif result.duplicate or earlier:
        query = "?duplicate=1"
    return RedirectResponse(f"/shares/{result.share_id}{query}", 303)


def confirm_page(ctx: Ctx, request: Request, who: PageEditor, art: Article, accounts: list[str],
                 texts: dict[str, str], state: dict[str, Any], at: str | None,
                 form: dict[str, list[str]]) -> Response:
    """What will happen, before it happens; the posts are composed (and validated) exactly as they will be sent."""
    rt = ctx.rt
    items = service.preview_each(rt, art, accounts, texts or None)
    for it in items:  # the editor's own text must fit (bad input); an article an account cannot take
        if it.post is None and it.account in texts:  # becomes that account's failed delivery, shown here
            raise ComposeError(it.account, it.error or "cannot compose")
    when_text = ""
    if at is not None:
        when = service.resolve_when(rt, at, state["tz"] or None)
        present.values(ctx, request, who)
        when_text = i18n.when(when.epoch, ZoneInfo(when.zone))
    rows = []
    for it in items:
        acc = rt.settings.accounts[it.account]
        p = it.post
        rows.append({"account": it.account, "platform": it.platform, "platform_title": get_platform(it.platform).title,
                     "length": p.length if p else it.length, "limit": p.limit if p else it.limit,
                     "unit": p.unit if p else (it.unit or ""), "mode": mode_words(ctx, it.account),
                     "problem": problem_words(it.error) if it.error else None,
                     "look": previews.look(p.to_dict(), rt.settings.media_rewrite, acc.options) if p else None})
    hidden = [(k, v) for k, vs in form.items() if k not in HIDDEN_SKIP for v in vs]
    return render(ctx, request, "confirm.html", who, article=art, posts=rows, form=state, when_kind=state["when"],
                  when_text=when_text, hidden=hidden, recent=recent_shares(rt, art, accounts),
                  dedupes=rt.settings.duplicate_window > 0)


def recent_shares(rt: Runtime, art: Article, accounts: list[str]) -> list[dict[str, Any]]:
    """Shares of the same article URL to any of these accounts within ``[delivery] duplicate_window_hours``."""
    window = rt.settings.duplicate_window or 86400.0  # detection off: still say what went out today
    found, _ = service.list_shares(rt, since=time.time() - window, q=None, limit=200)
    out = []
    for sh in found:
        if sh.url != art.url:
            continue
        hit = sorted({d.account for d in sh.deliveries} & set(accounts))
        if hit:
            out.append({"id": sh.id, "created_at": sh.created_at, "accounts": hit,
                        "by": shared_by(rt, [sh.id]).get(sh.id)})
    return out


async def _delivery_action(request: Request, ctx: Ctx, who: PageEditor, delivery_id: str,
                           action: Callable[[dict[str, str]], object]) -> Response:
    form = await checked_form(request, who)
    d = await run_in_threadpool(service.delivery, ctx.rt, delivery_id)
    try:
        await run_in_threadpool(action, {k: v[-1] for k, v in form.items()})
    except BAD as e:
        return await run_in_threadpool(partial(share_page, ctx, request, who, d.share_id, error=error_message(e),
                                               status=409))
    return RedirectResponse(f"/shares/{d.share_id}", 303)


@router.post("/deliveries/{delivery_id}/retry")
async def retry(delivery_id: str, request: Request, ctx: Ctx, who: PageEditor) -> Response:
    return await _delivery_action(request, ctx, who, delivery_id, lambda f: service.retry(
        ctx.rt, delivery_id, confirmed=f.get("confirm") == "1", actor=who.actor))


@router.post("/deliveries/{delivery_id}/cancel")
async def cancel_delivery(delivery_id: str, request: Request, ctx: Ctx, who: PageEditor) -> Response:
    if not delivery_id.startswith("dl_"):
        raise HTTPException(404, f"no delivery with id {delivery_id!r}")
    return await _delivery_action(request, ctx, who, delivery_id, lambda f: service.cancel(ctx.rt, delivery_id,
                                                                                          actor=who.actor))


@router.post("/deliveries/{delivery_id}/posted")
async def mark_posted(delivery_id: str, request: Request, ctx: Ctx, who: PageEditor) -> Response:
    return await _delivery_action(request, ctx, who, delivery_id, lambda f: service.mark_posted(
        ctx.rt, delivery_id, (f.get("url") or "").strip() or None, actor=who.actor))


@router.post("/shares/{share_id}/cancel")
async def cancel_share(share_id: str, request: Request, ctx: Ctx, who: PageEditor) -> Response:
    form = await checked_form(request, who)
    if not share_id.startswith("sh_"):
        raise HTTPException(404, f"no share with id {share_id!r}")
    await run_in_threadpool(service.cancel, ctx.rt, share_id, actor=who.actor)
    return RedirectResponse(safe_next((form.get("back") or [""])[0] or f"/shares/{share_id}"), 303)


@router.post("/shares/{share_id}/reschedule")
async def reschedule(share_id: str, request: Request, ctx: Ctx, who: PageEditor) -> Response:
    form = await checked_form(request, who)
    one = {k: v[-1] for k, v in form.items()}
    if not share_id.startswith("sh_"):
        raise HTTPException(404, f"no share with id {share_id!r}")
    try:
        if not one.get("at"):
            raise InputError("at", N_("give the new date and time"))
        await run_in_threadpool(service.reschedule, ctx.rt, share_id, from_local_input(one["at"]),
                                one.get("tz") or None, actor=who.actor)
    except BAD as e:
        return await run_in_threadpool(partial(schedule_page, ctx, request, who,
                                               error=f"{share_id}: {error_message(e)}", status=422))
    return RedirectResponse(safe_next(one.get("back") or "/schedule"), 303)


@router.post("/settings")
async def save_settings(request: Request, ctx: Ctx, who: PageReader) -> Response:
    form = await checked_form(request, who)
    return await run_in_threadpool(_save_settings, ctx, request, who, {k: v[-1].strip() for k, v in form.items()})


def _save_settings(ctx: WebContext, request: Request, who: Principal, one: dict[str, str]) -> Response:
    try:
        PrefsStore(ctx.rt.redis, ctx.rt.keys.root).set(who.user.name, one.get("language") or None,
                                                             one.get("timezone") or None)
    except InputError as e:
        from .pages import zones

        return render(ctx, request, "settings.html", who, 422, zones=zones(), error=error_message(e))
    return RedirectResponse("/settings?saved=1", 303)
