"""Every Redis key sharer uses, under one prefix (``[redis] prefix``, default ``sharer``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "sharer"

    def share(self, share_id: str) -> str:
        return f"{self.prefix}:share:{share_id}"

    def delivery(self, delivery_id: str) -> str:
        return f"{self.prefix}:dlv:{delivery_id}"

    def events(self, delivery_id: str) -> str:
        return f"{self.prefix}:dlv:{delivery_id}:events"

    # Indexes are lexicographic sorted sets (all scores 0) whose members are
    # "<13-digit created ms>:<id>", so time order, cursors and --since are one ZRANGE BYLEX.
    @property
    def shares_index(self) -> str:
        return f"{self.prefix}:idx:shares"

    @property
    def all_index(self) -> str:
        return f"{self.prefix}:idx:all"

    def status_index(self, status: str) -> str:
        return f"{self.prefix}:idx:status:{status}"

    def account_index(self, account: str) -> str:
        return f"{self.prefix}:idx:account:{account}"

    def title_index(self, token: str) -> str:
        """Shares whose title has ``token`` (see ``store/titles.py``); same members as the shares index."""
        return f"{self.prefix}:idx:title:{token}"

    def title_query(self, digest: str) -> str:
        """A title query's intersection, kept for a minute so its next pages reuse it."""
        return f"{self.prefix}:tmp:title:{digest}"

    @property
    def title_index_version(self) -> str:
        """Set once every share in the log is in the title index (new shares are indexed when written)."""
        return f"{self.prefix}:idx:title-version"

    @property
    def status_prefix(self) -> str:
        return f"{self.prefix}:idx:status:"

    # Platform state shared by all workers.
    def token(self, account: str) -> str:
        return f"{self.prefix}:token:{account}"

    def token_lock(self, account: str) -> str:
        return f"{self.prefix}:token:{account}:lock"

    def cache(self, account: str, name: str) -> str:
        return f"{self.prefix}:cache:{account}:{name}"

    def rate(self, account: str, endpoint: str = "post") -> str:
        return f"{self.prefix}:rate:{account}:{endpoint}"

    def dedupe(self, digest: str) -> str:
        return f"{self.prefix}:dedupe:{digest}"

    @property
    def schedule(self) -> str:
        """Sorted set: delivery id scored by due time (scheduled posts and long retry waits)."""
        return f"{self.prefix}:schedule"

    @property
    def schedule_claimed(self) -> str:
        """Sorted set: entries a dispatcher released but has not confirmed enqueued (score = lease end)."""
        return f"{self.prefix}:schedule:claimed"

    def account_slots(self, account: str) -> str:
        """Sorted set: the account's scheduled posts by due time (for slots and minimum spacing)."""
        return f"{self.prefix}:slots:{account}"

    @property
    def audit(self) -> str:
        """Stream: the audit log (who did what), trimmed by the retention purge."""
        return f"{self.prefix}:audit"

    @property
    def dispatcher_heartbeat(self) -> str:
        """String: epoch seconds of the dispatcher's last tick (scheduling warns when it goes quiet)."""
        return f"{self.prefix}:heartbeat:dispatcher"

    @property
    def schedule_wake(self) -> str:
        """List: pushed when an entry is scheduled, so a dispatcher waiting for a later one wakes up."""
        return f"{self.prefix}:schedule:wake"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"
