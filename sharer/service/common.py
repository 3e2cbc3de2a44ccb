"""What every use case shares: new ids, the account a user named, the audit entry, the nudge to
the broker (a broker that is down leaves the work to the sweeper instead of undoing it).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from ..actor import Actor
from ..errors import InputError
from ..runtime import Runtime
from ..store.audit import AuditAction, AuditEntry

if TYPE_CHECKING:
    from ..config import Account


def new_id(prefix: str) -> str:
    """Time-ordered, unguessable ids: ``sh_``/``dl_`` + hex milliseconds + random hex."""
    return f"{prefix}_{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def known_account(rt: Runtime, name: str, field_name: str = "account") -> Account:
    """The account named by the user, or an ``InputError`` blaming the field they typed it in."""
    try:
        return rt.settings.accounts[name]
    except KeyError:
        known = ", ".join(sorted(rt.settings.accounts)) or "none configured"
        raise InputError(field_name, f"unknown account {name!r} (known: {known})") from None


def unique_accounts(accounts: list[str]) -> list[str]:
    out: list[str] = []
    for a in accounts:
        a = a.strip()
        if a and a not in out:
            out.append(a)
    if not out:
        raise InputError("to", "name at least one account")
    return out


def record_audit(rt: Runtime, action: AuditAction, actor: Actor, detail: str, share_id: str | None = None,
           delivery_id: str | None = None, data: dict | None = None) -> None:
    """One audit log entry (the write paths here call it; so do the CLI and web for theirs)."""
    rt.audit.record(AuditEntry(action, actor.name, actor.user, detail, share_id, delivery_id, data or {}))


BROKER_DOWN = "queued; the broker is down, the sweeper will send it"


def enqueue_or_leave_for_sweeper(rt: Runtime, items: list[tuple[str, str]]) -> str | None:
    """Nudge each stored delivery. A broker that is down is no reason to undo a share: the records
    are the truth, stay ``queued``, and the sweeper nudges them once it can — exactly once, as the
    claim lets only one worker send. Returns the warning to show, or None."""
    from ..errors import BrokerUnavailable

    try:
        rt.queue.enqueue_many(items)  # one broker round trip for the whole share
    except BrokerUnavailable as e:
        # kombu's batch is one pipeline: when it fails, none of it is known to be queued. The sweeper
        # nudges them all; a message that did get through is harmless (the claim lets one worker send).
        for did, _ in items:
            rt.store.transition(did, "queued", None, f"{e}; the sweeper will send it")
        return f"{BROKER_DOWN} ({e})"
    return None
