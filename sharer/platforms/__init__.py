"""The explicit registry of platforms: one line per platform id (a contract: ids never change).

Each line names a class whose ``spec`` (``sharer.platforms.spec.PlatformSpec``) declares the rest;
the emulator list, the demo accounts and the contract test are all read from here.
Adding a platform = one module here + one emulator in ``sharer/sandbox`` + one test file + its doc.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import Platform
    from .spec import PlatformSpec

REGISTRY: dict[str, str] = {
    "webhook": "sharer.platforms.webhook:Webhook",
    "wechat": "sharer.platforms.wechat:WeChat",
    "weibo": "sharer.platforms.weibo:Weibo",
    "x": "sharer.platforms.x:X",
    "telegram": "sharer.platforms.telegram:Telegram",
    "mastodon": "sharer.platforms.mastodon:Mastodon",
    "wecom": "sharer.platforms.wecom:WeCom",
    "feishu": "sharer.platforms.feishu:Feishu",
    "dingtalk": "sharer.platforms.dingtalk:DingTalk",
    "slack": "sharer.platforms.slack:Slack",
    "discord": "sharer.platforms.discord:Discord",
    "line": "sharer.platforms.line:Line",
    "facebook": "sharer.platforms.facebook:Facebook",
    "linkedin": "sharer.platforms.linkedin:LinkedIn",
    "bluesky": "sharer.platforms.bluesky:Bluesky",
}


def get_platform(platform_id: str, where: str = "platform") -> type[Platform[Any]]:
    try:
        target = REGISTRY[platform_id]
    except (KeyError, TypeError):
        raise ConfigError(f"{where}: unknown platform {platform_id!r} (known: {', '.join(REGISTRY)})") from None
    module, _, name = target.partition(":")
    cls: type[Platform[Any]] = getattr(import_module(module), name)
    return cls


def specs() -> dict[str, PlatformSpec]:
    """Every registered platform's spec, in registry order."""
    return {pid: get_platform(pid).spec for pid in REGISTRY}


def demo_accounts() -> dict[str, dict[str, Any]]:
    """The demo account tables of every platform that declares them (see ``Demo``)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs().values():
        out.update(spec.demo_accounts())
    return out
