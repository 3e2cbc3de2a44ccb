"""The core's progress lines, warnings and notes in the reader's language.

Delivery and the composers write English (the CLI and logs keep it); the dashboard shows the lines it
knows in the page's language by shape — a line it does not know is shown as written. Each shape is a
catalog entry (``tests/test_web_i18n.py`` checks every one is translated).
"""

from __future__ import annotations

import re

from .i18n import N_, gettext

_SHAPES: list[tuple[str, str]] = [
    # events (the delivery timeline)
    (r"queued", N_("queued")),
    (r"sending", N_("sending")),
    (r"delivered: (?P<where>.+)", N_("delivered: %(where)s")),
    (r"found on the platform: (?P<where>.+)", N_("found on the platform: %(where)s")),
    (r"scheduled for (?P<when>.+); waiting for approval \(version (?P<v>\d+)\)",
     N_("scheduled for %(when)s; waiting for approval (version %(v)s)")),
    (r"scheduled for (?P<when>.+)", N_("scheduled for %(when)s")),
    (r"rescheduled to (?P<when>.+)", N_("rescheduled to %(when)s")),
    (r"released by the scheduler (?P<lag>[\d.]+) ?s late.*", N_("released by the scheduler (%(lag)s s late)")),
    (r"released by the scheduler.*", N_("released by the scheduler")),
    (r"cancelled by an editor", N_("cancelled by an editor")),
    (r"retry requested by an editor", N_("retry requested by an editor")),
    (r"marked as posted by an editor", N_("marked as posted by an editor")),
    (r"access token refreshed", N_("access token refreshed")),
    (r"X OAuth 2.0 token refreshed", N_("X OAuth 2.0 token refreshed")),
    (r"cover uploaded", N_("cover uploaded")),
    (r"using the account's default cover", N_("using the account's default cover")),
    (r"(?P<n>\d+) inline images? uploaded", N_("%(n)s inline image(s) uploaded")),
    (r"draft created", N_("draft created")),
    (r"publish job (?P<id>\S+) submitted", N_("publish job %(id)s submitted")),
    (r"resuming publish job (?P<id>\S+)", N_("resuming publish job %(id)s")),
    (r"publish status 1 \(publishing\)", N_("publish status 1 (publishing)")),
    (r"image attached \((?P<type>[^,]+), (?P<n>\d+) bytes\)", N_("image attached (%(type)s, %(n)s bytes)")),
    (r"image uploaded \((?P<type>[^,]+), (?P<n>\d+) bytes\): media (?P<id>\S+)",
     N_("image uploaded (%(type)s, %(n)s bytes): media %(id)s")),
    (r"image downloaded \((?P<n>\d+) bytes\) for upload", N_("image downloaded (%(n)s bytes) for upload")),
    (r"image ready \(media (?P<id>\S+)\)", N_("image ready (media %(id)s)")),
    (r"part (?P<k>\d+)/(?P<n>\d+) posted: (?P<id>\S+)", N_("part %(k)s/%(n)s posted: %(id)s")),
    (r"thread of (?P<n>\d+) posts", N_("thread of %(n)s posts")),
    (r"overdue: not settled after (?P<n>\d+) min", N_("overdue: not settled after %(n)s min")),
    (r"missed its scheduled slot by (?P<n>\d+) min \(the scheduler or workers were down\) - publish now\?",
     N_("missed its scheduled slot by %(n)s min (the scheduler or workers were down) - publish now?")),
    (r"missed its (?P<slot>.+) slot by (?P<n>\d+) min \(the scheduler or workers were down\) - publish now\?",
     N_("missed its %(slot)s slot by %(n)s min (the scheduler or workers were down) - publish now?")),
    # sign-off (the approval workflow's events)
    (r"waiting for approval \(version (?P<v>\d+)\)", N_("waiting for approval (version %(v)s)")),
    (r"approved by (?P<who>.+) \(version (?P<v>\d+)\)", N_("approved by %(who)s (version %(v)s)")),
    (r"approved by (?P<who>.+) \(version (?P<v>\d+)\) with the text edited",
     N_("approved by %(who)s (version %(v)s) with the text edited")),
    (r"approved by (?P<who>.+) \(version (?P<v>\d+)\) after its slot had passed; sending now",
     N_("approved by %(who)s (version %(v)s) after its slot had passed; sending now")),
    (r"approved by (?P<who>.+) \(version (?P<v>\d+)\) with the text edited after its slot had passed; sending now",
     N_("approved by %(who)s (version %(v)s) with the text edited after its slot had passed; sending now")),
    (r"rejected by (?P<who>.+?): (?P<why>.*)", N_("rejected by %(who)s: %(why)s")),
    (r"resubmitted by (?P<who>.+) as version (?P<v>\d+); waiting for approval \(its slot has passed: it will be "
     r"sent when approved\)(?:: (?P<note>.*))?",
     N_("resubmitted by %(who)s as version %(v)s; waiting for approval (its slot has passed: it will be sent "
        "when approved)")),
    (r"resubmitted by (?P<who>.+?) as version (?P<v>\d+); waiting for approval(?:: (?P<note>.*))?",
     N_("resubmitted by %(who)s as version %(v)s; waiting for approval")),
    (r"not approved by its scheduled slot; not sent", N_("not approved by its scheduled slot; not sent")),
    (r"not approved by its (?P<slot>.+) slot; not sent", N_("not approved by its %(slot)s slot; not sent")),
    # composer warnings
    (r"title trimmed to (?P<c>\d+) characters / (?P<b>\d+) bytes \(limit (?P<lc>\d+) / (?P<lb>\d+)\)",
     N_("title trimmed to %(c)s characters / %(b)s bytes (limit %(lc)s / %(lb)s)")),
    (r"(?P<n>\d+) links? removed for WeChat", N_("%(n)s link(s) removed for WeChat (WeChat only keeps links to "
                                                  "mp.weixin.qq.com)")),
    (r"(?P<where>(?:article \d+: )?)author (?P<q>['\"])(?P<author>.*)(?P=q) is over (?P<n>\d+) characters: "
     r"using the default author",
     N_("%(where)sauthor “%(author)s” is over %(n)s characters: using the default author")),
    (r"(?P<where>(?:article \d+: )?)author (?P<q>['\"])(?P<author>.*)(?P=q) is over (?P<n>\d+) characters: left out",
     N_("%(where)sauthor “%(author)s” is over %(n)s characters: left out")),
    (r"digest trimmed to (?P<n>\d+) characters", N_("digest trimmed to %(n)s characters")),
    (r"(?P<where>(?:article \d+: )?)the article has no image: using the account's default cover",
     N_("%(where)sthe article has no image: using the account's default cover")),
    (r"summary trimmed to fit the status limit", N_("summary trimmed to fit the length limit")),
    (r"title trimmed to fit the status limit", N_("title trimmed to fit the length limit")),
    (r"summary left out", N_("summary left out (no room)")),
    (r"summary trimmed", N_("summary trimmed")),
    (r"summary dropped", N_("summary left out (no room)")),
    (r"title trimmed", N_("title trimmed")),
    (r"article link tagged", N_("article link tagged")),
    (r"hashtags from (?P<tag>\S+) on left out: no room", N_("hashtags from %(tag)s on left out: no room")),
    (r"# marks of #topic# removed \(Weibo's share API forbids topics\)",
     N_("# marks of #topic# removed (Weibo's share API forbids topics)")),
    (r"summary trimmed so the (?P<what>.+) fits (?P<n>\d+) bytes",
     N_("summary trimmed so the %(what)s fits %(n)s bytes")),
    (r"(?P<what>.+) trimmed to (?P<n>\d+) bytes \(was (?P<was>\d+)\)",
     N_("%(what)s trimmed to %(n)s bytes (was %(was)s)")),
    # refusals (error pages)
    (r"this form has expired or did not come from this site: reload the page",
     N_("this form has expired or did not come from this site: reload the page")),
    (r"user '(?P<user>[^']*)' is a viewer; only editors may do this",
     N_("user %(user)s is a viewer; only editors may do this")),
    (r"cannot reach Redis; try again shortly", N_("cannot reach Redis; try again shortly")),
    (r"internal error \(logged\)", N_("internal error (logged)")),
    # not found (error pages)
    (r"no share with id '(?P<id>[^']*)'", N_("no share with id %(id)s")),
    (r"no delivery with id '(?P<id>[^']*)'", N_("no delivery with id %(id)s")),
    # compose errors
    (r"(?P<where>(?:article \d+: )?)the article has no body; WeChat news needs content",
     N_("%(where)sthe article has no body; WeChat news needs content")),
    (r"(?P<where>(?:article \d+: )?)WeChat news needs a cover image: .*",
     N_("%(where)sWeChat news needs a cover image: give the article an image or set the account option "
        "default_cover_url or default_cover_media_id")),
    (r"text is (?P<n>\d+) (?P<unit>.+) long; the limit is (?P<limit>\d+)",
     N_("the text is %(n)s %(unit)s long; the limit is %(limit)s")),
    (r"the text override is empty", N_("the text is empty")),
]
SHAPES = [(re.compile(f"^{pattern}$"), text) for pattern, text in _SHAPES]
_NTH = re.compile(r"^article (\d+): (.+)$")  # a multi-article WeChat push names the article a line is about


def say(line: str | None) -> str:
    """``line`` in the page's language when its shape is known, else unchanged."""
    if not line:
        return ""
    nth = _NTH.match(line)
    if nth:
        return gettext("article %(n)s: ") % {"n": nth[1]} + say(nth[2])
    for pattern, text in SHAPES:
        m = pattern.match(line)
        if m:
            found = m.groupdict()
            if "unit" in found:
                from .present import unit

                found["unit"] = unit(found["unit"])
            note = found.pop("note", None)  # a person's own words (a resubmission's note) stay as written
            return gettext(text) % found + (f": {note}" if note else "")
    return line
