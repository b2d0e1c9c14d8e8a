"""The funnel request: steps, conversion window, step order, exclusions and the view.

Strict models (unknown keys are a 400 naming them). Everything that can be checked without
the collection is checked here, so a request that passes is well-formed: 2-20 steps, a
positive window of at most a year, exclusions between existing steps, ``from_step`` before
``to_step``. What a request *means* is in ``docs/insights.md`` (section "Funnels").
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aggregata.insights.models import Filter, InsightRequest

MAX_STEPS = 20
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}
MAX_WINDOW_S = 366 * 86_400
Order = Literal["ordered", "strict", "unordered"]
Viz = Literal["steps", "time_to_convert", "trends"]


class FunnelStep(BaseModel):
    """One step: an event name (None: any event), optional filters, a display name."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(None, min_length=1, max_length=200, examples=["pageview"])
    filters: list[Filter] = Field(default_factory=list)
    name: str | None = Field(None, max_length=200, examples=["Visited"])

    @property
    def label(self) -> str:
        return self.name or self.event or "All events"


class ConversionWindow(BaseModel):
    """How long after the first step an actor has to complete the funnel (inclusive)."""

    model_config = ConfigDict(extra="forbid")

    value: int = Field(14, examples=[7])
    unit: Literal["second", "minute", "hour", "day", "week"] = "day"

    @model_validator(mode="after")
    def _positive(self) -> ConversionWindow:
        if self.value <= 0:
            raise ValueError(f"the conversion window must be positive, got {self.value} {self.unit}")
        if self.seconds > MAX_WINDOW_S:
            raise ValueError("the conversion window can be at most 366 days")
        return self

    @property
    def seconds(self) -> int:
        return self.value * UNIT_SECONDS[self.unit]


class Exclusion(BaseModel):
    """An event that disqualifies an attempt when it happens between two of its steps."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=200, examples=["logout"])
    filters: list[Filter] = Field(default_factory=list)
    from_step: int = Field(0, ge=0)
    to_step: int = Field(1, ge=1)


class FunnelRequest(InsightRequest):
    """``POST /v1/insights/funnels`` body."""

    steps: list[FunnelStep] = Field(min_length=2, max_length=MAX_STEPS)
    window: ConversionWindow = Field(default_factory=ConversionWindow)
    order: Order = "ordered"
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=10)
    breakdown: str | None = Field(None, min_length=1, max_length=255, examples=["browser"])
    breakdown_limit: int = Field(25, ge=1, le=1000)
    funnel_viz: Viz = "steps"
    from_step: int | None = Field(None, ge=0)
    to_step: int | None = Field(None, ge=1)
    bins: int = Field(10, ge=1, le=100)
    interval: Literal["minute", "hour", "day", "week", "month"] = "day"

    @model_validator(mode="after")
    def _consistent(self) -> FunnelRequest:
        n = len(self.steps)
        for x in self.exclusions:
            if not x.from_step < x.to_step < n:
                raise ValueError(
                    f"exclusion [{x.event}]: need from_step < to_step < {n} (the number of steps),"
                    f" got {x.from_step} and {x.to_step}"
                )
        if self.exclusions and self.order == "unordered":
            raise ValueError("exclusions need an order of steps: use order ordered or strict")
        if self.order == "unordered":
            keys = [(s.event, repr(s.filters)) for s in self.steps]
            if len(set(keys)) < len(keys):
                raise ValueError("an unordered funnel cannot repeat a step: one event would count for both")
        if not self.from_index < self.to_index < n:
            raise ValueError(f"need from_step < to_step < {n}, got {self.from_index} and {self.to_index}")
        if self.breakdown is not None and self.funnel_viz != "steps":
            raise ValueError(f"breakdown is supported with funnel_viz steps, not {self.funnel_viz}")
        return self

    @property
    def from_index(self) -> int:
        return self.from_step if self.from_step is not None else 0

    @property
    def to_index(self) -> int:
        return self.to_step if self.to_step is not None else len(self.steps) - 1
