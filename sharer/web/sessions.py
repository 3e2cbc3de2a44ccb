"""Browser sessions, CSRF tokens and the login rate limit — all in Redis under the configured prefix.

The cookie holds a random session id; Redis keeps the session under HMAC(secret_key, id), so a copy of
Redis holds no usable cookie, and signing out really ends the session (a signed stateless cookie would
stay valid until it expired). Each session has its own CSRF token, checked on every state-changing
form and on cookie-authenticated API writes (bearer-token calls carry no ambient credentials).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from redis import Redis

SESSION_COOKIE = "sharer_session"
LOGIN_CSRF_COOKIE = "sharer_login_csrf"
LOGIN_MAX_FAILURES = 5  # per user name + client address
LOGIN_WINDOW = 15 * 60  # seconds: failures are forgotten this long after the first one


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    csrf: str


class Sessions:
    def __init__(self, redis: Redis, prefix: str, secret: str, ttl: float):
        self.r, self.prefix, self.secret, self.ttl = redis, prefix, secret.encode(), int(ttl)

    def _key(self, sid: str) -> str:
        digest = hmac.new(self.secret, sid.encode(), hashlib.sha256).hexdigest()
        return f"{self.prefix}:web:session:{digest}"

    def create(self, user: str) -> Session:
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(24))
        self.r.set(self._key(s.id), json.dumps({"user": user, "csrf": s.csrf, "at": time.time()}), ex=self.ttl)
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 100:
            return None
        raw = self.r.get(self._key(sid))
        if raw is None:
            return None
        data = json.loads(raw)
        return Session(sid, data["user"], data["csrf"])

    def delete(self, sid: str) -> None:
        self.r.delete(self._key(sid))

    # --- the login form's CSRF token (before there is a session): double submit, signed ------------

    def login_csrf(self, nonce: str) -> str:
        return hmac.new(self.secret, b"login\0" + nonce.encode(), hashlib.sha256).hexdigest()

    def check_login_csrf(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(self.login_csrf(nonce or ""), token or "")


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class LoginLimiter:
    """At most ``LOGIN_MAX_FAILURES`` wrong passwords per user name and client address per window."""

    def __init__(self, redis: Redis, prefix: str):
        self.r, self.prefix = redis, prefix

    def _key(self, user: str, ip: str) -> str:
        digest = hashlib.sha256(f"{user.casefold()}\0{ip}".encode()).hexdigest()[:32]
        return f"{self.prefix}:web:login-fail:{digest}"

    def blocked_for(self, user: str, ip: str) -> int:
        """Seconds until this pair may try again (0: allowed now)."""
        key = self._key(user, ip)
        count = self.r.get(key)
        if count is None or int(count) < LOGIN_MAX_FAILURES:
            return 0
        return max(1, int(self.r.ttl(key)))

    def failed(self, user: str, ip: str) -> None:
        key = self._key(user, ip)
        pipe = self.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, LOGIN_WINDOW, nx=True)
        pipe.execute()

    def reset(self, user: str, ip: str) -> None:
        self.r.delete(self._key(user, ip))
