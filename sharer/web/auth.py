"""Who is asking, and may they: FastAPI dependencies shared by the API and the pages.

A request is signed in by a bearer token (API clients) or the session cookie (the browser). Roles come
from the config on every request, so a changed role or a removed user takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from ..actor import Actor
from ..roles import Permission
from ..runtime import Runtime
from .requestlog import note_actor
from .sessions import SESSION_COOKIE, LoginLimiter, Sessions, same_token
from .settings import User, WebSettings
from .users import Tokens

CSRF_HEADER = "X-CSRF-Token"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
MAX_FIELD_BYTES = 5 * 1024 * 1024  # an article body pasted into the compose form may exceed Starlette's 1 MB


@dataclass
class WebContext:
    """Everything a request handler needs; one per app (``app.state.web``)."""

    rt: Runtime
    web: WebSettings
    sessions: Sessions
    tokens: Tokens
    limiter: LoginLimiter
    templates: Jinja2Templates


@dataclass(frozen=True)
class Principal:
    user: User
    via: str  # "session" or "token"
    csrf: str | None = None  # the session's CSRF token (None for bearer tokens)
    session_id: str | None = None
    token_name: str | None = None  # the API token's label (else its id)

    @property
    def can_write(self) -> bool:
        return self.user.can_write

    @property
    def actor(self) -> Actor:
        """Who the service records: the dashboard user, or "<user> (token <name>)"."""
        if self.via == "token":
            return Actor.token(self.user.name, self.token_name or "?")
        return Actor.web(self.user.name)


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to /login."""


def context(request: Request) -> WebContext:
    return request.app.state.web


Ctx = Annotated[WebContext, Depends(context)]


def identify(request: Request, ctx: WebContext) -> Principal | None:
    """The signed-in principal, or None. A malformed or revoked credential is simply no credential.
    The request's log lines name the principal from here on (``sharer.web.requestlog``)."""
    who = _identify(request, ctx)
    if who is not None:
        note_actor(request.scope, who.actor)
    return who


def _identify(request: Request, ctx: WebContext) -> Principal | None:
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        info = ctx.tokens.identify(token.strip())
        user = ctx.web.user(info.user if info else None)
        return Principal(user, "token", token_name=info.name) if user and info else None
    session = ctx.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    user = ctx.web.user(session.user)
    return Principal(user, "session", session.csrf, session.id) if user else None


def api_reader(request: Request, ctx: Ctx) -> Principal:
    """Any signed-in user; anonymous API calls get 401. Cookie-signed writes need the CSRF header."""
    who = identify(request, ctx)
    if who is None:
        raise HTTPException(401, "sign in, or send an API token: Authorization: Bearer shr_…",
                            headers={"WWW-Authenticate": "Bearer"})
    if who.via == "session" and request.method in UNSAFE and not same_token(who.csrf or "",
                                                                          request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (cookie-authenticated write)")
    return who


def _require(who: Principal, permission: Permission) -> Principal:
    if not who.user.can(permission):
        needed = {Permission.SHARE: "editors", Permission.APPROVE: "approvers",
                  Permission.AUDIT: "approvers and admins", Permission.ADMIN: "admins"}.get(permission, "others")
        raise HTTPException(403, f"user {who.user.name!r} is a {who.user.role}; only {needed} may do this")
    return who


def api_editor(who: Annotated[Principal, Depends(api_reader)]) -> Principal:
    return _require(who, Permission.SHARE)


def api_approver(who: Annotated[Principal, Depends(api_reader)]) -> Principal:
    return _require(who, Permission.APPROVE)


def api_auditor(who: Annotated[Principal, Depends(api_reader)]) -> Principal:
    return _require(who, Permission.AUDIT)


def api_admin(who: Annotated[Principal, Depends(api_reader)]) -> Principal:
    return _require(who, Permission.ADMIN)


def page_reader(request: Request, ctx: Ctx) -> Principal:
    who = identify(request, ctx)
    if who is None or who.via != "session":
        raise LoginRequired()
    return who


def page_editor(who: Annotated[Principal, Depends(page_reader)]) -> Principal:
    return _require(who, Permission.SHARE)


def page_approver(who: Annotated[Principal, Depends(page_reader)]) -> Principal:
    return _require(who, Permission.APPROVE)


def page_auditor(who: Annotated[Principal, Depends(page_reader)]) -> Principal:
    return _require(who, Permission.AUDIT)


async def checked_form(request: Request, who: Principal) -> dict[str, list[str]]:
    """The posted form (multi-valued), after its CSRF token was checked against the session."""
    form = await request.form(max_part_size=MAX_FIELD_BYTES)
    if not same_token(who.csrf or "", _str(form.get("csrf_token"))):
        raise HTTPException(403, "this form has expired or did not come from this site: reload the page")
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    request.state.form = form  # uploads stay reachable for the handler
    return out


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


Reader = Annotated[Principal, Depends(api_reader)]
Editor = Annotated[Principal, Depends(api_editor)]
PageReader = Annotated[Principal, Depends(page_reader)]
PageEditor = Annotated[Principal, Depends(page_editor)]
Approver = Annotated[Principal, Depends(api_approver)]
Auditor = Annotated[Principal, Depends(api_auditor)]
Admin = Annotated[Principal, Depends(api_admin)]
PageApprover = Annotated[Principal, Depends(page_approver)]
PageAuditor = Annotated[Principal, Depends(page_auditor)]
