"""The platform test harness: shared article/context/publish helpers and one table-driven fault runner.

Every platform test file uses these instead of its own copies::

    from harness import Fault, article, ctx, offline, publish, run_fault

    offline(Telegram, chat_id="@x")         # an instance for composition tests (no network, UTM on)
    publish(runtime, "telegram-text")        # compose the article for the account and publish it
    FAULTS = [Fault("502 is ambiguous", "wecom-news", {"kind": "status", "status": 502},
                    Ambiguous, "HTTP 502", path="/cgi-bin/webhook/send")]
    @pytest.mark.parametrize("case", FAULTS, ids=str)
    def test_faults(case, emulators, runtime):
        run_fault(case, emulators, runtime)

Nothing of ours is mocked: the fault is injected into the platform's emulator over HTTP and the
real client meets it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from conftest import EXAMPLES

from sharer.article import Article
from sharer.config import Account, Secret
from sharer.errors import DeliveryError
from sharer.loaders import load_article
from sharer.platforms import get_platform
from sharer.platforms.base import DeliveryContext, Platform, Post, Receipt

TXT_URL = "https://news.example.com/en/2023/03/13/baic-catl-cooperation"  # .txt articles carry no URL


def article(name: str, **replace: Any) -> Article:
    """An example article by file name (``examples/``); ``replace`` overrides fields."""
    art = load_article(str(EXAMPLES / name), url=TXT_URL if name.endswith(".txt") else None)
    return dataclasses.replace(art, **replace) if replace else art


def offline(cls: type[Platform[Any]], *, name: str | None = None, credentials: dict[str, str] | None = None,
            utm: bool = True, **options: Any) -> Platform[Any]:
    """A platform instance for composition tests: options parsed as a config would, no emulator."""
    pid = cls.spec.id
    tags = {"utm_source": pid, "utm_medium": "social", "utm_campaign": "sharer"} if utm else None
    account = Account(name or f"{pid}-t", pid, "http://127.0.0.1:1", options=cls.parse_options(options), utm=tags,
                      credentials={k: Secret(v) for k, v in (credentials or {}).items()})
    return cls(account)


def ctx(runtime: Any, name: str, steps: list[str] | None = None, delivery_id: str | None = None,
        account: Account | None = None, **fields: Any) -> DeliveryContext:
    """The context a worker would build for account ``name`` (real session, Redis and keys).

    ``fields`` set other ``DeliveryContext`` fields as a retry would have them (``state``, ``on_state``,
    ``window_start``, ``duplicate``, ``timeout``).
    """
    acc = account or runtime.settings.account(name)
    base: dict[str, Any] = {"timeout": 5, "media_rewrite": runtime.settings.media_rewrite,
                            "on_step": steps.append if steps is not None else None}
    return DeliveryContext(delivery_id=delivery_id or f"dl_{acc.platform}_test", account=acc,
                           session=runtime.session, redis=runtime.redis, keys=runtime.keys, **{**base, **fields})


def platform_for(runtime: Any, name: str) -> Platform[Any]:
    account = runtime.settings.account(name)
    return get_platform(account.platform)(account)


def publish(runtime: Any, name: str, art: Article | None = None, *, override: str | None = None,
            steps: list[str] | None = None, delivery_id: str | None = None, payload: dict[str, Any] | None = None,
            default: str = "baic-catl.json", context: dict[str, Any] | None = None,
            **replace: Any) -> tuple[Receipt, Post]:
    """Compose ``art`` (default: ``default``; ``override``: the editor's text) for account ``name`` and
    publish it; returns (receipt, post).

    ``payload`` replaces the composed payload; other keywords replace single payload fields;
    ``context``: more ``DeliveryContext`` fields (see ``ctx``), e.g. ``{"timeout": 1}``.
    """
    platform = platform_for(runtime, name)
    post = platform.compose(art or article(default), override)
    if payload is not None:
        post = dataclasses.replace(post, payload=payload)
    if replace:
        post = dataclasses.replace(post, payload={**post.payload, **replace})
    return platform.publish(post, ctx(runtime, name, steps, delivery_id, **(context or {}))), post


def inject(emulator: Any, **fault: Any) -> None:
    requests.post(emulator.url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()


def sandbox_posts(emulator: Any) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = requests.get(emulator.url + "/_sandbox/posts", timeout=5).json()["posts"]
    return posts


# --- the table-driven fault runner ----------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    """One row: inject ``fault`` (a ``/_sandbox/faults`` body), publish for ``account``, expect ``error``.

    ``message``: text(s) the error must contain; ``exact``: the class must be ``error`` itself (not a
    subclass); ``status`` / ``code``: what the error must carry; ``posts``: how many posts the
    emulator must hold afterwards (None: not checked); ``publish``: keyword arguments for ``publish``.
    """

    name: str
    account: str
    fault: dict[str, Any] | None
    error: type[DeliveryError]
    message: str | Sequence[str] = ()
    path: str = ""
    exact: bool = False
    status: int | None = None
    code: str | None = None
    posts: int | None = 0
    publish: dict[str, Any] = field(default_factory=dict)
    check: Callable[[DeliveryError], bool] | None = None

    def __str__(self) -> str:
        return self.name


def run_fault(case: Fault, emulators: dict[str, Any], runtime: Any) -> DeliveryError:
    """Run one row against the account's emulator; returns the error for any further checks."""
    platform_id = runtime.settings.account(case.account).platform
    emulator = emulators[platform_id]
    if case.fault is not None:
        inject(emulator, path=case.path, **case.fault)
    with pytest.raises(case.error) as info:
        publish(runtime, case.account, **case.publish)
    err = info.value
    shown = str(err)
    if case.exact:
        assert type(err) is case.error, (case.name, type(err).__name__, shown)
    for needle in [case.message] if isinstance(case.message, str) else case.message:
        assert needle in shown, (case.name, shown)
    if case.status is not None:
        assert err.status == case.status, (case.name, err.status)
    if case.code is not None:
        assert err.code == case.code, (case.name, err.code)
    if case.check is not None:
        assert case.check(err), (case.name, shown)
    if case.posts is not None:
        assert len(sandbox_posts(emulator)) == case.posts, case.name
    secrets = [s.reveal() for s in runtime.settings.account(case.account).credentials.values()]
    assert not any(s in shown for s in secrets), (case.name, "a secret in the error")
    return err


def faults(cases: Sequence[Fault]) -> Any:
    """``@faults(TABLE)``: parametrize a test over the rows, named by ``Fault.name``."""
    return pytest.mark.parametrize("case", list(cases), ids=str)


# --- the kill -9 proof ------------------------------------------------------------------------------

def kill_while_held(emulators: dict[str, Any], platform: str, fault_path: str, expect: str, *,
                    loops: int = 20, children: int = 4, options: dict[str, Any] | None = None) -> list[Any]:
    """SIGKILL worker pool children while the platform holds the publish answer open, ``loops`` times.

    One worker (``children`` pool processes, killed together each round) on a config of its own with a
    short lease (6 s; the client's read timeout 5 s, the emulator holds 8 s); the account is the
    platform's demo account on the test emulator. Each held request has already made its post. After
    the sweeper expires the dead leases every delivery must end ``expect`` (``needs_review`` for a
    platform that cannot look, ``delivered`` for one that finds its post or resends with the same
    idempotency key) and every article must have exactly one post. Returns the settled deliveries.
    """
    import os
    import secrets
    import signal
    import tempfile
    import time
    from pathlib import Path

    from conftest import REDIS_URL, Worker, _toml_table
    from test_chaos import alive, cleanup, env_for, pool_children, settle, wait_for

    from sharer import service
    from sharer.config import load_settings
    from sharer.platforms import get_platform
    from sharer.runtime import Runtime

    emu, spec = emulators[platform], get_platform(platform).spec
    table = next(iter(spec.demo_accounts().values()))
    table["api_base"] = table["api_base"].replace(f"http://127.0.0.1:{spec.sandbox.port}", emu.url)
    if options:
        table["options"] = {**table.get("options", {}), **options}
    tag, account = secrets.token_hex(4), f"kill-{platform}"
    tmp = Path(tempfile.mkdtemp(prefix=f"sharer-kill-{platform}-"))
    config = tmp / "sharer.toml"
    config.write_text(
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-kill-{tag}"\n\n[celery]\nqueue = "sharer-kill-{tag}"\n\n'
        '[defaults]\ntimezone = "UTC"\n\n[delivery]\nlease_seconds = 6\nhttp_timeout = 5\n'
        "retry = { base = 0.1, cap = 0.5, max_attempts = 6 }\nduplicate_window_hours = 0\n\n"
        + _toml_table(account, table))
    rt = Runtime(load_settings(config))
    run = secrets.token_hex(3)
    ids: list[str] = []
    tokens: dict[str, str] = {}

    def posts_with(token: str) -> int:
        return sum(token in repr(p) for p in sandbox_posts(emu))

    w = Worker(env_for(config, tmp), concurrency=children)
    try:
        for first in range(0, loops, children):
            wait_for(lambda: len([k for k in pool_children(w.proc.pid) if alive(k)]) == children, 30,
                     "the pool to replace the killed children")  # a slow respawn must not eat a round
            held = []
            for i in range(first, min(first + children, loops)):
                token = f"{run}k{i:03d}z"
                inject(emu, path=fault_path, kind="hold", seconds=8.0, count=1, match=token)
                art = Article(title=f"Kill {token}", url=f"https://news.example.com/kill/{token}/",
                              summary="A worker dies mid-publish; the post must neither vanish nor double.",
                              lang="en")
                did = service.share(rt, art, [account]).deliveries[0].id
                held.append(did)
                tokens[did] = token
            wait_for(lambda h=held: all(posts_with(tokens[d]) for d in h), 20, f"round {first}: the held posts")
            assert all(d.status == "sending" for d in rt.store.get_many(held, with_events=False))  # mid-call
            kids = [k for k in pool_children(w.proc.pid) if alive(k)]
            assert len(kids) == children, kids  # every child is inside a held publish
            for kid in kids:
                os.kill(kid, signal.SIGKILL)
            ids += held
            time.sleep(0.2)
        ds = settle(rt, ids, timeout=60)
    finally:
        w.stop()
        cleanup(rt)
    assert ds is not None
    assert {d: posts_with(t) for d, t in tokens.items()} == {d: 1 for d in tokens}, "a post was lost or doubled"
    for d in ds:
        assert d.status == expect, (d.status, d.error)
        assert "unknown" in [e["status"] for e in d.events]  # the interrupted attempt was reconciled
    return ds
