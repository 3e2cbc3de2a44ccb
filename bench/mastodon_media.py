"""A share with an image to ten Mastodon accounts: the media-processing wait, fixed 1 s polls vs backoff.

The Mastodon emulator answers ``206 Partial Content`` to the first two polls of a new upload (as a
busy instance does) and ``200`` after. Ten deliveries run one after another in this process
(``sharer.delivery.run_delivery``, as a worker child would), first with the old fixed 1 s poll
(``media_poll_interval = 1.0``, ``media_poll_max_interval = 1.0``), then with the defaults (0.1 s,
doubling). Usage: python bench/mastodon_media.py [--accounts 10]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharer import service  # noqa: E402
from sharer.config import load_settings  # noqa: E402
from sharer.delivery import run_delivery  # noqa: E402
from sharer.loaders import load_article  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402
from sharer.sandbox.run import emulator_class  # noqa: E402


def run(mastodon_url: str, site_url: str, accounts: int, options: str) -> float:
    tag = secrets.token_hex(3)
    cfg = Path(tempfile.mkdtemp()) / "sharer.toml"
    tables = "".join(f'[accounts.m{i}]\nplatform = "mastodon"\napi_base = "{mastodon_url}"\n'
                     f'credentials = {{ access_token = "sandbox:" }}\noptions = {{ {options} }}\n\n'
                     for i in range(accounts))
    cfg.write_text(f'[redis]\nurl = "redis://127.0.0.1:6379/14"\nprefix = "bench-mm-{tag}"\n'
                   f'[celery]\nqueue = "bench-mm-{tag}"\n[delivery]\nduplicate_window_hours = 0\n'
                   f'[media]\nrewrite = {{ "https://news.example.com/" = "{site_url}/" }}\n\n' + tables)
    rt = Runtime(load_settings(cfg))
    try:
        article = load_article(str(ROOT / "examples" / "baic-catl.json"))
        result = service.share(rt, article, [f"m{i}" for i in range(accounts)])
        t0 = time.perf_counter()
        for d in result.deliveries:
            run_delivery(rt, d.id, d.account)
        took = time.perf_counter() - t0
        statuses = {d.status for d in service.status(rt, result.share_id)}
        assert statuses == {"delivered"}, statuses
        return took
    finally:
        for k in rt.redis.scan_iter(match=f"*bench-mm-{tag}*", count=1000):
            rt.redis.delete(k)
        rt.queue.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10)
    args = ap.parse_args()
    masto = emulator_class("mastodon")("127.0.0.1", 0).start()
    site = emulator_class("site")("127.0.0.1", 0).start()
    try:
        old = run(masto.url, site.url, args.accounts, "media_poll_interval = 1.0, media_poll_max_interval = 1.0")
        new = run(masto.url, site.url, args.accounts, "")
    finally:
        masto.stop()
        site.stop()
    print(f"| media polls | {args.accounts} deliveries with an image, one after another | per delivery |")
    print("|---|---|---|")
    print(f"| fixed 1 s (before) | {old:.2f} s | {old / args.accounts:.2f} s |")
    print(f"| 0.1 s doubling (now) | {new:.2f} s | {new / args.accounts:.2f} s |")


if __name__ == "__main__":
    main()
