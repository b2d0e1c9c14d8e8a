"""One thread that cancels queries running past their deadline.

A ``threading.Timer`` per query starts (and stops) a thread for every query: a quarter of a
millisecond each, a noticeable share of a 10 ms aggregation. Here one daemon thread sleeps
until the earliest deadline; arming a later deadline does not even wake it, and a query
that finishes in time only marks its entry cancelled (entries leave the heap when due).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class _Entry:
    deadline: float
    seq: int
    fire: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Watchdog:
    """Calls ``fire`` of every armed entry whose deadline passes before it is disarmed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float, fire: Callable[[], None]) -> _Entry:
        entry = _Entry(self._clock() + seconds, next(self._seq), fire)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aggregata-watchdog", daemon=True)
                self._thread.start()
            earliest = self._heap[0].deadline if self._heap else None
            heapq.heappush(self._heap, entry)
            if earliest is None or entry.deadline < earliest:
                self._cond.notify()
        return entry

    def disarm(self, entry: _Entry) -> None:
        """After this returns, ``entry`` never fires (a firing in progress has finished)."""
        with self._cond:
            entry.cancelled = True

    def close(self) -> None:
        """Stop the thread and drop every entry (they hold the engine's connections, which
        must not outlive it)."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = self._clock()
                while self._heap and self._heap[0].deadline <= now:
                    entry = heapq.heappop(self._heap)
                    if not entry.cancelled:
                        entry.fire()  # under the lock: disarm waits for it
                wait = self._heap[0].deadline - now if self._heap else None
                self._cond.wait(wait)
