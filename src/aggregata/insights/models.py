"""Request models shared by every insight: property filters and the common request fields.

Filters follow PostHog's property filters (``{"property", "operator", "value"}``) and nest
with ``{"and": [...]}`` / ``{"or": [...]}`` groups. Models are strict (unknown keys are a
400 naming them) so a typo never silently widens a query. ``compile_filters`` in
``insights/common.py`` turns them into SQL conditions.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Operator = Literal[
    "eq",
    "neq",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "contains",
    "icontains",
    "regex",
    "is_set",
    "is_not_set",
    "is_date_before",
    "is_date_after",
]

# Operators that keep events *without* the property (and so match everything when the
# property is unknown to the collection): "not equal to X" is true of a missing value.
NEGATIVE_OPERATORS = frozenset({"neq", "not_in", "is_not_set"})


class PropertyFilter(BaseModel):
    """One condition on one property (``country``, ``properties.country`` or a top-level field)."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(min_length=1, max_length=255, examples=["country"])
    operator: Operator = "eq"
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> PropertyFilter:
        """Reject values the operator cannot use, with a reason naming the property."""
        op, value = self.operator, self.value
        if op in ("is_set", "is_not_set"):
            return self
        if value is None:
            raise ValueError(f"filter on [{self.property}]: operator [{op}] needs a value")
        if op in ("in", "not_in") and not isinstance(value, list):
            self.value = [value]
        if op == "between" and not (isinstance(value, list) and len(value) == 2):
            raise ValueError(f"filter on [{self.property}]: [between] needs a [low, high] list")
        if op in ("contains", "icontains", "regex") and not isinstance(value, str):
            raise ValueError(f"filter on [{self.property}]: [{op}] needs a string value")
        return self


class FilterGroup(BaseModel):
    """``{"and": [...]}`` (all must hold) and/or ``{"or": [...]}`` (one must hold)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    and_: list[Filter] | None = Field(None, alias="and")
    or_: list[Filter] | None = Field(None, alias="or")

    @model_validator(mode="after")
    def _not_empty(self) -> FilterGroup:
        if self.and_ is None and self.or_ is None:
            raise ValueError('a filter group needs "and" or "or"')
        return self


Filter = PropertyFilter | FilterGroup
FilterGroup.model_rebuild()


class InsightRequest(BaseModel):
    """Fields every insight request has: where, when, in which time zone, for whom.

    ``date_from``/``date_to`` take PostHog relative forms (``-7d``, ``-24h``, ``-3m``,
    ``mStart``, ``all``) or ISO dates; see ``common.resolve_date_range``. ``actor`` counts
    uniques by another field than the collection's actor field (``properties.session_id``).
    """

    model_config = ConfigDict(extra="forbid")

    collection: str = Field("events", min_length=1, max_length=128)
    date_from: str | None = Field(None, examples=["-30d"])
    date_to: str | None = Field(None, examples=[None])
    timezone: str = Field("UTC", examples=["Europe/Berlin"])
    filters: list[Filter] = Field(default_factory=list)
    actor: str | None = Field(None, examples=["properties.session_id"])
