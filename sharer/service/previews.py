"""Each account's post composed exactly as delivery will compose it (the same pure function), for
the CLI's and the web editor's previews and for ``share`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..article import Article
from ..errors import ComposeError
from ..platforms import get_platform
from ..platforms.base import Post
from ..runtime import Runtime
from .common import known_account, unique_accounts


def preview(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None
            ) -> list[Post]:
    """Compose each account's post exactly as delivery will (same pure function)."""
    overrides = overrides or {}
    posts = []
    for name in accounts:
        account = known_account(rt, name, "to")
        platform = get_platform(account.platform)(account)
        posts.append(platform.compose(article, overrides.get(name)))
    return posts


@dataclass(frozen=True)
class PreviewItem:
    """One account's preview: its post, or why it cannot be composed (with the counted length if known)."""

    account: str
    platform: str
    post: Post | None
    error: str | None = None
    length: int | None = None
    limit: int | None = None
    unit: str | None = None


def preview_each(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None
                 ) -> list[PreviewItem]:
    """Like ``preview``, but an account whose post cannot be composed gets its error instead of failing
    the whole call: a live editor shows "151/140" on that card and keeps the others."""
    out = []
    for name in unique_accounts(accounts):
        account = known_account(rt, name, "to")
        cls = get_platform(account.platform)
        try:
            [post] = preview(rt, article, [name], {name: overrides[name]} if overrides and name in overrides else None)
        except ComposeError as e:
            out.append(PreviewItem(name, account.platform, None, e.problem, e.length, e.limit, cls.unit))
            continue
        out.append(PreviewItem(name, account.platform, post, None, post.length, post.limit, post.unit))
    return out


def compose_each(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None
                  ) -> list[Post | ComposeError]:
    """Each account's post, or why the article cannot go there. An editor's own text that does not
    fit is bad input (raised: nothing is stored); an article an account cannot take is that
    account's ``failed`` (``compose``) delivery and does not hold back the others."""
    out: list[Post | ComposeError] = []
    for name in accounts:
        try:
            [post] = preview(rt, article, [name], {name: overrides[name]} if overrides and name in overrides else None)
        except ComposeError as e:
            if name in (overrides or {}):
                raise
            out.append(e)
            continue
        out.append(post)
    return out
