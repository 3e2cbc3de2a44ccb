"""Pure Unicode text machinery for sharing articles: counting, trimming and thread splitting.

No I/O.  Every platform rule is a ``Counter`` - a function ``(text) -> int`` - and ``trim`` /
``split_thread`` take the counter as a parameter, so one algorithm serves X, Weibo, Mastodon, Telegram,
WeCom and the rest without ever cutting a grapheme cluster, URL, hashtag or mention.
"""

from .counting import (
    EMOJI_RE,
    X_LIMIT,
    X_URL_WEIGHT,
    Counter,
    count_chars,
    count_graphemes,
    count_mastodon,
    count_utf8_bytes,
    count_utf16,
    count_weibo,
    count_x,
    x_is_valid,
)
from .graphemes import grapheme_boundaries, grapheme_len, graphemes
from .split import split_thread, thread_label
from .trim import ELLIPSIS, TrimResult, trim
from .urls import URL_RE, find_atoms, find_hashtags, find_mentions, find_urls, find_x_urls

__all__ = [
    "ELLIPSIS",
    "EMOJI_RE",
    "URL_RE",
    "X_LIMIT",
    "X_URL_WEIGHT",
    "Counter",
    "TrimResult",
    "count_chars",
    "count_graphemes",
    "count_mastodon",
    "count_utf8_bytes",
    "count_utf16",
    "count_weibo",
    "count_x",
    "find_atoms",
    "find_hashtags",
    "find_mentions",
    "find_urls",
    "find_x_urls",
    "grapheme_boundaries",
    "grapheme_len",
    "graphemes",
    "split_thread",
    "thread_label",
    "trim",
    "x_is_valid",
]
