"""What every page needs to speak the reader's language: their language and zone, and words for the
core's codes (statuses, error kinds, durations, limits). Pure functions over records; no I/O but one
Redis read for the user's preferences.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request

from . import i18n, wording
from .i18n import N_, _
from .prefs import Prefs, PrefsStore

STATUS_WORDS = {
    "queued": N_("queued"), "scheduled": N_("scheduled"), "sending": N_("sending"), "retrying": N_("retrying"),
    "delivered": N_("delivered"), "failed": N_("failed"), "cancelled": N_("cancelled"),
    "unknown": N_("unknown"), "needs_review": N_("needs review"),
    "awaiting_approval": N_("waiting for approval"), "rejected": N_("rejected"),
}
STATUS_HELP = {
    "queued": N_("waiting for a worker"), "scheduled": N_("will be sent at its time"),
    "sending": N_("being sent now"), "retrying": N_("failed for now; will try again"),
    "delivered": N_("the post is out"), "failed": N_("gave up; nothing was published"),
    "cancelled": N_("cancelled before it was sent"), "unknown": N_("state unknown"),
    "needs_review": N_("may or may not have been published: check the account"),
    "awaiting_approval": N_("an approver must sign off before it is sent"),
    "rejected": N_("an approver sent it back: revise and resubmit"),
}
PUBLISH_MODES = {"mass": N_("mass send (群发, notifies followers)"), "publish": N_("publish (发布, no notification)"),
                 "draft": N_("save as draft only")}
# Plain words per error kind (sharer.errors), shown above the platform's own message.
KIND_WORDS = {
    "transient": N_("The platform or the network had a temporary problem; sharer tries again by itself."),
    "rate_limited": N_("The platform asked us to slow down; sharer waits and tries again."),
    "ambiguous": N_("The request may have reached the platform, but no answer came back, so sharer cannot tell "
                    "whether the post exists. Check the account before retrying."),
    "auth": N_("The account's credentials were refused (expired or revoked token, wrong key). Renew them in the "
               "configuration, then retry."),
    "permanent": N_("The platform refused this post; sending it again unchanged will fail the same way."),
    "duplicate": N_("The platform says this exact post was already published."),
    "compose": N_("The post could not be put together for this account (for example the text is too long)."),
}
UNEXPLAINED = N_("Something went wrong while sending.")
# Messages that say more than their kind: the first match explains the error.
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"MissingSchema|InvalidURL|InvalidSchema|No connection adapters", re.I),
     N_("The account's API address in the configuration is not a valid URL, so nothing could be sent.")),
    (re.compile(r"could not connect|connection refused|Name or service not known|ConnectionError|"
                r"Failed to establish", re.I),
     N_("sharer could not reach the platform (network down, wrong address, or the service is offline).")),
    (re.compile(r"timeout|timed out|no answer", re.I),
     N_("The platform did not answer in time.")),
    (re.compile(r"image", re.I), N_("An image of the article could not be fetched or was refused.")),
    (re.compile(r"HTTP 5\d\d|internal server error|emulator error", re.I),
     N_("The platform had an internal error.")),
]
_SECONDS = re.compile(r"\b(\d{2,})\s?s\b")


def word(status: str) -> str:
    return _(STATUS_WORDS.get(status, status))


def explain(error: str | None, kind: str | None) -> str:
    """The error in plain words (the raw platform message goes behind a disclosure)."""
    if not error:
        return ""
    for pattern, text in PATTERNS:
        if pattern.search(error):
            return _(text)
    return _(KIND_WORDS.get(kind or "", UNEXPLAINED))


def human_seconds(message: str | None) -> str:
    """``token valid for 157679999 s`` → ``token valid for 5 年`` (raw seconds are no one's unit)."""
    if not message:
        return ""
    return _SECONDS.sub(lambda m: i18n.duration(int(m[1])), message)


CREDENTIAL_SHAPES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^access token issued \(valid (?P<d>\d+) s\)$"), N_("access token issued, valid for %(d)s")),
    (re.compile(r"^token valid for user (?P<uid>\S+), expires in (?P<d>\d+) s$"),
     N_("token of user %(uid)s, expires in %(d)s")),
    (re.compile(r"^token valid for user (?P<uid>\S+)$"), N_("token of user %(uid)s")),
    (re.compile(r"^signed in as (?P<who>@\S+)$"), N_("signed in as %(who)s")),
    (re.compile(r"^bot (?P<who>@\S+)$"), N_("bot %(who)s")),
]


def credential_words(message: str | None) -> str:
    """A working check's message in the reader's language, durations in human units."""
    for pattern, text in CREDENTIAL_SHAPES:
        m = pattern.match(message or "")
        if m:
            found = m.groupdict()
            if "d" in found:
                found["d"] = i18n.duration(int(found["d"]))
            return _(text) % found
    return human_seconds(message)


def limits(row: dict[str, Any], options: Any) -> list[str]:
    """The limits an editor plans against. WeChat: title, digest and body — not just the digest.
    ``options``: the account's typed options (``WeChatOptions`` for WeChat)."""
    if row["platform"] == "wechat":
        return [_("title %(n)s characters") % {"n": options.title_max_chars},
                _("digest %(n)s characters") % {"n": options.digest_max_chars},
                _("body %(n)s characters") % {"n": options.content_max_chars}]
    return [f"{row['limit']} {unit(row['unit'])}"]


UNITS = {"characters": N_("characters"), "bytes": N_("bytes"), "weighted characters": N_("weighted characters"),
         "Weibo units": N_("Weibo units"), "UTF-16 units": N_("UTF-16 units"), "graphemes": N_("graphemes")}


PLATFORM_TITLES = {"wechat": N_("WeChat Official Account"), "weibo": N_("Sina Weibo"), "x": N_("X (Twitter)"),
                   "telegram": N_("Telegram"), "mastodon": N_("Mastodon"), "wecom": N_("WeCom group robot"),
                   "feishu": N_("Feishu/Lark bot"), "dingtalk": N_("DingTalk robot"), "webhook": N_("Webhook"),
                   "slack": N_("Slack"), "discord": N_("Discord"), "line": N_("LINE Official Account"),
                   "facebook": N_("Facebook Page"), "linkedin": N_("LinkedIn"), "bluesky": N_("Bluesky")}


def platform_title(platform: str, fallback: str = "") -> str:
    return _(PLATFORM_TITLES[platform]) if platform in PLATFORM_TITLES else (fallback or platform)


def unit(name: str) -> str:
    return _(UNITS[name]) if name in UNITS else name


def language_for(request: Request, prefs: Prefs | None, default: str) -> str:
    return (prefs.language if prefs else None) or i18n.from_accept_language(
        request.headers.get("accept-language")) or default


def values(ctx: Any, request: Request, who: Any) -> dict[str, Any]:
    """Set the request's language and give templates its zone-bound formatters (once per request)."""
    key = who.user.name if who else None
    cached = getattr(request.state, "present", None)
    if cached and cached[0] == key:
        i18n.use(cached[1]["lang"])
        return dict(cached[1])
    prefs = PrefsStore(ctx.rt.redis, ctx.rt.keys.root).get(who.user.name) if who else None
    lang = language_for(request, prefs, ctx.web.language)
    i18n.use(lang)
    tz_name = (prefs.timezone if prefs else None) or ctx.rt.settings.timezone
    tz = ZoneInfo(tz_name)
    out = {"lang": lang, "html_lang": "zh-Hans" if lang == "zh-CN" else "en", "user_tz": tz_name,
           "prefs": prefs, "languages": i18n.LANGUAGES,
           "when": lambda ts, part=0: i18n.when(ts, tz, part), "ago": i18n.relative, "duration": i18n.duration,
           "word": word, "explain": explain, "human_seconds": credential_words, "unit": unit,
           "status_help": lambda s: _(str(STATUS_HELP.get(s, s))), "js_text": js_text(), "say": wording.say,
           "platform_title": platform_title}
    request.state.present = (key, out)
    return dict(out)


def js_text() -> dict[str, str]:
    """The few strings app.js shows, in the page's language (read from a JSON block, no inline script)."""
    return {"checking": _("checking…"), "fix": _("fix the problems above to share"), "live": _("live"),
            "reconnecting": _("reconnecting…"), "unavailable": _("preview unavailable"),
            "failed": _("the preview failed"), "menu": _("Menu"),
            "phone_choose": _("Choose a WeChat account above first."),
            "phone_to": _("Enter the WeChat ID of the phone to send it to."),
            "phone_sending": _("Creating the draft and sending it…"), "phone_sent": _("sent to"),
            "phone_not_sent": _("Not sent:"), "phone_unreachable": _("Not sent: the server could not be reached.")}
