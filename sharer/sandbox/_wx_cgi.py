"""The WeChat emulator's endpoint decorator and error, shared by ``wechat.py`` and ``wechat_mass.py``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .server import Request, Response, route


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
