"""The wire, written once: one HTTP call, network failures by exception type, status + code → error.

What a platform supplies is data: an ``ErrorTable`` of its business codes (and the few statuses it
means differently). Everything else — 429 with its wait, 401, 408/5xx, gateway errors that may hide
an accepted request, redirects and other 4xx — is decided here, so no platform re-handles it::

    send(ctx, ...)  ── network failure ──► network_error(): before the request left → TransientError
         │                                                  after it may have arrived → Ambiguous
         ▼                                                  (TransientError when the call is idempotent)
    Response ──► table.for_response(resp, message)   HTTP status → error class
    body code ─► table.for_code(code, message)       the platform's business code → error class
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from urllib3.exceptions import NewConnectionError, ProtocolError

from ..errors import Ambiguous, AuthExpired, DeliveryError, PermanentError, RateLimited, TransientError


class Wire(Protocol):
    """What a call needs from its context (``DeliveryContext`` has it): the session and the timeout."""

    session: requests.Session
    timeout: float

# Failures that prove the request never left: nothing to reconcile.
_NOT_SENT: tuple[type[BaseException], ...] = (NewConnectionError, socket.gaierror, ConnectionRefusedError)
# Failures after the request was (maybe) written: the platform may have acted on it.
_MAYBE_SENT: tuple[type[BaseException], ...] = (ProtocolError, http.client.RemoteDisconnected,
                                                ConnectionResetError, BrokenPipeError)


def send(ctx: Wire, method: str, url: str, *, idempotent: bool = False,
         **kwargs: Any) -> requests.Response:
    """One HTTP call with the account's timeouts; network failures become our error classes.

    ``idempotent``: the call is a read, or a write the platform de-duplicates (an idempotency key),
    so a failure after sending is safe to retry rather than ``Ambiguous``.
    """
    kwargs.setdefault("timeout", (min(5.0, ctx.timeout), ctx.timeout))
    try:
        return ctx.session.request(method, url, **kwargs)
    except requests.RequestException as e:
        raise network_error(e, idempotent=idempotent) from None


def network_error(e: requests.RequestException, *, idempotent: bool = False,
                  title: str = "the platform") -> DeliveryError:
    """Classify a ``requests`` failure by the exception types in its chain (never by its text)."""
    after: type[DeliveryError] = TransientError if idempotent else Ambiguous
    if isinstance(e, requests.ConnectTimeout):
        return TransientError(f"could not connect to {title} (timeout)")
    if isinstance(e, requests.ReadTimeout):
        return after(f"no answer from {title} before the timeout; the request may have been received")
    if isinstance(e, requests.ConnectionError):
        chain = list(_chain(e))
        if any(isinstance(c, _NOT_SENT) for c in chain) and not any(isinstance(c, _MAYBE_SENT) for c in chain):
            return TransientError(f"could not connect to {title}")
        return after(f"the connection to {title} was dropped; the request may have been received")
    return TransientError(f"HTTP request to {title} failed: {type(e).__name__}")


def _chain(e: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (urllib3 keeps it in ``args``/``reason``) and its causes."""
    seen: set[int] = set()
    todo: list[BaseException] = [e]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nested = [*cur.args, getattr(cur, "reason", None), cur.__cause__, cur.__context__]
        todo.extend(n for n in nested if isinstance(n, BaseException))


# --- status and body code → error class ----------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """What one code (or status) means: the error class and its message (``{message}`` = the platform's)."""

    error: type[DeliveryError]
    text: str | Callable[[str], str] = "{message}"
    # for RateLimited: the documented wait, or a function of nothing giving it (e.g. "until the next hour")
    retry_after: float | Callable[[], float] | None = None

    def build(self, message: str, *, code: Any = None, status: int | None = None,
              fields: Mapping[str, str] | None = None) -> DeliveryError:
        """The error; ``{message}`` (and each ``{name}`` of ``fields``, e.g. the account) filled in."""
        if callable(self.text):
            text = self.text(message)
        else:
            text = self.text
            for name, value in (fields or {}).items():
                text = text.replace("{" + name + "}", value)
            text = text.replace("{message}", message)
        if issubclass(self.error, RateLimited):
            wait = self.retry_after() if callable(self.retry_after) else self.retry_after
            return self.error(text, retry_after=60.0 if wait is None else wait, code=code, status=status)
        return self.error(text, code=code, status=status)


@dataclass(frozen=True)
class ErrorTable:
    """A platform's reading of its answers; anything it does not list gets the shared meaning."""

    codes: Mapping[Any, Rule] = field(default_factory=dict)
    statuses: Mapping[int, Rule] = field(default_factory=dict)
    other_code: Rule = Rule(PermanentError)  # a body code the table does not know
    gateway: type[DeliveryError] = Ambiguous  # 502/504: a proxy's answer, the request may be through
    rate_limit_default: float = 60.0  # a 429 without a readable wait

    def for_code(self, code: Any, message: str, *, status: int | None = None,
                 fields: Mapping[str, str] | None = None) -> DeliveryError:
        """The error for a business code; ``fields`` fill the rule's other placeholders (redacted)."""
        return self.codes.get(code, self.other_code).build(message, code=code, status=status, fields=fields)

    def for_response(self, resp: requests.Response, message: str, *, code: Any = None,
                     retry_after: float | None = None, retry_safe: bool = False,
                     fields: Mapping[str, str] | None = None) -> DeliveryError:
        """The error for a non-success HTTP answer. ``message`` must be redacted."""
        status = resp.status_code
        if status in self.statuses:
            return self.statuses[status].build(message, code=code, status=status, fields=fields)
        if status == 429:
            wait = retry_after if retry_after is not None else parse_retry_after(
                resp.headers.get("Retry-After"), self.rate_limit_default)
            return RateLimited(message, retry_after=wait, code=code, status=status)
        if status == 401:
            return AuthExpired(message, code=code, status=status)
        if status in (502, 504):
            return (TransientError if retry_safe else self.gateway)(message, code=code, status=status)
        if status >= 500 or status == 408:
            return TransientError(message, code=code, status=status)
        return PermanentError(message, code=code, status=status)


DEFAULT_TABLE = ErrorTable()


def error_for_status(resp: requests.Response, message: str, *, code: Any = None,
                     retry_after: float | None = None) -> DeliveryError:
    """The shared meaning of an HTTP status (``DEFAULT_TABLE``). ``message`` must be redacted."""
    return DEFAULT_TABLE.for_response(resp, message, code=code, retry_after=retry_after)


def parse_retry_after(value: str | None, default: float) -> float:
    """``Retry-After``: delay seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return default


def iso_reset_in(value: str | None, default: float) -> float:
    """Seconds until an ISO-8601 reset time (e.g. Mastodon's ``X-RateLimit-Reset``)."""
    if not value:
        return default
    try:
        reset = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return default
    if reset.tzinfo is None:
        reset = reset.replace(tzinfo=UTC)
    return max(0.0, (reset - datetime.now(UTC)).total_seconds())


def json_body(resp: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it has none (errors often have HTML bodies)."""
    try:
        data = resp.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {"_": data}


def short(text: str, n: int = 300) -> str:
    """One line of at most ``n`` characters, for error messages."""
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"
