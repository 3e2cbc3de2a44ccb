"""Passwords (argon2id) and API bearer tokens (random, stored hashed in Redis, revocable).

Users live in the config, never in Redis: who may sign in is reviewed like the rest of the config.
Tokens are per user and carry no role of their own: a token's rights are its user's current role, and a
user removed from the config takes their tokens' rights away at once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis import Redis

from ..clock import iso

TOKEN_PREFIX = "shr_"
_hasher = PasswordHasher()  # argon2id, the library's current RFC 9106 defaults


@functools.cache
def _dummy_hash() -> str:
    """Verified when a user name is unknown, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    created_at: str
    last_used: str | None = None


class Tokens:
    """``shr_<id>_<secret>``; Redis keeps sha256(secret) under ``<prefix>:web:token:<id>``."""

    def __init__(self, redis: Redis, prefix: str):
        self.r, self.prefix = redis, prefix

    def _key(self, token_id: str) -> str:
        return f"{self.prefix}:web:token:{token_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:web:tokens"

    def create(self, user: str) -> tuple[str, str]:
        """A new token for ``user``: (token id, the token — shown once, never stored)."""
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = {"user": user, "digest": _digest(secret), "created_at": iso()}
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self._key(token_id), json.dumps(record))
        pipe.zadd(self._index, {token_id: time.time()})
        pipe.execute()
        return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"

    def user_for(self, token: str) -> str | None:
        """The user a presented token belongs to, or None (malformed, unknown, revoked)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_id, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
        if not sep or not token_id.isalnum() or len(token_id) > 32 or not secret:
            return None
        raw = self.r.get(self._key(token_id))
        if raw is None:
            return None
        record = json.loads(raw)
        if not hmac.compare_digest(record.get("digest", ""), _digest(secret)):
            return None
        if not record.get("last_used") or time.time() - record.get("_used", 0) > 60:  # cheap: once a minute
            record.update(last_used=iso(), _used=time.time())
            self.r.set(self._key(token_id), json.dumps(record), xx=True)
        return str(record["user"])

    def revoke(self, token_id: str) -> bool:
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._key(token_id))
        pipe.zrem(self._index, token_id)
        return bool(pipe.execute()[0])

    def list(self, user: str | None = None) -> list[TokenInfo]:
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in self.r.zrange(self._index, 0, -1)]
        out = []
        for token_id, raw in zip(ids, self.r.mget([self._key(i) for i in ids]) if ids else []):
            if raw is None:
                continue
            rec = json.loads(raw)
            if user is None or rec.get("user") == user:
                out.append(TokenInfo(token_id, rec["user"], rec.get("created_at", ""), rec.get("last_used")))
        return out


def _digest(secret: str) -> str:
    """Tokens are 256 random bits: a plain hash suffices (argon2 is for guessable passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()
