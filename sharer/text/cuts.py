"""Where a text may be cut, and how good each cut is.

Trimming and thread splitting share one model: a cut is allowed only at a grapheme boundary that is not
strictly inside a protected span (URL, hashtag, mention).  Among allowed cuts, some are nicer -
paragraph ends, sentence ends, word boundaries (in CJK text, every character boundary is one) - and the
callers prefer them when they cost little.  Everything is precomputed once per text with C-level regex
scans so a 20,000-character article is cheap to trim or split.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable

import regex

from .graphemes import grapheme_boundaries
from .urls import Span, find_atoms

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303F\uFF00-\uFFEF"
_CLOSERS = r"\"')\]}”’」』）】》〉"
# The cut just after a sentence: Latin terminators need a following space, CJK ones stand alone.
_SENTENCE_RE = regex.compile(
    rf"[.!?…‼⁉][{_CLOSERS}]*(?=\s|[{_CJK}]|\Z)|[。！？][{_CLOSERS}]*"
)
# Word boundaries: next to whitespace, or next to a CJK character (each is its own word).
_WORD_RE = regex.compile(rf"(?<=[\s{_CJK}])|(?=[\s{_CJK}])")
# Paragraph (line) breaks: the cut just before a line break that ends some text.
_PARAGRAPH_RE = regex.compile(r"(?<=\S)(?=[ \t]*(?:\r\n|[\n\r\u2028\u2029]))")


class Cuts:
    """Allowed cut positions of ``text`` plus the subsets that are paragraph/sentence/word boundaries.

    All boundary lists hold *indices into* ``points`` (sorted), so callers can binary-search them.
    """

    def __init__(self, text: str, atoms: list[Span] | None = None) -> None:
        self.text = text
        self.graphemes = grapheme_boundaries(text)
        self.atoms = find_atoms(text) if atoms is None else atoms
        self.points = _outside_atoms(self.graphemes, self.atoms)
        self._index = {p: i for i, p in enumerate(self.points)}
        self.paragraph = self._indices(m.start() for m in _PARAGRAPH_RE.finditer(text))
        self.sentence = self._indices(m.end() for m in _SENTENCE_RE.finditer(text))
        self.word = self._indices(m.start() for m in _WORD_RE.finditer(text))

    def _indices(self, positions: Iterable[int]) -> list[int]:
        index = self._index
        return sorted({index[p] for p in positions if p in index})

    @property
    def last(self) -> int:
        """Index of the final cut (the end of the text)."""
        return len(self.points) - 1

    def piece(self, i: int) -> str:
        """The text between cut ``i`` and cut ``i + 1`` (one grapheme, or one whole atom)."""
        return self.text[self.points[i]:self.points[i + 1]]

    def strip_back(self, start: int, end: int, chars: frozenset[str] | None = None) -> int:
        """Move cut index ``end`` back (not past ``start``) over pieces of whitespace or of ``chars``."""
        while end > start:
            piece = self.piece(end - 1)
            if not (piece.isspace() or (chars is not None and all(ch in chars for ch in piece))):
                break
            end -= 1
        return end

    def strip_forward(self, start: int) -> int:
        """Move cut index ``start`` forward over whitespace pieces."""
        while start < self.last and self.piece(start).isspace():
            start += 1
        return start

    @staticmethod
    def last_at_most(kind: list[int], i: int, lower: int = 0) -> int | None:
        """The largest index in boundary list ``kind`` that is <= ``i`` and > ``lower``, if any."""
        k = bisect_right(kind, i) - 1
        if k >= 0 and kind[k] > lower:
            return kind[k]
        return None


def _outside_atoms(bounds: list[int], atoms: list[Span]) -> list[int]:
    """Drop the boundaries strictly inside any atom (atoms sorted and non-overlapping)."""
    if not atoms:
        return bounds
    keep: list[int] = []
    pos = 0
    for start, end in atoms:
        lo = bisect_right(bounds, start)  # boundaries <= start are fine
        keep.extend(bounds[pos:lo])
        pos = max(lo, bisect_left(bounds, end))  # skip those with start < b < end
    keep.extend(bounds[pos:])
    return keep


def last_fitting(fits: Callable[[int], bool], lo: int, hi: int, guess: int = 0) -> int:
    """The largest ``i`` in ``[lo, hi]`` with ``fits(i)``, given ``fits(lo)`` and a monotone ``fits``.

    Gallops forward from ``lo`` (or from ``lo + guess`` when that fits) and then bisects, so the cost
    grows with the *answer*, not with the text: trimming a 20,000-character article to 280 only ever
    counts short prefixes.
    """
    if guess > 0 and lo < hi:
        probe = min(lo + guess, hi)
        if fits(probe):
            lo = probe
        else:
            hi = probe - 1
    step = 1
    while lo < hi:
        probe = min(lo + step, hi)
        if not fits(probe):
            hi = probe - 1
            break
        lo = probe
        step *= 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
