"""The explicit registry of platforms: one line per platform id (a contract: ids never change).

Adding a platform = one module here + one emulator in ``sharer/sandbox`` + one test file.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import Platform

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
}


def get_platform(platform_id: str, where: str = "platform") -> type[Platform]:
    try:
        target = REGISTRY[platform_id]
    except (KeyError, TypeError):
        raise ConfigError(f"{where}: unknown platform {platform_id!r} (known: {', '.join(REGISTRY)})") from None
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)
