"""The verdicts of the delivery log's scripts, typed: why a change did or did not happen, and what a
claim hands the worker (decoded from the script's answer, long values and article included)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import codec
from .codec import as_text as _s
from .records import Delivery
from .states import Status


class Outcome(StrEnum):
    """Why a scripted change did (``ok``) or did not happen."""

    OK = "ok"
    MISSING = "missing"  # no such record
    CONFLICT = "conflict"  # its status is not one the caller expected (compare-and-set lost)
    STALE = "stale"  # an older fencing token, schedule version or approval version
    ILLEGAL = "illegal"  # the state machine does not allow that move
    SELF = "self"  # four-eyes: the approver submitted it


@dataclass(frozen=True)
class Result:
    """Outcome of a compare-and-set change; ``status`` is the record's status when it did not happen."""

    outcome: Outcome
    status: Status | None = None
    attempts: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class ClaimOutcome(StrEnum):
    OK = "ok"  # this worker sends: ``token`` is the attempt number (the fencing token)
    EARLY = "early"  # not before ``not_before``
    LIMITED = "limited"  # the account's rate limit: try again in ``wait_seconds``
    BUSY = "busy"  # another worker holds a live lease until ``lease_until``
    EXPIRED = "expired"  # a dead worker's lease ran out: now ``unknown``, to be reconciled
    SKIP = "skip"  # ``status`` is not sendable
    STALE = "stale"  # the task was sent for an older schedule version
    UNAPPROVED = "unapproved"  # waiting for (or refused) sign-off: never sent
    MISSING = "missing"


@dataclass(frozen=True)
class Claim:
    """A claim's verdict, with the fields that outcome carries."""

    outcome: ClaimOutcome
    token: int | None = None
    record: Delivery | None = None
    article_json: str | None = None
    status: Status | None = None
    not_before: float | None = None
    wait_seconds: float | None = None
    lease_until: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is ClaimOutcome.OK

    @classmethod
    def decode(cls, res: list[Any], article: bytes | None = None) -> Claim:
        """The claim script's answer (the record, then its long values); ``article``: the share's article
        JSON the caller read after an ``ok``."""
        outcome, detail = ClaimOutcome(_s(res[0])), _s(res[1])
        if outcome is ClaimOutcome.OK:
            flat = [_s(x) for x in res[2]]
            longs = [_s(x) for x in res[3]]
            h = codec.join_long(dict(zip(flat[::2], flat[1::2])), dict(zip(longs[::2], longs[1::2])))
            return cls(outcome, token=int(detail), record=Delivery.from_hash(h),
                       article_json=article.decode() if article else None)
        if outcome is ClaimOutcome.EARLY:
            return cls(outcome, not_before=float(detail))
        if outcome is ClaimOutcome.LIMITED:
            return cls(outcome, wait_seconds=float(detail))
        if outcome is ClaimOutcome.BUSY:
            return cls(outcome, lease_until=float(detail))
        if outcome in (ClaimOutcome.SKIP, ClaimOutcome.STALE):
            return cls(outcome, status=Status(detail))
        return cls(outcome)


@dataclass(frozen=True)
class Decision:
    """What a sign-off script changed: (delivery id, its new status, account, approval version) each."""

    outcome: Outcome
    moved: list[tuple[str, Status, str, int]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # conflict: the statuses found instead
    version: int | None = None  # stale: the current approval version

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK
