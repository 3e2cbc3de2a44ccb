"""Passwords (argon2id) and API bearer tokens (random, stored hashed in Redis, revocable).

Users live in the config, never in Redis: who may sign in is reviewed like the rest of the config.
Roles (``viewer``, ``editor``, ``approver``, ``admin``) are defined in ``sharer.roles``.
Tokens are per user and carry no role of their own: a token's rights are its user's current role, and a
user removed from the config takes their tokens' rights away at once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis import Redis

from ..clock import iso
from ..errors import InputError

TOKEN_PREFIX = "shr_"
TOKEN_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
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
    label: str | None = None  # a name for the token ("ci-bot"): the audit log shows it

    @property
    def name(self) -> str:
        return self.label or self.id


class Tokens:
    """``shr_<id>_<secret>``; Redis keeps sha256(secret) under ``<prefix>:web:token:<id>``."""

    def __init__(self, redis: Redis, prefix: str):
        self.r, self.prefix = redis, prefix

    def _key(self, token_id: str) -> str:
        return f"{self.prefix}:web:token:{token_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:web:tokens"

    def create(self, user: str, label: str | None = None) -> tuple[str, str]:
        """A new token for ``user``: (token id, the token — shown once, never stored)."""
        if label is not None and not TOKEN_LABEL.match(label):
            raise InputError("name", "a token name is letters, digits, '_', '.', '-' (at most 64)")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = {"user": user, "digest": _digest(secret), "created_at": iso(), "label": label}
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self._key(token_id), json.dumps(record))
        pipe.zadd(self._index, {token_id: time.time()})
        pipe.execute()
        return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"

    def user_for(self, token: str) -> str | None:
        """The user a presented token belongs to, or None (malformed, unknown, revoked)."""
        info = self.identify(token)
        return info.user if info else None

    def identify(self, token: str) -> TokenInfo | None:
        """The presented token's record (user, id, label), or None (malformed, unknown, revoked)."""
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
        return TokenInfo(token_id, str(record["user"]), record.get("created_at", ""), record.get("last_used"),
                         record.get("label"))

    def get(self, token_id: str) -> TokenInfo | None:
        raw = self.r.get(self._key(token_id)) if token_id.isalnum() and len(token_id) <= 32 else None
        if raw is None:
            return None
        rec = json.loads(raw)
        return TokenInfo(token_id, rec["user"], rec.get("created_at", ""), rec.get("last_used"), rec.get("label"))

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
                out.append(TokenInfo(token_id, rec["user"], rec.get("created_at", ""), rec.get("last_used"),
                                     rec.get("label")))
        return out


def _digest(secret: str) -> str:
    """Tokens are 256 random bits: a plain hash suffices (argon2 is for guessable passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()
