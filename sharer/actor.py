"""Who caused a change: every event and audit entry names one.

``name`` is what the log shows ("alice", "alice (token ci-bot)", "cli:bob@build-01", "scheduler");
``user`` is the person behind it, which four-eyes compares (a token acts for its user).
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass

SYSTEM = ("scheduler", "sweeper", "worker")


@dataclass(frozen=True)
class Actor:
    name: str
    user: str

    def __str__(self) -> str:
        return self.name

    @classmethod
    def web(cls, user: str) -> Actor:
        """A dashboard user (signed in with a session)."""
        return cls(user, user)

    @classmethod
    def token(cls, user: str, label: str) -> Actor:
        """An API call with one of ``user``'s tokens (named by its label, else its id)."""
        return cls(f"{user} (token {label})", user)

    @classmethod
    def cli(cls) -> Actor:
        """Whoever runs ``sharer`` on this machine: ``cli:<os user>@<host>``."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            who = "unknown"
        name = f"cli:{who}@{socket.gethostname()}"
        return cls(name, name)

    @classmethod
    def system(cls, kind: str) -> Actor:
        if kind not in SYSTEM:
            raise ValueError(f"unknown system actor {kind!r}")
        return cls(kind, kind)


def actor_or_local(actor: Actor | None) -> Actor:
    """A service call without an actor is the local user's (as the CLI would record it)."""
    return actor if actor is not None else Actor.cli()
