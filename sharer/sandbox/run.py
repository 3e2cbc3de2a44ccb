"""Start every platform's emulator (``sharer sandbox``), each on its own port."""

from __future__ import annotations

from importlib import import_module

from .server import Emulator

# platform id -> (emulator class, default port). Ports match the demo accounts in config/sharer.toml.
EMULATORS: dict[str, tuple[str, int]] = {
    "webhook": ("sharer.sandbox.webhook:WebhookEmulator", 8900),
    "wechat": ("sharer.sandbox.wechat:WeChatEmulator", 8901),
    "telegram": ("sharer.sandbox.telegram:TelegramEmulator", 8904),
    "mastodon": ("sharer.sandbox.mastodon:MastodonEmulator", 8905),
    "weibo": ("sharer.sandbox.weibo:WeiboEmulator", 8902),
    "wecom": ("sharer.sandbox.wecom:WeComEmulator", 8906),
    "feishu": ("sharer.sandbox.feishu:FeishuEmulator", 8907),
    "dingtalk": ("sharer.sandbox.dingtalk:DingTalkEmulator", 8908),
    "x": ("sharer.sandbox.x:XEmulator", 8903),
    "site": ("sharer.sandbox.site:SiteEmulator", 8909),  # the newsroom website's stand-in (images)
}


def emulator_class(platform_id: str) -> type[Emulator]:
    target, _ = EMULATORS[platform_id]
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def start_all(host: str = "127.0.0.1", base_port: int | None = None,
              only: list[str] | None = None) -> dict[str, Emulator]:
    """Start the emulators in threads; ``base_port`` shifts every default port by the same amount."""
    running = {}
    shift = 0 if base_port is None else base_port - 8900
    for pid, (_, port) in EMULATORS.items():
        if only and pid not in only:
            continue
        running[pid] = emulator_class(pid)(host, port + shift).start()
    return running
