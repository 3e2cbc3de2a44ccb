"""One ``[accounts.NAME]`` table to an ``Account``: platform, API base, credentials, options, template,
UTM tags, rate limit, retry policy, time zone, posting slots and alerts, each error naming its key.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .credentials import CredentialResolver, Secret
from .fields import check_zone, get_num, get_str, no_unknown
from .settings import Account, RetryPolicy

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # names are joined with commas in --to and used in keys


_ACCOUNT_KEYS = {
    "platform", "api_base", "credentials", "options", "template", "utm", "rate_limit", "retry",
    "timezone", "slots", "min_spacing_minutes", "max_lateness_minutes", "alerts", "requires_approval",
}


def parse_account(name: str, acc: Any, p: Path, resolver: CredentialResolver, default_retry: RetryPolicy) -> Account:
    from ..platforms import get_platform  # late: platforms import config types

    where = f"accounts.{name}"
    if not isinstance(acc, dict):
        raise ConfigError(f"{p}: {where}: must be a table")
    no_unknown(acc, _ACCOUNT_KEYS, p, where)
    platform_id = acc.get("platform")
    if not platform_id:
        raise ConfigError(f"{p}: {where}.platform: is required")
    platform_cls = get_platform(platform_id, where=f"{p}: {where}.platform")
    api_base = get_str(acc, "api_base", p, where, platform_cls.default_api_base)
    if not api_base or urlsplit(api_base).scheme not in ("http", "https"):
        raise ConfigError(f"{p}: {where}.api_base: must be an http(s) URL, got {api_base!r}")
    creds_raw = acc.get("credentials", {})
    if not isinstance(creds_raw, dict):
        raise ConfigError(f"{p}: {where}.credentials: must be a table of references")
    known_creds = set(platform_cls.required_credentials) | set(platform_cls.optional_credentials)
    no_unknown(creds_raw, known_creds, p, f"{where}.credentials")
    credentials = {}
    for key in platform_cls.required_credentials:
        if key not in creds_raw:
            raise ConfigError(f"{p}: {where}.credentials.{key}: is required for platform {platform_id!r}")
    for key, ref in creds_raw.items():
        credentials[key] = resolver.resolve(ref, f"{where}.credentials.{key}", api_base)
    options = _options(platform_cls, acc.get("options", {}), p, where)
    template = acc.get("template")
    if template is not None:
        from ..compose import check_template

        try:
            check_template(template)
        except ValueError as e:
            raise ConfigError(f"{p}: {where}.template: {e}") from None
    utm = _utm(acc.get("utm", True), platform_id, p, where)
    rate = acc.get("rate_limit")
    rate_limit = None
    if rate is not None:
        if not (isinstance(rate, dict) and set(rate) <= {"count", "per_seconds"} and "count" in rate):
            raise ConfigError(f"{p}: {where}.rate_limit: must be {{count = N, per_seconds = S}}")
        count, per = rate["count"], rate.get("per_seconds", 60)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (count, per)):
            raise ConfigError(f"{p}: {where}.rate_limit: count and per_seconds must be finite numbers")
        rate_limit = (int(count), float(per))
        if rate_limit[0] <= 0 or rate_limit[1] <= 0:
            raise ConfigError(f"{p}: {where}.rate_limit: count and per_seconds must be positive")
    tz = acc.get("timezone")
    if tz is not None:
        check_zone(tz, p, f"{where}.timezone")
    slots = None
    if "slots" in acc:
        from ..timeparse import Slots

        if not isinstance(acc["slots"], dict) or set(acc["slots"]) - {"days", "times"}:
            raise ConfigError(f"{p}: {where}.slots: must be {{days = \"mon-fri\", times = [\"09:00\", ...]}}")
        try:
            slots = Slots.parse(acc["slots"], f"{where}.slots")
        except ValueError as e:
            raise ConfigError(f"{p}: {e}") from None
    max_late = acc.get("max_lateness_minutes")
    needs = acc.get("requires_approval")
    if needs is not None and not isinstance(needs, bool):
        raise ConfigError(f"{p}: {where}.requires_approval: must be true or false")
    alert_webhook, alert_secret = parse_alerts(acc.get("alerts", {}), p, f"{where}.alerts", resolver)
    return Account(
        name=name,
        platform=platform_id,
        api_base=api_base.rstrip("/"),
        credentials=credentials,
        options=options,
        template=template,
        utm=utm,
        rate_limit=rate_limit,
        retry=parse_retry(acc.get("retry", {}), p, f"{where}.retry", default_retry),
        timezone=tz,
        slots=slots,
        min_spacing=get_num(acc, "min_spacing_minutes", p, where, 0.0) * 60,
        max_lateness=None if max_late is None else get_num(acc, "max_lateness_minutes", p, where, 15.0) * 60,
        alert_webhook=alert_webhook,
        alert_secret=alert_secret,
        requires_approval=needs,
    )


def _options(platform_cls: Any, raw: Any, p: Path, where: str) -> Any:
    """The account's options parsed by its platform; a bad one names ``accounts.NAME.options.KEY``."""
    from ..platforms.spec import OptionError

    try:
        return platform_cls.parse_options(raw)
    except OptionError as e:
        raise ConfigError(f"{p}: {where}.options.{e.key}: {e.problem}") from None
    except ValueError as e:
        raise ConfigError(f"{p}: {where}.options: {e}") from None


def parse_alerts(table: Any, p: Path, where: str, resolver: CredentialResolver) -> tuple[str | None, Secret | None]:
    """``{webhook = URL, secret = REF}``: where to send signed delivery notices, and the signing key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{p}: {where}: must be {{webhook = \"https://…\", secret = \"env:VAR\"}}")
    no_unknown(table, {"webhook", "secret"}, p, where)
    url = table.get("webhook")
    if url is None:
        if "secret" in table:
            raise ConfigError(f"{p}: {where}.secret: given without a webhook")
        return None, None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{p}: {where}.webhook: must be an http(s) URL")
    secret = resolver.resolve(table["secret"], f"{where}.secret", url) if "secret" in table else None
    return url, secret


def _utm(value: Any, platform_id: str, p: Path, where: str) -> dict[str, str] | None:
    if value is False:
        return None
    base = {"utm_source": platform_id, "utm_medium": "social", "utm_campaign": "sharer"}
    if value is True:
        return base
    if not isinstance(value, dict):
        raise ConfigError(f"{p}: {where}.utm: must be true, false or a table")
    no_unknown(value, {"enabled", "source", "medium", "campaign"}, p, f"{where}.utm")
    if value.get("enabled", True) is False:
        return None
    for k in ("source", "medium", "campaign"):
        if k in value:
            if not isinstance(value[k], str) or not value[k]:
                raise ConfigError(f"{p}: {where}.utm.{k}: must be a non-empty string")
            base[f"utm_{k}"] = value[k]
    return base


def parse_retry(value: Any, p: Path, where: str, default: RetryPolicy) -> RetryPolicy:
    if not isinstance(value, dict):
        raise ConfigError(f"{p}: {where}: must be a table")
    no_unknown(value, {"base", "cap", "max_attempts", "deadline"}, p, where)
    return RetryPolicy(
        base=get_num(value, "base", p, where, default.base),
        cap=get_num(value, "cap", p, where, default.cap),
        max_attempts=int(get_num(value, "max_attempts", p, where, default.max_attempts)),
        deadline=get_num(value, "deadline", p, where, default.deadline),
    )
