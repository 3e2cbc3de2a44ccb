"""WeChat's account options, typed (``[accounts.X] options``); shared by the composer and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import not_one_of
from .spec import OptionError, Options

MODES = ("publish", "mass", "draft")
ACCOUNT_TYPES = ("subscription", "service")
PERIODS = ("", "day", "month")  # "": the account type's period


@dataclass(frozen=True)
class WeChatOptions(Options):
    title_max_chars: int = 32
    title_max_bytes: int = 64
    author_max_chars: int = 8
    digest_max_chars: int = 128
    content_max_chars: int = 20_000
    content_max_bytes: int = 1_000_000
    default_author: str = ""
    default_cover_media_id: str = ""
    default_cover_url: str = ""
    need_open_comment: bool = False
    only_fans_can_comment: bool = False
    crop_cover: bool = True
    publish_poll_seconds: float = 60.0
    publish_poll_interval: float = 2.0
    publish_mode: str = "publish"       # publish (发布) / mass (群发) / draft (left for an editor)
    tag_id: int | None = None           # mass: the followers with this tag (None: all followers)
    send_ignore_reprint: bool = False
    account_type: str = "subscription"  # decides the default mass quota
    mass_quota: int = 0                 # 0: the account type's quota
    mass_quota_period: str = ""         # "" (the account type's), "day" or "month"

    def check(self) -> WeChatOptions:
        for key, allowed, quoted in (("publish_mode", MODES, False), ("account_type", ACCOUNT_TYPES, False),
                                     ("mass_quota_period", PERIODS, True)):
            if problem := not_one_of(getattr(self, key), allowed, quoted=quoted):
                raise OptionError(key, problem)
        if self.mass_quota < 0:
            raise OptionError("mass_quota", "must be 0 (the account type's quota) or more")
        if self.tag_id is not None and self.tag_id < 0:
            raise OptionError("tag_id", f"must be a WeChat tag id (an integer), got {self.tag_id!r}")
        return self
