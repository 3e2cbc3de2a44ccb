"""Fixtures for the approval tests: a config with sign-off accounts, roles, a notify bot, its own worker.

Its own Redis prefix and Celery queue (so its worker is the only one reading them), the session's
emulators, and users of every role (cheap argon2 parameters).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from conftest import Worker

from sharer.config import load_settings
from sharer.runtime import Runtime

ROLE_USERS = {"ed": "editor", "ed2": "editor", "chief": "approver", "chief2": "approver", "boss": "admin",
              "reader": "viewer"}
PASSWORD = "approval-password-1"
PUBLIC_URL = "https://newsroom.example.com/sharer"
_fast = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def approval_toml(config_file: Path, emulators, tag: str) -> str:
    base = config_file.read_text()
    base = re.sub(r'prefix = "[^"]+"', f'prefix = "sharer-appr-{tag}"', base, count=1)
    base = re.sub(r'queue = "[^"]+"', f'queue = "sharer-appr-{tag}"', base, count=1)
    hook, feishu = emulators["webhook"].url, emulators["feishu"].url
    users = "\n".join(f'[users.{n}]\nrole = "{r}"\npassword_hash = "{_fast.hash(PASSWORD)}"\n'
                      for n, r in ROLE_USERS.items())
    return base + f'''
[alerts]
webhook = "{hook}/hooks/alerts"
secret = "sandbox:"

[workflow]
notify = "feishu-editors"

[accounts.gated-a]
platform = "webhook"
api_base = "{hook}/hooks/gated-a"
credentials = {{ secret = "sandbox:" }}
requires_approval = true

[accounts.gated-b]
platform = "webhook"
api_base = "{hook}/hooks/gated-b"
credentials = {{ secret = "sandbox:" }}
requires_approval = true

[accounts.feishu-editors]
platform = "feishu"
api_base = "{feishu}"
credentials = {{ hook_token = "sandbox:" }}

[web]
secret_key = "env:SHARER_TEST_WEB_SECRET"
public_url = "{PUBLIC_URL}"

{users}
'''


@pytest.fixture(scope="module")
def appr_config(config_file, emulators, tmp_path_factory, base_env) -> Path:
    from web_support import WEB_SECRET

    os.environ["SHARER_TEST_WEB_SECRET"] = WEB_SECRET
    path = tmp_path_factory.mktemp("appr") / "sharer-approval.toml"
    path.write_text(approval_toml(config_file, emulators, secrets.token_hex(4)))
    return path


@pytest.fixture(scope="module")
def appr_env(base_env, appr_config) -> dict[str, str]:
    from web_support import WEB_SECRET

    return {**base_env, "SHARER_CONFIG": str(appr_config), "SHARER_TEST_WEB_SECRET": WEB_SECRET}


@pytest.fixture(scope="module")
def art(appr_config, runtime):
    rt = Runtime(load_settings(appr_config))
    yield rt
    from conftest import _delete_prefix

    _delete_prefix(rt.redis, rt.settings.prefix)
    _delete_prefix(rt.redis, rt.settings.queue)


@pytest.fixture(scope="module")
def appr_worker(appr_env, art):
    w = Worker(appr_env)
    yield w
    w.stop()


def hook_posts(emulators, path: str) -> list[dict]:
    from conftest import sandbox_posts

    return [p for p in sandbox_posts(emulators["webhook"]) if p["path"].rstrip("/").endswith(path)]
