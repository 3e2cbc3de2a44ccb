"""What every platform provides: the ``Platform`` base over a declared ``PlatformSpec``, and the
``Post`` / ``Receipt`` / ``DeliveryContext`` types it works with.

A platform is one class with a ``spec``: ``compose`` is pure (article in, ``Post`` out; preview and
delivery call the same one); ``publish`` does the I/O (through ``sharer.platforms.http``) and returns
a ``Receipt`` or raises one of ``sharer.errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import requests

from ..errors import Ambiguous, ComposeError, PermanentError
from ..redact import redact
from ..store.tokens import Grant, SharedToken
from .http import json_body, send, short
from .spec import Credentials, Demo, Idempotency, Limits, Options, PlatformSpec, RateLimit, Sandbox

__all__ = [  # the names platform modules import from here
    "Credentials", "DeliveryContext", "Demo", "Idempotency", "Limits", "Options", "Platform", "PlatformSpec",
    "Post", "RateLimit", "Receipt", "Sandbox", "json_body", "send", "short",
]

if TYPE_CHECKING:
    from redis import Redis

    from ..article import Article
    from ..config.settings import Account
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
    media: tuple[str, ...] = ()          # image URLs attached, in order (preview shows them)
    media_offered: tuple[str, ...] = ()  # the article's other images this platform could attach

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: compose builds a fresh payload per call (asdict's deep copy cost 0.1 ms)
        return {"platform": self.platform, "account": self.account, "text": self.text, "payload": self.payload,
                "length": self.length, "limit": self.limit, "unit": self.unit, "warnings": list(self.warnings),
                "media": list(self.media), "media_offered": list(self.media_offered)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Post:
        return cls(**{**d, "warnings": tuple(d.get("warnings", ())), "media": tuple(d.get("media", ())),
                      "media_offered": tuple(d.get("media_offered", ()))})


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
    on_step: Callable[[str], object] | None = None
    on_state: Callable[[dict[str, Any]], object] | None = None
    media_rewrite: dict[str, str] = field(default_factory=dict)  # [media] rewrite, see sharer.media
    # reconciliation: the earliest moment this delivery's post can have been made (the first attempt's
    # start, epoch s; None = unknown), and whether the platform answered "duplicate" (the post to find
    # may then be an earlier one, from before that moment)
    window_start: float | None = None
    duplicate: bool = False
    fetch_policy: Any = None  # sharer.fetch.FetchPolicy for user-supplied URLs (images); None = strict

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

    def shared_token(self, fetch: Callable[[str | None], Grant], *, seed: str = "",
                     refresh_token: str | None = None, margin: float = 300.0) -> SharedToken:
        """The account's access token shared by all workers (``sharer.store.tokens``): the platform
        gives only ``fetch(refresh_token) -> Grant``. Needs the worker's Redis."""
        if self.redis is None or self.keys is None:
            raise PermanentError(f"account {self.account.name}: a shared access token needs Redis")
        lock = max(30.0, 3 * self.timeout)  # longer than one token call can take
        return SharedToken(self.redis, self.keys.token(self.account.name), self.keys.token_lock(self.account.name),
                           fetch, seed=seed, refresh_token=refresh_token, margin=margin, lock_seconds=lock,
                           wait_seconds=lock + 5, on_refresh=self.step)



OptionsT = TypeVar("OptionsT")


class Platform(Generic[OptionsT]):
    """Base class: declare ``spec``, implement ``compose`` and ``publish``.

    The class attributes below are read from the spec (``__init_subclass__``), so code that asks a
    platform class for ``id``, ``limit`` or ``rate_limit`` reads the one declaration.
    """

    spec: ClassVar[PlatformSpec]
    id: ClassVar[str]
    title: ClassVar[str]
    default_api_base: ClassVar[str] = ""
    required_credentials: ClassVar[tuple[str, ...]] = ()
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    default_template: ClassVar[str] = "{title}\n\n{summary}\n\n{url}"
    limit: ClassVar[int] = 0
    unit: ClassVar[str] = "characters"
    idempotent: ClassVar[bool] = False
    rate_limit: ClassVar[tuple[int, float] | None] = None
    sandbox_port: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            spec = cls.spec
            cls.id, cls.title, cls.default_api_base = spec.id, spec.title, spec.api_base
            cls.required_credentials, cls.optional_credentials = spec.credentials.required, spec.credentials.optional
            cls.default_template, cls.limit, cls.unit = spec.template, spec.limits.length, spec.limits.unit
            cls.idempotent, cls.rate_limit, cls.sandbox_port = spec.idempotent, spec.rate_limit, spec.sandbox.port

    def __init__(self, account: Account):
        self.account = account

    @classmethod
    def parse_options(cls, raw: Any) -> Options:
        """The account's ``options`` table checked against the spec's typed options."""
        return cls.spec.options.parse(raw, cls.spec.id)

    @property
    def options(self) -> OptionsT:
        return cast(OptionsT, self.account.options)

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
