"""Typed settings read once from TOML (``config/sharer.toml`` or ``$SHARER_CONFIG``).

Secrets are never written in the config itself: a credential is a *reference*:

* ``"env:NAME"``      – the value of environment variable NAME;
* ``"file:KEY"``      – KEY in the secrets file (``[secrets] file = ...``, kept outside the repo);
* ``"sandbox:"``      – the public, non-secret credential of the local emulators; only accepted when the
  account's ``api_base`` is a loopback address, so it can never reach a real platform.

Every problem fails at start with the file, the key and the reason (``ConfigError``).

The parts: ``settings`` (the dataclasses), ``parse`` (TOML to settings), ``accounts`` (one account
table), ``credentials`` (``Secret`` and the reference resolver), ``fields`` (one value, its error).
Import from here; the submodules are the homes, this is the public surface.
"""

from __future__ import annotations

from .accounts import ACCOUNT_NAME
from .credentials import SANDBOX_SECRET_PREFIX, Secret, is_loopback_url
from .fields import not_one_of
from .parse import DEFAULT_CONFIG, config_path, load_settings, parse_settings
from .settings import (
    BOT_PLATFORMS,
    DEFAULT_MAX_ARTICLE_BYTES,
    DEFAULT_REDIS_URL,
    Account,
    RetryPolicy,
    Settings,
    Workflow,
)

__all__ = [
    "ACCOUNT_NAME", "BOT_PLATFORMS", "DEFAULT_CONFIG", "DEFAULT_MAX_ARTICLE_BYTES", "DEFAULT_REDIS_URL",
    "SANDBOX_SECRET_PREFIX", "Account", "RetryPolicy", "Secret", "Settings", "Workflow", "config_path",
    "is_loopback_url", "load_settings", "not_one_of", "parse_settings",
]
