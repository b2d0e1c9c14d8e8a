"""Which document ids a collection already stores: the dedupe index behind idempotent writes.

A write must not store an id twice (a retried batch double-counts nothing). A primary key
on the table would guarantee that, but DuckDB maintains it as an ART index that costs more
than the append itself and grows with the table in memory. This index holds only a
64-bit hash of each stored id (8 bytes an id) as a few sorted NumPy runs, plus a flag per
value of a hash's top 24 bits. Checking a batch is a flag lookup, then a binary search per
run for the ids whose flag is set; adding is appending a sorted run and merging runs of
similar size (a log-structured merge: each hash is merged O(log n) times, runs stay few).

The hash is Python's own string hash (64-bit SipHash, salted per process: fine, since the
index lives only as long as the process): it costs well under a microsecond an id.

A hash match only says "maybe stored": the engine checks those ids against the table
itself before treating them as duplicates, so a collision (about 1 in 10^12 per id at ten
million ids) costs one lookup and never a lost document. Hashes of deleted ids stay until
the index is rebuilt; they are matches the table check then clears. The index is derived
data: the engine rebuilds it from the table when it opens a collection, and drops it when
a transaction that added to it rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Hashes = npt.NDArray[np.uint64]
_FLAG_BITS = 24
_FLAG_SHIFT = np.uint64(64 - _FLAG_BITS)


def hash_ids(ids: Sequence[str]) -> Hashes:
    """The 64-bit hashes of some ids."""
    return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)).view(np.uint64)


class IdIndex:
    """A set of 64-bit id hashes with vectorised membership tests."""

    def __init__(self, hashes: Hashes | None = None) -> None:
        self._runs: list[Hashes] = []
        # One flag per value of a hash's top bits: most new ids land on a clear flag and
        # skip the binary searches (16 MiB; a quarter set at 5M ids, half at 12M).
        self._flags = np.zeros(1 << _FLAG_BITS, dtype=np.bool_)
        if hashes is not None and len(hashes):
            self.add(np.unique(hashes))

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def runs(self) -> int:
        return len(self._runs)

    def maybe_contains(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """For each hash, whether it was added (exactly: the hashes are compared whole)."""
        out = np.zeros(len(hashes), dtype=np.bool_)
        candidates = np.flatnonzero(self._flags[hashes >> _FLAG_SHIFT])
        if not len(candidates):
            return out
        # Sorted needles make the binary searches walk each run in order: 2-3x faster.
        subset = hashes[candidates]
        order = np.argsort(subset)
        needles = subset[order]
        found = np.zeros(len(needles), dtype=np.bool_)
        for run in self._runs:
            at = np.searchsorted(run, needles)
            np.minimum(at, len(run) - 1, out=at)
            found |= run[at] == needles
        out[candidates[order]] = found
        return out

    def add(self, hashes: Hashes) -> None:
        """Add hashes (callers add only ids that were not stored yet)."""
        if not len(hashes):
            return
        self._flags[hashes >> _FLAG_SHIFT] = True
        self._runs.append(np.sort(hashes))
        # Merge while the newest run is at least a quarter of the one before it: run sizes
        # then shrink geometrically, so there are O(log n) runs to search.
        while len(self._runs) > 1 and 4 * len(self._runs[-1]) >= len(self._runs[-2]):
            newer = self._runs.pop()
            older = self._runs.pop()
            # A stable sort of two sorted runs is a linear merge (timsort finds the runs).
            self._runs.append(np.sort(np.concatenate((older, newer)), kind="stable"))
