"""The audit log: who did what, one entry per action, in a Redis stream (``<prefix>:audit``).

Stream ids are millisecond timestamps, so time order, ``--since`` and the cursor are one XREVRANGE, and
retention is one ``XTRIM MINID`` in the same purge that removes old deliveries. Entries never hold a
secret: tokens are named by id or label, never by value.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis import Redis

from ..clock import iso, ms
from .keys import Keys

CURSOR = re.compile(r"^\d{1,16}-\d{1,10}$")


class AuditAction(StrEnum):
    SHARE = "share"  # a share created (``data.awaiting``: accounts that wait for sign-off)
    APPROVE = "approve"  # ``data.edited``: accounts whose text the approver changed
    REJECT = "reject"
    RESUBMIT = "resubmit"
    RETRY = "retry"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    POSTED = "posted"
    PREVIEW_SENT = "preview_sent"  # a WeChat draft sent to a follower's phone (preview --send-to)
    SWEEP = "sweep"  # run by hand (beat's own runs are not logged here; their events name "sweeper")
    PURGE = "purge"  # run by hand
    UNAPPROVED_AT_DUE = "unapproved_at_due"  # the scheduler found it still waiting for sign-off
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    TOKEN_CREATE = "token_create"
    TOKEN_REVOKE = "token_revoke"


@dataclass(frozen=True)
class AuditEntry:
    action: AuditAction
    actor: str
    user: str
    detail: str = ""
    share_id: str | None = None
    delivery_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: str = ""
    id: str = ""

    def fields(self) -> dict[str, str]:
        return {"action": str(self.action), "actor": self.actor, "user": self.user, "detail": self.detail,
                "share_id": self.share_id or "", "delivery_id": self.delivery_id or "", "at": self.at or iso(),
                "data": json.dumps(self.data, ensure_ascii=False)}

    @classmethod
    def from_stream(cls, entry_id: str, f: dict[str, str]) -> AuditEntry:
        return cls(AuditAction(f["action"]), f.get("actor", ""), f.get("user", ""), f.get("detail", ""),
                   f.get("share_id") or None, f.get("delivery_id") or None, json.loads(f.get("data") or "{}"),
                   f.get("at", ""), entry_id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "user": self.user, "action": str(self.action),
                "share_id": self.share_id, "delivery_id": self.delivery_id, "detail": self.detail,
                "data": self.data}


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None  # matches the actor as shown or the user behind it
    since: float | None = None
    share_id: str | None = None
    action: str | None = None

    def matches(self, e: AuditEntry) -> bool:
        if self.actor and self.actor not in (e.actor, e.user):
            return False
        if self.share_id and e.share_id != self.share_id:
            return False
        return not (self.action and str(e.action) != self.action)


class AuditLog:
    def __init__(self, redis: Redis, keys: Keys, retention_seconds: float = 90 * 86400):
        # Any: redis-py's stubs type stream replies as unions of bytes/str/None that it never returns here
        self.r: Any = redis
        self.key, self.retention = keys.audit, retention_seconds

    def record(self, entry: AuditEntry, pipe: Any = None) -> None:
        """Append ``entry`` (to ``pipe`` when it belongs with other writes in one transaction).

        Each append also trims (approximately, so it stays O(1)) what is older than the retention, the
        stream's counterpart of the records' TTL backstop: retention holds even if no purge runs.
        """
        cutoff = str(ms(time.time() - self.retention))
        (pipe if pipe is not None else self.r).xadd(self.key, entry.fields(), minid=cutoff, approximate=True)

    def query(self, flt: AuditFilter, *, limit: int = 50, cursor: str | None = None,
              scan_budget: int = 5000) -> tuple[list[AuditEntry], str | None]:
        """Newest first; ``cursor`` is the previous page's ``next_cursor``."""
        high = f"({cursor}" if cursor else "+"
        low = str(ms(flt.since)) if flt.since is not None else "-"
        found: list[AuditEntry] = []
        scanned, batch = 0, max(limit * 2, 100)
        while scanned < scan_budget:
            rows = self.r.xrevrange(self.key, max=high, min=low, count=batch)
            if not rows:
                return found, None
            for raw_id, raw in rows:
                scanned += 1
                entry = AuditEntry.from_stream(_s(raw_id), {_s(k): _s(v) for k, v in raw.items()})
                if flt.matches(entry):
                    found.append(entry)
                    if len(found) == limit:
                        more = self.r.xrevrange(self.key, max=f"({entry.id}", min=low, count=1)
                        return found, entry.id if more else None
            if len(rows) < batch:
                return found, None
            high = f"({_s(rows[-1][0])}"
        return found, _s(rows[-1][0])

    def purge(self, older_than: float) -> int:
        return int(self.r.xtrim(self.key, minid=str(ms(older_than)), approximate=False))

    def latest(self, n: int = 1) -> list[AuditEntry]:
        return [AuditEntry.from_stream(_s(i), {_s(k): _s(v) for k, v in raw.items()})
                for i, raw in self.r.xrevrange(self.key, count=n)]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


__all__ = ["AuditAction", "AuditEntry", "AuditFilter", "AuditLog", "CURSOR"]
