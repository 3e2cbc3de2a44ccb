"""The schedule stays complete past 5,000 entries: pages with a cursor, titles in one round trip, the
API's ``next_cursor`` and the page's "Later posts" link. Real Redis under a prefix of its own."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import replace

import pytest
from web_support import bearer, sign_in

from sharer import service
from sharer.config import load_settings
from sharer.errors import InputError
from sharer.runtime import Runtime
from sharer.web.app import create_app

N = 5300


@pytest.fixture(scope="module")
def big(web_config, runtime):
    """A runtime and an app over a schedule of 5,300 posts in six shares (plus two retry waits)."""
    settings = replace(load_settings(web_config), prefix=f"{runtime.settings.prefix}-sched-{secrets.token_hex(3)}")
    rt = Runtime(settings)
    first = time.time() + 3600
    ids: list[str] = []
    for s in range(0, N, 1000):
        sid = f"sh_page{s}"
        ds = [{"id": f"dl_page{s + i:05d}", "account": "hook-a" if i % 3 else "hook-b", "platform": "webhook",
               "scheduled_for": first + (s + i) * 5.0, "timezone": "Asia/Shanghai", "slot_label": "x",
               "version": 0, "max_lateness": 900, "message": "scheduled"} for i in range(min(1000, N - s))]
        rt.store.create_share({"id": sid, "title": f"定时 {s}", "url": "https://x.example",
                               "delivery_ids": [d["id"] for d in ds]}, ds, status="scheduled")
        ids += [d["id"] for d in ds]
    rt.store.create_share({"id": "sh_pagewait", "title": "waiting", "url": "https://x.example",
                           "delivery_ids": ["dl_pagewait1", "dl_pagewait2"]},
                          [{"id": f"dl_pagewait{i}", "account": "hook-a", "platform": "webhook"} for i in (1, 2)],
                          status="retrying")
    for i in (1, 2):  # long retry waits share the schedule set; they are not scheduled posts
        rt.schedule.defer(f"dl_pagewait{i}", first + 2000 * 5.0 + i)
    yield rt, create_app(settings), ids
    for key in rt.redis.scan_iter(match=f"{settings.prefix}*", count=2000):
        rt.redis.delete(key)


def test_every_scheduled_post_is_listed_in_due_order_across_pages(big):
    rt, _, ids = big
    assert [d.id for d in service.schedule_list(rt)] == ids  # no 5,000 cap
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = service.schedule_page(rt, limit=400, cursor=cursor)
        pages += 1
        seen += [d.id for d in page]
        if cursor is None:
            break
    assert seen == ids and pages == 14
    hook_b = [d.id for d in service.schedule_list(rt, account="hook-b")]
    assert hook_b == [i for n, i in enumerate(ids) if n % 1000 % 3 == 0]
    with pytest.raises(InputError, match="cursor"):
        service.schedule_page(rt, cursor="nonsense")


def test_the_api_pages_with_next_cursor(big):
    rt, app, ids = big
    from fastapi.testclient import TestClient

    api = TestClient(app)
    headers = bearer(app, "viewer")
    seen, cursor = [], None
    while True:
        r = api.get("/api/schedule", params={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                    headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [d["id"] for d in body["deliveries"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert api.get("/api/schedule", params={"cursor": "x:y:z"}, headers=headers).status_code == 422


def test_the_schedule_page_shows_titles_and_links_to_later_posts(big):
    rt, app, ids = big
    editor = sign_in(app, "editor")
    html = editor.get("/schedule").text
    assert "定时 0" in html and "定时 1000" not in html  # 500 posts on the first page: the first share only
    nxt = re.search(r'href="/schedule\?cursor=([^"]+)" rel="next"', html)
    assert nxt, html[-2000:]
    seen_titles = set()
    url = "/schedule"
    for _ in range(20):
        html = editor.get(url).text
        seen_titles |= set(re.findall(r'class="share-title">([^<]+)<', html))
        nxt = re.search(r'href="(/schedule\?cursor=[^"]+)" rel="next"', html)
        if not nxt:
            break
        url = nxt.group(1).replace("&amp;", "&")
    assert seen_titles == {f"定时 {s}" for s in range(0, N, 1000)}
