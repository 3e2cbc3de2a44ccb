"""Grapheme clusters: the unit a reader sees as one character.

Trimming or splitting anywhere else can tear an emoji family apart, strip an accent from its letter or
leave half a flag, so every cut in this package is made at a boundary returned from here.
"""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """Split ``text`` into extended grapheme clusters (UAX #29, via the ``regex`` module)."""
    return _GRAPHEME.findall(text)


def grapheme_len(text: str) -> int:
    """Number of grapheme clusters: what a person would call the length of ``text``."""
    return sum(1 for _ in _GRAPHEME.finditer(text))


def grapheme_boundaries(text: str) -> list[int]:
    """Offsets (in code points) where a cut keeps every cluster whole: always starts with 0, ends with len."""
    bounds = [0]
    bounds.extend(m.end() for m in _GRAPHEME.finditer(text))
    return bounds
