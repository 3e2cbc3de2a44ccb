"""Sign-off, the audit log and API tokens on the web: ``/api/approvals``, ``/api/shares/{id}/approve|reject|
resubmit``, ``/api/audit``, ``/api/tokens``, and the pages ``/approvals``, ``/audit`` plus the share page's
approve / reject / resubmit forms.

Thin like the rest: each route checks the role (403), calls ``sharer.workflow`` / ``sharer.service`` with
the principal's actor, and returns JSON or redirects. Four-eyes is enforced in the core (``Forbidden``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .. import service, workflow
from ..errors import ComposeError, Forbidden, InputError, NotFound
from ..store.audit import AuditAction, AuditEntry
from ..store.shares import ShareSummary
from ..store.states import Approval, Status
from . import i18n
from . import schemas as s
from .auth import (
    Admin,
    Approver,
    Auditor,
    Ctx,
    Editor,
    PageApprover,
    PageAuditor,
    PageEditor,
    PageReader,
    Principal,
    Reader,
    WebContext,
    checked_form,
)
from .pages import error_message, render, share_page
from .views import parse_bound

api = APIRouter(prefix="/api", tags=["approval"])
pages = APIRouter(include_in_schema=False)
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": s.Problem, "description": "not signed in"},
          403: {"model": s.Problem, "description": "the role may not, or four-eyes (your own share)"},
          404: {"model": s.Problem, "description": "no such share"},
          409: {"model": s.Problem, "description": "not waiting for this decision (decided, cancelled…)"},
          422: {"model": s.Problem, "description": "invalid input: names the field"}}


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: dict[str, str] = Field(default_factory=dict, description="account -> the text to send instead")
    version: int | None = Field(None, ge=1, description="refuse if the share is no longer at this version")


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=workflow.MAX_REASON)
    version: int | None = Field(None, ge=1)


class ResubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: dict[str, str] = Field(default_factory=dict, description="account -> the revised text")
    note: str = Field("", max_length=workflow.MAX_REASON)


class ApprovalQueue(BaseModel):
    count: int
    shares: list[s.ShareOut]


class AuditOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    at: str
    actor: str
    user: str
    action: str = Field(description="one of: " + ", ".join(AuditAction))
    share_id: str | None
    delivery_id: str | None
    detail: str
    data: dict[str, Any]


class AuditList(BaseModel):
    entries: list[AuditOut]
    next_cursor: str | None


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, max_length=64, description="a label shown in the audit log (e.g. ci-bot)")


class TokenOut(BaseModel):
    id: str
    user: str
    name: str | None
    created_at: str
    last_used: str | None = None
    token: str | None = Field(None, description="the secret: returned once, at creation")


# --- API -------------------------------------------------------------------------------------------

@api.get("/approvals", response_model=ApprovalQueue, responses=ERRORS)
def approvals(ctx: Ctx, who: Reader) -> JSONResponse:
    """Shares waiting for sign-off (also ones whose slot passed while they waited), oldest first."""
    shares = workflow.pending(ctx.rt)
    return JSONResponse({"count": len(shares), "shares": [x.to_json() for x in shares]})


@api.post("/shares/{share_id}/approve", response_model=s.ShareOut, responses=ERRORS)
def approve(share_id: str, ctx: Ctx, who: Approver, body: ApproveRequest | None = None) -> JSONResponse:
    """Approve (optionally with each account's text replaced): sent now, or at its scheduled time."""
    _share_id(share_id)
    body = body or ApproveRequest.model_validate({})
    workflow.approve(ctx.rt, share_id, actor=who.actor, texts=body.texts, version=body.version)
    return JSONResponse(service.get_share(ctx.rt, share_id).to_json())


@api.post("/shares/{share_id}/reject", response_model=s.ShareOut, responses=ERRORS)
def reject(share_id: str, body: RejectRequest, ctx: Ctx, who: Approver) -> JSONResponse:
    """Send it back to the editor with a reason; nothing waiting is published."""
    _share_id(share_id)
    workflow.reject(ctx.rt, share_id, body.reason, actor=who.actor, version=body.version)
    return JSONResponse(service.get_share(ctx.rt, share_id).to_json())


@api.post("/shares/{share_id}/resubmit", response_model=s.ShareOut, responses=ERRORS)
def resubmit(share_id: str, ctx: Ctx, who: Editor, body: ResubmitRequest | None = None) -> JSONResponse:
    """A rejected share, revised, back to the approvers as a new version."""
    _share_id(share_id)
    body = body or ResubmitRequest.model_validate({})
    workflow.resubmit(ctx.rt, share_id, actor=who.actor, texts=body.texts, note=body.note)
    return JSONResponse(service.get_share(ctx.rt, share_id).to_json())


@api.get("/audit", response_model=AuditList, responses=ERRORS)
def audit(ctx: Ctx, who: Auditor, actor: Annotated[str | None, Query(max_length=200)] = None,
          since: Annotated[str | None, Query(description="YYYY-MM-DD or ISO 8601")] = None,
          share: Annotated[str | None, Query(max_length=100)] = None,
          action: Annotated[str | None, Query(max_length=40)] = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 50,
          cursor: Annotated[str | None, Query(max_length=40)] = None) -> JSONResponse:
    """Who did what, newest first (approvers and admins)."""
    entries, next_cursor = service.audit(ctx.rt, actor=actor, since=parse_bound(since, ctx.rt.settings.timezone,
                                                                                "since"),
                                         share_id=share, action=action, limit=limit, cursor=cursor)
    return JSONResponse({"entries": [e.to_json() for e in entries], "next_cursor": next_cursor})


@api.get("/tokens", response_model=list[TokenOut], responses=ERRORS)
def list_tokens(ctx: Ctx, who: Admin) -> list[dict]:
    """Every API token (never its secret), admins only."""
    return [_token_json(t) for t in ctx.tokens.list()]


@api.post("/tokens", response_model=TokenOut, status_code=201, responses=ERRORS)
def create_token(body: TokenRequest, ctx: Ctx, who: Admin) -> dict:
    """A new token for a configured user; the secret is in this answer only."""
    if ctx.web.user(body.user) is None:
        raise InputError("user", f"no user {body.user!r} in the config")
    token_id, value = ctx.tokens.create(body.user, body.name)
    _audit_token(ctx, who, AuditAction.TOKEN_CREATE, token_id, body.user, body.name)
    info = ctx.tokens.get(token_id)
    return {**_token_json(info), "token": value} if info else {"id": token_id, "token": value}


@api.delete("/tokens/{token_id}", status_code=204, responses=ERRORS)
def revoke_token(token_id: str, ctx: Ctx, who: Admin) -> Response:
    info = ctx.tokens.get(token_id)
    if info is None or not ctx.tokens.revoke(token_id):
        raise NotFound(f"no token with id {token_id!r}")
    _audit_token(ctx, who, AuditAction.TOKEN_REVOKE, token_id, info.user, info.label)
    return Response(status_code=204)


def _token_json(t: Any) -> dict[str, Any]:
    return {"id": t.id, "user": t.user, "name": t.label, "created_at": t.created_at, "last_used": t.last_used}


def _audit_token(ctx: WebContext, who: Principal, action: AuditAction, token_id: str, user: str,
                 label: str | None) -> None:
    verb = "created" if action is AuditAction.TOKEN_CREATE else "revoked"
    ctx.rt.audit.record(AuditEntry(action, who.actor.name, who.actor.user,
                                   f"{verb} token {label or token_id} for {user}", None, None,
                                   {"token_id": token_id, "for": user, "name": label}))


def _share_id(share_id: str) -> None:
    if not share_id.startswith("sh_"):
        raise NotFound(f"no share with id {share_id!r}")


# --- pages -----------------------------------------------------------------------------------------

@pages.get("/approvals")
def approvals_page(request: Request, ctx: Ctx, who: PageReader) -> Response:
    return render(ctx, request, "approvals.html", who, shares=[panel(ctx, who, x) for x in workflow.pending(ctx.rt)])


@pages.get("/audit")
def audit_page(request: Request, ctx: Ctx, who: PageAuditor) -> Response:
    params = dict(request.query_params)
    entries: list[AuditEntry] = []
    error, next_cursor, status = None, None, 200
    try:
        entries, next_cursor = service.audit(
            ctx.rt, actor=params.get("actor") or None, share_id=params.get("share") or None,
            action=params.get("action") or None, since=parse_bound(params.get("since"), ctx.rt.settings.timezone,
                                                                   "since"),
            cursor=params.get("cursor") or None, limit=100)
    except InputError as e:
        error, status = error_message(e), 422
    nav = {k: v for k, v in params.items() if k != "cursor" and v}
    return render(ctx, request, "audit.html", who, status, entries=entries, next_cursor=next_cursor, params=params,
                  nav=nav, actions=[str(a) for a in AuditAction], error=error)


BAD = (InputError, ComposeError, Forbidden)


async def _decide(request: Request, ctx: WebContext, who: Principal, share_id: str,
                  action: Callable[[dict[str, str]], object]) -> Response:
    form = await checked_form(request, who)
    one = {k: v[-1].replace("\r\n", "\n") for k, v in form.items()}
    return await run_in_threadpool(_decided, request, ctx, who, share_id, action, one)


def _decided(request: Request, ctx: WebContext, who: Principal, share_id: str,
             action: Callable[[dict[str, str]], object], one: dict[str, str]) -> Response:
    """The decision and the page after it: Redis and the broker, so in a worker thread."""
    _share_id(share_id)
    service.get_share(ctx.rt, share_id)  # 404 before anything else
    try:
        action(one)
    except BAD as e:
        code = 403 if isinstance(e, Forbidden) else 422 if isinstance(e, ComposeError) else (
            409 if isinstance(e, InputError) and e.field == "share" else 422)
        return share_page(ctx, request, who, share_id, error=error_message(e), status=code)
    return RedirectResponse(f"/shares/{share_id}", 303)


def _form_texts(one: dict[str, str]) -> dict[str, str]:
    return {k[5:]: v for k, v in one.items() if k.startswith("text.")}


@pages.post("/shares/{share_id}/approve")
async def approve_form(share_id: str, request: Request, ctx: Ctx, who: PageApprover) -> Response:
    def act(one: dict[str, str]) -> object:
        version = int(one["version"]) if (one.get("version") or "").isdigit() else None
        return workflow.approve(ctx.rt, share_id, actor=who.actor, texts=_changed(ctx, share_id, _form_texts(one)),
                         version=version)
    return await _decide(request, ctx, who, share_id, act)


@pages.post("/shares/{share_id}/reject")
async def reject_form(share_id: str, request: Request, ctx: Ctx, who: PageApprover) -> Response:
    return await _decide(request, ctx, who, share_id, lambda one: workflow.reject(
        ctx.rt, share_id, one.get("reason", ""), actor=who.actor))


@pages.post("/shares/{share_id}/resubmit")
async def resubmit_form(share_id: str, request: Request, ctx: Ctx, who: PageEditor) -> Response:
    return await _decide(request, ctx, who, share_id, lambda one: workflow.resubmit(
        ctx.rt, share_id, actor=who.actor, texts=_changed(ctx, share_id, _form_texts(one)),
        note=one.get("note", "")))


def _changed(ctx: WebContext, share_id: str, texts: dict[str, str]) -> dict[str, str]:
    """Only the texts the person changed (a form posts every textarea)."""
    current = {d.account: (d.post or {}).get("text") for d in service.get_share(ctx.rt, share_id).deliveries}
    return {a: t for a, t in texts.items() if t != current.get(a)}


# --- the share page's approval panel (a Jinja global used by _approval.html) ------------------------

def panel(ctx: WebContext, who: Principal | None, share: ShareSummary) -> dict[str, Any]:
    """What the approval panel shows: who submitted which version, the decision and its reason, each
    account's text with a diff against the submitted text, and which buttons this person gets."""
    gated = [d for d in share.deliveries if d.approval is not None]
    rows = []
    for d in gated:
        text = (d.post or {}).get("text") or ""
        a = d.approval
        if a and a.submitted_text and a.submitted_text != text:  # the approver's edit
            rows.append({"d": d, "text": text, "diff": diff(a.submitted_text, text),
                         "diff_label": i18n.gettext("Changes by the approver against the submitted text:")})
        elif a and a.previous_text and a.previous_text != text:  # the editor's revision after a rejection
            rows.append({"d": d, "text": text, "diff": diff(a.previous_text, text),
                         "diff_label": i18n.gettext("Revised since version %(n)s:") % {"n": a.version - 1}})
        else:
            rows.append({"d": d, "text": text, "diff": None})
    waiting = [d for d in gated if d.approval and d.approval.state is Approval.PENDING
               and d.status in (Status.AWAITING_APPROVAL, Status.NEEDS_REVIEW)]
    rejected = [d for d in gated if d.status is Status.REJECTED]
    first = gated[0].approval if gated else None
    own = bool(who and first and first.submitted_user == who.actor.user)
    self_ok = ctx.rt.settings.workflow.allow_self_approval
    return {"share": share, "rows": rows, "approval": first, "waiting": bool(waiting), "rejected": bool(rejected),
            "version": max((d.approval.version for d in gated if d.approval), default=None),
            "can_decide": bool(who and who.user.can_approve and waiting and (self_ok or not own)),
            "own": own and not self_ok, "can_resubmit": bool(who and who.can_write and rejected)}


def diff(before: str, after: str) -> list[tuple[str, str]]:
    """Character-level (works for Chinese, which has no spaces) segments: ("same"|"del"|"ins", text)."""
    out: list[tuple[str, str]] = []
    sm = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            out.append(("same", before[a0:a1]))
        else:
            if a1 > a0:
                out.append(("del", before[a0:a1]))
            if b1 > b0:
                out.append(("ins", after[b0:b1]))
    return out


def install(app: FastAPI) -> None:
    """Mount the routes, map ``Forbidden`` to 403, and give templates the panel and the header count."""
    from .app import _problem

    app.include_router(api)
    app.include_router(pages)
    ctx: WebContext = app.state.web

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, exc: Forbidden) -> Response:  # sync: Starlette runs it in a thread
        return _problem(request, 403, str(exc))

    def approval_panel(share: ShareSummary, who: Principal | None) -> dict[str, Any] | None:
        view = panel(ctx, who, share)
        return view if view["rows"] else None

    ctx.templates.env.globals.update(approval_panel=approval_panel,
                                     pending_approvals=lambda: workflow.pending_count(ctx.rt))
