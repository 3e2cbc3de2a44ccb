"""The core API used by the CLI, the web app and tests: preview, share, status, log.

Everything here is plain Python over a ``Runtime``; no Celery, no HTTP framework.

Callers import from here (``from sharer import service; service.share(rt, ...)``); the parts live in
``sharing`` (share), ``previews`` (compose before sending), ``scheduling`` (later, slots, reschedule),
``actions`` (retry, mark posted, cancel, purge), ``queries`` (status, log, shares, audit log, wait),
``accounts`` (activity, credential check) and ``common`` (ids, account lookup, audit entry, enqueue).
"""

from __future__ import annotations

from .accounts import CredentialCheck, account_activity, check_credentials
from .actions import CancelResult, audit_preview_sent, cancel, mark_posted, purge, retry
from .common import BROKER_DOWN, enqueue_or_leave_for_sweeper, known_account, new_id, record_audit
from .previews import PreviewItem, preview, preview_each
from .queries import audit, counts, delivery, get_share, is_settled, list_shares, log, status, wait
from .scheduling import (
    DISPATCHER_SILENCE,
    SCHEDULE_CURSOR,
    dispatcher_warning,
    parse_when,
    reschedule,
    resolve_when,
    schedule_list,
    schedule_page,
    schedule_titles,
)
from .sharing import ShareResult, share

__all__ = [
    "BROKER_DOWN", "DISPATCHER_SILENCE", "SCHEDULE_CURSOR", "CancelResult", "CredentialCheck", "PreviewItem",
    "ShareResult", "account_activity", "audit", "audit_preview_sent", "cancel", "check_credentials", "counts",
    "delivery", "dispatcher_warning", "enqueue_or_leave_for_sweeper", "get_share", "is_settled", "known_account",
    "list_shares", "log", "mark_posted", "new_id", "parse_when", "preview", "preview_each", "purge",
    "record_audit", "reschedule", "resolve_when", "retry", "schedule_list", "schedule_page", "schedule_titles",
    "share", "status", "wait",
]
