"""Every registered platform keeps the contract: declared limits, a matching emulator and demo
account, and a pure composer that is deterministic and within its own limit for every example."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, ROOT

from sharer.config import load_settings
from sharer.loaders import load_article
from sharer.platforms import REGISTRY, get_platform
from sharer.platforms.base import Platform
from sharer.sandbox.run import EMULATORS

CONTRACT_IDS = ["webhook", "wechat", "weibo", "x", "telegram", "mastodon", "wecom", "feishu", "dingtalk"]


def test_platform_ids_are_the_documented_contract():
    assert list(REGISTRY) == CONTRACT_IDS
    readme = (ROOT / "README.md").read_text()
    for pid in CONTRACT_IDS:
        assert f"`{pid}`" in readme


@pytest.mark.parametrize("pid", CONTRACT_IDS)
def test_platform_declares_itself(pid):
    cls = get_platform(pid)
    assert issubclass(cls, Platform) and cls.id == pid
    assert cls.title and cls.limit > 0 and cls.unit
    assert pid in EMULATORS and EMULATORS[pid][1] == cls.sandbox_port
    assert (ROOT / "docs" / "platforms" / f"{pid}.md").exists() or pid == "webhook"


def _demo_accounts():
    settings = load_settings(ROOT / "config" / "sharer.toml")
    return settings, {a.platform: a for a in settings.accounts.values()}


def test_default_config_has_a_demo_account_per_platform():
    _, by_platform = _demo_accounts()
    assert set(by_platform) == set(CONTRACT_IDS)


def _articles():
    out = []
    for path in sorted(EXAMPLES.iterdir()):
        url = "https://news.example.com/en/2023/03/13/baic-catl-cooperation" if path.suffix == ".txt" else None
        out.append(load_article(str(path), url=url))
    return out


@pytest.mark.parametrize("pid", CONTRACT_IDS)
def test_compose_is_deterministic_and_within_the_limit(pid):
    _, by_platform = _demo_accounts()
    platform = get_platform(pid)(by_platform[pid])
    for article in _articles():
        first, second = platform.compose(article), platform.compose(article)
        assert first == second, f"{pid}: compose is not deterministic for {article.source}"
        assert first.length <= first.limit, f"{pid}: {first.length} > {first.limit} for {article.source}"
        assert first.platform == pid and first.text


def test_the_documented_example_config_loads():
    import re

    text = (ROOT / "config" / "sharer.example.toml").read_text()
    env = {name: "x" * 32 for name in re.findall(r'"env:([A-Z_]+)"', text)}
    settings = load_settings(ROOT / "config" / "sharer.example.toml", env=env)
    assert settings.timezone == "Asia/Shanghai" and settings.accounts
