"""The ``[web]`` and ``[users]`` tables: validated here because the web app owns their keys.

``[web] secret_key`` is a credential reference like an account's (``env:``/``file:``/``sandbox:``);
``sandbox:`` is its public test value and is refused unless the server binds to a loopback address.
The shipped config's demo users have documented passwords: while any user's hash matches one of them,
the server refuses to bind anywhere but loopback (checked by verifying, not by a marker one could drop).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..config import Secret, Settings
from ..config.credentials import CredentialResolver
from ..errors import ConfigError
from ..roles import ROLES, Permission, can
from .i18n import DEFAULT as DEFAULT_LANGUAGE
from .i18n import LANGUAGES, normalise

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
# The passwords of the shipped config's demo users (docs/web.md). Loopback only, enforced.
DEMO_PASSWORDS = ("demo-editor", "demo-viewer")
_WEB_KEYS = {"secret_key", "host", "port", "session_hours", "trusted_proxies", "language", "max_body_bytes",
             "sse_per_user", "sse_total", "public_url"}
DEFAULT_MAX_BODY = 8 * 1024 * 1024  # a 5 MB article upload or a 2 MB body with the form around it
_USER_KEYS = {"role", "password_hash"}


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    def can(self, permission: Permission) -> bool:
        return can(self.role, permission)

    @property
    def can_write(self) -> bool:
        return self.can(Permission.SHARE)

    @property
    def can_approve(self) -> bool:
        return self.can(Permission.APPROVE)

    @property
    def can_audit(self) -> bool:
        return self.can(Permission.AUDIT)

    @property
    def is_admin(self) -> bool:
        return self.can(Permission.ADMIN)


@dataclass(frozen=True)
class WebSettings:
    path: Path
    secret_key: Secret
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    session_seconds: float = 12 * 3600.0
    trusted_proxies: tuple[str, ...] = ()  # none: X-Forwarded-* are ignored unless a proxy is named
    users: dict[str, User] = field(default_factory=dict)
    language: str = DEFAULT_LANGUAGE  # pages' language when neither the user nor the browser chose one
    max_body_bytes: int = DEFAULT_MAX_BODY
    sse_per_user: int = 4
    sse_total: int = 200

    def user(self, name: str | None) -> User | None:
        return self.users.get(name) if name else None


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_users(settings: Settings) -> dict[str, User]:
    p, users = settings.path, {}
    for name, table in settings.users.items():
        where = f"users.{name}"
        if not USER_NAME.match(name):
            raise ConfigError(f"{p}: {where}: a user name is letters, digits, '_', '.', '-' (at most 64)")
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: {where}: must be a table")
        unknown = sorted(set(table) - _USER_KEYS)
        if unknown:
            raise ConfigError(f"{p}: {where}.{unknown[0]}: unknown key (expected one of: role, password_hash)")
        role = table.get("role")
        if role not in ROLES:
            raise ConfigError(f"{p}: {where}.role: must be one of {', '.join(ROLES)}, got {role!r}")
        pw_hash = table.get("password_hash")
        if not isinstance(pw_hash, str) or not pw_hash.startswith("$argon2id$"):
            raise ConfigError(f"{p}: {where}.password_hash: must be an argon2id hash "
                              "(make one with: sharer user add NAME --role ROLE)")
        users[name] = User(name, role, pw_hash)
    return users


def load_web_settings(settings: Settings, host: str | None = None, port: int | None = None,
                      env: dict[str, str] | None = None) -> WebSettings:
    """Validate ``[web]``/``[users]`` for a server binding to ``host`` (default ``[web] host``)."""
    p, raw = settings.path, settings.web
    unknown = sorted(set(raw) - _WEB_KEYS)
    if unknown:
        raise ConfigError(f"{p}: web.{unknown[0]}: unknown key (expected one of: {', '.join(sorted(_WEB_KEYS))})")
    host = host or raw.get("host", DEFAULT_HOST)
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{p}: web.host: must be a host name or address")
    port = port if port is not None else raw.get("port", DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"{p}: web.port: must be a port number")
    hours = raw.get("session_hours", 12)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 30 \
            or hours != hours:
        raise ConfigError(f"{p}: web.session_hours: must be a number of hours (at most 720)")
    proxies = raw.get("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(x, str) for x in proxies):
        raise ConfigError(f"{p}: web.trusted_proxies: must be a list of addresses")
    language = raw.get("language", DEFAULT_LANGUAGE)
    if not isinstance(language, str) or normalise(language) is None:
        raise ConfigError(f"{p}: web.language: must be one of {', '.join(LANGUAGES)}, got {language!r}")
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"{p}: web.trusted_proxies: {proxy!r} is not an address or network") from None
    limits = {}
    for key, default, low in (("max_body_bytes", DEFAULT_MAX_BODY, 64 * 1024), ("sse_per_user", 4, 1),
                              ("sse_total", 200, 1)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{p}: web.{key}: must be a whole number of at least {low}")
        limits[key] = value
    return WebSettings(p, _secret_key(settings, host, env), host, port, float(hours) * 3600, tuple(proxies),
                       parse_users(settings), normalise(language) or DEFAULT_LANGUAGE, **limits)


def check_bind(web: WebSettings) -> None:
    """Refuse a non-loopback bind while a demo user (documented password) exists."""
    if is_loopback_host(web.host):
        return
    demo = demo_users(web.users.values())
    if demo:
        names = ", ".join(f"[users.{n}]" for n in demo)
        raise ConfigError(f"{web.path}: {names}: demo user with a documented password; the web server binds only "
                          f"to a loopback address while one exists (asked for {web.host!r}). Remove the demo "
                          "users and add your own with `sharer user add NAME --role editor`.")


_demo_cache: dict[str, bool] = {}


def demo_users(users: Any) -> list[str]:
    """Names of users whose password is one of ``DEMO_PASSWORDS`` (checked by argon2 verify, cached)."""
    hasher, found = PasswordHasher(), []
    for user in users:
        if user.password_hash not in _demo_cache:
            hit = False
            for pw in DEMO_PASSWORDS:
                try:
                    hit = hasher.verify(user.password_hash, pw)
                except (VerificationError, InvalidHashError):
                    continue
                if hit:
                    break
            _demo_cache[user.password_hash] = hit
        if _demo_cache[user.password_hash]:
            found.append(user.name)
    return found


def _secret_key(settings: Settings, host: str, env: dict[str, str] | None) -> Secret:
    p, ref = settings.path, settings.web.get("secret_key")
    if ref is None:
        raise ConfigError(f"{p}: web.secret_key: is required (e.g. secret_key = \"env:SHARER_WEB_SECRET\")")
    if isinstance(ref, str) and ref.startswith("sandbox:") and not is_loopback_host(host):
        raise ConfigError(f"{p}: web.secret_key: \"sandbox:\" is a public value, only accepted while the web "
                          f"server binds to a loopback address (asked for {host!r})")
    resolver = CredentialResolver(p, dict(os.environ if env is None else env), _secrets_file(p))
    secret = resolver.resolve(ref, "web.secret_key", "http://127.0.0.1/")
    if not ref.startswith("sandbox:") and len(secret.reveal()) < 16:
        raise ConfigError(f"{p}: web.secret_key: the secret must be at least 16 characters")
    return secret


def _secrets_file(p: Path) -> Path | None:
    """``[secrets] file`` (Settings keeps only resolved credentials, so read it from the file again)."""
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = raw.get("secrets", {}).get("file") if isinstance(raw.get("secrets"), dict) else None
    return Path(os.path.expanduser(value)) if isinstance(value, str) else None
