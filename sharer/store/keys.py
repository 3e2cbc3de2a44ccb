"""Every Redis key sharer uses, under one prefix (``[redis] prefix``, default ``sharer``).

On a Redis Cluster (``cluster=True``) the prefix is written as a hash tag, ``{sharer}:dlv:…``: every
key of one deployment hashes to the same slot, so every Lua script and MULTI/EXEC stays on one node.
A single Redis or a Sentinel group keeps the plain ``sharer:dlv:…`` names its existing data has.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "sharer"
    cluster: bool = False

    @property
    def root(self) -> str:
        """What every key starts with: the prefix, or on a cluster the prefix as a hash tag."""
        return f"{{{self.prefix}}}" if self.cluster else self.prefix

    def share(self, share_id: str) -> str:
        return f"{self.root}:share:{share_id}"

    def delivery(self, delivery_id: str) -> str:
        return f"{self.root}:dlv:{delivery_id}"

    def events(self, delivery_id: str) -> str:
        return f"{self.root}:dlv:{delivery_id}:events"

    def delivery_post(self, delivery_id: str) -> str:
        """String: the delivery's composed post (``codec.pack_post``), kept out of the record's hash."""
        return f"{self.root}:dlv:{delivery_id}:post"

    def delivery_long(self, delivery_id: str) -> str:
        """Hash: the record's values too long for the listpack encoding (``codec.split_long``)."""
        return f"{self.root}:dlv:{delivery_id}:long"

    def delivery_keys(self, delivery_id: str) -> tuple[str, str, str, str]:
        """Every key of one delivery: record, events, post, long values (what purge deletes)."""
        return (self.delivery(delivery_id), self.events(delivery_id), self.delivery_post(delivery_id),
                self.delivery_long(delivery_id))

    # The packed form of settled shares (``store/cold.py``).
    def cold(self, share_id: str) -> str:
        """String: a settled share with every delivery, packed (``cold.pack``)."""
        return f"{self.root}:cold:{share_id}"

    def cold_map(self, n: int) -> str:
        """Hash: delivery id -> share id for packed deliveries whose id falls in bucket ``n``."""
        return f"{self.root}:cold-map:{n}"

    @property
    def cold_cursor(self) -> str:
        """String: the shares-index member the packing walk has reached."""
        return f"{self.root}:cold-cursor"

    @property
    def cold_pending(self) -> str:
        """Lexicographic sorted set: shares the walk passed that were not settled yet (looked at again)."""
        return f"{self.root}:cold-pending"

    # Indexes are lexicographic sorted sets (all scores 0) whose members are
    # "<13-digit created ms>:<id>", so time order, cursors and --since are one ZRANGE BYLEX.
    @property
    def shares_index(self) -> str:
        return f"{self.root}:idx:shares"

    @property
    def all_index(self) -> str:
        return f"{self.root}:idx:all"

    def status_index(self, status: str) -> str:
        return f"{self.root}:idx:status:{status}"

    def account_index(self, account: str) -> str:
        return f"{self.root}:idx:account:{account}"

    def title_index(self, token: str) -> str:
        """Version 1 of the title index (a sorted set per token); only the migration to version 2 reads
        these names, to delete them."""
        return f"{self.root}:idx:title:{token}"

    def title_postings(self, week: int, token: str) -> str:
        """String: the 11-byte entries (``titles.pack``) of the shares created in ``week`` (ms // one
        week) whose title has ``token``, appended as they are written; it expires when the week has
        left the retention window."""
        return f"{self.root}:idx:title-w:{week}:{token}"

    def title_odd(self, token: str) -> str:
        """Sorted set: shares whose title has ``token`` but whose member is not derivable from the id
        (``"<created ms>:<share id>"``, as the shares index): backdated, older, or non-standard ids."""
        return f"{self.root}:idx:title-odd:{token}"

    @property
    def title_sealed(self) -> str:
        """String: the newest week whose title posting strings were rewritten at their exact size."""
        return f"{self.root}:idx:title-sealed"

    @property
    def title_index_version(self) -> str:
        """Version 1 of the title index was complete ("1"); read by processes of an earlier version, so
        it stays (with version 1's sorted sets) for a day after version 2 is built: a rolling upgrade."""
        return f"{self.root}:idx:title-version"

    @property
    def title_index_ready(self) -> str:
        """String: epoch seconds at which version 2 of the title index held every share in the log (new
        shares are indexed when written)."""
        return f"{self.root}:idx:title-v2-ready"

    # Platform state shared by all workers.
    def token(self, account: str) -> str:
        return f"{self.root}:token:{account}"

    def token_lock(self, account: str) -> str:
        return f"{self.root}:token:{account}:lock"

    def cache(self, account: str, name: str) -> str:
        return f"{self.root}:cache:{account}:{name}"

    def rate(self, account: str, endpoint: str = "post") -> str:
        return f"{self.root}:rate:{account}:{endpoint}"

    def dedupe(self, digest: str) -> str:
        return f"{self.root}:dedupe:{digest}"

    @property
    def schedule(self) -> str:
        """Sorted set: delivery id scored by due time (scheduled posts and long retry waits)."""
        return f"{self.root}:schedule"

    @property
    def schedule_claimed(self) -> str:
        """Sorted set: entries a dispatcher released but has not confirmed enqueued (score = lease end)."""
        return f"{self.root}:schedule:claimed"

    def account_slots(self, account: str) -> str:
        """Sorted set: the account's scheduled posts by due time (for slots and minimum spacing)."""
        return f"{self.root}:slots:{account}"

    @property
    def audit(self) -> str:
        """Stream: the audit log (who did what), trimmed by the retention purge."""
        return f"{self.root}:audit"

    @property
    def dispatcher_heartbeat(self) -> str:
        """String: epoch seconds of the dispatcher's last tick (scheduling warns when it goes quiet)."""
        return f"{self.root}:heartbeat:dispatcher"

    @property
    def schedule_wake(self) -> str:
        """List: pushed when an entry is scheduled, so a dispatcher waiting for a later one wakes up."""
        return f"{self.root}:schedule:wake"

    @property
    def events_channel(self) -> str:
        return f"{self.root}:events"
