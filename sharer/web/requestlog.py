"""Every log line of a web request names who made it (``actor``, as the audit log does), never a secret.

``RequestLog`` (pure ASGI, so streams stay unbuffered) binds a dict of log fields for the request's
task; ``identify`` fills in the actor once it knows it — often in a worker thread, which runs in a
copy of the task's context holding the same dict, so the request's later lines carry it too: the
JSON formatter adds it to every line, and ``RequestLine`` adds it to uvicorn's access line in the text
format (`` actor=alice``) and masks credentials in its query string. Anonymous requests name no actor.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .. import logs
from ..actor import Actor
from ..redact import redact

SCOPE_KEY = "sharer.log"
ACCESS_LOGGER = "uvicorn.access"


class RequestLog:
    """Give each HTTP request its own log fields (see the module docstring)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = logs.current()
        scope[SCOPE_KEY] = fields
        # Not reset on the way out: the server runs each request in a task of its own, and the answer to
        # an unhandled error is sent (and logged) by Starlette's outermost middleware after we return.
        logs.bind_shared(fields)
        await self.app(scope, receive, send)


def note_actor(scope: Scope, actor: Actor) -> None:
    """The request is signed in as ``actor``: its remaining log lines say so."""
    fields = scope.get(SCOPE_KEY)
    if fields is not None:
        fields["actor"] = actor.name


class RequestLine(logging.Filter):
    """On uvicorn's access logger: the request's actor as ``record.actor`` (and `` actor=…`` for the text
    format's ``%(actor_note)s``), and the request path with any credential in it masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        actor = logs.current().get("actor")
        if actor and getattr(record, "actor", None) is None:
            record.actor = actor
        record.actor_note = f" actor={actor}" if actor else ""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:  # client, method, path?query, http version, status
            record.args = (args[0], args[1], redact(str(args[2])), args[3], args[4])
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put ``RequestLine`` on the access logger once (JSON logs: uvicorn leaves its loggers to us)."""
    target = logger or logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RequestLine) for f in target.filters):
        target.addFilter(RequestLine())


def text_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, its access line ending in `` actor=<name>`` when signed in."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] += "%(actor_note)s"
    config["filters"] = {"sharer_request": {"()": RequestLine}}
    config["handlers"]["access"]["filters"] = ["sharer_request"]  # on the handler: rebuilt by each dictConfig
    return config
