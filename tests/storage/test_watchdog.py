from __future__ import annotations

import threading
import time

from aggregata.storage.watchdog import Watchdog


def test_fires_past_deadlines_only_and_never_after_disarm() -> None:
    dog = Watchdog()
    fired: list[str] = []
    done = threading.Event()
    late = dog.arm(30, lambda: fired.append("late"))
    kept = dog.arm(0.05, lambda: fired.append("kept"))
    cancelled = dog.arm(0.05, lambda: fired.append("cancelled"))
    dog.disarm(cancelled)
    dog.arm(0.1, done.set)  # a later deadline armed after an earlier one
    assert done.wait(5)
    assert fired == ["kept"]
    dog.disarm(kept)  # disarming after firing is harmless
    dog.disarm(late)
    time.sleep(0.05)
    assert fired == ["kept"]


def test_close_stops_the_thread_and_drops_what_it_holds() -> None:
    """Entries hold engine connections; a closed engine must not leave them alive."""

    def running() -> int:
        return sum(t.name == "aggregata-watchdog" for t in threading.enumerate())

    before = running()
    dog = Watchdog()
    fired: list[str] = []
    dog.arm(30, lambda: fired.append("late"))
    assert running() == before + 1
    dog.close()
    assert running() == before
    assert fired == []
