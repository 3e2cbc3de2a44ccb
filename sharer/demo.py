"""`sharer demo` / `make demo`: the whole product on this machine, no credentials, no internet.

Starts the sandbox emulators, a Celery worker and the web dashboard (``sharer web``, when the config
has a ``[web]`` table) as child processes (stopped on exit or Ctrl-C),
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
from pathlib import Path
from urllib.parse import urlsplit

import click

from . import service
from .cli import LiveTable, render_table
from .config import is_loopback_url
from .errors import SharerError
from .loaders import load_article
from .runtime import get_runtime

EXAMPLES = Path("examples")
# .txt articles carry no URL of their own; the demo knows where the sample page lives.
TXT_URLS = {"baic-catl-page.txt": "https://news.example.com/en/2023/03/13/baic-catl-cooperation"}


class Children:
    """Child processes in their own process groups, all stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], log: Path) -> subprocess.Popen:
        fh = open(log, "wb")
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
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
    children = Children()
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
        web_url = _start_web(rt, children, logs, config)
        _wait_for(lambda: all(_port_open(u) for u in sandbox_urls), 20, "the sandbox did not start")
        click.echo(f"sandbox and worker started (logs: {logs}/sharer-sandbox.log, {logs}/sharer-worker.log)")
        web_url = _web_ready(web_url, children, logs)

        shares = []
        for path in sorted(EXAMPLES.iterdir()):
            if path.suffix not in (".json", ".md", ".html", ".txt"):
                continue
            article = load_article(str(path), url=TXT_URLS.get(path.name))
            result = service.share(rt, article, demo_accounts, force=True)  # every run shares afresh
            shares.append((path.name, result.share_id))
            click.echo(f"shared {path.name} -> {len(demo_accounts)} accounts (share {result.share_id})")

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
            click.echo("--keep: sandbox, worker and dashboard keep running; Ctrl-C to stop")
            while True:
                time.sleep(3600)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        children.stop()


def _start_web(rt, children: Children, logs: Path, config: str | None) -> str | None:
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


def _wait_for(check, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SharerError(message)
