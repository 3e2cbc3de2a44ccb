"""trim(): fits the limit, keeps a whole-grapheme prefix, never cuts a URL, prefers sentence/word ends."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_text_counting import TRICKY_EMOJI, mixtures

from sharer.text import (
    ELLIPSIS,
    Counter,
    TrimResult,
    count_chars,
    count_graphemes,
    count_utf8_bytes,
    count_utf16,
    count_weibo,
    count_x,
    find_atoms,
    find_urls,
    graphemes,
    trim,
)

PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
COUNTERS: list[Counter] = [
    count_graphemes, partial(count_graphemes, url_weight=23), count_x, count_weibo, count_utf16,
    count_utf8_bytes, count_chars,
]
counters = st.sampled_from(COUNTERS)
limits = st.integers(min_value=0, max_value=120)

NEWER_EMOJI = ["❤\uFE0F\u200d🔥", "🐦\u200d⬛", "🫱🏻\u200d🫲🏼", "🫠", "🧑\u200d🧑\u200d🧒"]
cjk_text = st.text(
    st.sampled_from("北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品。新能源！？、；：「」 \n")
    | st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    max_size=200,
)
emoji_text = st.lists(
    st.sampled_from(TRICKY_EMOJI + NEWER_EMOJI + ["\u200d", "\uFE0F", "🏽", "🇨", " ", "a", "e\u0301"]),
    max_size=80,
).map("".join)
any_text = st.one_of(st.text(max_size=300), cjk_text, emoji_text, mixtures())


def check_trim(text: str, limit: int, count: Counter, result: TrimResult, ellipsis: str = ELLIPSIS) -> None:
    """The contract of trim(), for any text, limit and counter."""
    assert result.length == count(result.text)
    if count(text) <= limit:
        assert result == TrimResult(text, False, count(text))
        return
    assert result.trimmed
    assert result.length <= limit
    if result.text == "" and ellipsis:
        assert count(ellipsis) > limit
        return
    assert result.text.endswith(ellipsis)
    body = result.text[: len(result.text) - len(ellipsis)]
    # A prefix of the input, made of the input's own whole grapheme clusters.
    assert text.startswith(body)
    assert graphemes(body) == graphemes(text)[: len(graphemes(body))]
    # Protected spans are kept whole or dropped whole; every URL left is one of the input's, in full.
    assert all(end <= len(body) or start >= len(body) for start, end in find_atoms(text))
    assert set(find_urls(body)) <= set(find_urls(text))


@PROPERTY
@given(any_text, limits, counters)
def test_trim_contract(text: str, limit: int, count: Counter) -> None:
    check_trim(text, limit, count, trim(text, limit, count))


@PROPERTY
@given(st.text(max_size=200), st.integers(min_value=0, max_value=60))
def test_trim_contract_random_unicode_graphemes(text: str, limit: int) -> None:
    check_trim(text, limit, count_graphemes, trim(text, limit))


@PROPERTY
@given(mixtures(), st.integers(min_value=20, max_value=140), st.sampled_from(["...", " [more]", "…"]))
def test_trim_contract_other_ellipses(text: str, limit: int, ellipsis: str) -> None:
    check_trim(text, limit, count_x, trim(text, limit, count_x, ellipsis), ellipsis)


def test_fitting_text_is_untouched() -> None:
    text = "  Already short, trailing space kept.  "
    assert trim(text, 100) == TrimResult(text, False, len(text))
    assert trim("", 0) == TrimResult("", False, 0)


def test_too_small_for_the_ellipsis() -> None:
    assert trim("hello world", 0) == TrimResult("", True, 0)
    assert trim("hello world", 1, ellipsis="...") == TrimResult("", True, 0)
    assert trim("hello world", 1) == TrimResult(ELLIPSIS, True, 1)


def test_prefers_sentence_end_then_word() -> None:
    text = "The first sentence is here. The second one goes on and on without stopping anywhere soon."
    assert trim(text, 40).text == "The first sentence is here.…"
    # A sentence end that would waste more than a third of the limit is not worth it: word boundary.
    expected = "The first sentence is here. The second one goes on and on without stopping…"
    assert trim(text, 80).text == expected
    # No space at all: any grapheme boundary.
    assert trim("x" * 50, 10).text == "x" * 9 + ELLIPSIS


def test_strips_dangling_punctuation_before_the_ellipsis() -> None:
    assert trim("alpha, beta, gamma, delta", 14).text == "alpha, beta…"
    assert trim("北汽集团，宁德时代，动力电池，新能源", 11).text == "北汽集团，宁德时代…"
    assert trim("see (the details) here", 6).text == "see…"
    assert trim("see (the details) here", 12).text == "see (the…"


def test_cjk_cuts_anywhere_but_prefers_sentence_end() -> None:
    text = "北汽集团与宁德时代签署深化合作备忘录。双方将联合开发动力电池产品，共同开拓新能源汽车市场。"
    assert trim(text, 24).text == "北汽集团与宁德时代签署深化合作备忘录。…"
    # The sentence end would waste more than a third of 32: cut between any two characters instead.
    assert trim(text, 32).text == "北汽集团与宁德时代签署深化合作备忘录。双方将联合开发动力电池产…"
    assert trim(text, 40, count_x).text == "北汽集团与宁德时代签署深化合作备忘录。…"


def test_never_splits_graphemes() -> None:
    family = "👨\u200d👩\u200d👧\u200d👦"
    assert trim(family * 5, 3).text == family * 2 + ELLIPSIS
    assert trim("🇨🇳🇩🇪🇯🇵", 2).text == "🇨🇳…"
    assert trim("e\u0301" * 10, 4).text == "e\u0301" * 3 + ELLIPSIS
    assert trim(family * 5, 7, count_utf16).text == ELLIPSIS  # one family is 11 UTF-16 units


def test_url_is_kept_whole_or_dropped() -> None:
    text = "Read more: https://news.example.com/en/2023/03/13/baic-catl-cooperation today"
    assert trim(text, 40).text == "Read more…"
    assert count_x(text) == 40  # and "…" weighs 2 on X
    assert trim(text, 36, count_x).text == "Read more: https://news.example.com/en/2023/03/13/baic-catl-cooperation…"
    cjk = "详情见https://news.example.com/zh/2023，欢迎转发"
    assert trim(cjk, 16, count_weibo).text == "详情见https://news.example.com/zh/2023…"
    assert trim("#话题# 北汽集团 @北汽集团 宁德时代", 12).text == "#话题# 北汽集团…"


def test_trim_20000_characters() -> None:
    # how long this takes is measured in bench/text.py, not asserted here
    article = (
        "BAIC GROUP and CATL signed a business cooperation agreement https://news.example.com/en/1 to "
        "develop power battery products 🔋 and explore the NEV market. 北汽集团与宁德时代签署深化合作备忘录，"
        "携手开发动力电池产品。详情见https://news.example.com/zh/2023。\n"
    ) * 120
    article = article[:20000]
    for count in (count_graphemes, count_x, count_weibo, count_utf16):
        check_trim(article, 280, count, trim(article, 280, count))


@pytest.mark.parametrize("count", COUNTERS)
def test_examples_trim_to_platform_limits(count: Counter) -> None:
    text = (
        "🚗⚡ New NEV platform: 1,000 km range, 10-minute charging — and a very long headline that will not "
        "fit in a single short social post no matter how it is trimmed by a careless formatter "
        "https://news.example.com/en/2026/11/01/nev-platform?ref=homepage&lang=en"
    )
    for limit in (0, 1, 5, 23, 24, 50, 100, 140, 280):
        check_trim(text, limit, count, trim(text, limit, count))
