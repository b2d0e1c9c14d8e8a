"""Which funnels may drop repeated events before the work per event (``funnels/compact.py``).

The answers themselves are checked against the oracle in ``test_funnels_cases.py`` (runs of
entries, runs of a repeated step, with ties) and ``test_funnels_oracle.py`` (repeated
later steps on generated events); here, the bound that makes the run rule safe.
"""

from __future__ import annotations

import pytest

from aggregata.insights.funnels.compact import MAX_RUN_BOUND, run_bound
from aggregata.insights.funnels.models import FunnelStep


@pytest.mark.parametrize(
    ("events", "bound"),
    [
        (["a", "b"], 1),
        (["a", "b", "c", "d"], 1),
        (["pv", "signup", "pv", "pv", "cart"], 2),  # one pageview can be steps 2 and 3 in a run
        (["pv", "cart", "pv", "pv", "pv", "buy"], 3),
        (["a", "b", "b", None, "c"], 3),  # a step without an event may match anything
        (["a", "a", "b"], None),  # step 1 could be an entry event itself
        ([None, "b"], None),
        (["a", None], None),
        (["a", "b", *[None] * (MAX_RUN_BOUND + 1)], None),  # too long to test cheaply
    ],
)
def test_run_bound(events: list[str | None], bound: int | None) -> None:
    assert run_bound([FunnelStep(event=e) for e in events]) == bound
