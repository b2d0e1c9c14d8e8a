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
