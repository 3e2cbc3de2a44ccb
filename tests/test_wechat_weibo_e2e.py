"""The editors' main job: the Chinese press release to WeChat and Weibo in one share, through the
real worker, the real clients and both emulators."""

from __future__ import annotations

from conftest import EXAMPLES, run_cli, sandbox_posts


def test_baic_catl_zh_to_wechat_and_weibo_in_one_share(emulators, runtime, worker, base_env):
    import json

    proc = run_cli(["share", str(EXAMPLES / "baic-catl-zh.md"), "--to", "wechat-main,weibo-main", "--wait",
                    "--json", "--force"], base_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    by_platform = {d["platform"]: d for d in out["deliveries"]}
    assert set(by_platform) == {"wechat", "weibo"}
    wechat, weibo = by_platform["wechat"], by_platform["weibo"]
    assert wechat["status"] == weibo["status"] == "delivered"
    assert weibo["post_url"].startswith("https://weibo.com/")
    assert wechat["post_url"] and "utm_source=wechat" in wechat["post"]["payload"]["content_source_url"]
    assert "utm_source=weibo" in weibo["post"]["text"] and "#" not in weibo["post"]["text"].split("http")[0]
    steps = [e["message"] for e in wechat["events"]]
    assert any("draft" in m for m in steps) and any("publish" in m for m in steps)
    [status] = sandbox_posts(emulators["weibo"])
    assert status["text"] == weibo["post"]["text"] and "北汽集团" in status["text"]
    assert status["url"] == weibo["post_url"] and status["encoding"] == "multipart"  # the picture went too
    assert len(sandbox_posts(emulators["wechat"])) == 1
