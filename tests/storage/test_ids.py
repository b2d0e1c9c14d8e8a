from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregata.storage.ids import IdIndex

hashes = st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=60)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(hashes, max_size=12), probe=hashes)
def test_index_answers_like_a_set(batches: list[list[int]], probe: list[int]) -> None:
    index, oracle = IdIndex(), set()
    for batch in batches:
        new = [h for h in dict.fromkeys(batch) if h not in oracle]
        index.add(np.array(new, dtype=np.uint64))
        oracle.update(new)
    probe += [*oracle][:10]
    got = index.maybe_contains(np.array(probe, dtype=np.uint64))
    assert got.tolist() == [h in oracle for h in probe]
    assert len(index) == len(oracle)


def test_runs_stay_logarithmic() -> None:
    index = IdIndex(np.arange(1000, dtype=np.uint64))
    rng = np.random.default_rng(1)
    for _ in range(2000):
        index.add(rng.integers(2000, 2**63, size=50, dtype=np.uint64))
    assert index.runs <= 12
    assert index.maybe_contains(np.array([5, 1999], dtype=np.uint64)).tolist() == [True, False]
