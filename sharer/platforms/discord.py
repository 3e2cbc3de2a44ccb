"""Discord webhook: one message per share (``POST {webhook URL}?wait=true``), text plus a link embed.

Set-up: Server Settings → Integrations → Webhooks → New Webhook → pick the channel → Copy Webhook URL
``https://discord.com/api/webhooks/{id}/{token}``. Set ``api_base`` to the URL *without* its last part
(``https://discord.com/api/webhooks/{id}``: the id is no secret) and store the token as credential
``token``. For message links, set ``options.guild_id`` (Server Settings → Widget, or Developer Mode →
Copy Server ID).

Quirks (fact sheet §14):
- ``content`` ≤ 2,000 characters; up to 10 embeds (title ≤ 256, description ≤ 4,096, all ≤ 6,000).
- ``wait=true`` makes Discord answer with the message (200, ``id``, ``channel_id``); without it 204.
- 429 carries ``retry_after`` (seconds, a float) in the JSON body — that is the wait we use.
- ``allowed_mentions: {"parse": []}``: an article that says "@everyone" pings nobody.
- No idempotency key, and a webhook can read back a message only by its id, which a lost answer never
  gave us: after an ambiguous failure ``find_existing`` cannot tell (needs review).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..compose import article_values, fit, tag_url
from ..errors import Ambiguous, AuthExpired, ComposeError, DeliveryError, PermanentError
from ..text import count_chars, trim
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, Sandbox

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256

# Discord's JSON error codes (fact sheet §14); the message is already redacted.
ERRORS = ErrorTable(codes={
    10015: Rule(AuthExpired, "Discord: unknown webhook — it was deleted; create a new one and update api_base "
                             "and credentials.token ({message})"),
    50027: Rule(AuthExpired, "Discord: invalid webhook token — update credentials.token ({message})"),
    50035: Rule(PermanentError, "Discord refused the message ({message})"),
    50006: Rule(PermanentError, "Discord refused an empty message ({message})"),
}, other_code=Rule(PermanentError, "Discord refused the message ({message})"))


@dataclass(frozen=True)
class DiscordOptions(Options):
    embed: bool = True        # a link embed: the title, the article link and the lead image
    guild_id: str = ""        # the server id, for message links (https://discord.com/channels/…)
    username: str = ""        # shown instead of the webhook's name ("" = the webhook's own)

    def check(self) -> DiscordOptions:
        if self.guild_id and not self.guild_id.isdigit():
            raise OptionError("guild_id", f"must be the server's numeric id, got {self.guild_id!r}")
        return self


class Discord(Platform[DiscordOptions]):
    spec = PlatformSpec(
        id="discord", title="Discord",
        limits=Limits(CONTENT_LIMIT, "characters", count_chars, media=1),
        options=DiscordOptions,
        credentials=Credentials(required=("token",)),
        sandbox=Sandbox("sharer.sandbox.discord:DiscordEmulator", 8914),
        demo=(Demo(path="/api/webhooks/1180000000000000001", options={"guild_id": "1170000000000000001"}),),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        warnings: list[str] = []
        if text is not None:
            content = text.strip()
            self.check_override(content, count_chars(content), CONTENT_LIMIT)
        else:
            fitted = fit(self.template, article_values(article, url), count=count_chars, limit=CONTENT_LIMIT,
                         drop_order=("summary", "title"))
            if not fitted.fits:
                raise ComposeError(self.account.name, f"the template alone is {fitted.length} characters; "
                                   f"the limit is {CONTENT_LIMIT}")
            warnings += [f"{name} trimmed to fit Discord's {CONTENT_LIMIT} characters" for name in fitted.cut]
            warnings += [f"{name} left out: no room" for name in fitted.dropped]
            content = fitted.text
        payload: dict[str, Any] = {"content": content, "allowed_mentions": {"parse": []}}
        media: tuple[str, ...] = ()
        if self.options.embed:
            embed: dict[str, Any] = {"title": trim(article.title, TITLE_LIMIT, count=count_chars).text, "url": url}
            if article.image:
                embed["image"] = {"url": article.image}
                media = (article.image,)
            payload["embeds"] = [embed]
        if self.options.username:
            payload["username"] = self.options.username
        return Post(self.id, self.account.name, content, payload, count_chars(content), CONTENT_LIMIT, self.unit,
                    tuple(warnings), media)

    def _hook(self) -> str:
        return f"{self.account.api_base.rstrip('/')}/{self.account.secret('token')}"

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        resp = send(ctx, "POST", self._hook(), params={"wait": "true"}, json=post.payload, allow_redirects=False)
        data = json_body(resp)
        if resp.status_code == 200 and data.get("id"):
            return self.receipt(data)
        if resp.status_code in (200, 204):
            raise Ambiguous(f"Discord answered HTTP {resp.status_code} without the message", status=resp.status_code)
        raise self._error(ctx, resp, data)

    def receipt(self, message: dict[str, Any]) -> Receipt:
        mid, channel = str(message["id"]), str(message.get("channel_id") or "")
        if self.options.guild_id and channel:
            return Receipt(mid, f"https://discord.com/channels/{self.options.guild_id}/{channel}/{mid}")
        return Receipt(mid, None, "Discord: set options.guild_id for message links")

    def _error(self, ctx: DeliveryContext, resp: Any, data: dict[str, Any]) -> DeliveryError:
        status, code = resp.status_code, data.get("code")
        detail = str(data.get("message") or short(resp.text) or f"HTTP {status}")
        if data.get("errors"):
            detail += f" {short(str(data['errors']), 200)}"
        message = ctx.redact(f"HTTP {status}: {short(detail)}")
        if status == 429:
            wait = data.get("retry_after")
            return ERRORS.for_response(resp, f"Discord answered {message}", code=code,
                                       retry_after=float(wait) if isinstance(wait, (int, float)) else None)
        if status < 500 and isinstance(code, int) and code in ERRORS.codes:
            return ERRORS.for_code(code, message, status=status)
        return ERRORS.for_response(resp, f"Discord answered {message}", code=code)

    def check_credentials(self, ctx: DeliveryContext) -> str:
        resp = send(ctx, "GET", self._hook(), idempotent=True)
        data = json_body(resp)
        if resp.status_code != 200:
            raise self._error(ctx, resp, data)
        return f"webhook {data.get('name') or data.get('id')} in channel {data.get('channel_id')}"
