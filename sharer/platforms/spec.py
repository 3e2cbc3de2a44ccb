"""A platform declared as data: ``PlatformSpec`` and its parts, and typed account options.

Everything the rest of sharer needs to know about a platform without running it lives here: its
limits (with the counter that measures them), options, credentials, posting rate, idempotency, its
emulator and port, its demo account. The sandbox launcher, the demo config, the test config, the
contract test and the README check read these, never a second list.

Pure data: no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Self

from ..text import Counter, count_chars

DEFAULT_TEMPLATE = "{title}\n\n{summary}\n\n{url}"


class Idempotency(enum.StrEnum):
    """What a repeated publish request does, which decides how an ambiguous failure is settled."""

    NONE = "none"  # it may post twice: look for the post (reconcile) before sending again
    KEY = "key"    # a repeat with the same key returns the first result: resending is safe


class RateLimit(NamedTuple):
    """A documented posting limit shared by all workers: ``requests`` per ``per_seconds``."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class Limits:
    """What one post may hold. ``length`` is measured by ``counter`` in ``unit``s."""

    length: int
    unit: str = "characters"
    counter: Counter = count_chars
    media: int = 0                      # images per post (0: the platform takes none)
    media_bytes: int = 0                # largest image it accepts (0: not an upload)
    media_types: tuple[str, ...] = ()   # accepted content types
    thread: int = 1                     # posts one share may become (a numbered thread)


@dataclass(frozen=True)
class Credentials:
    """Names of the credential references an account gives (``credentials = { name = "env:…" }``)."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sandbox:
    """The platform's local emulator (``"module:Class"``, imported only by the sandbox) and its port."""

    emulator: str
    port: int


@dataclass(frozen=True)
class Demo:
    """A demo account on the sandbox: ``demo-<id><suffix>`` at ``http://127.0.0.1:<port><path>``,
    every credential ``"sandbox:"``."""

    suffix: str = ""
    path: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    rate_limit: RateLimit | None = None


class OptionError(ValueError):
    """A bad account option; ``key`` names it (the config error reads ``accounts.NAME.options.KEY``)."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class Options:
    """Typed account options: subclass as a frozen dataclass, defaults in the fields.

    ``parse`` checks the ``options`` table of an account against the field types (an int field takes
    a whole float, a float field an int) and rejects unknown keys; ``check`` adds a platform's own
    rules (raise ``OptionError``) and may normalise values through ``normalised``.
    """

    platform: ClassVar[str] = ""

    @classmethod
    def parse(cls, raw: Any, platform: str = "") -> Self:
        if not isinstance(raw, dict):
            raise ValueError("must be a table")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in fields:
                known = ", ".join(sorted(fields)) or "none"
                raise OptionError(key, f"unknown option for {platform or cls.platform} (known: {known})")
            values[key] = _coerce(key, value, hints[key])
        missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise OptionError(missing[0], "is required")
        return cls(**values).check()

    def check(self) -> Self:
        """The platform's own rules across fields; returns the (possibly normalised) options."""
        return self

    def normalised(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class NoOptions(Options):
    """A platform without options."""


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type, or an ``OptionError`` naming the key and what it must be."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for kind in allowed:
        ok, converted = _as(value, kind)
        if ok:
            return converted
    names = " or ".join(_name(k) for k in allowed)
    raise OptionError(key, f"must be {names}, got {value!r}")


def _as(value: Any, kind: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(kind)
    if kind is type(None):
        return value is None, None
    if kind is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, None
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if kind is float:
        return isinstance(value, (int, float)), float(value) if isinstance(value, (int, float)) else None
    if kind is str:
        return isinstance(value, str), value
    if origin in (tuple, list):
        (inner, *_) = typing.get_args(kind) or (Any,)
        if not isinstance(value, (list, tuple)):
            return False, None
        items = [_as(v, inner) if inner is not Any else (True, v) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    return isinstance(value, kind), value


def _name(kind: Any) -> str:
    if kind is type(None):
        return "absent"
    origin = typing.get_origin(kind)
    if origin in (tuple, list):
        return "a list"
    return getattr(kind, "__name__", str(kind))


@dataclass(frozen=True)
class PlatformSpec:
    """One platform, declared. ``id`` is a contract (records and configs carry it): never change it."""

    id: str
    title: str
    limits: Limits
    sandbox: Sandbox
    api_base: str = ""  # the real API host; "" = every account must set api_base
    options: type[Options] = NoOptions
    credentials: Credentials = Credentials()
    template: str = DEFAULT_TEMPLATE
    rate_limit: RateLimit | None = None
    idempotency: Idempotency = Idempotency.NONE
    demo: tuple[Demo, ...] = (Demo(),)

    @property
    def idempotent(self) -> bool:
        return self.idempotency is Idempotency.KEY

    def demo_accounts(self, host: str = "127.0.0.1", port: int | None = None) -> dict[str, dict[str, Any]]:
        """The demo accounts as config tables (what ``[sandbox] demo_accounts = true`` adds)."""
        base = f"http://{host}:{self.sandbox.port if port is None else port}"
        out: dict[str, dict[str, Any]] = {}
        for demo in self.demo:
            table: dict[str, Any] = {
                "platform": self.id, "api_base": base + demo.path,
                "credentials": {k: "sandbox:" for k in self.credentials.required + self.credentials.optional},
            }
            if demo.options:
                table["options"] = dict(demo.options)
            if demo.rate_limit:
                table["rate_limit"] = {"count": demo.rate_limit.requests, "per_seconds": demo.rate_limit.per_seconds}
            out[f"demo-{self.id}{demo.suffix}"] = table
        return out
