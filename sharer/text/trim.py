"""Trimming a text to a platform limit with the smallest, least damaging change.

The result is always a prefix of the input made of whole grapheme clusters, plus an ellipsis: no torn
emoji, no half URL (a cut link is worse than a missing one), no half hashtag or mention.  Within those
rules the longest prefix that fits wins, unless a sentence end - or failing that a word boundary - is
available for at most a third of the limit; CJK text has a word boundary between any two characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from .counting import Counter, count_graphemes
from .cuts import Cuts, last_fitting

ELLIPSIS = "…"
# Dangling separators and openers removed before the ellipsis ("word, …" -> "word…", "see (…" -> "see…").
_TAIL_JUNK = frozenset(",;:、，；：-–—([{（【「『“‘《〈")
# A nicer boundary may throw away at most limit / _SLACK of the allowed length.
_SLACK = 3
_MARGIN = 1024


@dataclass(frozen=True)
class TrimResult:
    """The trimmed text, whether anything was removed, and its length under the counter used."""

    text: str
    trimmed: bool
    length: int


def trim(text: str, limit: int, count: Counter = count_graphemes, ellipsis: str = ELLIPSIS) -> TrimResult:
    """Shorten ``text`` so that ``count(result) <= limit``, ending in ``ellipsis`` when anything is cut.

    A text that already fits is returned unchanged.  If not even the ellipsis fits, the result is ``""``.
    """
    length = count(text)
    if length <= limit:
        return TrimResult(text, False, length)
    if count(ellipsis) > limit:
        return TrimResult("", True, count(""))

    window = _window(text, limit, count)
    cuts = Cuts(text[:window])
    # The window's end is only a real boundary if it is the end of the text.
    hi = cuts.last if window == len(text) else cuts.last - 1

    def candidate(i: int) -> str:
        return text[: cuts.points[cuts.strip_back(0, i, _TAIL_JUNK)]] + ellipsis

    best = last_fitting(lambda i: count(candidate(i)) <= limit, 0, hi)
    chosen = candidate(best)
    chosen_len = count(chosen)
    floor = chosen_len - limit / _SLACK
    for kind in (cuts.sentence, cuts.word):
        i = Cuts.last_at_most(kind, best)
        if i is None:
            continue
        if i == best:
            break
        nicer = candidate(i)
        nicer_len = count(nicer)
        if floor <= nicer_len <= limit:
            chosen, chosen_len = nicer, nicer_len
            break
    return TrimResult(chosen, True, chosen_len)


def _window(text: str, limit: int, count: Counter) -> int:
    """A prefix length past any possible answer, so a long article is only analysed where it is cut.

    Doubles a prefix until it alone exceeds ``limit``, then adds a margin.  Grapheme boundaries and
    boundary classes only look a character or two ahead, and a protected span that starts before the
    cut but runs past the margin (a very long URL) is still recognised from its beginning, so every cut
    point up to the prefix is exactly what it would be in the full text.
    """
    size = 256
    while size < len(text) and count(text[:size]) <= limit:
        size *= 2
    return min(len(text), size + _MARGIN)
