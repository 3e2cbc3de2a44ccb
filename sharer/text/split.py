"""Splitting a long text into a numbered thread (X, Mastodon, Weibo comments) without losing a word.

Each part, including its `` k/n`` suffix, fits the limit.  Parts end at paragraph breaks when that wastes
at most half a post, else at sentence ends or word boundaries when that wastes at most a third, else at
any grapheme boundary; never inside a URL, hashtag, mention or grapheme cluster.  Only an atom longer
than a whole post (a giant URL on a platform that counts URLs by length) is broken, between graphemes,
because the alternative would be to drop it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from functools import partial

from .counting import Counter, count_graphemes
from .cuts import Cuts, last_fitting

_MAX_ROUNDS = 16
# (boundary kind, slack): a boundary is preferred if it wastes at most limit / slack.
_PARAGRAPH_SLACK, _SENTENCE_SLACK, _WORD_SLACK = 2, 3, 3


def thread_label(k: int, n: int) -> str:
    """The suffix appended to part ``k`` of ``n``."""
    return f" {k}/{n}"


def _label_of(n: int, k: int) -> str:
    return thread_label(k, n)


def split_thread(
    text: str, limit: int, count: Counter = count_graphemes, numbering: bool = True
) -> list[str]:
    """Split ``text`` into posts that each satisfy ``count(post) <= limit`` (numbering included).

    A text that fits in one post is returned as one post (stripped, without numbering); blank text gives
    ``[]``.  The `` k/n`` numbering is computed once ``n`` is known, repacking if its width changes.
    Raises ``ValueError`` if the limit cannot hold a single grapheme plus its numbering.
    """
    cuts = Cuts(text)
    # Strip whitespace clusters (not characters: " \u0301" is one cluster and stays whole).
    first = cuts.strip_forward(0)
    if first == cuts.last:
        return []
    stripped = text[cuts.points[first]:cuts.points[cuts.strip_back(first, cuts.last)]]
    if count(stripped) <= limit:
        return [stripped]
    if not numbering:
        return _pack(cuts, limit, count, lambda k: "")
    n = 2
    for _ in range(_MAX_ROUNDS):
        parts = _pack(cuts, limit, count, partial(_label_of, n))
        m = len(parts)
        if m == 1:  # only a counter that is not monotone gets here: the stripped text did not fit
            return parts
        labelled = [part + thread_label(k, m) for k, part in enumerate(parts, 1)]
        if m == n or (m < n and all(count(post) <= limit for post in labelled)):
            return labelled
        n = m
    raise ValueError(f"thread numbering did not settle for limit {limit}")


class _Post:
    """One post being filled: starts at cut ``i``, ends at a cut ``j`` to be chosen, carries ``suffix``."""

    def __init__(self, cuts: Cuts, i: int, suffix: str, count: Counter, limit: int) -> None:
        self.cuts, self.i, self.suffix, self.count, self.limit = cuts, i, suffix, count, limit

    def body(self, j: int) -> str:
        cuts = self.cuts
        return cuts.text[cuts.points[self.i]:cuts.points[cuts.strip_back(self.i, j)]]

    def length(self, j: int) -> int:
        return self.count(self.body(j) + self.suffix)

    def fits(self, j: int) -> bool:
        return self.length(j) <= self.limit


def _pack(cuts: Cuts, limit: int, count: Counter, label: Callable[[int], str]) -> list[str]:
    """Greedily fill posts from the start of the text, each ending at the best boundary in reach."""
    parts: list[str] = []
    i = cuts.strip_forward(0)
    span = 0  # how many cut points the previous post used: a good first guess for the next one
    while i < cuts.last:
        post = _Post(cuts, i, label(len(parts) + 1), count, limit)
        if post.fits(i + 1):
            j = _preferred(post, last_fitting(post.fits, i + 1, cuts.last, guess=span - 1))
            parts.append(post.body(j))
            span = j - i
        else:
            j = i + 1
            parts.extend(_break_atom(cuts, cuts.points[i], cuts.points[j], limit, count, label, len(parts)))
        i = cuts.strip_forward(j)
    return parts


def _preferred(post: _Post, best: int) -> int:
    """Pull the end of a post back from ``best`` to a paragraph/sentence/word boundary if it is cheap."""
    cuts = post.cuts
    if best == cuts.last:
        return best
    best_len = post.length(best)
    for kind, slack in ((cuts.paragraph, _PARAGRAPH_SLACK), (cuts.sentence, _SENTENCE_SLACK),
                        (cuts.word, _WORD_SLACK)):
        j = Cuts.last_at_most(kind, best, lower=post.i)
        if j is None:
            continue
        if j == best or post.length(j) >= best_len - post.limit / slack:
            return j
    return best


def _break_atom(cuts: Cuts, start: int, end: int, limit: int, count: Counter,
                label: Callable[[int], str], done: int) -> list[str]:
    """Posts for one atom longer than a post, cut between its graphemes (the only way to keep it)."""
    text, bounds = cuts.text, cuts.graphemes
    lo, hi = bisect_left(bounds, start), bisect_left(bounds, end)
    chunks: list[str] = []
    while lo < hi:
        chunk = _Chunk(text, bounds, lo, label(done + len(chunks) + 1), count, limit)
        if not chunk.fits(lo + 1):
            raise ValueError(f"limit {limit} cannot hold {chunk.body(lo + 1)!r} plus {chunk.suffix!r}")
        g = last_fitting(chunk.fits, lo + 1, hi)
        chunks.append(chunk.body(g))
        lo = g
    return chunks


class _Chunk:
    """A post made of a slice of one over-long atom, from grapheme boundary ``lo``."""

    def __init__(
        self, text: str, bounds: list[int], lo: int, suffix: str, count: Counter, limit: int
    ) -> None:
        self.text, self.bounds, self.lo = text, bounds, lo
        self.suffix, self.count, self.limit = suffix, count, limit

    def body(self, g: int) -> str:
        return self.text[self.bounds[self.lo]:self.bounds[g]]

    def fits(self, g: int) -> bool:
        return self.count(self.body(g) + self.suffix) <= self.limit
