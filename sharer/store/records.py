"""The records the store hands back: typed dataclasses, decoded once from their Redis hashes.

``Delivery.to_json`` is the ``--json`` delivery object (the CLI's and the API's contract).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..clock import iso
from .codec import unpack_event
from .cold import Packed
from .states import EXPLAINED, Approval, Status


@dataclass(frozen=True)
class ApprovalInfo:
    """A delivery's sign-off: which version, who submitted it, who decided, and why (a rejection)."""

    state: Approval
    version: int
    submitted_by: str  # the actor shown ("alice", "cli:bob@host")
    submitted_at: str | None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None  # the rejection's reason
    submitted_text: str | None = None  # the post text as submitted (the approver's edits diff against it)
    edited: bool = False  # the approver changed the text before approving
    submitted_user: str = ""  # the person behind ``submitted_by`` (four-eyes compares it)
    previous_text: str | None = None  # the text of the version before a resubmission (what was revised)

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> ApprovalInfo | None:
        if not h.get("approval_state"):
            return None
        return cls(Approval(h["approval_state"]), int(h.get("approval_version") or 1),
                   h.get("submitted_by_name") or h.get("submitted_by") or "", h.get("submitted_at") or None,
                   h.get("decided_by") or None, h.get("decided_at") or None, h.get("approval_reason") or None,
                   h.get("submitted_text") or None, h.get("approval_edited") == "1", h.get("submitted_by") or "",
                   h.get("previous_text") or None)

    def to_json(self) -> dict[str, Any]:
        return {"state": str(self.state), "version": self.version, "submitted_by": self.submitted_by,
                "submitted_at": self.submitted_at, "decided_by": self.decided_by, "decided_at": self.decided_at,
                "reason": self.reason, "edited": self.edited}


@dataclass
class Delivery:
    """A delivery record as stored (also the ``--json`` delivery object, see ``to_json``)."""

    id: str
    share_id: str
    account: str
    platform: str
    status: Status
    attempts: int
    created_at: str
    updated_at: str
    post: dict[str, Any] | None = None
    post_id: str | None = None
    post_url: str | None = None
    error: str | None = None
    error_kind: str | None = None
    note: str | None = None
    override: str | None = None
    not_before: float | None = None
    lease_until: float | None = None
    rate_waits: int = 0  # rate-limited attempts, which do not count against max_attempts
    attempt_base: int = 0  # attempts before an editor's retry (each retry gets a fresh budget)
    retried_at: float | None = None
    scheduled_for: float | None = None  # UTC epoch of the due time
    timezone: str | None = None  # the zone the time was given in; shown back in it
    version: int = 0  # bumped by every reschedule; a stale task carrying an older one exits
    max_lateness: float | None = None
    lag_seconds: float | None = None  # how late the dispatcher released it
    overdue: bool = False
    already_posted: bool = False  # delivered as a post the platform already had (nothing new published)
    accepted: bool = False  # the platform said it took the post (e.g. Weibo 20032): verify, never resend
    approval: ApprovalInfo | None = None  # None: no sign-off needed for this account
    state: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_hash(cls, h: dict[str, str], events: list[str] | None = None,
                  post: dict[str, Any] | None = None) -> Delivery:
        """``h``: the record with its long values joined (``codec.join_long``); ``post``: the decoded
        post key (a record stored before issue 15 holds its post as JSON in ``h`` instead)."""
        def opt(k: str) -> str | None:
            v = h.get(k)
            return v if v not in (None, "") else None

        d = cls(
            id=h["id"], share_id=h["share_id"], account=h["account"], platform=h["platform"],
            status=Status(h["status"]), attempts=int(h.get("attempts", 0)), created_at=h["created_at"],
            updated_at=h.get("updated_at", h["created_at"]),
            post=post if post is not None else (json.loads(h["post"]) if opt("post") else None),
            post_id=opt("post_id"), post_url=opt("post_url"), error=opt("error"),
            error_kind=opt("error_kind"), note=opt("note"), override=opt("override"),
            not_before=float(h["not_before"]) if opt("not_before") else None,
            lease_until=float(h["lease_until"]) if opt("lease_until") else None,
            rate_waits=int(h.get("rate_waits") or 0), overdue=h.get("overdue") == "1",
            already_posted=h.get("already_posted") == "1", accepted=h.get("accepted") == "1",
            attempt_base=int(h.get("attempt_base") or 0),
            retried_at=float(h["retried_at"]) if opt("retried_at") else None,
            scheduled_for=float(h["scheduled_for"]) if opt("scheduled_for") else None,
            timezone=opt("timezone"), version=int(h.get("version") or 0),
            max_lateness=float(h["max_lateness"]) if opt("max_lateness") else None,
            lag_seconds=float(h["lag_seconds"]) if opt("lag_seconds") else None,
            approval=ApprovalInfo.from_hash(h),
            state=json.loads(h["state"]) if opt("state") else {},
            events=[unpack_event(e) for e in events or []],
        )
        if d.events:  # read for showing (CLI, API, dashboard): every non-delivered status says why
            d.error, d.note = d.explained()
        return d

    def status_message(self) -> str | None:
        """The message of the event that set the current status (e.g. why it needs review)."""
        found = None
        for ev in reversed(self.events):
            if ev.get("status") != self.status:
                break
            found = ev.get("message") or found
        return found

    def explained(self) -> tuple[str | None, str | None]:
        """``(error, note)`` as shown to a user: a status other than delivered always says why. Where the
        record holds neither (lateness, an editor's cancel), the event that set the status does."""
        error, note = self.error, self.note
        if self.status in EXPLAINED and not error and not note:
            message = self.status_message()
            if self.status in ("failed", "unknown", "retrying"):
                error = message
            else:
                note = message
        return error, note

    def reason(self) -> str:
        """One line for the WHERE / WHY column: where it landed, or why not (yet)."""
        a = self.approval
        if a is not None and self.status == Status.REJECTED:
            return f"v{a.version} rejected by {a.decided_by}: {a.reason}"
        if a is not None and self.status == Status.AWAITING_APPROVAL:
            return f"v{a.version} waiting for approval (submitted by {a.submitted_by})"
        error, note = self.explained()
        if self.status == "delivered":
            if self.already_posted and note:  # nothing new was published: say so, with the earlier post
                return f"{note} (nothing new published)"
            return self.post_url or note or ""
        if self.status in ("queued", "sending"):  # in flight: the latest step ("waiting for ...")
            latest = self.events[-1].get("message") if self.events else None
            return "" if latest in (None, self.status) else str(latest)
        return error or note or ""

    def to_json(self) -> dict[str, Any]:
        error, note = self.explained()
        return {
            "id": self.id, "share_id": self.share_id, "account": self.account, "platform": self.platform,
            "status": self.status, "attempts": self.attempts, "post_id": self.post_id,
            "post_url": self.post_url, "error": error, "error_kind": self.error_kind,
            "note": note, "already_posted": self.already_posted, "overdue": self.overdue,
            "scheduled_for": iso(self.scheduled_for) if self.scheduled_for is not None else None,
            "timezone": self.timezone, "lag_seconds": self.lag_seconds,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "post": self.post, "approval": self.approval.to_json() if self.approval else None,
            "events": self.events,
            # WeChat: how the article went out (publish / mass / draft) and a mass send's msg_id
            "publish_mode": ((self.post or {}).get("payload") or {}).get("publish_mode"),
            "msg_id": None if self.state.get("msg_id") is None else str(self.state["msg_id"]),
        }


@dataclass(frozen=True)
class ShareHead:
    """A share's small fields, from its hash or its packed form (``DeliveryStore.share_heads``)."""

    title: str
    url: str
    created_at: str
    delivery_ids: list[str]
    shared_by: str | None = None
    packed: Packed | None = None  # a packed share: its records came with it (no hot keys to read)

    def briefs(self) -> dict[str, tuple[str | None, str | None, str | None]]:
        """Packed: delivery id -> (status, account, platform); empty for a hot share."""
        if self.packed is None:
            return {}
        return {d.id: (d.record.get("status"), d.record.get("account"), d.record.get("platform"))
                for d in self.packed.deliveries}


@dataclass(frozen=True)
class ShareRecord:
    """A share as stored: the article (JSON, as the worker composes from it) and its deliveries."""

    id: str
    title: str
    url: str
    created_at: str
    article_json: str
    delivery_ids: list[str]
    shared_by: str | None = None  # who started it (a dashboard user, or the actor)

    @classmethod
    def from_hash(cls, share_id: str, h: dict[str, str]) -> ShareRecord:
        return cls(share_id, h.get("title", ""), h.get("url", ""), h.get("created_at", ""), h.get("article", "{}"),
                   json.loads(h.get("delivery_ids") or "[]"), h.get("shared_by") or None)

    @property
    def article(self) -> dict[str, Any]:
        return json.loads(self.article_json)
