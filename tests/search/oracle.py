"""An independent evaluator of Elasticsearch query clauses over raw JSON documents.

It shares no code with the compiler: it walks the documents in plain Python, the way a
reader of the Elasticsearch reference would evaluate a query by hand.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def _values(doc: dict[str, Any], path: str) -> list[Any]:
    if path == "_id":
        return [doc.get("_id")]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    if node is None:
        return []
    values = node if isinstance(node, list) else [node]
    return [v for v in values if v is not None]


def _as_date(v: Any) -> datetime:
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v / 1000, tz=UTC)
    d = datetime.fromisoformat(v)
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _norm(v: Any, like: Any) -> Any:
    """Bring a query value to the stored value's kind (dates, numbers, keyword text)."""
    if isinstance(like, bool):
        return v if isinstance(v, bool) else str(v) == "true"
    if isinstance(like, (int, float)):
        return float(v)
    if isinstance(like, str) and _looks_like_date(like):
        return _as_date(v)
    return v if isinstance(v, str) else str(v)


def _looks_like_date(s: str) -> bool:
    return len(s) >= 10 and s[4] == "-" and s[7] == "-" and s[:4].isdigit()


def _stored(v: Any) -> Any:
    if isinstance(v, str) and _looks_like_date(v):
        return _as_date(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return v


def matches(query: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    if not query:
        return True
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "term":
        ((field, value),) = spec.items()
        if isinstance(value, dict):
            value = value["value"]
        return any(_stored(v) == _norm(value, v) for v in _values(doc, field))
    if kind == "terms":
        ((field, wanted),) = spec.items()
        return any(_stored(v) == _norm(w, v) for v in _values(doc, field) for w in wanted)
    if kind == "ids":
        return str(doc.get("_id")) in {str(v) for v in spec["values"]}
    if kind == "exists":
        field = spec["field"]
        return bool(_values(doc, field))
    if kind == "range":
        ((field, bounds),) = spec.items()
        ops = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        return any(
            all(ops[op](_stored(v), _norm(b, v)) for op, b in bounds.items() if op in ops)
            for v in _values(doc, field)
        )
    if kind == "bool":

        def clauses(key: str) -> list[dict[str, Any]]:
            c = spec.get(key, [])
            return c if isinstance(c, list) else [c]

        must = clauses("must") + clauses("filter")
        if not all(matches(c, doc) for c in must):
            return False
        if any(matches(c, doc) for c in clauses("must_not")):
            return False
        should = clauses("should")
        if not should:
            return True
        msm = spec.get("minimum_should_match")
        if msm is None:
            required = 0 if must else 1
        elif isinstance(msm, str) and msm.endswith("%"):
            pct = int(msm[:-1])
            required = math.floor(len(should) * abs(pct) / 100)
            required = len(should) - required if pct < 0 else required
        else:
            required = int(msm) if int(msm) >= 0 else len(should) + int(msm)
        return sum(matches(c, doc) for c in should) >= required
    raise AssertionError(f"oracle does not know {kind}")
