"""What every pipeline aggregation shares: its identity, its paths, and strict parameter parsing.

Parameters are read through :class:`Body` so that a typo (``gap_polcy``) or a wrong type is
a 400 naming the pipeline and the field, never a silently applied default.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregata.dsl.aggs.params import KeyReader
from aggregata.errors import BadRequest, ParsingError
from aggregata.search.pipeline.paths import JSON, BucketsPath, GapPolicy, parse_path


@dataclass(frozen=True)
class Pipeline:
    """A parsed pipeline aggregation. ``paths`` drive dependency order and validation."""

    name: str
    type: str
    meta: JSON | None

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return ()


class ParentPipeline(Pipeline):
    """Declared inside a multi-bucket aggregation; rewrites that aggregation's buckets."""

    def apply(self, agg: JSON, agg_name: str) -> None:
        raise NotImplementedError


class SiblingPipeline(Pipeline):
    """Declared next to a multi-bucket aggregation; adds one result to the same level."""

    def compute(self, container: JSON) -> JSON:
        raise NotImplementedError


class Body(KeyReader):
    """A pipeline's parameter object, read key by key; ``done`` rejects leftovers."""

    def has(self, key: str) -> bool:
        return key in self.body and self.body[key] is not None

    def string(self, key: str, default: str | None = None) -> str | None:
        v = self.raw(key)
        if v is None:
            return default
        if not isinstance(v, str):
            raise self.fail(f"[{key}] must be a string, got [{v}]")
        return v

    def integer(self, key: str, default: int | None) -> int | None:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
            raise self.fail(f"[{key}] must be an integer, got [{v}]")
        return int(v)

    def number(self, key: str, default: float) -> float:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(f"[{key}] must be a number, got [{v}]")
        return float(v)

    def boolean(self, key: str, default: bool) -> bool:
        v = self.raw(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(f"[{key}] must be a boolean, got [{v}]")
        return v

    def gap_policy(self) -> GapPolicy:
        v = self.raw("gap_policy")
        return GapPolicy.SKIP if v is None else GapPolicy.parse(v)

    def missing(self, key: str) -> ParsingError:
        return ParsingError(f"Missing required field [{key}] for {self.type} aggregation [{self.name}]")

    def single_path(self) -> BucketsPath:
        """A ``buckets_path`` that names one value: a string or a one-element array."""
        v = self.raw("buckets_path")
        if v is None:
            raise self.missing("buckets_path")
        if isinstance(v, list):
            if len(v) != 1:
                msg = f"buckets_path must contain a single entry for aggregation [{self.name}]"
                raise BadRequest(f"Validation Failed: 1: {msg};", type="action_request_validation_exception")
            v = v[0]
        return parse_path(v)

    def path_map(self) -> dict[str, BucketsPath]:
        """``bucket_script``'s map form; a string or array binds ``_value0``, ``_value1``..."""
        v = self.raw("buckets_path")
        if v is None:
            raise self.missing("buckets_path")
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            v = {f"_value{i}": p for i, p in enumerate(v)}
        if not isinstance(v, dict) or not v:
            raise self.fail("[buckets_path] must be a string, an array or a non-empty object")
        return {str(var): parse_path(p) for var, p in v.items()}
