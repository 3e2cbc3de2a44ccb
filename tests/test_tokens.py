"""SharedToken: one cache and one refresh at a time across worker processes, compare-and-swap
invalidation, rotating refresh tokens written before use. Real Redis (test db, own prefix), real
processes; the token endpoint is a function counting its calls in Redis."""

from __future__ import annotations

import multiprocessing
import secrets
import time

import pytest
import redis as redis_lib
from conftest import REDIS_URL

from sharer.errors import PermanentError, TransientError
from sharer.store.keys import Keys
from sharer.store.tokens import Grant, SharedToken, seed_of


@pytest.fixture
def keys():
    k = Keys(prefix=f"sharer-test-tok-{secrets.token_hex(4)}")
    yield k
    r = redis_lib.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(match=f"{k.prefix}*"):
        r.delete(key)


class Endpoint:
    """A token endpoint: each call INCRs a counter; refresh tokens rotate (``r1`` → ``r2`` …) and a
    spent one is refused, as X does."""

    def __init__(self, keys: Keys, lifetime: float = 7200.0, delay: float = 0.0, rotate: bool = False):
        self.keys, self.lifetime, self.delay, self.rotate = keys, lifetime, delay, rotate

    def __call__(self, refresh: str | None) -> Grant:
        r = redis_lib.Redis.from_url(REDIS_URL)
        n = r.incr(self.keys.cache("acct", "calls"))
        if self.rotate:
            current = (r.get(self.keys.cache("acct", "valid_refresh")) or b"r0").decode()
            if refresh != current:
                raise PermanentError(f"refresh token {refresh} is spent")
            r.set(self.keys.cache("acct", "valid_refresh"), f"r{n}")
        time.sleep(self.delay)
        return Grant(f"tok-{n}", self.lifetime, f"r{n}" if self.rotate else None)

    def calls(self) -> int:
        return int(redis_lib.Redis.from_url(REDIS_URL).get(self.keys.cache("acct", "calls")) or 0)


def token(keys: Keys, endpoint: Endpoint, **kw) -> SharedToken:
    return SharedToken(redis_lib.Redis.from_url(REDIS_URL), keys.token("acct"), keys.token_lock("acct"), endpoint,
                       **kw)


def test_cached_until_near_expiry(keys):
    ep = Endpoint(keys)
    steps: list[str] = []
    store = token(keys, ep, on_refresh=steps.append)
    assert store.get() == store.get() == "tok-1" and ep.calls() == 1 and steps == ["access token refreshed"]
    short = Endpoint(keys, lifetime=0.4)  # renewed at half its life when that is under the margin
    store = token(keys, short, seed="other")
    assert store.get() == "tok-2"
    time.sleep(0.25)
    assert store.get() == "tok-3"


def _worker(prefix: str, out: multiprocessing.Queue) -> None:
    keys = Keys(prefix=prefix)
    out.put(token(keys, Endpoint(keys, delay=0.3), poll=0.02).get())


def test_one_refresh_for_many_worker_processes(keys):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(keys.prefix, out)) for _ in range(6)]
    for p in procs:
        p.start()
    got = [out.get(timeout=20) for _ in procs]
    for p in procs:
        p.join(10)
    assert got == ["tok-1"] * 6 and Endpoint(keys).calls() == 1


def test_invalidation_is_compare_and_swap(keys):
    ep = Endpoint(keys)
    a, b = token(keys, ep), token(keys, ep)
    first = a.get()
    assert a.refresh(failed=first) == "tok-2"   # the platform said tok-1 expired
    assert b.refresh(failed=first) == "tok-2"   # a late worker reporting tok-1 does not discard tok-2
    assert ep.calls() == 2 and b.get() == "tok-2"


def test_rotating_refresh_tokens_are_stored_before_use(keys):
    ep = Endpoint(keys, rotate=True)
    store = token(keys, ep, seed=seed_of("r0"), refresh_token="r0")
    assert store.get() == "tok-1"
    assert store.load().refresh_token == "r1"  # persisted before the access token was handed out
    # the platform rejects tok-1: the next refresh spends r1 (r0 is dead), from any worker
    other = token(keys, ep, seed=seed_of("r0"), refresh_token="r0")
    assert other.refresh(failed="tok-1") == "tok-2" and store.load().refresh_token == "r2"
    assert store.get() == "tok-2" and ep.calls() == 2


def test_a_new_configured_credential_retires_the_old_record(keys):
    ep = Endpoint(keys)
    assert token(keys, ep, seed="gen-1").get() == "tok-1"
    assert token(keys, ep, seed="gen-2").get() == "tok-2"  # re-authorised in the config


def test_a_lock_left_by_a_killed_worker_expires(keys):
    r = redis_lib.Redis.from_url(REDIS_URL)
    r.set(keys.token_lock("acct"), "dead-worker", px=300)
    ep = Endpoint(keys)
    started = time.monotonic()
    assert token(keys, ep, poll=0.02).get() == "tok-1"
    assert 0.2 < time.monotonic() - started < 3 and ep.calls() == 1


def test_waiting_too_long_is_transient_and_a_failed_fetch_frees_the_lock(keys):
    r = redis_lib.Redis.from_url(REDIS_URL)
    r.set(keys.token_lock("acct"), "slow-worker", px=5000)
    with pytest.raises(TransientError, match="another worker"):
        token(keys, Endpoint(keys), wait_seconds=0.3, poll=0.02).get()
    r.delete(keys.token_lock("acct"))

    def refused(_: str | None) -> Grant:
        raise PermanentError("credentials refused")

    with pytest.raises(PermanentError):
        token(keys, refused).get()
    assert r.get(keys.token_lock("acct")) is None  # released: the next worker may try at once
    assert token(keys, Endpoint(keys)).get() == "tok-1"
