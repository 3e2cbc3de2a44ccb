"""`sharer demo` / `make demo`: the whole product on this machine, no credentials, no internet.

Starts the sandbox emulators, a Celery worker, beat (the scheduler) and the web dashboard (``sharer web``,
when the config has a ``[web]`` table) as child processes (stopped on exit or Ctrl-C), all reading the
same config file,
shares every article in ``examples/`` to every demo account (those pointing at loopback emulators),
shows a live status table until every delivery is settled, then prints where each post landed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import click

from . import service
from .cli import LiveTable, render_table
from .config import is_loopback_url
from .errors import SharerError
from .loaders import load_article
from .runtime import Runtime, get_runtime

EXAMPLES = Path("examples")
# .txt articles carry no URL of their own; the demo knows where the sample page lives.
TXT_URLS = {"baic-catl-page.txt": "https://news.example.com/en/2023/03/13/baic-catl-cooperation"}


class Children:
    """Child processes in their own process groups, all stopped together."""

    def __init__(self, config: str | None = None) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        # every child reads the file the demo was given (`sharer --config F demo`), not the default one
        self.env = {**os.environ, **({"SHARER_CONFIG": str(Path(config).resolve())} if config else {})}

    def start(self, name: str, cmd: list[str], log: Path) -> subprocess.Popen:
        fh = open(log, "wb")
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=self.env)
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def run_demo(config: str | None, keep: bool = False) -> int:
    rt = get_runtime(config)
    rt.redis.ping()
    demo_accounts = [a.name for a in rt.settings.accounts.values() if is_loopback_url(a.api_base)]
    if not demo_accounts:
        raise SharerError("no demo accounts (accounts with a loopback api_base) in the config")
    logs = Path(os.environ.get("SHARER_DEMO_LOGS", "/tmp"))
    children = Children(config)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        sandbox_urls = [a.api_base for a in rt.settings.accounts.values() if a.name in demo_accounts]
        if any(_port_open(u) for u in sandbox_urls):
            click.echo("sandbox ports already answer: using the running sandbox")
        else:
            children.start("sandbox", [sys.executable, "-m", "sharer.cli", "sandbox"], logs / "sharer-sandbox.log")
        children.start("worker", [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-c", "2",
                                  "-n", f"demo-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                                  "-l", "INFO"], logs / "sharer-worker.log")
        # beat: the scheduler's 1 s dispatcher, the sweeper and the purge (so `demo --keep` runs scheduled posts)
        children.start("beat", [sys.executable, "-m", "celery", "-A", "tasks", "beat", "-l", "INFO",
                                "-s", str(logs / f"sharer-demo-beat-{os.getpid()}.db")], logs / "sharer-beat.log")
        web_url = _start_web(rt, children, logs, config)
        _wait_for(lambda: all(_port_open(u) for u in sandbox_urls), 20, "the sandbox did not start")
        click.echo(f"sandbox, worker and beat started (logs: {logs}/sharer-sandbox.log, {logs}/sharer-worker.log, "
                   f"{logs}/sharer-beat.log)")
        web_url = _web_ready(web_url, children, logs)

        shares = []
        pushes = _wechat_pushes(rt, demo_accounts)
        everyday = [a for a in demo_accounts if a not in pushes]
        for path in sorted(EXAMPLES.iterdir()):
            if path.suffix not in (".json", ".md", ".html", ".txt"):
                continue
            article = load_article(str(path), url=TXT_URLS.get(path.name))
            result = service.share(rt, article, everyday, force=True)  # every run shares afresh
            shares.append((path.name, result.share_id))
            click.echo(f"shared {path.name} -> {len(everyday)} accounts (share {result.share_id})")
        if pushes:
            shares.append(_wechat_showcase(rt, pushes))

        live = LiveTable(enabled=sys.stdout.isatty())
        deadline = time.monotonic() + 300
        while True:
            deliveries = [d for _, sid in shares for d in service.status(rt, sid)]
            live.update(deliveries)
            if all(service.is_settled(d) for d in deliveries) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        live.close()
        click.echo(render_table(deliveries))
        click.echo()
        for name, sid in shares:
            click.secho(f"{name}  (sharer status {sid})", bold=True)
            for d in service.status(rt, sid):
                where = d.note if d.already_posted else (d.post_url or d.note or d.error or d.status)
                click.echo(f"  {d.account:22} {d.status:10} {where}")
        ok = all(d.status == "delivered" for d in deliveries)
        click.echo()
        click.echo("every post delivered" if ok else "some deliveries did not succeed (see above)")
        if web_url:
            click.echo(f"dashboard: {web_url}  (sign in as editor / demo-editor, or viewer / demo-viewer)")
        if keep:
            click.echo("--keep: sandbox, worker, beat and dashboard keep running; Ctrl-C to stop")
            while True:
                time.sleep(3600)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        children.stop()


# The WeChat showcase: one multi-article push (多图文), its preview sent to an editor's phone first.
PUSH_ARTICLES = ("baic-catl-zh.md", "baic-catl.json", "edge-cases.json")
DEMO_PHONE = "demo-editor"  # the WeChat ID the sandbox "phone" preview goes to


def _wechat_pushes(rt: Runtime, accounts: list[str]) -> list[str]:
    """Demo WeChat accounts in mass or draft mode: they get the one multi-article push, not every article
    (a real account has 1 mass send a day)."""
    return [a for a in accounts if rt.settings.accounts[a].platform == "wechat"
            and rt.settings.accounts[a].options.publish_mode in ("mass", "draft")]


def _wechat_showcase(rt: Runtime, accounts: list[str]) -> tuple[str, str]:
    from dataclasses import replace

    from .wechat_ops import mass_quota, send_to_phone

    lead, *more = (load_article(str(EXAMPLES / name)) for name in PUSH_ARTICLES)
    article = replace(lead, extra_articles=tuple(more))
    for sent in send_to_phone(rt, article, accounts[:1], DEMO_PHONE):
        click.echo(f"preview of {sent.articles} articles sent to {sent.to}'s phone from {sent.account} "
                   f"(draft {sent.draft_media_id}, msg_id {sent.msg_id})")
    for name in accounts:
        q = mass_quota(rt, name)
        if q is not None:
            click.echo(f"{name}: mass-send quota before the push: {q.describe()}")
    result = service.share(rt, article, accounts, force=True)
    label = f"{' + '.join(PUSH_ARTICLES)} (one WeChat push)"
    click.echo(f"shared {label} -> {', '.join(accounts)} (share {result.share_id})")
    return label, result.share_id


def _start_web(rt: Runtime, children: Children, logs: Path, config: str | None) -> str | None:
    """`sharer web` as another child when the config has a [web] table; returns its URL."""
    if not rt.settings.web:
        return None
    host, port = rt.settings.web.get("host", "127.0.0.1"), rt.settings.web.get("port", 8080)
    url = f"http://{host}:{port}/"
    if _port_open(url):
        click.echo(f"{url} already answers: using the running dashboard")
        return url
    cmd = [sys.executable, "-m", "sharer.cli", *(["--config", config] if config else []), "web"]
    children.start("web", cmd, logs / "sharer-web.log")
    return url


def _web_ready(url: str | None, children: Children, logs: Path) -> str | None:
    """Wait for the dashboard; a dashboard that cannot start is reported, not fatal to the demo."""
    if url is None:
        return None
    web = next((p for name, p in children.procs if name == "web"), None)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _port_open(url):
        if web is not None and web.poll() is not None:
            break
        time.sleep(0.1)
    if not _port_open(url):
        click.echo(f"warning: the dashboard did not start (see {logs}/sharer-web.log)", err=True)
        return None
    click.echo(f"dashboard: {url}  (log: {logs}/sharer-web.log)")
    return url


def _wait_for(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SharerError(message)
