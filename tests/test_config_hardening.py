"""Fail closed on config: what the CLI refuses, `celery -A tasks worker` and `beat` refuse the same way.

Each bad config is refused with one line naming the file and the key (exit 2) by the CLI, the worker
and beat — never a worker that logs "ready" on Celery's defaults. Real subprocesses throughout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REDIS_URL, ROOT, run_cli

from sharer.config import load_settings
from sharer.errors import ConfigError
from sharer.web.settings import load_web_settings

HOOK = '[accounts.ok]\nplatform = "webhook"\napi_base = "http://127.0.0.1:1/h"\ncredentials = { secret = "sandbox:" }\n'
WX = ('[accounts.wx]\nplatform = "wechat"\napi_base = "http://127.0.0.1:1"\n'
      'credentials = { appid = "sandbox:", appsecret = "sandbox:" }\n')
BASE = f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-cfgtest"\n\n'

BAD = {
    "empty": ("", "the config is empty"),
    "toml": ("[redis\nurl = 1\n", "not valid TOML"),
    "db-index": ('[redis]\nurl = "redis://127.0.0.1:6379/abc"\n' + HOOK, "redis.url: the database index must be"),
    "broker-db": (BASE + '[celery]\nbroker_url = "redis://127.0.0.1:6379/x1"\n' + HOOK, "celery.broker_url"),
    "nan": (BASE + "[delivery]\nlease_seconds = nan\n" + HOOK, "delivery.lease_seconds: must be a finite"),
    "inf": (BASE + "[defaults]\nmax_lateness_minutes = inf\n" + HOOK,
            "defaults.max_lateness_minutes: must be a finite"),
    "retry-nan": (BASE + "[delivery]\nretry = { base = nan }\n" + HOOK, "delivery.retry.base: must be a finite"),
    "rate-inf": (BASE + HOOK + "rate_limit = { count = 5, per_seconds = inf }\n", "accounts.ok.rate_limit"),
    "retention-0": (BASE + "[log]\nretention_days = 0\n" + HOOK, "log.retention_days: must be at least 1"),
    "retention-half": (BASE + "[log]\nretention_days = 0.5\n" + HOOK, "log.retention_days: must be at least 1"),
    "comma-name": (BASE + HOOK.replace("accounts.ok", 'accounts."a,b"'), "accounts.a,b: an account name is"),
    "space-name": (BASE + HOOK.replace("accounts.ok", 'accounts."a b"'), "accounts.a b: an account name is"),
    "unset-env": (BASE + HOOK.replace('"sandbox:"', '"env:SHARER_CFGTEST_UNSET"'),
                  "environment variable SHARER_CFGTEST_UNSET is not set"),
    "fetch-net": (BASE + '[fetch]\nallow_networks = ["10.0.0.0/33"]\n' + HOOK, "fetch.allow_networks"),
    "fetch-key": (BASE + '[fetch]\nallow = ["x"]\n' + HOOK, "fetch.allow: unknown key"),
    "articles-small": (BASE + "[articles]\nmax_bytes = 10\n" + HOOK, "articles.max_bytes"),
    # choice errors, word for word (config.py and the WeChat options share one wording helper)
    "log-format": (BASE + '[log]\nformat = "xml"\n' + HOOK, 'log.format: must be "text" or "json", got \'xml\''),
    "wx-mode": (BASE + WX + 'options = { publish_mode = "tweet" }\n',
                "accounts.wx.options.publish_mode: must be one of publish, mass, draft, got 'tweet'"),
    "wx-type": (BASE + WX + 'options = { account_type = "personal" }\n',
                "accounts.wx.options.account_type: must be one of subscription, service, got 'personal'"),
    "wx-period": (BASE + WX + 'options = { mass_quota_period = "week" }\n',
                  'accounts.wx.options.mass_quota_period: must be "day" or "month", got \'week\''),
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", list(BAD))
def test_bad_config_is_refused_naming_file_and_key(tmp_path, name):
    text, words = BAD[name]
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value), str(info.value)


def cli_env(base_env, path: Path) -> dict[str, str]:
    env = {k: v for k, v in base_env.items() if k != "SHARER_CFGTEST_UNSET"}
    env["SHARER_CONFIG"] = str(path)
    return env


@pytest.mark.parametrize("name", ["empty", "db-index", "nan", "retention-0", "comma-name", "unset-env"])
def test_cli_refuses_with_one_line(tmp_path, base_env, name):
    path = write(tmp_path, name, BAD[name][0])
    proc = run_cli(["accounts"], cli_env(base_env, path), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {path}: "), proc.stderr


def celery(kind: str, env: dict[str, str], tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "celery", "-A", "tasks", kind, "-l", "INFO"]
    if kind == "worker":
        cmd += ["-P", "solo", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    else:  # the test's own schedule file: parallel test processes never share one
        cmd += ["-s", str(tmp / "beat-schedule")]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", ["worker", "beat"])
@pytest.mark.parametrize("name", ["toml", "db-index", "unset-env", "empty"])
def test_worker_and_beat_refuse_to_start_with_the_clis_message(tmp_path, base_env, kind, name):
    path = write(tmp_path, name, BAD[name][0])
    env = cli_env(base_env, path)
    proc = celery(kind, env, tmp_path)
    cli = run_cli(["accounts"], env, timeout=60)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert " ready." not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == cli.stderr.strip()  # the same one line as the CLI


def test_the_example_config_loads_with_its_web_table():
    text = (ROOT / "config" / "sharer.example.toml").read_text()
    env = {name: "x" * 32 for name in re.findall(r'"env:([A-Z_]+)"', text)}
    settings = load_settings(ROOT / "config" / "sharer.example.toml", env=env)
    web = load_web_settings(settings, env=env)
    assert web.trusted_proxies == () and web.max_body_bytes == 8 * 1024 * 1024
    assert settings.fetch_allow_hosts == () and settings.max_article_bytes == 5 * 1024 * 1024


def test_media_rewrite_targets_are_allowed_fetch_origins(tmp_path):
    path = write(tmp_path, "rw", BASE + '[media]\nrewrite = { "https://news.example.com/" = '
                 '"http://127.0.0.1:8909/" }\n[fetch]\nallow_hosts = ["cms.internal"]\n'
                 'allow_networks = ["10.20.0.0/16"]\n' + HOOK)
    policy = load_settings(path, env={}).fetch_policy()
    assert policy.host_allowed("127.0.0.1", 8909) and not policy.host_allowed("127.0.0.1", 6379)
    assert policy.host_allowed("cms.internal", 443)
    import ipaddress

    assert policy.network_allowed(ipaddress.ip_address("10.20.3.4"))
    assert not policy.network_allowed(ipaddress.ip_address("10.21.3.4"))
