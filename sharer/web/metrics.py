"""``GET /metrics``: Prometheus text format — this web process's counters plus the Redis-read state.

Open like ``/healthz`` (Prometheus scrapes without a session), unless ``[metrics] token`` is set: then
it wants ``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: …}``). It never
shows a secret; it does show account names and counts.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from .. import metrics
from .auth import Ctx
from .sessions import same_token

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition format"},
                       401: {"description": "[metrics] token is set and the request did not carry it"}})
def prometheus(request: Request, ctx: Ctx) -> Response:
    """Delivery counters and the log's state, for Prometheus."""
    token = ctx.rt.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not (given.startswith("Bearer ") and same_token(token.reveal(), given[7:].strip())):
            raise HTTPException(401, "metrics need the bearer token of [metrics] token",
                                headers={"WWW-Authenticate": "Bearer"})
    app_state = request.app.state
    reg = getattr(app_state, "metrics_registry", None)
    if reg is None:
        reg = app_state.metrics_registry = metrics.registry(ctx.rt)
    return Response(metrics.render(reg), media_type=metrics.CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})
