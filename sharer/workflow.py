"""Sign-off before publishing: which deliveries wait for an approver, and approve / reject / resubmit.

A share to several accounts waits only on the accounts that need sign-off (``requires_approval`` per
account, else ``[workflow] requires_approval``). Each decision is one Lua script over all of a share's
deliveries (``DeliveryStore.decide``), so two approvers, or an approver and a cancel, cannot split a
share between them. Four-eyes (``allow_self_approval = false``, the default) is checked in that
script too. Plain Python over a ``Runtime``: the CLI, the API and the pages call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .actor import Actor, actor_or_local
from .article import Article
from .clock import iso
from .errors import Forbidden, InputError, NotFound
from .platforms import get_platform
from .platforms.base import Post
from .runtime import Runtime
from .store.audit import AuditAction, AuditEntry
from .store.deliveries import Decision, Delivery, Outcome, Status
from .store.shares import ShareSummary
from .store.states import Approval

MAX_REASON = 2000


def needs_approval(rt: Runtime, accounts: list[str]) -> set[str]:
    return {a for a in accounts if rt.settings.needs_approval(a)}


def submission_fields(actor: Actor, post: Post) -> dict[str, Any]:
    """The fields a delivery waiting for sign-off starts with (version 1)."""
    return {"status": Status.AWAITING_APPROVAL, "approval_state": Approval.PENDING, "approval_version": 1,
            "submitted_by": actor.user, "submitted_by_name": actor.name, "submitted_at": iso(),
            "submitted_text": post.text}


@dataclass(frozen=True)
class DecisionResult:
    share_id: str
    deliveries: list[Delivery]  # the share's deliveries after the decision
    moved: list[str]  # the delivery ids the decision changed
    edited: list[str]  # accounts whose text the approver changed


def approve(rt: Runtime, share_id: str, *, actor: Actor | None = None, texts: dict[str, str] | None = None,
            version: int | None = None) -> DecisionResult:
    """Sign off every delivery of the share that waits for it; ``texts`` replaces accounts' texts first
    (what is approved is what is sent). ``version``: refuse if the share was resubmitted since."""
    actor = actor_or_local(actor)
    waiting = _waiting(rt, share_id)
    fields, edited = _edits(rt, share_id, waiting, texts or {})
    decision = rt.store.decide([d.id for d in waiting], "approve", actor=actor.name, user=actor.user,
                               four_eyes=not rt.settings.workflow.allow_self_approval, version=version,
                               fields=fields)
    _check(rt, share_id, decision, "approve")
    for did, status, account, _ in decision.moved:
        if status is Status.QUEUED:
            rt.queue.enqueue(did, account=account)
    version_now = decision.moved[0][3]
    detail = f"approved version {version_now} for {', '.join(sorted({m[2] for m in decision.moved}))}"
    if edited:
        detail += f"; edited the text for {', '.join(edited)}"
    _audit(rt, AuditAction.APPROVE, actor, share_id, detail, {"version": version_now, "edited": edited,
                                                             "deliveries": [m[0] for m in decision.moved]})
    notify(rt, "approved", share_id, actor)
    return DecisionResult(share_id, _deliveries(rt, share_id), [m[0] for m in decision.moved], edited)


def reject(rt: Runtime, share_id: str, reason: str, *, actor: Actor | None = None,
           version: int | None = None) -> DecisionResult:
    """Send the share back to its editor with a reason (required); nothing waiting is sent."""
    actor = actor_or_local(actor)
    reason = (reason or "").strip()
    if not reason:
        raise InputError("reason", "say why, so the editor can revise it")
    if len(reason) > MAX_REASON:
        raise InputError("reason", f"at most {MAX_REASON} characters")
    waiting = _waiting(rt, share_id)
    decision = rt.store.decide([d.id for d in waiting], "reject", actor=actor.name, user=actor.user,
                               four_eyes=not rt.settings.workflow.allow_self_approval, version=version,
                               reason=reason)
    _check(rt, share_id, decision, "reject")
    _audit(rt, AuditAction.REJECT, actor, share_id, f"rejected: {reason}",
           {"version": decision.moved[0][3], "reason": reason, "deliveries": [m[0] for m in decision.moved]})
    notify(rt, "rejected", share_id, actor, reason)
    return DecisionResult(share_id, _deliveries(rt, share_id), [m[0] for m in decision.moved], [])


def resubmit(rt: Runtime, share_id: str, *, actor: Actor | None = None, texts: dict[str, str] | None = None,
             note: str = "") -> DecisionResult:
    """A rejected share, revised (``texts``), back to the approvers as a new version."""
    actor = actor_or_local(actor)
    ds = _deliveries(rt, share_id)
    rejected = [d for d in ds if d.status is Status.REJECTED]
    if not rejected:
        raise InputError("share", f"{share_id} has nothing rejected to resubmit")
    if len(note) > MAX_REASON:
        raise InputError("note", f"at most {MAX_REASON} characters")
    fields, edited = _edits(rt, share_id, rejected, texts or {}, resubmit=True)
    for d in rejected:  # unrevised: no "revised since" diff left over from an earlier round
        fields.setdefault(d.id, {"previous_text": None})
    decision = rt.store.decide([d.id for d in rejected], "resubmit", actor=actor.name, user=actor.user,
                               four_eyes=False, fields=fields, reason=note.strip())
    _check(rt, share_id, decision, "resubmit")
    version_now = decision.moved[0][3]
    _audit(rt, AuditAction.RESUBMIT, actor, share_id, f"resubmitted as version {version_now}"
           + (f"; revised the text for {', '.join(edited)}" if edited else ""),
           {"version": version_now, "edited": edited, "deliveries": [m[0] for m in decision.moved]})
    notify(rt, "requested", share_id, actor)
    return DecisionResult(share_id, _deliveries(rt, share_id), [m[0] for m in decision.moved], edited)


def pending(rt: Runtime, limit: int = 200) -> list[ShareSummary]:
    """Shares with a delivery waiting for sign-off (including ones whose slot passed unapproved),
    oldest request first: the approvers' queue."""
    from .store.shares import load_share

    ids = rt.store.ids_in_status(Status.AWAITING_APPROVAL, limit)
    ids += rt.store.ids_in_status(Status.NEEDS_REVIEW, limit)
    share_ids: list[str] = []
    for d in rt.store.get_many(ids, with_events=False):
        if d.approval and d.approval.state is Approval.PENDING and d.share_id not in share_ids:
            share_ids.append(d.share_id)
    out = [s for s in (load_share(rt.store, sid) for sid in share_ids) if s is not None]
    return sorted(out, key=lambda s: s.created_at)[:limit]


def pending_count(rt: Runtime) -> int:
    """Shares waiting for sign-off (the dashboard header's badge): cheap, from the status index."""
    ids = rt.store.ids_in_status(Status.AWAITING_APPROVAL, 1000)
    return len({d.share_id for d in rt.store.get_many(ids, with_events=False)})


def notify(rt: Runtime, kind: str, share_id: str, actor: Actor, reason: str = "") -> None:
    """Tell the approvers / the editor (alert webhook, [workflow] notify bot) from a Celery task."""
    if rt.settings.alert_webhook or rt.settings.workflow.notify:
        rt.queue.send_notice(kind, share_id, actor.name, reason)


# --- helpers ---------------------------------------------------------------------------------------

def _deliveries(rt: Runtime, share_id: str) -> list[Delivery]:
    ids = rt.store.share_delivery_ids(share_id)
    if ids is None:
        raise NotFound(f"no share with id {share_id!r}")
    return rt.store.get_many(ids)


def _waiting(rt: Runtime, share_id: str) -> list[Delivery]:
    ds = _deliveries(rt, share_id)
    if not any(d.approval for d in ds):
        raise InputError("share", f"{share_id} needs no approval (none of its accounts requires sign-off)")
    return [d for d in ds if d.approval is not None]


def _edits(rt: Runtime, share_id: str, ds: list[Delivery], texts: dict[str, str], resubmit: bool = False
           ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Compose each changed text now (a text over the limit fails here, before anything moves)."""
    accounts = {d.account for d in ds}
    unknown = sorted(set(texts) - accounts)
    if unknown:
        raise InputError("text", f"account {unknown[0]!r} is not one of this share's accounts waiting for a "
                                 f"decision ({', '.join(sorted(accounts))})")
    if not texts:
        return {}, []
    share = rt.store.share(share_id)
    if share is None:
        raise NotFound(f"no share with id {share_id!r}")
    article = Article.from_stored(share.article)
    fields: dict[str, dict[str, Any]] = {}
    edited: list[str] = []
    for d in ds:
        if d.account not in texts or texts[d.account] == (d.post or {}).get("text"):
            continue
        account = rt.settings.account(d.account)
        post = get_platform(account.platform)(account).compose(article, texts[d.account])
        f: dict[str, Any] = {"override": texts[d.account], "post": post.to_dict()}
        if resubmit:
            f["submitted_text"] = post.text
            f["previous_text"] = (d.post or {}).get("text")
            f["approval_edited"] = None
        else:
            f["approval_edited"] = "1"
        fields[d.id] = f
        if d.account not in edited:
            edited.append(d.account)
    return fields, edited


def _check(rt: Runtime, share_id: str, decision: Decision, action: str) -> None:
    if decision.ok:
        return
    if decision.outcome is Outcome.SELF:
        raise Forbidden(f"{share_id} was submitted by you; another approver must {action} it "
                        "([workflow] allow_self_approval = false)")
    if decision.outcome is Outcome.STALE:
        raise InputError("share", f"{share_id} is at version {decision.version} now; look at it again")
    ds = _deliveries(rt, share_id)
    decided = next((d.approval for d in ds if d.approval and d.approval.decided_by), None)
    states = ", ".join(sorted({str(d.status) for d in ds if d.approval}))
    if decided and decided.state is Approval.APPROVED:
        raise InputError("share", f"{share_id} was already approved by {decided.decided_by}; nothing done")
    if decided and decided.state is Approval.REJECTED:
        raise InputError("share", f"{share_id} was already rejected by {decided.decided_by}; nothing done")
    raise InputError("share", f"{share_id} is not waiting for a decision ({states}); nothing done")


def _audit(rt: Runtime, action: AuditAction, actor: Actor, share_id: str, detail: str,
           data: dict[str, Any] | None = None) -> None:
    rt.audit.record(AuditEntry(action, actor.name, actor.user, detail, share_id, None, data or {}))
