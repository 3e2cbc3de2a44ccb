"""The JSON API (``/api/...``, ``/healthz``). Every route is a thin call into ``sharer.service``.

Errors: bad input 422 ``{"detail": [{"loc", "field", "msg", "type"}]}``; unknown ids 404; an action the
record's current status does not allow 409; anonymous 401; a viewer writing 403.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from .. import service
from ..errors import InputError, NotFound
from ..platforms import REGISTRY
from ..store.deliveries import STATUSES
from . import schemas as s
from .auth import Ctx, Editor, Reader
from .views import account_rows, article_from, known_accounts, parse_bound, preview_json

router = APIRouter(prefix="/api", tags=["api"])
Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {401: {"model": s.Problem, "description": "not signed in"},
          403: {"model": s.Problem, "description": "not allowed (the role, four-eyes, or a missing CSRF header)"},
          422: {"model": s.Problem, "description": "invalid input: names the field and the reason"}}
NOT_FOUND: Responses = {404: {"model": s.Problem, "description": "no such share or delivery"}}
CONFLICT: Responses = {409: {"model": s.Problem, "description": "not possible in the record's current status"}}
KEY_CONFLICT: Responses = {
    409: {"model": s.Problem, "description": "Idempotency-Key already used for a different request"}}


@router.get("/me", response_model=s.Me, responses=ERRORS)
def me(who: Reader) -> dict:
    """Who the credentials belong to, and their role."""
    return {"user": who.user.name, "role": who.user.role}


@router.post("/previews", response_model=s.PreviewResponse, responses=ERRORS)
def previews(body: s.PreviewRequest, ctx: Ctx, who: Reader) -> JSONResponse:
    """Each account's post exactly as delivery will compose it, counted in the platform's own rules.

    An account whose post cannot be composed (e.g. the editor's text is over the limit) gets ``error``
    (with ``length``/``limit`` when the text was counted) instead of failing the whole request.
    """
    rt = ctx.rt
    article = article_from(body.article.model_dump())
    accounts = known_accounts(rt, body.accounts)
    known_accounts(rt, list(body.texts), "texts")
    items = service.preview_each(rt, article, accounts, body.texts or None)
    return JSONResponse({"posts": preview_json(items)})


@router.post("/previews/phone", response_model=s.PhonePreviewResponse,
             responses={**ERRORS, 502: {"model": s.Problem, "description": "WeChat refused the preview"}})
def phone_preview(body: s.PhonePreviewRequest, ctx: Ctx, who: Editor) -> JSONResponse:
    """WeChat accounts: create the real draft (images uploaded) and send it to one follower's phone with
    ``message/mass/preview``. A plain ``def`` route: the slow platform calls run in the threadpool."""
    from ..errors import DeliveryError
    from ..wechat_ops import send_to_phone

    rt = ctx.rt
    article = article_from(body.article.model_dump())
    accounts = known_accounts(rt, body.accounts)
    known_accounts(rt, list(body.texts), "texts")
    try:
        sent = send_to_phone(rt, article, accounts, body.send_to, body.texts or None)
    except DeliveryError as e:
        return JSONResponse({"detail": str(e)}, status_code=502)
    if sent:
        service.audit_preview_sent(rt, who.actor, article, sent)
    return JSONResponse({"sent": [{"account": p.account, "to": p.to, "msg_id": p.msg_id,
                                   "draft_media_id": p.draft_media_id, "articles": p.articles} for p in sent]})


@router.post("/shares", response_model=s.ShareCreated, status_code=201,
             responses={**ERRORS, **KEY_CONFLICT,
                        200: {"model": s.ShareCreated, "description": "an earlier share returned"}})
def create_share(body: s.ShareRequest, ctx: Ctx, who: Editor,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
                 ) -> JSONResponse:
    """Share an article now, at a time (``at`` + ``tz``), or at each account's next free slot.

    With an ``Idempotency-Key`` header (scoped to the signed-in user) the same key with the same request
    returns the same share (200, ``duplicate``); with a different request it is refused (409, naming the
    first share). An account that already had this article within the duplicate window is not sent
    again: its entry in ``deliveries`` is the earlier delivery with ``duplicate_of`` set. ``warnings``
    says e.g. that no dispatcher is running for a scheduled share.
    """
    rt = ctx.rt
    article = article_from(body.article.model_dump())
    accounts = known_accounts(rt, body.accounts)
    if idempotency_key is not None and not idempotency_key.strip():
        raise InputError("Idempotency-Key", "must not be empty")
    result = service.share(rt, article, accounts, body.texts or None, idempotency_key=idempotency_key,
                           force=body.force, at=body.at or None, tz=body.tz or None, next_slot=body.next_slot,
                           shared_by=who.user.name, scope=f"user:{who.user.name}", actor=who.actor)
    data = {**result.to_json(accounts), "duplicate": result.duplicate, "warnings": list(result.warnings)}
    return JSONResponse(data, status_code=200 if result.duplicate else 201)


@router.get("/shares", response_model=s.ShareList, responses=ERRORS)
def list_shares(ctx: Ctx, who: Reader,
                status: Annotated[str | None, Query(description="shares with a delivery in this status")] = None,
                account: str | None = None, platform: str | None = None,
                since: Annotated[str | None, Query(description="YYYY-MM-DD or ISO 8601 (inclusive)")] = None,
                until: Annotated[str | None, Query(description="YYYY-MM-DD (inclusive day) or ISO 8601")] = None,
                q: Annotated[str | None, Query(max_length=200, description="title contains")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 20,
                cursor: Annotated[str | None, Query(max_length=100)] = None) -> JSONResponse:
    """Shares, newest first, with their deliveries. Pass ``next_cursor`` back as ``cursor`` for more."""
    rt = ctx.rt
    if status and status not in STATUSES:
        raise InputError("status", f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    if platform and platform not in REGISTRY:
        raise InputError("platform", f"unknown platform {platform!r} (one of: {', '.join(REGISTRY)})")
    if account:
        known_accounts(rt, [account], "account")
    tz = rt.settings.timezone
    shares, next_cursor = service.list_shares(
        rt, status=status, account=account, platform=platform, since=parse_bound(since, tz, "since"),
        until=parse_bound(until, tz, "until", end=True), q=q or None, limit=limit, cursor=cursor or None)
    return JSONResponse({"shares": [x.to_json() for x in shares], "next_cursor": next_cursor,
                         "counts": service.counts(rt)})


@router.get("/shares/{share_id}", response_model=s.ShareOut, responses={**ERRORS, **NOT_FOUND})
def get_share(share_id: str, ctx: Ctx, who: Reader) -> JSONResponse:
    """A share with every delivery and its event timeline."""
    return JSONResponse(service.get_share(ctx.rt, share_id).to_json())


@router.patch("/shares/{share_id}", response_model=s.ShareOut, responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def reschedule(share_id: str, body: s.RescheduleRequest, ctx: Ctx, who: Editor) -> JSONResponse:
    """Move the share's still-scheduled deliveries to a new time."""
    _share_id(share_id)
    service.reschedule(ctx.rt, share_id, body.at, body.tz or None, actor=who.actor)
    return JSONResponse(service.get_share(ctx.rt, share_id).to_json())


@router.post("/shares/{share_id}/cancel", response_model=s.CancelOut, responses={**ERRORS, **NOT_FOUND})
def cancel_share(share_id: str, ctx: Ctx, who: Editor) -> dict:
    """Cancel the deliveries that have not started sending; says which were already out."""
    _share_id(share_id)
    result = service.cancel(ctx.rt, share_id, actor=who.actor)
    return {"cancelled": result.cancelled, "not_cancelled": result.not_cancelled}


@router.get("/deliveries/{delivery_id}", response_model=s.DeliveryOut, responses={**ERRORS, **NOT_FOUND})
def get_delivery(delivery_id: str, ctx: Ctx, who: Reader) -> JSONResponse:
    return JSONResponse(service.delivery(ctx.rt, delivery_id).to_json())


@router.post("/deliveries/{delivery_id}/retry", response_model=s.DeliveryOut,
             responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def retry(delivery_id: str, ctx: Ctx, who: Editor, body: s.RetryRequest | None = None) -> JSONResponse:
    """Send a failed or needs_review delivery again (needs_review: ``{"confirm": true}``)."""
    d = service.retry(ctx.rt, delivery_id, confirmed=bool(body and body.confirm), actor=who.actor)
    return JSONResponse(d.to_json())


@router.post("/deliveries/{delivery_id}/cancel", response_model=s.CancelOut, responses={**ERRORS, **NOT_FOUND})
def cancel_delivery(delivery_id: str, ctx: Ctx, who: Editor) -> dict:
    if not delivery_id.startswith("dl_"):
        raise NotFound(f"no delivery with id {delivery_id!r}")
    result = service.cancel(ctx.rt, delivery_id, actor=who.actor)
    return {"cancelled": result.cancelled, "not_cancelled": result.not_cancelled}


@router.post("/deliveries/{delivery_id}/posted", response_model=s.DeliveryOut,
             responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def mark_posted(delivery_id: str, ctx: Ctx, who: Editor, body: s.PostedRequest | None = None) -> JSONResponse:
    """Close a needs_review delivery: an editor checked the account and the post is out."""
    d = service.mark_posted(ctx.rt, delivery_id, body.url if body and body.url else None, actor=who.actor)
    return JSONResponse(d.to_json())


@router.get("/accounts", response_model=s.AccountList, responses=ERRORS)
def accounts(ctx: Ctx, who: Reader, check: bool = False) -> JSONResponse:
    """Configured accounts (never a secret): limits, last success/failure, and with ``check=true`` whether
    the credentials work now (one cheap read per platform; bots and webhooks cannot be checked)."""
    return JSONResponse({"accounts": account_rows(ctx.rt, check)})


@router.get("/schedule", response_model=s.ScheduleList, responses=ERRORS)
def schedule(ctx: Ctx, who: Reader, account: str | None = None,
             limit: Annotated[int, Query(ge=1, le=1000)] = 200,
             cursor: Annotated[str | None, Query(max_length=100)] = None) -> JSONResponse:
    """Scheduled deliveries, soonest first, a page at a time (``next_cursor`` → ``cursor``)."""
    if account:
        known_accounts(ctx.rt, [account], "account")
    found, next_cursor = service.schedule_page(ctx.rt, account=account, limit=limit, cursor=cursor or None)
    return JSONResponse({"deliveries": [d.to_json() for d in found], "next_cursor": next_cursor})


health = APIRouter(tags=["health"])


@health.api_route("/wechat/events/{account}", methods=["GET", "POST"], include_in_schema=False)
async def wechat_events(account: str, request: Request, ctx: Ctx) -> Response:
    """The WeChat account's server URL (消息推送, plaintext mode): the handshake and result events, which
    make a waiting mass send / publish job be polled now. Public (WeChat signs it), body capped."""
    from starlette.concurrency import run_in_threadpool

    from ..platforms._wechat_events import MAX_BODY, EventError
    from ..wechat_ops import handle_event

    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return Response("body too large", status_code=413, media_type="text/plain")
    try:
        text = await run_in_threadpool(handle_event, ctx.rt, account, dict(request.query_params), body,
                                       request.method)
    except EventError as e:
        return Response(str(e), status_code=e.status, media_type="text/plain")
    return Response(text, media_type="text/plain")


@health.get("/healthz", response_model=s.Health, responses={503: {"model": s.Health}})
async def healthz(request: Request, ctx: Ctx, response: Response) -> dict:
    """Redis answers, and every watched queue (``sharer.queue.watched_queues``: the main and control
    queues, and each configured platform's with per-platform queues) is consumed by a worker that beat
    in Redis within the last 15 s (``sharer.heartbeat``). One pipelined Redis read on an async client
    with a 1 s timeout — no Celery round trip, and no thread, so it answers even while every worker
    thread is busy. ``workers`` lists every live worker, whatever its queues."""
    from ..heartbeat import FRESH, Liveness, all_key, key
    from ..queue import watched_queues

    rt = ctx.rt
    prefix, queues = rt.keys.root, watched_queues(rt.settings)  # the keys the workers beat in
    live = Liveness([], {})
    try:
        client = _health_redis(request, rt.settings.redis_url)
        since = time.time() - FRESH
        async with client.pipeline(transaction=False) as pipe:
            for k in [all_key(prefix)] + [key(prefix, q) for q in queues]:
                pipe.zrangebyscore(k, since, "+inf")
            everyone, *per_queue = await pipe.execute()
        live = Liveness.of(everyone, dict(zip(queues, per_queue, strict=True)))
        redis_ok = True
    except Exception:
        redis_ok = False
    ok = redis_ok and bool(live.workers) and not live.unconsumed
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", "redis": redis_ok, "workers": live.workers,
            "queues": live.queues, "unconsumed": live.unconsumed}


def _health_redis(request: Request, url: str) -> Any:
    """One async Redis client per event loop (a client belongs to the loop it was made on)."""
    import asyncio

    from ..connections import async_redis_client

    loop = id(asyncio.get_running_loop())
    cached = getattr(request.app.state, "health_redis", None)
    if cached is None or cached[0] != loop:  # redis://, a Sentinel group's primary, or a cluster
        cached = (loop, async_redis_client(url, socket_timeout=1, socket_connect_timeout=1))
        request.app.state.health_redis = cached
    return cached[1]


def _share_id(share_id: str) -> None:
    if not share_id.startswith("sh_"):
        raise NotFound(f"no share with id {share_id!r}")
