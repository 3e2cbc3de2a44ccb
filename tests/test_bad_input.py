"""The bad-input corpus: hostile files, configs, CLI arguments and API bodies against the real CLI
(subprocesses) and the real web app. Every one gets a clear answer naming the field — CLI exit 2 (1 for
an unusable Redis) with one line, HTTP 4xx — never a traceback, never a 5xx, and the stored data is
byte-identical before and after (every key under the corpus's own prefix hashed).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import EXAMPLES, REDIS_URL, account_tables, run_cli
from web_support import WEB_SECRET, article_json, bearer, client, sign_in, users_toml

from sharer import service
from sharer.config import load_settings
from sharer.loaders import load_article
from sharer.runtime import Runtime
from sharer.web.app import create_app

DEEP = 100_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, emulators, base_env, web_config):
    """A config of its own (own prefix and queue: no worker touches it), files, and an app."""
    tag = secrets.token_hex(4)
    root = tmp_path_factory.mktemp("corpus")
    cfg = root / "sharer.toml"
    cfg.write_text(f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-bad-{tag}"\n\n'
                   f'[celery]\nqueue = "sharer-bad-{tag}"\n\n'
                   '[defaults]\ntimezone = "Asia/Shanghai"\n\n[delivery]\nduplicate_window_hours = 0\n\n'
                   + account_tables(emulators) + '\n[web]\nsecret_key = "env:SHARER_TEST_WEB_SECRET"\n\n'
                   + users_toml(["editor", "viewer"]))
    env = {**base_env, "SHARER_CONFIG": str(cfg), "SHARER_TEST_WEB_SECRET": WEB_SECRET}
    files = {
        "deep.json": "[" * DEEP + "]" * DEEP,
        "deep-obj.json": '{"a":' * DEEP + "1" + "}" * DEEP,
        "deep-body.json": json.dumps({"title": "T", "url": "https://x.example/a", "body_html": "<i>" * DEEP}),
        "deep.html": "<html><body><article><h1>T</h1><p>x</p>" + "<span>" * DEEP + "</article></body></html>",
        "deep-front.md": "---\ntitle: " + "[" * DEEP + "\n---\nbody\n",
        "big.html": "<html><body><article><h1>T</h1><p>" + "x" * (6 * 1024 * 1024) + "</p></article></body></html>",
        "long-title.json": json.dumps({"title": "t" * 20_000, "url": "https://x.example/a"}),
        "many-tags.json": json.dumps({"title": "T", "url": "https://x.example/a",
                                      "tags": [f"t{i}" for i in range(60)]}),
        "not-utf8.md": b"---\ntitle: \xff\xfe\n---\n",
        "nul.json": json.dumps({"title": "T\u0000", "url": "https://x.example/a"}),
        "nul-url.json": json.dumps({"title": "T", "url": "https://x.example/a\u0000"}),
    }
    for name, text in files.items():
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    settings = load_settings(cfg, env=env)
    rt = Runtime(settings)
    # stored data to keep intact: a queued share and an editor session (the web test adds a used API token)
    service.share(rt, load_article(str(EXAMPLES / "baic-catl.json")), ["hook-a"])
    app = create_app(settings)
    editor = sign_in(app, "editor")
    yield {"root": root, "env": env, "rt": rt, "app": app, "editor": editor}
    for key in rt.redis.scan_iter(match=f"sharer-bad-{tag}*", count=1000):
        rt.redis.delete(key)


def snapshot(rt: Runtime) -> dict[str, str]:
    """sha256 of every key's type and full value under the prefix."""
    r, out = rt.redis, {}
    for key in sorted(r.scan_iter(match=f"{rt.settings.prefix}*", count=1000)):
        kind = r.type(key).decode()
        value = {"string": lambda k: r.get(k), "hash": lambda k: sorted(r.hgetall(k).items()),
                 "list": lambda k: r.lrange(k, 0, -1), "set": lambda k: sorted(r.smembers(k)),
                 "zset": lambda k: r.zrange(k, 0, -1, withscores=True)}.get(kind, lambda k: b"?")(key)
        out[key.decode()] = hashlib.sha256(f"{kind}\0{value!r}".encode()).hexdigest()
    return out


class Silent:
    """A TCP server that accepts and never answers (a hung Redis)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return


class NotRedis(Silent):
    def _accept(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.conns.append(conn)


def cli_cases(root: Path, busy: int, silent: int, not_redis: int) -> list[tuple[list[str], dict, int, str]]:
    art = str(EXAMPLES / "baic-catl.json")
    bad_cfg = {name: root / f"cfg-{name}.toml" for name in ("empty", "db", "nan", "retention", "comma")}
    bad_cfg["empty"].write_text("")
    bad_cfg["db"].write_text('[redis]\nurl = "redis://127.0.0.1:6379/abc"\n')
    bad_cfg["nan"].write_text('[defaults]\nmax_lateness_minutes = nan\n')
    bad_cfg["retention"].write_text("[log]\nretention_days = 0\n")
    bad_cfg["comma"].write_text('[accounts."a,b"]\nplatform = "webhook"\napi_base = "http://127.0.0.1:1/"\n')
    f = lambda name: str(root / name)  # noqa: E731
    cases = [
        (["share", f("deep.json"), "--to", "hook-a"], {}, 2, "nested more than"),
        (["share", f("deep-obj.json"), "--to", "hook-a"], {}, 2, "nested more than"),
        (["share", f("deep-body.json"), "--to", "hook-a"], {}, 2, "body_html: HTML is nested more than"),
        (["preview", f("deep.html"), "--to", "hook-a"], {}, 2, "nested more than"),
        (["preview", f("deep-front.md"), "--to", "hook-a"], {}, 2, "front matter"),
        (["share", f("big.html"), "--to", "hook-a"], {}, 2, "larger than 5 MB"),
        (["share", f("long-title.json"), "--to", "hook-a"], {}, 2, "title: is 20,000 characters; at most 10,000"),
        (["share", f("many-tags.json"), "--to", "hook-a"], {}, 2, "tags: 60 tags; at most 50"),
        (["share", f("not-utf8.md"), "--to", "hook-a"], {}, 2, "not UTF-8"),
        (["share", f("nul.json"), "--to", "hook-a"], {}, 2, "title: contains a NUL"),
        (["share", f("nul-url.json"), "--to", "hook-a"], {}, 2, "url: contains a NUL"),
        (["share", art, "--to", "hook-a,a,b"], {}, 2, "unknown account 'a'"),
        (["share", art, "--to", "hook-a", "--at", "9999-12-31T23:59:00-23:59"], {}, 2, "at: "),
        (["share", art, "--to", "hook-a", "--at", "2999-01-01 10:00"], {}, 2, "at: more than"),
        (["share", art, "--to", "hook-a", "--at", "2030-01-01 10:00", "--max-lateness", "nan"], {}, 2,
         "--max-lateness"),
        (["share", art, "--to", "hook-a", "--max-lateness", "inf", "--at", "2030-01-01 10:00"], {}, 2,
         "--max-lateness"),
        (["share", art, "--to", "hook-a", "--wait", "--timeout", "nan"], {}, 2, "--timeout"),
        (["share", "http://127.0.0.1:6379/", "--to", "hook-a"], {}, 2, "127.0.0.1 is a loopback address"),
        (["share", "http://127.1:6379/admin.html", "--to", "hook-a"], {}, 2, "loopback"),
        (["share", "http://2130706433/", "--to", "hook-a"], {}, 2, "loopback"),
        (["share", "http://0x7f000001/", "--to", "hook-a"], {}, 2, "loopback"),
        (["share", "http://[::ffff:127.0.0.1]/", "--to", "hook-a"], {}, 2, "IPv4-mapped"),
        (["share", "http://169.254.169.254/latest/meta-data/", "--to", "hook-a"], {}, 2, "link-local"),
        (["share", "file:///etc/passwd", "--to", "hook-a"], {}, 2, "only http(s)"),
        (["log", "--since", "0001-01-01T00:00:00+14:00"], {}, 2, "--since"),
        (["log", "--since", "yesterday"], {}, 2, "--since"),
        (["log", "--cursor", "bogus"], {}, 2, "cursor"),
        (["log", "--cursor", "9" * 13 + ":" + "x" * 500], {}, 2, "cursor"),
        (["log", "--limit", "0"], {}, 2, "limit"),
        (["log", "--status", "nope"], {}, 2, "status"),
        (["schedule", "list", "--until", "9999-12-31T23:59-23:59"], {}, 2, "--until"),
        (["schedule", "move", "sh_nope", "--at", "2030-01-01 10:00"], {}, 2, "no share"),
        (["status", "sh_nope"], {}, 2, "no share"),
        (["retry", "dl_nope"], {}, 2, "no delivery"),
        (["cancel", "nope"], {}, 2, "no share"),
        (["posted", "dl_nope"], {}, 2, "no delivery"),
        (["sandbox", "--base-port", str(busy)], {}, 2, "--base-port"),
        (["web", "--port", str(busy)], {}, 2, "--port"),
        (["log"], {"SHARER_REDIS_URL": f"redis://127.0.0.1:{silent}/0"}, 1, "did not answer in time"),
        (["log"], {"SHARER_REDIS_URL": f"redis://127.0.0.1:{not_redis}/0"}, 1, "did not answer like Redis"),
    ]
    for path in bad_cfg.values():
        cases.append((["--config", str(path), "log"], {}, 2, str(path)))
    return cases


def test_cli_corpus(corpus):
    rt = corpus["rt"]
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    silent, not_redis = Silent(), NotRedis()
    before = snapshot(rt)

    def run(case) -> str | None:
        args, extra, code, words = case
        proc = run_cli(args, {**corpus["env"], **extra}, timeout=120)
        lines = proc.stderr.strip().splitlines()
        ok = (proc.returncode == code and "Traceback" not in proc.stderr + proc.stdout and len(lines) == 1
              and lines[0].startswith("error: ") and words in lines[0])
        return None if ok else f"{args} -> {proc.returncode}: {proc.stderr[-600:]}"

    cases = cli_cases(corpus["root"], busy.getsockname()[1], silent.port, not_redis.port)
    with ThreadPoolExecutor(max_workers=4) as pool:  # subprocesses: start-up time, not CPU, dominates
        failures = [f for f in pool.map(run, cases) if f]
    busy.close()
    assert not failures, "\n".join(failures)
    assert snapshot(rt) == before


def raw_upload(csrf: str, filename: bytes, data: bytes = b"{}") -> dict:
    """A multipart body written by hand: clients escape a NUL in a file name, an attacker does not."""
    b = b"----sharer-corpus"
    body = (b"--" + b + b'\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + csrf.encode()
            + b"\r\n--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename
            + b'"\r\nContent-Type: application/json\r\n\r\n' + data + b"\r\n--" + b + b"--\r\n")
    return {"content": body, "headers": {"Content-Type": "multipart/form-data; boundary=" + b.decode()}}


def web_cases(corpus) -> list[tuple[str, str, dict, int, str]]:
    art = article_json(EXAMPLES / "baic-catl.json")
    deep_json = ('{"article": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + ', "accounts": ["hook-a"]}').encode()
    share_id = service.list_shares(corpus["rt"], limit=1)[0][0].id
    editor = corpus["editor"]
    form = {"csrf_token": editor.csrf, "title": "T", "url": "https://x.example/a", "accounts": "hook-a"}
    return [
        ("POST", "/api/shares", {"content": deep_json, "headers": {"Content-Type": "application/json"}}, 422, "body"),
        ("POST", "/api/previews", {"content": deep_json, "headers": {"Content-Type": "application/json"}}, 422, "body"),
        ("POST", "/api/previews", {"json": {"article": {**art, "body_html": "<b>" * DEEP}, "accounts": ["hook-a"]}},
         422, "nested more than"),
        ("POST", "/api/shares", {"json": {"article": art, "accounts": ["hook-a"], "at": "9999-12-31T23:59:00-23:59"}},
         422, "out of range"),
        ("POST", "/api/shares", {"json": {"article": {**art, "title": "t" * 20_000}, "accounts": ["hook-a"]}}, 422,
         "title"),
        ("POST", "/api/shares", {"json": {"article": {**art, "tags": ["t"] * 60}, "accounts": ["hook-a"]}}, 422,
         "tags"),
        ("POST", "/api/shares", {"json": {"article": {**art, "url": "http://x\u0000y"}, "accounts": ["hook-a"]}},
         422, "url"),
        ("PATCH", f"/api/shares/{share_id}", {"json": {"at": "9999-12-31T23:59:00-23:59"}}, 422, "out of range"),
        ("GET", "/api/shares?until=9999-12-31", {}, 422, "until"),
        ("GET", "/api/shares?since=0001-01-01T00:00:00%2B14:00", {}, 422, "since"),
        ("GET", "/api/shares?cursor=garbage", {}, 422, "cursor"),
        ("GET", "/shares?to=9999-12-31", {"page": True}, 422, "to"),
        ("GET", "/shares?from=0001-01-01T00:00:00%2B14:00", {"page": True}, 422, "from"),
        ("POST", "/api/shares", {"content": b"x", "headers": {"Content-Length": str(150 * 1024 * 1024),
                                                               "Content-Type": "application/json"}, "anon": True},
         413, "max_body_bytes"),
        ("POST", "/compose/load", {"page": True, **raw_upload(editor.csrf, b"a\x00.json")}, 422, "file name"),
        ("POST", "/compose/load", {"page": True, "data": {"csrf_token": editor.csrf},
                                   "files": {"file": ("deep.json", ("[" * DEEP).encode(), "application/json")}},
         422, "nested more than"),
        ("POST", "/compose/load", {"page": True, "data": {"csrf_token": editor.csrf,
                                                          "source_url": "http://127.0.0.1:6379/"}}, 422, "loopback"),
        ("POST", "/compose/load", {"page": True, "data": {"csrf_token": editor.csrf,
                                                          "source_url": "http://2130706433:8080/healthz"}}, 422,
         "loopback"),
        ("POST", "/compose/load", {"page": True, "data": {"csrf_token": editor.csrf,
                                                          "source_url": "http://[::1]:8080/admin.html"}}, 422,
         "loopback"),
        ("POST", "/compose", {"page": True, "data": {**form, "title": "t" * 20_000}}, 422, "title"),
        ("POST", "/compose", {"page": True, "data": {**form, "tags": ",".join(f"t{i}" for i in range(60))}}, 422,
         "tags"),
        ("POST", "/compose", {"page": True, "data": {**form, "body_html": "<u>" * DEEP}}, 422, "nested"),
        ("POST", "/compose", {"page": True, "data": {**form, "when": "at", "at": "9999-12-31T23:59"}}, 422, "at"),
    ]


def test_web_corpus(corpus):
    rt, app = corpus["rt"], corpus["app"]
    cases = web_cases(corpus)
    corpus["token"] = bearer(app, "editor")  # used once now: its "last used" stamp is written before the snapshot
    assert client(app).get("/api/me", headers=corpus["token"]).status_code == 200
    before = snapshot(rt)
    failures = []
    for method, path, kw, code, words in cases:
        kw = dict(kw)
        page, anon = kw.pop("page", False), kw.pop("anon", False)
        c = corpus["editor"] if page else client(app)
        headers = {**kw.pop("headers", {}), **({} if page or anon else corpus["token"])}
        started = time.monotonic()
        r = c.request(method, path, headers=headers, **kw)
        took = time.monotonic() - started
        if r.status_code != code or words not in r.text or "Traceback" in r.text or took > 5:
            shown = r.text[r.text.find('flash error'):][:300] if "<html" in r.text else r.text[:400]
            failures.append(f"{method} {path} -> {r.status_code} in {took:.1f}s: {shown}")
    assert not failures, "\n".join(failures)
    assert snapshot(rt) == before
