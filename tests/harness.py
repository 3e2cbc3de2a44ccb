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
import json
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
        account: Account | None = None, *, state: dict[str, Any] | None = None,
        saved: list[dict[str, Any]] | None = None, timeout: float = 5.0,
        options: dict[str, Any] | None = None, **fields: Any) -> DeliveryContext:
    """The context a worker would build for account ``name`` (real session, Redis and keys).

    ``steps`` collects the progress lines; ``state`` is what an earlier attempt saved (a retry resumes
    from it); ``saved`` collects every state the platform saves, after a JSON round trip as the worker
    stores it; ``options`` replaces single account options (typed fields, as parsed); ``fields`` set
    other ``DeliveryContext`` fields as a retry would have them (``on_state``, ``window_start``, ``duplicate``).
    """
    acc = account or runtime.settings.account(name)
    if options:
        acc = dataclasses.replace(acc, options=dataclasses.replace(acc.options, **options))
    on_state = (lambda s: saved.append(json.loads(json.dumps(s)))) if saved is not None else None
    return DeliveryContext(delivery_id=delivery_id or f"dl_{acc.platform}_test", account=acc,
                           session=runtime.session, timeout=timeout, redis=runtime.redis, keys=runtime.keys,
                           state=state if state is not None else {}, media_rewrite=runtime.settings.media_rewrite,
                           on_step=steps.append if steps is not None else None,
                           **{"on_state": on_state, **fields})


def platform_for(runtime: Any, name: str) -> Platform[Any]:
    account = runtime.settings.account(name)
    return get_platform(account.platform)(account)


def publish(runtime: Any, name: str, art: Article | None = None, *, override: str | None = None,
            steps: list[str] | None = None, delivery_id: str | None = None, payload: dict[str, Any] | None = None,
            default: str = "baic-catl.json", context: DeliveryContext | None = None, timeout: float = 5.0,
            **replace: Any) -> tuple[Receipt, Post]:
    """Compose ``art`` (default: ``default``; ``override``: the editor's text) for account ``name`` and
    publish it; returns (receipt, post).

    ``payload`` replaces the composed payload; other keywords replace single payload fields.
    ``context`` (from ``ctx``, for a test that looks at the saved state afterwards) replaces the one
    built from ``steps``, ``delivery_id`` and ``timeout``; its account is the one published for.
    """
    c = context or ctx(runtime, name, steps, delivery_id, timeout=timeout)
    platform = get_platform(c.account.platform)(c.account)
    post = platform.compose(art or article(default), override)
    if payload is not None:
        post = dataclasses.replace(post, payload=payload)
    if replace:
        post = dataclasses.replace(post, payload={**post.payload, **replace})
    return platform.publish(post, c), post


def inject(emulator: Any, **fault: Any) -> None:
    requests.post(emulator.url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()


def configure(emulator: Any, **config: Any) -> None:
    """``POST /_sandbox/config`` (emulators with switches of their own, e.g. WeChat's ``publish_status``)."""
    requests.post(emulator.url + "/_sandbox/config", json=config, timeout=5).raise_for_status()


def sandbox_posts(emulator: Any) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = requests.get(emulator.url + "/_sandbox/posts", timeout=5).json()["posts"]
    return posts


# --- the table-driven fault runner ----------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    """One row: inject ``fault`` (a ``/_sandbox/faults`` body), publish for ``account``, expect ``error``.

    ``message``: text(s) the error must contain; ``exact``: the class must be ``error`` itself (not a
    subclass); ``status`` / ``code``: what the error must carry; ``posts``: how many posts the
    emulator must hold afterwards (None: not checked); ``publish``: keyword arguments for ``publish``;
    ``check``: a further test of the error. For emulators that need them: ``config``, a
    ``/_sandbox/config`` body posted first; ``make_article(emulator)``, the article to publish (e.g.
    with images the emulator serves); ``after(emulator)``, a check of the emulator afterwards (e.g.
    which calls were made).
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
    config: dict[str, Any] | None = None
    make_article: Callable[[Any], Article] | None = None
    after: Callable[[Any], bool] | None = None

    def __str__(self) -> str:
        return self.name


def run_fault(case: Fault, emulators: dict[str, Any], runtime: Any, *,
              steps: list[str] | None = None) -> DeliveryError:
    """Run one row against the account's emulator; returns the error for any further checks.

    ``steps`` collects the publish's progress lines, for a test that checks them too.
    """
    platform_id = runtime.settings.account(case.account).platform
    emulator = emulators[platform_id]
    if case.config is not None:
        configure(emulator, **case.config)
    if case.fault is not None:
        inject(emulator, path=case.path, **case.fault)
    options = dict(case.publish)
    art = case.make_article(emulator) if case.make_article else options.pop("art", None)
    with pytest.raises(case.error) as info:
        publish(runtime, case.account, art, steps=steps, **options)
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
    if case.after is not None:
        assert case.after(emulator), (case.name, "the emulator check after the error")
    secrets = [s.reveal() for s in runtime.settings.account(case.account).credentials.values()]
    assert not any(s in shown for s in secrets), (case.name, "a secret in the error")
    return err


def faults(cases: Sequence[Fault]) -> Any:
    """``@faults(TABLE)``: parametrize a test over the rows, named by ``Fault.name``."""
    return pytest.mark.parametrize("case", list(cases), ids=str)


# --- the kill -9 proof ------------------------------------------------------------------------------

def posts_with(emulator: Any, token: str) -> int:
    """How many of the emulator's posts carry ``token`` (each article of a kill round has its own)."""
    return sum(token in repr(p) for p in sandbox_posts(emulator))


@dataclass(frozen=True)
class Hold:
    """Where and how ``kill_while_held`` holds each round's publish answers open, and sees them held.

    The default suits a one-call publish: one hold per article at ``path``, matched by the article's
    token in the request, before the round is shared; held once the emulator lists each token's post.
    A multi-step flow (the request names a draft, not the article; or the match is only known once the
    delivery exists) subclasses it: ``before`` runs before the round's shares, ``after`` once their
    delivery ids are known, ``held`` says every held request has been handled (the post is made).
    """

    path: str

    def before(self, emulator: Any, tokens: list[str], seconds: float) -> None:
        for token in tokens:
            inject(emulator, path=self.path, kind="hold", seconds=seconds, count=1, match=token)

    def after(self, emulator: Any, ids: list[str], seconds: float) -> None:
        """Nothing by default."""

    def held(self, emulator: Any, tokens: list[str], ids: list[str]) -> bool:
        return all(posts_with(emulator, t) for t in tokens)


def demo_table(emulators: dict[str, Any], platform: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The platform's first demo account as a config table on the test emulator; ``options`` override."""
    spec = get_platform(platform).spec
    table = next(iter(spec.demo_accounts().values()))
    table["api_base"] = table["api_base"].replace(f"http://127.0.0.1:{spec.sandbox.port}", emulators[platform].url)
    if options:
        table["options"] = {**table.get("options", {}), **options}
    return table


def short_lease(label: str, accounts: dict[str, dict[str, Any]], *, lease: float = 6.0) -> tuple[Any, dict[str, str]]:
    """A runtime and a worker environment on a config of their own (own Redis prefix and queue) with a
    short lease (``http_timeout`` one second less), so a killed worker's lease expires within a test.

    ``accounts``: config tables by name (see ``demo_table``). The caller runs ``test_chaos.cleanup``.
    """
    import secrets
    import tempfile
    from pathlib import Path

    from conftest import REDIS_URL, _toml_table
    from test_chaos import env_for

    from sharer.config import load_settings
    from sharer.runtime import Runtime

    tag = secrets.token_hex(4)
    tmp = Path(tempfile.mkdtemp(prefix=f"sharer-{label}-"))
    config = tmp / "sharer.toml"
    config.write_text(
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-{label}-{tag}"\n\n[celery]\nqueue = "sharer-{label}-{tag}"\n\n'
        f'[defaults]\ntimezone = "UTC"\n\n[delivery]\nlease_seconds = {lease}\nhttp_timeout = {lease - 1}\n'
        "retry = { base = 0.1, cap = 0.5, max_attempts = 6 }\nduplicate_window_hours = 0\n\n"
        + "\n".join(_toml_table(name, table) for name, table in accounts.items()))
    return Runtime(load_settings(config)), env_for(config, tmp)


def kill_article(token: str) -> Article:
    """The default article of a kill round; ``token`` is in its title and URL."""
    return Article(title=f"Kill {token}", url=f"https://news.example.com/kill/{token}/",
                   summary="A worker dies mid-publish; the post must neither vanish nor double.", lang="en")


def kill_while_held(emulators: dict[str, Any], platform: str, fault_path: str | Hold, expect: str, *,
                    loops: int = 20, children: int = 4, options: dict[str, Any] | None = None,
                    lease: float = 6.0, article_for: Callable[[str], Article] = kill_article,
                    own_post_id: bool = False) -> list[Any]:
    """SIGKILL worker pool children while the platform holds the publish answer open, ``loops`` times.

    One worker (``children`` pool processes, killed together each round) on a config of its own with a
    short lease (``lease``, 6 s; the client's read timeout a second less, the emulator holds two seconds
    longer); the account is the platform's demo account on the test emulator (``options`` override its
    options). ``fault_path``: the path to hold, or a ``Hold`` for a multi-step flow; ``article_for``:
    each round's article from its token. Each held request has already made its post. After the
    sweeper expires the dead leases every delivery must end ``expect`` (``needs_review`` for a platform
    that cannot look, ``delivered`` for one that finds its post or resends with the same idempotency
    key) and every article must have exactly one post; ``own_post_id``: a delivered one's ``post_id``
    must be the ``id`` of its own article's post. Returns the settled deliveries.
    """
    import os
    import secrets
    import signal
    import time

    from conftest import Worker
    from test_chaos import alive, cleanup, pool_children, settle, wait_for

    from sharer import service

    emu, hold = emulators[platform], fault_path if isinstance(fault_path, Hold) else Hold(fault_path)
    seconds, account = lease + 2.0, f"kill-{platform}"
    rt, env = short_lease(f"kill-{platform}", {account: demo_table(emulators, platform, options)}, lease=lease)
    run = secrets.token_hex(3)
    ids: list[str] = []
    tokens: dict[str, str] = {}
    t0 = time.monotonic()
    w = Worker(env, concurrency=children)
    try:
        for first in range(0, loops, children):
            wait_for(lambda: len([k for k in pool_children(w.proc.pid) if alive(k)]) == children, 30,
                     "the pool to replace the killed children")  # a slow respawn must not eat a round
            batch = [f"{run}k{i:03d}z" for i in range(first, min(first + children, loops))]
            hold.before(emu, batch, seconds)
            held = [service.share(rt, article_for(t), [account]).deliveries[0].id for t in batch]
            tokens.update(zip(held, batch))
            hold.after(emu, held, seconds)
            wait_for(lambda h=held, b=batch: hold.held(emu, b, h), 30, f"round {first}: the held posts")
            assert all(d.status == "sending" for d in rt.store.get_many(held, with_events=False))  # mid-call
            kids = [k for k in pool_children(w.proc.pid) if alive(k)]
            assert len(kids) == children, kids  # every child is inside a held publish
            for kid in kids:
                os.kill(kid, signal.SIGKILL)
            ids += held
            time.sleep(0.2)
        kills = time.monotonic() - t0
        ds = settle(rt, ids, timeout=90)
    finally:
        w.stop()
        cleanup(rt)
    assert ds is not None
    assert {d: posts_with(emu, t) for d, t in tokens.items()} == {d: 1 for d in tokens}, "a post was lost or doubled"
    posts = sandbox_posts(emu)
    for d in ds:
        assert d.status == expect, (d.status, d.error)
        assert "unknown" in [e["status"] for e in d.events]  # the interrupted attempt was reconciled
        if own_post_id and d.status == "delivered":
            [own] = [p for p in posts if tokens[d.id] in repr(p)]
            assert d.post_id == own["id"], (d.id, d.post_id, own["id"])
    print(f"\n{platform} ({hold.path}): {loops} kills in {kills:.1f}s, all {expect} after {time.monotonic() - t0:.1f}s")
    return ds
