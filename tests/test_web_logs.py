"""``sharer web``'s request log lines name the signed-in actor — in both formats — and never a secret.

A real ``sharer web`` process per format (``[log] format = "json"`` and the default text), driven over
HTTP: anonymous requests, a sign-in, a session's page, an API token's call and a URL carrying
credentials in its query; then its output is read as an operator would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT
from web_support import PASSWORDS, bearer

QUERY_SECRET = "qs-secret-value-123"


class WebProcess:
    """``python -m sharer.cli web --port 0``, its stdout and stderr in one file: uvicorn binds a free port
    itself, and its "Uvicorn running on" line says which."""

    def __init__(self, config: Path, env: dict[str, str], tmp: Path):
        self.out = tmp / f"web-{len(list(tmp.glob('web-*.log')))}.log"
        self.fh = open(self.out, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "sharer.cli", "--config", str(config), "web",
                                      "--port", "0"], cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not (running := re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", self.output())):
            assert self.proc.poll() is None and time.time() < deadline, self.output()
            time.sleep(0.1)
        self.port = int(running[1])
        self.url = f"http://127.0.0.1:{self.port}"
        while True:
            assert self.proc.poll() is None and time.time() < deadline, self.output()
            try:
                requests.get(self.url + "/login", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(20)
        self.fh.close()
        return self.output()


def _traffic(url: str, token: dict[str, str]) -> dict[str, str]:
    """The requests whose lines are checked; returns the secrets that went over the wire."""
    assert requests.get(url + "/login", timeout=10).status_code == 200  # anonymous
    s = requests.Session()
    page = s.get(url + "/login?next=/shares", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    r = s.post(url + "/login", data={"username": "editor", "password": PASSWORDS["editor"], "csrf_token": csrf,
                                     "next": "/shares"}, allow_redirects=False, timeout=30)
    assert r.status_code == 303
    assert s.get(url + "/shares", timeout=10).status_code == 200
    assert requests.get(url + "/api/me", headers=token, timeout=10).status_code == 200
    assert requests.get(url + f"/api/shares?limit=5&access_token={QUERY_SECRET}", headers=token,
                        timeout=10).status_code in (200, 422)
    assert requests.get(url + "/api/me", headers={"Authorization": "Bearer shr_nobody_wrong"},
                        timeout=10).status_code == 401
    return {"password": PASSWORDS["editor"], "session": s.cookies["sharer_session"],
            "token": token["Authorization"].split()[1], "query": QUERY_SECRET}


@pytest.fixture(scope="module")
def token_for_editor(web_app):
    return bearer(web_app, "editor")


def _token_label(token: dict[str, str], web_app) -> str:
    from sharer.web.users import Tokens

    rt = web_app.state.web.rt
    return Tokens(rt.redis, rt.settings.prefix).identify(token["Authorization"].split()[1]).name


def test_json_request_lines_carry_the_actor_and_no_secret(web_app, web_config, web_env, tmp_path, token_for_editor):
    config = tmp_path / "sharer-web-json.toml"
    config.write_text(web_config.read_text() + '\n[log]\nformat = "json"\n')
    web = WebProcess(config, web_env, tmp_path)
    try:
        sent = _traffic(web.url, token_for_editor)
        time.sleep(0.3)
    finally:
        out = web.stop()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    assert access, out[-3000:]

    def line(method: str, path: str) -> dict:
        return next(x for x in access if f'"{method} {path} HTTP/1.1"' in x["message"])

    assert "actor" not in line("GET", "/login")  # anonymous: no actor at all
    assert line("POST", "/login")["actor"] == "editor"  # the sign-in's own line names who signed in
    assert line("GET", "/shares")["actor"] == "editor"
    label = _token_label(token_for_editor, web_app)
    assert line("GET", "/api/me")["actor"] == f"editor (token {label})"  # as the audit log names it
    masked = line("GET", "/api/shares?limit=5&access_token=***")
    assert masked["actor"] == f"editor (token {label})"
    assert "actor" not in next(x for x in access if "401" in x["message"])  # a wrong token is nobody
    assert {"ts", "level", "logger", "message"} <= set(masked)
    for what, value in sent.items():
        assert value not in out, f"the {what} is in the log"


def test_text_request_lines_end_with_the_actor_and_no_secret(web_app, web_config, web_env, tmp_path,
                                                             token_for_editor):
    web = WebProcess(web_config, web_env, tmp_path)
    try:
        sent = _traffic(web.url, token_for_editor)
        time.sleep(0.3)
    finally:
        out = web.stop()
    access = [line for line in out.splitlines() if " HTTP/1.1\" " in line]
    assert access, out[-3000:]

    def line(method: str, path: str) -> str:
        return next(x for x in access if f'"{method} {path} HTTP/1.1"' in x)

    assert line("GET", "/login").endswith('"GET /login HTTP/1.1" 200 OK')
    assert line("POST", "/login").endswith(" 303 See Other actor=editor")
    assert line("GET", "/shares").endswith(" 200 OK actor=editor")
    label = _token_label(token_for_editor, web_app)
    assert line("GET", "/api/me").endswith(f" 200 OK actor=editor (token {label})")
    assert line("GET", "/api/shares?limit=5&access_token=***").endswith(f"actor=editor (token {label})")
    assert next(x for x in access if " 401 " in x).endswith(" 401 Unauthorized")
    for what, value in sent.items():
        assert value not in out, f"the {what} is in the log"
