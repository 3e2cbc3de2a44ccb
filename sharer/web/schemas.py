"""Request and response models: the HTTP API's contract, published in ``/openapi.json``.

Response bodies are built by the core (``Delivery.to_json`` — the CLI's ``--json`` contract) and
returned as they are; these models document them. Extra fields are allowed so the documented contract
can grow (e.g. scheduling fields) without breaking clients.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .. import article as A
from ..store.deliveries import STATUSES

_status_doc = "one of: " + ", ".join(STATUSES)
HTTP_URL = r"^https?://[^\s/?#]+[^\s]*$"


class ArticleIn(BaseModel):
    """The article, as in a ``.json`` article file. ``body_html`` is sanitised on arrival."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=A.MAX_TITLE)
    url: str = Field(max_length=A.MAX_URL, pattern=HTTP_URL, description="http(s) URL of the article")
    summary: str = Field("", max_length=A.MAX_SUMMARY)
    body_html: str = Field("", max_length=A.MAX_BODY)
    image: str | None = Field(None, max_length=A.MAX_URL, pattern=HTTP_URL)
    author: str | None = Field(None, max_length=A.MAX_AUTHOR)
    tags: list[Annotated[str, Field(max_length=A.MAX_TAG)]] = Field(default_factory=list, max_length=A.MAX_TAGS)
    published_at: str | None = Field(None, max_length=64, description="ISO 8601 with a time zone offset")
    lang: str | None = Field(None, max_length=A.MAX_LANG)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    article: ArticleIn
    accounts: list[str] = Field(min_length=1, max_length=100)
    texts: dict[str, str] = Field(default_factory=dict, description="account -> the editor's own text")


class PhonePreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    article: ArticleIn
    accounts: list[str] = Field(min_length=1, max_length=100, description="the WeChat ones send the preview")
    send_to: str = Field(min_length=1, max_length=200, description="a WeChat ID, or openid:OPENID")
    texts: dict[str, str] = Field(default_factory=dict)


class PhonePreviewSent(BaseModel):
    account: str
    to: str
    msg_id: str | None
    draft_media_id: str
    articles: int


class PhonePreviewResponse(BaseModel):
    sent: list[PhonePreviewSent]


class PreviewPost(BaseModel):
    """The post as it will be sent, or ``error`` when it cannot be (e.g. text over the limit)."""

    platform: str
    account: str
    text: str | None
    payload: dict[str, Any] | None
    length: int | None = Field(description="counted in the platform's own rules")
    limit: int | None
    unit: str | None
    warnings: list[str]
    error: str | None
    media: list[str] = Field(default=[], description="image URLs attached, in order")
    media_offered: list[str] = Field(default=[], description="the article's other images the platform could take")


class PreviewResponse(BaseModel):
    posts: list[PreviewPost]


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    article: ArticleIn
    accounts: list[str] = Field(min_length=1, max_length=100)
    texts: dict[str, str] = Field(default_factory=dict)
    at: str | None = Field(None, max_length=64, description="'2026-11-26 09:00' (in tz) or ISO 8601 with offset")
    tz: str | None = Field(None, max_length=64, description="IANA zone for `at` (default: [defaults] timezone)")
    next_slot: bool = Field(False, description="schedule at each account's next free posting slot")
    force: bool = Field(False, description="share again even if this went to these accounts recently")


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str
    status: str
    attempt: int
    message: str
    actor: str | None = Field(None, description="who caused it: a user, 'user (token name)', "
                                                "'cli:<os user>@<host>', scheduler, sweeper or worker")


class ApprovalOut(BaseModel):
    """A delivery's sign-off (null when its account needs none)."""

    state: str = Field(description="pending, approved or rejected")
    version: int
    submitted_by: str
    submitted_at: str | None
    decided_by: str | None
    decided_at: str | None
    reason: str | None = Field(description="a rejection's reason")
    edited: bool = Field(description="the approver changed the text; `post` is the approved version")


class DeliveryOut(BaseModel):
    """Exactly the CLI's ``--json`` delivery object (``Delivery.to_json``). Times: ISO 8601 UTC."""

    model_config = ConfigDict(extra="allow")
    id: str
    share_id: str
    account: str
    platform: str
    status: str = Field(description=_status_doc)
    attempts: int
    post_id: str | None
    post_url: str | None
    error: str | None
    error_kind: str | None
    note: str | None
    already_posted: bool = Field(False, description="delivered as a post the platform already had (it refused "
                                 "a duplicate): nothing new was published; ``note`` names the post")
    overdue: bool
    created_at: str
    updated_at: str
    post: dict[str, Any] | None
    approval: ApprovalOut | None = None
    events: list[Event]


class ShareOut(BaseModel):
    share_id: str
    title: str
    url: str
    created_at: str
    deliveries: list[DeliveryOut]


class DuplicateOf(BaseModel):
    share_id: str
    delivery_id: str
    status: str
    post_url: str | None
    created_at: str


class SharedDelivery(DeliveryOut):
    duplicate_of: DuplicateOf | None = Field(
        None, description="set when this account already had the article: this entry is that earlier delivery")


class ShareCreated(BaseModel):
    share_id: str
    duplicate: bool = Field(description="true: nothing new was written (same idempotency key, or every account "
                                        "already had this article)")
    deliveries: list[SharedDelivery]
    warnings: list[str] = Field(default_factory=list,
                                description="e.g. no dispatcher has run for a minute (scheduled posts wait)")


class ShareList(BaseModel):
    shares: list[ShareOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="deliveries per status, over the whole log")


class RescheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str = Field(max_length=64)
    tz: str | None = Field(None, max_length=64)


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: bool = Field(False, description="required for needs_review: you checked the post is not out")


class PostedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=4000, description="where the post is, if you found it")


class CancelOut(BaseModel):
    cancelled: list[str]
    not_cancelled: dict[str, str] = Field(description="delivery id -> its status (already out, or sending)")


class Outcome(BaseModel):
    delivery_id: str
    at: str
    status: str
    post_url: str | None = None
    error: str | None = None


class CredentialState(BaseModel):
    ok: bool | None = Field(description="null: the platform cannot be checked without posting")
    message: str
    checked_at: str


class AccountOut(BaseModel):
    name: str
    platform: str
    platform_title: str
    limit: int
    unit: str
    rate_limit: dict[str, float] | None
    timezone: str | None
    last_success: Outcome | None
    last_failure: Outcome | None
    credentials: CredentialState | None = Field(description="present with ?check=true")
    requires_approval: bool = Field(False, description="shares to it wait for an approver's sign-off")


class AccountList(BaseModel):
    accounts: list[AccountOut]


class ScheduleList(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(None, description="pass back as `cursor` for the next page; null: no more")


class Me(BaseModel):
    user: str
    role: str


class Health(BaseModel):
    status: str = Field(description="ok (200) or degraded (503): Redis down, no live worker, or a watched queue "
                                    "without one")
    redis: bool
    workers: list[str] = Field(description="every live worker, whatever queues it consumes")
    queues: dict[str, list[str]] = Field(default_factory=dict,
                                         description="each watched queue and the live workers consuming it")
    unconsumed: list[str] = Field(default_factory=list,
                                  description="watched queues no live worker consumes: what waits there is not sent")


class Problem(BaseModel):
    detail: Any
