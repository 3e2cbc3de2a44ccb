"""What every platform module provides, and the HTTP-to-error mapping written once.

A platform is one class: ``compose`` is pure (article in, ``Post`` out; preview and delivery call the
same one); ``publish`` does the I/O and returns a ``Receipt`` or raises one of ``sharer.errors``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from ..errors import (
    Ambiguous,
    AuthExpired,
    ComposeError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from ..redact import redact

if TYPE_CHECKING:
    from redis import Redis

    from ..article import Article
    from ..config import Account
    from ..store.keys import Keys


@dataclass(frozen=True)
class Post:
    """A post exactly as it will be sent. ``payload`` holds the wire fields (never credentials)."""

    platform: str
    account: str
    text: str
    payload: dict[str, Any]
    length: int
    limit: int
    unit: str
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: compose builds a fresh payload per call (asdict's deep copy cost 0.1 ms)
        return {"platform": self.platform, "account": self.account, "text": self.text, "payload": self.payload,
                "length": self.length, "limit": self.limit, "unit": self.unit, "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Post:
        return cls(**{**d, "warnings": tuple(d.get("warnings", ()))})


# How far a platform's clock (its ``created_at``) may differ from ours: a lookup must reach back this
# much before the first attempt began, and a post stamped this much before it may still be ours.
CLOCK_SLACK = 300.0


@dataclass(frozen=True)
class Receipt:
    """Where a post landed. ``url`` is None for platforms with no public URL (``note`` says why).

    ``already_posted``: the platform already had this post from before this delivery began (it
    answered "duplicate" and the earlier post was found): nothing new was published.
    """

    post_id: str | None
    url: str | None
    note: str | None = None
    already_posted: bool = False


@dataclass
class DeliveryContext:
    """Everything a publish call may use besides the post. Built per attempt by the worker."""

    delivery_id: str
    account: Account
    session: requests.Session
    timeout: float = 30.0
    redis: Redis | None = None
    keys: Keys | None = None
    state: dict[str, Any] = field(default_factory=dict)  # survives retries (e.g. thread part ids)
    on_step: Callable[[str], None] | None = None
    on_state: Callable[[dict[str, Any]], None] | None = None
    media_rewrite: dict[str, str] = field(default_factory=dict)  # [media] rewrite, see sharer.media
    # reconciliation: the earliest moment this delivery's post can have been made (the first attempt's
    # start, epoch s; None = unknown), and whether the platform answered "duplicate" (the post to find
    # may then be an earlier one, from before that moment)
    window_start: float | None = None
    duplicate: bool = False

    def step(self, message: str) -> None:
        """Record a visible progress line in the delivery's event log."""
        if self.on_step:
            self.on_step(self.redact(message))

    def save_state(self) -> None:
        if self.on_state:
            self.on_state(self.state)

    def secrets(self) -> list[str]:
        return [s.reveal() for s in self.account.credentials.values()]

    def redact(self, text: str | None) -> str:
        return redact(text, self.secrets())


class Platform:
    """Base class: declare the class attributes, implement ``compose`` and ``publish``."""

    id: ClassVar[str]
    title: ClassVar[str]
    default_api_base: ClassVar[str] = ""
    required_credentials: ClassVar[tuple[str, ...]] = ()
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    option_defaults: ClassVar[dict[str, Any]] = {}
    default_template: ClassVar[str] = "{title}\n\n{summary}\n\n{url}"
    limit: ClassVar[int] = 0
    unit: ClassVar[str] = "characters"
    idempotent: ClassVar[bool] = False  # has a real idempotency key (Mastodon)
    # documented posting limit (count, per seconds) shared by all workers; [accounts.X] rate_limit overrides
    rate_limit: ClassVar[tuple[int, float] | None] = None
    sandbox_port: ClassVar[int] = 0  # port of its emulator under `sharer sandbox`

    def __init__(self, account: Account):
        self.account = account

    @classmethod
    def validate_options(cls, raw: Any) -> dict[str, Any]:
        """Check ``options`` against ``option_defaults`` (same keys, same types)."""
        if not isinstance(raw, dict):
            raise ValueError("must be a table")
        out = dict(cls.option_defaults)
        for key, value in raw.items():
            if key not in cls.option_defaults:
                known = ", ".join(sorted(cls.option_defaults)) or "none"
                raise ValueError(f"{key}: unknown option for {cls.id} (known: {known})")
            default = cls.option_defaults[key]
            if default is not None and not _same_kind(value, default):
                raise ValueError(f"{key}: must be {type(default).__name__}, got {value!r}")
            out[key] = value
        return out

    @property
    def options(self) -> dict[str, Any]:
        return self.account.options

    @property
    def template(self) -> str:
        return self.account.template or self.default_template

    def compose(self, article: Article, text: str | None = None) -> Post:
        raise NotImplementedError

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        raise NotImplementedError

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """Look for a post this delivery may already have made. The contract, for every platform:

        * a ``Receipt`` — found (``already_posted`` when, after a "duplicate" answer, the post found
          predates ``ctx.window_start``);
        * ``None`` — **proven absent**: the lookup covered every post the account made since
          ``ctx.window_start - CLOCK_SLACK`` (it reached back before that, or saw the account's whole
          history) and was not cut short. Returned only with that proof: the worker then sends again;
        * raise (``Ambiguous`` or another ``DeliveryError``) — cannot tell: the worker asks an editor.

        The default has no way to look, so it raises.
        """
        raise Ambiguous(f"{self.title} offers no way to look for an earlier post")

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """A cheap call proving the credentials work (for the dashboard's accounts page).

        Returns a short description ("token valid for 7140 s"); raises a ``DeliveryError`` when they
        do not work. The default says it cannot check without posting.
        """
        raise NotImplementedError(f"{self.title} has no way to check credentials without posting")

    def check_override(self, text: str, length: int, limit: int) -> None:
        """An editor's own text is validated, never silently cut."""
        if not text.strip():
            raise ComposeError(self.account.name, "the text override is empty")
        if length > limit:
            err = ComposeError(self.account.name, f"text is {length} {self.unit} long; the limit is {limit}")
            err.length, err.limit = length, limit
            raise err


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


# --- HTTP, written once ---------------------------------------------------------------------------

def send(ctx: DeliveryContext, method: str, url: str, *, idempotent: bool = False, **kwargs: Any) -> requests.Response:
    """One HTTP call with the account's timeout; network failures become our error classes.

    A failure before the request left (refused, DNS, connect timeout) is plainly transient. A failure
    after it may have been received (read timeout, connection dropped) is ``Ambiguous`` unless the
    call is ``idempotent`` (a read, or a write with an idempotency key).
    """
    kwargs.setdefault("timeout", (min(5.0, ctx.timeout), ctx.timeout))
    try:
        return ctx.session.request(method, url, **kwargs)
    except requests.ConnectTimeout:
        raise TransientError("could not connect to the platform (timeout)") from None
    except requests.ReadTimeout:
        cls = TransientError if idempotent else Ambiguous
        raise cls("no answer from the platform before the timeout; the request may have been received") from None
    except requests.ConnectionError as e:
        text = repr(e)
        before_send = any(s in text for s in ("NewConnectionError", "Connection refused", "NameResolution",
                                               "Failed to resolve", "Max retries exceeded"))
        if before_send and "RemoteDisconnected" not in text and "Connection aborted" not in text:
            raise TransientError("could not connect to the platform") from None
        cls = TransientError if idempotent else Ambiguous
        raise cls("the connection was dropped; the request may have been received") from None
    except requests.RequestException as e:
        raise TransientError(ctx.redact(f"HTTP request failed: {type(e).__name__}")) from None


def error_for_status(resp: requests.Response, message: str, *, code: Any = None,
                     retry_after: float | None = None) -> DeliveryError:
    """The generic mapping of an HTTP status to an error class. ``message`` must be redacted."""
    status = resp.status_code
    if status == 429:
        return RateLimited(message, retry_after=retry_after if retry_after is not None else
                           parse_retry_after(resp.headers.get("Retry-After"), 60.0), code=code, status=status)
    if status in (502, 504):
        return Ambiguous(message, code=code, status=status)
    if status >= 500 or status == 408:
        return TransientError(message, code=code, status=status)
    if status == 401:
        return AuthExpired(message, code=code, status=status)
    return PermanentError(message, code=code, status=status)


def parse_retry_after(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import datetime
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return default


def json_body(resp: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it has none (errors often have HTML bodies)."""
    try:
        data = resp.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {"_": data}


def short(text: str, n: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"
