"""Trimming and thread-splitting a 20,000-character article: how long the pure text helpers take.

Run: `python bench/text.py`. Prints the best of 5 runs per counter (the composers call these on every
preview keystroke in the dashboard, so they should stay well under the 50 ms a person would notice).
"""

from __future__ import annotations

import time

from sharer.text import count_graphemes, count_utf16, count_weibo, count_x
from sharer.text.split import split_thread
from sharer.text.trim import trim

ARTICLE = ((
    "BAIC GROUP and CATL signed a business cooperation agreement https://news.example.com/en/1 to "
    "develop power battery products 🔋 and explore the NEV market. 北汽集团与宁德时代签署深化合作备忘录，"
    "携手开发动力电池产品。详情见https://news.example.com/zh/2023。\n"
) * 120)[:20000]


def best_of(runs: int, fn, *args) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    for count in (count_graphemes, count_x, count_weibo, count_utf16):
        print(f"trim to 280, {count.__name__:16s} {best_of(5, trim, ARTICLE, 280, count) * 1000:7.1f} ms")
    print(f"split_thread 280, count_x         {best_of(5, split_thread, ARTICLE, 280, count_x) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
