"""The emulator base: a threaded HTTP/1.1 server, one send per response, and the control API.

Control API (on every emulator):
  GET  /_sandbox/posts      what was published, oldest first: {"posts": [...]}
  GET  /_sandbox/posts/ID   one of them (the "public URL" of a sandbox post)
  GET  /_sandbox/images/X   a small valid image (PNG for .png, else JPEG)
  GET/POST /_sandbox/config the emulator's settings, for emulators that declare ``config_schema``
  GET  /_sandbox/requests   every request seen (method, path, time): {"requests": [...]}
  POST /_sandbox/faults     {"path": "substring", "count": N, "kind": K, ...} — the next N matching
                            calls fail. Kinds: "status" (HTTP ``status`` + JSON ``body`` + ``headers``),
                            "error" (the platform's own error for ``code``), "timeout" (sleep ``seconds``,
                            then close without handling), "drop" (close at once, not handled),
                            "drop_after" (handle — the post is made — then close without answering),
                            "error_after" (handle, then answer the platform's error for ``code``,
                            e.g. Weibo's 20032 "posted, server slow"),
                            "hold" (handle, then wait ``seconds`` before answering),
                            "expired_token" (the platform's current tokens stop working).
                            Optional: ``"probability": p`` — each matching call fails with probability
                            p (default 1); a call that is spared does not use up ``count``.
                            ``"match": "text"`` — only calls whose body or a header value contains
                            the text match (e.g. a delivery id, or an article URL).
  POST /_sandbox/reset      forget posts, requests, faults and platform state.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]
Handler = Callable[..., Any]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else {}

    def form(self) -> dict[str, str]:
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            return {k: v[2].decode("utf-8", "replace") for k, v in self.files().items() if v[0] is None}
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def files(self) -> dict[str, tuple[str | None, str, bytes]]:
        """Multipart parts: name -> (filename or None, content type, bytes)."""
        ctype = self.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return {}
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body)
        out: dict[str, tuple[str | None, str, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str) and name:
                data = part.get_payload(decode=True)
                out[name] = (part.get_filename(), part.get_content_type(), data if isinstance(data, bytes) else b"")
        return out

    def arg(self, name: str) -> str | None:
        """A parameter from the query, then the form body."""
        if name in self.query:
            return self.query[name]
        return self.form().get(name)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), "text/plain; charset=utf-8"
        return self.body or b"", "application/octet-stream"


class Drop(Exception):
    """Close the connection without answering."""


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def mark(fn: Handler) -> Handler:
        fn._route = (method, re.compile("^" + pattern + "$"))  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass
class Fault:
    path: str
    count: int
    kind: str
    spec: JSON


def bad_config(spec: Any, known: dict[str, type]) -> list[str]:
    """The keys of a /_sandbox/config body that are unknown or of the wrong type."""
    if not isinstance(spec, dict):
        return ["(body must be an object)"]
    return [k for k, v in spec.items() if k not in known or isinstance(v, bool) and known[k] is not bool
            or not isinstance(v, (int, float) if known[k] in (int, float) else known[k])]


class Emulator:
    """Subclass per platform: set ``platform``, write ``@route`` handlers, override ``error``.

    An emulator with settings declares ``config_schema`` (key -> type) and keeps them in
    ``self.config`` (set in ``reset_state``); ``GET/POST /_sandbox/config`` then reads and updates them.
    """

    platform = "base"
    config_schema: dict[str, type] = {}
    config: JSON  # set by reset_state() in emulators that declare config_schema

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.RLock()
        self.posts: list[JSON] = []
        self.requests: list[JSON] = []
        self.faults: list[Fault] = []
        self._routes = [getattr(self, n) for n in dir(type(self)) if hasattr(getattr(type(self), n), "_route")]
        self.reset_state()
        self.httpd = _Server((host, port), _make_handler(self))
        self.thread: threading.Thread | None = None

    # --- to override -----------------------------------------------------------------------------

    def reset_state(self) -> None:
        """Forget platform state (tokens, drafts...)."""

    def error(self, code: Any, spec: JSON) -> Response:
        """The platform's own error response for an injected ``code``."""
        return Response(400, {"error": str(code)})

    def expire_tokens(self) -> None:
        """Make the current tokens invalid (fault kind ``expired_token``)."""

    # --- running ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"sandbox-{self.platform}",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def record_post(self, post: JSON) -> JSON:
        with self.lock:
            post = {"received_at": time.time(), **post}
            self.posts.append(post)
            return post

    # --- dispatch --------------------------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        if req.path.startswith("/_sandbox/"):
            return self.control(req)
        with self.lock:
            self.requests.append({"method": req.method, "path": req.path, "at": time.time()})
            if len(self.requests) > 20000:
                del self.requests[:10000]
            fault = self._take_fault(req)
        if fault is not None:
            kind, spec = fault.kind, fault.spec
            if kind == "status":
                return Response(int(spec.get("status", 500)), spec.get("body", {"error": "injected"}),
                                dict(spec.get("headers", {})))
            if kind == "error":
                return self.error(spec.get("code"), spec)
            if kind == "timeout":
                time.sleep(float(spec.get("seconds", 30)))
                raise Drop
            if kind == "drop":
                raise Drop
            if kind == "expired_token":
                self.expire_tokens()
            if kind in ("drop_after", "hold", "error_after"):
                resp = self._handle(req)
                if kind == "drop_after":
                    raise Drop
                if kind == "error_after":
                    return self.error(spec.get("code"), spec)
                time.sleep(float(spec.get("seconds", 30)))
                return resp
        return self._handle(req)

    def _handle(self, req: Request) -> Response:
        for handler in self._routes:
            method, pattern = handler._route
            m = pattern.match(req.path)
            if m and (method == req.method or method == "*"):
                req.params = m.groupdict()
                return handler(req)
        return self.not_found(req)

    def not_found(self, req: Request) -> Response:
        return Response(404, {"error": f"no such endpoint: {req.method} {req.path}"})

    def _take_fault(self, req: Request) -> Fault | None:
        for f in self.faults:
            if f.path in req.path and f.count > 0 and _matches(f.spec.get("match"), req):
                if random.random() >= float(f.spec.get("probability", 1.0)):
                    continue  # spared this time; the fault stays armed
                f.count -= 1
                if f.count == 0:
                    self.faults.remove(f)
                return f
        return None

    def control(self, req: Request) -> Response:
        if req.method == "GET" and req.path.startswith("/_sandbox/images/"):
            from .images import image_for  # a small valid image, e.g. for photo URLs in tests

            data, ctype = image_for(req.path)
            return Response(200, data, {"Content-Type": ctype})
        if req.path == "/_sandbox/config" and self.config_schema:
            with self.lock:
                if req.method == "POST":
                    spec = req.json()
                    bad = bad_config(spec, self.config_schema)
                    if bad:
                        known = sorted(self.config_schema)
                        return Response(400, {"error": f"bad config keys: {bad} (known: {known})"})
                    self.config.update(spec)
                return Response(200, self.config)
        with self.lock:
            if req.method == "GET" and req.path == "/_sandbox/posts":
                return Response(200, {"platform": self.platform, "posts": self.posts})
            if req.method == "GET" and req.path.startswith("/_sandbox/posts/"):
                post_id = req.path.rsplit("/", 1)[-1]
                for post in self.posts:
                    if str(post.get("id")) == post_id:
                        return Response(200, post)
                return Response(404, {"error": f"no post {post_id}"})
            if req.method == "GET" and req.path == "/_sandbox/requests":
                return Response(200, {"requests": self.requests})
            if req.method == "POST" and req.path == "/_sandbox/faults":
                spec = req.json()
                if not isinstance(spec, dict) or "kind" not in spec:
                    return Response(400, {"error": "fault needs a kind"})
                self.faults.append(Fault(spec.get("path", ""), int(spec.get("count", 1)), spec["kind"], spec))
                return Response(200, {"ok": True})
            if req.method == "POST" and req.path == "/_sandbox/reset":
                self.posts.clear()
                self.requests.clear()
                self.faults.clear()
                self.reset_state()
                return Response(200, {"ok": True})
        return Response(404, {"error": "unknown control endpoint"})


def _matches(text: str | None, req: Request) -> bool:
    if not text:
        return True
    return text in req.body.decode("utf-8", "replace") or any(text in v for v in req.headers.values())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Answers go out in one send anyway; this also stops Nagle stalls on keep-alive.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet; /_sandbox/requests has the log
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(
                method=self.command, path=parts.path,
                query={k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                headers={k.lower(): v for k, v in self.headers.items()}, body=body,
            )
            try:
                resp = emulator.dispatch(req)
            except Drop:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            except Exception as e:  # an emulator bug must show, not hang the client
                resp = Response(500, {"error": f"emulator error: {type(e).__name__}: {e}"})
            payload, ctype = resp.encode()
            head = [f"HTTP/1.1 {resp.status} {_reason(resp.status)}", f"Content-Length: {len(payload)}"]
            if "content-type" not in {k.lower() for k in resp.headers}:
                head.append(f"Content-Type: {ctype}")
            head += [f"{k}: {v}" for k, v in resp.headers.items()]
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
