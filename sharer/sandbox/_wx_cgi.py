"""The WeChat emulator's request checks, shared by ``wechat.py`` and ``wechat_mass.py``: the endpoint
decorator (token, raw UTF-8 JSON body, errcode errors) and the body checks both files make (a draft named
by ``media_id``, a job named by its id, a 0/1 flag, a cover's URL) with the same errcodes."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from .server import JSON, Request, Response, route


class WxError(Exception):
    def __init__(self, code: int, hint: str = ""):
        super().__init__(code, hint)
        self.code, self.hint = code, hint


def cgi(method: str, path: str, *, token: bool = True, body: bool = True) -> Callable:
    """A /cgi-bin/ endpoint: token check, raw UTF-8 JSON body, errcode errors on HTTP 200."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(self: Any, req: Request) -> Response:
            try:
                with self.lock:
                    if token:
                        self._check_token(req)
                    return Response(200, fn(self, req, self._json(req) if body else {}))
            except WxError as e:
                return self._err(e.code, e.hint)

        return route(method, path)(handler)

    return wrap


def rid() -> str:
    """The request id WeChat appends to every ``errmsg``."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def draft_named(drafts: dict[str, JSON], media_id: object, *, consume: bool) -> JSON:
    """The draft ``media_id`` names (40007 when there is none); ``consume``: it leaves the draft box."""
    key = str(media_id)
    draft = drafts.pop(key, None) if consume else drafts.get(key)
    if draft is None:
        raise WxError(40007)
    return draft


def job_named(jobs: dict[str, JSON], job_id: object, what: str) -> JSON:
    """The publish or mass-send job ``job_id`` names (40097 ``unknown <what>`` when there is none)."""
    job = jobs.get(str(job_id))
    if job is None:
        raise WxError(40097, f"unknown {what}")
    return job


def thumb_url(materials: dict[str, JSON], media_id: object) -> str:
    """The URL of a cover material (``thumb_url`` in draft and published-article items; "" if unknown)."""
    return str(materials.get(str(media_id), {}).get("url", ""))


def check_flag(body: JSON, key: str) -> None:
    """A 0/1 switch (``need_open_comment``, ``send_ignore_reprint``): anything else is 47001."""
    if body.get(key, 0) not in (0, 1):
        raise WxError(47001, f"{key} must be 0 or 1")
