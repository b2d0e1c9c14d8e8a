"""Funnels: how many actors go through a sequence of steps, and how fast.

``models`` (the request), ``plan`` (resolved against the collection), ``layers`` (a chain
of CTEs and tree helpers), ``sql`` (the per-actor list query, linear in events and steps;
its work per event in ``elements``, which ``compact`` keeps small), ``views`` (steps, time
to convert, trends), ``service`` (runs it). Semantics: ``docs/insights.md``, section
"Funnels".
"""

from aggregata.insights.funnels.models import FunnelRequest
from aggregata.insights.funnels.service import FunnelService

__all__ = ["FunnelRequest", "FunnelService"]
