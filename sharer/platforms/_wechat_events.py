"""WeChat's result events at the account's server URL: ``MASSSENDJOBFINISH`` and ``PUBLISHJOBFINISH``.

They are hints, never the truth: an event only tells the waiting delivery to ask ``message/mass/get`` /
``freepublish/get`` now instead of at its next poll (both events can be lost or late, so polling stays).
Pure: the signature check and the XML reading (plaintext mode; the AES "safe mode" is not supported).

signature = sha1(sorted(token, timestamp, nonce) joined) — fact sheet §1.7. Bodies are capped and any
DTD is refused before parsing, so no entity expansion can happen.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

MAX_BODY = 64 * 1024
MAX_AGE = 300.0  # seconds a signed request stays valid (replays of an old event are refused)
EVENTS = ("MASSSENDJOBFINISH", "PUBLISHJOBFINISH")
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.I)


class EventError(ValueError):
    """A request that is not a valid WeChat event for this account; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Event:
    kind: str  # MASSSENDJOBFINISH / PUBLISHJOBFINISH / another event or message type
    job_id: str | None  # the msg_id or publish_id it is about
    status: str


def signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def verify(token: str, query: dict[str, str], now: float | None = None) -> None:
    """Raise ``EventError`` unless ``signature`` matches and ``timestamp`` is recent."""
    ts, nonce, sig = query.get("timestamp", ""), query.get("nonce", ""), query.get("signature", "")
    if not (ts and nonce and sig) or not hmac.compare_digest(signature(token, ts, nonce), sig):
        raise EventError("bad signature", 403)
    try:
        age = abs((now if now is not None else time.time()) - float(ts))
    except ValueError:
        raise EventError("bad timestamp", 403) from None
    if age > MAX_AGE:
        raise EventError("stale timestamp", 403)


def parse(body: bytes) -> Event:
    if len(body) > MAX_BODY:
        raise EventError("body too large", 413)
    if _DTD.search(body):  # only a DTD can declare entities; WeChat's events have none (CDATA only)
        raise EventError("DTDs are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise EventError("not XML") from None

    def text(tag: str) -> str:
        node = root.find(tag)
        return (node.text or "").strip() if node is not None else ""

    kind = text("Event") if text("MsgType") == "event" else text("MsgType")
    if kind == "MASSSENDJOBFINISH":
        return Event(kind, text("MsgID") or text("MsgId") or None, text("Status"))
    if kind == "PUBLISHJOBFINISH":
        info = root.find("PublishEventInfo")
        job = info.find("publish_id") if info is not None else None
        status = info.find("publish_status") if info is not None else None
        return Event(kind, (job.text or "").strip() if job is not None else None,
                     (status.text or "").strip() if status is not None else "")
    return Event(kind, None, "")
