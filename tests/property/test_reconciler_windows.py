"""The reconciler reads trades for at most MAX_TRADE_SYMBOLS markets per run; the windows take
turns, so a fill missed on any market is found within a bounded number of runs."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from actors.reconciler import next_window

symbols = st.lists(st.text("ABCXYZ/", min_size=1, max_size=4), unique=True, max_size=40)


@given(symbols, st.integers(1, 12), st.data())
def test_successive_windows_cover_every_symbol(items: list[str], limit: int,
                                               data: st.DataObject) -> None:
    after = data.draw(st.one_of(st.none(), st.sampled_from(items) if items else st.none()))
    seen: set[str] = set()
    for _ in range(max(1, math.ceil(len(items) / limit))):
        window = next_window(items, after, limit)
        assert len(window) == min(limit, len(items))
        assert len(set(window)) == len(window) and set(window) <= set(items)
        seen |= set(window)
        after = window[-1] if window else after
    assert seen == set(items)


def test_a_window_continues_after_the_last_one_and_wraps() -> None:
    items = ["A", "B", "C", "D", "E"]
    assert next_window(items, None, 2) == ("A", "B")
    assert next_window(items, "B", 2) == ("C", "D")
    assert next_window(items, "D", 2) == ("E", "A")
    assert next_window(items, "Q", 2) == ("A", "B")  # gone from the list: start over
    assert next_window(items, "C", 9) == tuple(items)
