"""The ``_search`` request body: a pydantic model, then a typed plan for the compiler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aggregata.dsl.query import Query, parse_query
from aggregata.errors import ParsingError

MAX_RESULT_WINDOW = 10_000
DEFAULT_TRACK_TOTAL_HITS = 10_000


class SearchBody(BaseModel):
    """The Elasticsearch search request body (the subset Aggregata understands)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: dict[str, Any] | None = None
    size: int = Field(10, ge=0)
    from_: int = Field(0, ge=0, alias="from")
    sort: list[Any] | dict[str, Any] | str | None = None
    source: bool | str | list[str] | dict[str, Any] | None = Field(None, alias="_source")
    aggs: dict[str, Any] | None = None
    aggregations: dict[str, Any] | None = None
    track_total_hits: bool | int | None = None
    profile: bool = False
    timeout: str | None = None

    @field_validator("sort", mode="before")
    @classmethod
    def _sort_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, (str, dict)) else v


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False
    missing_first: bool = False


@dataclass(frozen=True)
class SourceFilter:
    """Which fields of ``_source`` to return; ``enabled=False`` returns none."""

    enabled: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    """A parsed search: the compiler's input."""

    query: Query
    size: int = 10
    offset: int = 0
    sort: tuple[SortKey, ...] = ()
    source: SourceFilter = SourceFilter()
    track_total_hits: bool | int = DEFAULT_TRACK_TOTAL_HITS
    aggs: dict[str, Any] | None = None
    profile: bool = False
    timeout_s: float | None = None


def _parse_sort(items: list[Any] | None) -> tuple[SortKey, ...]:
    keys = []
    for item in items or []:
        if isinstance(item, str):
            keys.append(SortKey(item, descending=item == "_score"))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise ParsingError(f"malformed sort entry {item!r}")
        ((name, spec),) = item.items()
        if isinstance(spec, str):
            spec = {"order": spec}
        if not isinstance(spec, dict):
            raise ParsingError(f"malformed sort entry for [{name}]")
        order = spec.get("order", "desc" if name == "_score" else "asc")
        if order not in ("asc", "desc"):
            raise ParsingError(f"[order] must be asc or desc, got [{order}]")
        missing = spec.get("missing", "_last")
        if missing not in ("_last", "_first"):
            raise ParsingError("[missing] in sort supports only _last and _first")
        keys.append(SortKey(name, order == "desc", missing == "_first"))
    return tuple(keys)


def _parse_source(spec: Any) -> SourceFilter:
    if spec is None or spec is True:
        return SourceFilter()
    if spec is False:
        return SourceFilter(enabled=False)
    if isinstance(spec, str):
        return SourceFilter(includes=(spec,))
    if isinstance(spec, list):
        return SourceFilter(includes=tuple(str(s) for s in spec))
    if isinstance(spec, dict):
        return SourceFilter(
            includes=_patterns(spec.get("includes", spec.get("include"))),
            excludes=_patterns(spec.get("excludes", spec.get("exclude"))),
        )
    raise ParsingError("[_source] must be a boolean, a string, an array or an object")


def _patterns(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    raise ParsingError("[_source] includes/excludes must be a string or an array")


def _timeout_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * units[suffix]
    raise ParsingError(f"failed to parse timeout [{text}]")


def parse_search(body: dict[str, Any] | None) -> SearchRequest:
    """Validate a search body; every problem is a 400 naming the offending part."""
    try:
        model = SearchBody.model_validate(body or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            raise ParsingError(f"unknown key [{where}] in the search request") from None
        raise ParsingError(f"[{where}] {err['msg']}") from None
    if model.from_ + model.size > MAX_RESULT_WINDOW:
        raise ParsingError(
            f"Result window is too large, from + size must be less than or equal to [{MAX_RESULT_WINDOW}]"
            f" but was [{model.from_ + model.size}]",
            type="illegal_argument_exception",
        )
    if model.aggs is not None and model.aggregations is not None:
        raise ParsingError("use either [aggs] or [aggregations], not both")
    track = model.track_total_hits
    return SearchRequest(
        query=parse_query(model.query),
        size=model.size,
        offset=model.from_,
        sort=_parse_sort(model.sort),  # type: ignore[arg-type]
        source=_parse_source(model.source),
        track_total_hits=DEFAULT_TRACK_TOTAL_HITS if track is None else track,
        aggs=model.aggs if model.aggs is not None else model.aggregations,
        profile=model.profile,
        timeout_s=_timeout_seconds(model.timeout),
    )
