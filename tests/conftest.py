"""Shared fixtures: real Redis (own db + key prefix), real emulators over HTTP, a real Celery worker.

Nothing of ours is mocked. The worker is a subprocess started with ``celery -A tasks worker``,
configured by a temporary TOML file that points every account at the in-process emulators.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import port_support
import pytest
import redis as redis_lib
import requests

from sharer.config import load_settings
from sharer.platforms import specs
from sharer.runtime import Runtime
from sharer.sandbox.run import EMULATORS, emulator_class

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEST_DB = int(os.environ.get("SHARER_TEST_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{TEST_DB}"


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections for the whole test (``port_support.closed_port``)."""
    with port_support.closed_port() as port:
        yield port


@pytest.fixture(scope="session")
def emulators():
    running = {pid: emulator_class(pid)("127.0.0.1", 0).start() for pid in EMULATORS}
    yield running
    for emu in running.values():
        emu.stop()


@pytest.fixture(autouse=True)
def _reset_emulators(request):
    if "emulators" in request.fixturenames:
        for emu in request.getfixturevalue("emulators").values():
            requests.post(emu.url + "/_sandbox/reset", timeout=5)
    yield


def account_tables(emulators) -> str:
    """Accounts for every emulator; each platform's test module may rely on these names."""
    hook = emulators["webhook"].url
    out = [
        f'[accounts.hook-a]\nplatform = "webhook"\napi_base = "{hook}/hooks/a"\n'
        'credentials = { secret = "sandbox:" }\n',
        f'[accounts.hook-b]\nplatform = "webhook"\napi_base = "{hook}/hooks/b"\n'
        'credentials = { secret = "sandbox:" }\n',
        f'[accounts.hook-bad]\nplatform = "webhook"\napi_base = "{hook}/hooks/bad"\n'
        'credentials = { secret = "env:SHARER_TEST_WRONG_SECRET" }\n',
        f'[accounts.hook-slots]\nplatform = "webhook"\napi_base = "{hook}/hooks/slots"\n'
        'credentials = { secret = "sandbox:" }\ntimezone = "Asia/Shanghai"\n'
        'slots = { days = "mon-sun", times = ["09:00", "12:30", "18:00"] }\nmin_spacing_minutes = 240\n',
    ]
    for pid, spec in specs().items():  # each platform's declared demo account(s), as <id>-demo…
        for name, table in spec.demo_accounts().items():
            out.append(_toml_table(f"{pid}-demo{name.removeprefix(f'demo-{pid}')}",
                                   {**table, "api_base": table["api_base"].replace(
                                       f"http://127.0.0.1:{spec.sandbox.port}", emulators[pid].url)}))
    extra = ROOT / "tests" / "accounts"
    if extra.is_dir():  # one file per platform: tests/accounts/<platform>.toml with {url} placeholders
        for f in sorted(extra.glob("*.toml")):
            pid = f.stem
            if pid in emulators:
                out.append(f.read_text().replace("{url}", emulators[pid].url))
    for pid, tables in module_accounts().items():  # or ACCOUNTS in tests/test_<platform>.py
        if pid in emulators:
            out.append(tables.replace("{url}", emulators[pid].url))
    return "\n".join(out)


def module_accounts() -> dict[str, str]:
    """platform id -> the TOML account tables its test module declares as ``ACCOUNTS = \"\"\"…\"\"\"``.

    Read from the source (``ast``), not imported, so every run's config has them whichever tests are
    selected, and a platform's extra test accounts live in its one test file.
    """
    out: dict[str, str] = {}
    for pid in specs():
        path = ROOT / "tests" / f"test_{pid}.py"
        if not path.exists():
            continue
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["ACCOUNTS"]
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                out[pid] = node.value.value
    return out


def _toml_table(name: str, table: dict) -> str:
    """One ``[accounts.NAME]`` table (values are strings, numbers, booleans and flat tables)."""
    def value(v) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    return f"[accounts.{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())


@pytest.fixture(scope="session")
def config_file(tmp_path_factory, emulators) -> Path:
    tag = secrets.token_hex(4)
    path = tmp_path_factory.mktemp("cfg") / "sharer.toml"
    path.write_text(
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-test-{tag}"\n\n'
        f'[celery]\nqueue = "sharer-test-{tag}"\n\n'
        '[defaults]\ntimezone = "Asia/Shanghai"\n\n'
        '[delivery]\nlease_seconds = 30\nhttp_timeout = 5\n'
        # fast retries so tests see whole retry sequences in seconds
        'retry = { base = 0.2, cap = 1.0, max_attempts = 4 }\n'
        # tests share the same examples again and again; duplicate detection has its own test
        'duplicate_window_hours = 0\n\n'
        # example articles' images (news.example.com) are served by the stand-in site emulator
        f'[media]\nrewrite = {{ "https://news.example.com/" = "{emulators["site"].url}/" }}\n\n'
        + account_tables(emulators)
    )
    return path


@pytest.fixture(scope="session")
def base_env(config_file):
    env = dict(os.environ)
    env["SHARER_CONFIG"] = str(config_file)
    env["SHARER_TEST_WRONG_SECRET"] = "not-the-sandbox-secret"
    env.pop("SHARER_REDIS_URL", None)
    env.pop("SHARER_BROKER_URL", None)
    return env


@pytest.fixture(scope="session")
def runtime(config_file, base_env):
    os.environ["SHARER_TEST_WRONG_SECRET"] = base_env["SHARER_TEST_WRONG_SECRET"]
    rt = Runtime(load_settings(config_file))
    yield rt
    _delete_prefix(rt.redis, rt.settings.prefix)
    _delete_prefix(rt.redis, rt.settings.queue)


def _delete_prefix(r: redis_lib.Redis, prefix: str) -> None:
    for key in r.scan_iter(match=f"{prefix}*", count=1000):
        r.delete(key)


class Worker:
    """A `celery -A tasks worker` subprocess."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, pool: str = "prefork", name: str | None = None,
                 queues: list[str] | None = None):
        self.env = env
        self.name = name or f"w{secrets.token_hex(3)}"
        self.log = Path(env.get("TMPDIR", "/tmp")) / f"sharer-worker-{self.name}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", pool, "-c", str(concurrency),
               "-n", f"{self.name}@%h", "--without-heartbeat", "--without-mingle", "--without-gossip",
               "-l", "INFO"] + (["-Q", ",".join(queues)] if queues else [])
        self.fh = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            if b" ready." in self.log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready: {self.log.read_text()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.fh.close()


@pytest.fixture(scope="session")
def worker(base_env, runtime):
    w = Worker(base_env)
    yield w
    w.stop()


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sharer.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def wait_settled(rt: Runtime, share_id: str, timeout: float = 30.0):
    from sharer import service

    ds = service.wait(rt, share_id, timeout=timeout, poll=0.05)
    return ds


def sandbox_posts(emulator) -> list[dict]:
    return requests.get(emulator.url + "/_sandbox/posts", timeout=5).json()["posts"]


def inject(emulator, **fault) -> None:
    r = requests.post(emulator.url + "/_sandbox/faults", json=fault, timeout=5)
    r.raise_for_status()


def redis_dump(runtime) -> str:
    """Everything under the test prefix, as text: secret scans search it."""
    r, out = runtime.redis, []
    for key in r.scan_iter(match=f"{runtime.settings.prefix}*", count=1000):
        kind = r.type(key).decode()
        value = {"hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1), "string": r.get,
                 "zset": lambda k: r.zrange(k, 0, -1), "set": r.smembers}.get(kind, lambda k: b"")(key)
        out.append(repr(value))
    return "\n".join(out)


pytest_plugins = ["web_support", "approval_support"]  # the web and approval tests' fixtures
