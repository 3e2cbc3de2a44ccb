"""Fixtures for the web tests (imported by tests/test_web_*.py): a config with users, the app, clients.

The web config is the session test config (same Redis prefix, queue and emulator accounts, so the real
worker delivers what the web app shares) plus ``[web]`` and ``[users]``. Test users' argon2 hashes use
cheap parameters (the hash carries them), so signing in costs milliseconds.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from sharer.config import load_settings
from sharer.web.app import create_app
from sharer.web.users import Tokens

PASSWORDS = {"editor": "editor-password-1", "viewer": "viewer-password-1", "locky": "locky-password-1",
             "leaver": "leaver-password-1", "linguist": "linguist-password-1"}
ROLES = {"editor": "editor", "viewer": "viewer", "locky": "editor", "leaver": "editor", "linguist": "editor"}
WEB_SECRET = "test-web-secret-" + secrets.token_hex(8)
_fast = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def users_toml(names: list[str] | None = None) -> str:
    out = []
    for name in names or list(PASSWORDS):
        out.append(f'[users.{name}]\nrole = "{ROLES[name]}"\npassword_hash = "{_fast.hash(PASSWORDS[name])}"\n')
    return "\n".join(out)


@pytest.fixture(scope="session")
def web_config(config_file, tmp_path_factory, base_env) -> Path:
    os.environ["SHARER_TEST_WEB_SECRET"] = WEB_SECRET
    base_env["SHARER_TEST_WEB_SECRET"] = WEB_SECRET
    path = tmp_path_factory.mktemp("webcfg") / "sharer-web.toml"
    path.write_text(config_file.read_text() + '\n[web]\nsecret_key = "env:SHARER_TEST_WEB_SECRET"\n\n'
                    + users_toml())
    return path


@pytest.fixture(scope="session")
def web_env(base_env, web_config) -> dict[str, str]:
    return {**base_env, "SHARER_CONFIG": str(web_config), "SHARER_TEST_WEB_SECRET": WEB_SECRET}


@pytest.fixture(scope="session")
def web_app(web_config, runtime):
    return create_app(load_settings(web_config))


def client(app, base_url: str = "http://testserver") -> TestClient:
    return TestClient(app, base_url=base_url, raise_server_exceptions=False, follow_redirects=False)


def sign_in(app, user: str, base_url: str = "http://testserver") -> TestClient:
    """A TestClient holding ``user``'s session cookie; its ``csrf`` attribute is the session's token."""
    c = client(app, base_url)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    r = c.post("/login", data={"username": user, "password": PASSWORDS[user], "csrf_token": token, "next": "/"})
    assert r.status_code == 303, r.text
    c.csrf = csrf_of(c.get("/shares").text)  # type: ignore[attr-defined]
    return c


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]*)"', html)[1]


def bearer(app, user: str) -> dict[str, str]:
    rt = app.state.web.rt
    _, token = Tokens(rt.redis, rt.settings.prefix).create(user)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def editor(web_app) -> TestClient:
    return sign_in(web_app, "editor")


@pytest.fixture(scope="session")
def viewer(web_app) -> TestClient:
    return sign_in(web_app, "viewer")


@pytest.fixture(scope="session")
def editor_token(web_app) -> dict[str, str]:
    return bearer(web_app, "editor")


@pytest.fixture(scope="session")
def viewer_token(web_app) -> dict[str, str]:
    return bearer(web_app, "viewer")


def article_json(path: Path) -> dict:
    """An example article as the API takes it (the ``.json`` article format)."""
    import json

    data = json.loads(path.read_text())
    data.pop("source", None)
    return data


def all_secrets(rt) -> list[str]:
    """Every credential value the test config resolves (account secrets and the web key)."""
    values = [s.reveal() for a in rt.settings.accounts.values() for s in a.credentials.values()]
    return [v for v in values if len(v) >= 6] + [WEB_SECRET]
