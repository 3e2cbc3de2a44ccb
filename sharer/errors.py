"""The one exception tree for sharer.

Every error a user can see is a ``SharerError``. Delivery errors tell the worker what to do next::

    SharerError
    ├── ConfigError            bad or missing configuration, named precisely
    ├── ArticleError           an article that cannot be loaded or validated
    ├── ComposeError           e.g. an editor's text over the platform limit
    ├── NotFound               an unknown share or delivery id
    ├── FetchError             a user-supplied URL that cannot or may not be fetched (sharer.fetch)
    ├── BrokerUnavailable      the Celery broker did not take a message (records stay for the sweeper)
    ├── Forbidden              not allowed for this person (e.g. four-eyes: approving one's own share)
    └── DeliveryError          (platform, code, message — never a secret)
        ├── TransientError     retry with backoff
        │   ├── RateLimited    retry after ``retry_after`` seconds
        │   └── Ambiguous      the request may have reached the platform: reconcile, never blind-retry
        ├── AuthExpired        refresh the token once, then retry once
        └── PermanentError     do not retry: rejected content, forbidden, bad config
            └── Duplicate      the platform says it already has this post

Constructor arguments mirror ``.args`` so an error survives a JSON/pickle round trip.
"""

from __future__ import annotations

from typing import Any


class SharerError(Exception):
    """Base of every error sharer raises on purpose."""


class ConfigError(SharerError):
    """Configuration that cannot be used: names the file, the key and the reason."""


class ArticleError(SharerError):
    """An article that cannot be loaded: names the source and the field."""

    def __init__(self, source: str, field: str, problem: str):
        super().__init__(source, field, problem)
        self.source, self.field, self.problem = source, field, problem

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.problem}"


class ComposeError(SharerError):
    """A post that cannot be composed for an account (e.g. override over the limit)."""

    # set when an editor's text is over the limit, so a live editor can show "151/140"
    length: int | None = None
    limit: int | None = None

    def __init__(self, account: str, problem: str):
        super().__init__(account, problem)
        self.account, self.problem = account, problem

    def __str__(self) -> str:
        return f"account {self.account!r}: {self.problem}"


class NotFound(SharerError):
    """An id that names no share or delivery."""


class FetchError(SharerError):
    """A URL the guarded fetcher refused or could not fetch: names the URL and the reason."""

    def __init__(self, url: str, problem: str, transient: bool = False):
        super().__init__(url, problem, transient)
        self.url, self.problem = url, problem
        self.transient = transient  # a network failure worth retrying, not a refusal or a bad URL

    def __str__(self) -> str:
        return f"{self.url}: {self.problem}"


class BrokerUnavailable(SharerError):
    """The broker refused or did not answer while a task message was sent."""


class Forbidden(SharerError):
    """Allowed for someone, not for this actor: e.g. approving one's own share under four-eyes."""


class InputError(SharerError):
    """Bad input from a user that is not an article or config problem (e.g. a bad time)."""

    def __init__(self, field: str, problem: str):
        super().__init__(field, problem)
        self.field, self.problem = field, problem

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class DeliveryError(SharerError):
    """A platform call that did not produce a post. ``message`` must already be redacted."""

    kind = "error"

    def __init__(self, message: str, *, code: str | int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = None if code is None else str(code)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword arguments across pickling
        return (_rebuild, (type(self), self.message, self.code, self.status, self.__dict__))

    def __str__(self) -> str:
        parts = [self.message]  # the code or HTTP status once: not again when the message already says it
        if self.code is not None and f"code {self.code}" not in self.message:
            parts.append(f"(code {self.code})")
        elif self.code is None and self.status is not None and f"HTTP {self.status}" not in self.message:
            parts.append(f"(HTTP {self.status})")
        return " ".join(parts)


def _rebuild(cls: type[DeliveryError], message: str, code: str | None, status: int | None,
             state: dict[str, Any]) -> DeliveryError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class TransientError(DeliveryError):
    """Worth retrying later with backoff: 5xx, connection refused, "system busy"."""

    kind = "transient"


class RateLimited(TransientError):
    """The platform asked us to wait. ``retry_after`` is in seconds (may be fractional)."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 60.0, code: str | int | None = None,
                 status: int | None = None):
        super().__init__(message, code=code, status=status)
        self.retry_after = max(0.0, float(retry_after))


class Ambiguous(TransientError):
    """The request may have been accepted: look for the post before trying again.

    ``accepted``: the platform said it took the post but has not shown it yet (Weibo 20032): look for
    it after ``check_after`` seconds and never send it again.
    """

    kind = "ambiguous"

    def __init__(self, message: str, *, code: str | int | None = None, status: int | None = None,
                 accepted: bool = False, check_after: float = 0.0):
        super().__init__(message, code=code, status=status)
        self.accepted, self.check_after = accepted, max(0.0, float(check_after))


class AuthExpired(DeliveryError):
    """The token is no longer valid: refresh once and retry once."""

    kind = "auth"


class PermanentError(DeliveryError):
    """Retrying cannot help: content rejected, forbidden, misconfigured account."""

    kind = "permanent"


class Duplicate(PermanentError):
    """The platform reports the same content was already posted."""

    kind = "duplicate"
