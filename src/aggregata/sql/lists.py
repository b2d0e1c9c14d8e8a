"""Per-actor list operations: the vocabulary funnels and retention compile to.

A funnel is computed per actor on lists (times, condition bitmasks, positions). DuckDB and
ClickHouse both have vectorized list functions, but not the same ones: ClickHouse has
scans (``arrayReverseFill``, ``arrayCumSum``), DuckDB has none; DuckDB gathers by position
(``list_select``), ClickHouse through a lambda. Each node here is one list operation with
one meaning, rendered per engine by ``DUCKDB_TRANSFORMS``/``CLICKHOUSE_TRANSFORMS`` (merged
into the dialects in ``sql/dialects.py``), in linear time (``ListSort``: n log n) so the
funnel stays linear in events and steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp

LIST_NONE = 2**61
"""A time after every real one (year ~73000): "no such event" at the end of a times list."""

Render = Callable[[Any, Any], str]


class EpochMicros(exp.Expression, exp.Func):
    """Microseconds since 1970-01-01 UTC of instant ``this`` (an integer)."""


class ListAgg(exp.Expression, exp.AggFunc):
    """The values of ``this`` in a group as a list (NULLs kept), only rows where ``where``
    holds; ``[]`` if none. Use tuples for nullable values: ClickHouse drops NULLs."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "where": False}


class ListLen(exp.Expression, exp.Func):
    """Number of elements of list ``this``."""


class ListSort(exp.Expression, exp.Func):
    """List ``this`` sorted ascending (tuples lexicographically)."""


class ListMax(exp.Expression, exp.Func):
    """Largest element of non-empty list ``this``."""


class ListDistinct(exp.Expression, exp.Func):
    """The distinct elements of list ``this`` (no NULLs), in no particular order."""


class ListUnnest(exp.Expression, exp.Func):
    """One row per element of list ``this`` (in a SELECT list)."""


class ListConcat(exp.Expression, exp.Func):
    """The lists ``expressions`` one after the other."""

    arg_types: ClassVar[dict[str, bool]] = {"expressions": True}
    is_var_len_args = True


class ListFlatten(exp.Expression, exp.Func):
    """The elements of the lists in list ``this``, in order."""


class ListWhere(exp.Expression, exp.Func):
    """Elements of ``this`` whose element in boolean list ``mask`` (same length, no NULLs) is true."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "mask": True}


class ListIndexMap(exp.Expression, exp.Func):
    """``[this for index in 1..len(over)]``: ``this`` reads lists by the 1-based lambda
    variable ``index`` (an identifier), e.g. ``x[index] <> x[index + 1]`` compares neighbours."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "index": True, "over": True}


class ListIndexWhere(exp.Expression, exp.Func):
    """The positions ``index`` in 1..len(``over``) where ``this`` holds, ascending (arguments as
    for ``ListIndexMap``): one pass, no boolean list in between."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "index": True, "over": True}


class ListSelect(exp.Expression, exp.Func):
    """``[this[i] for i in indexes]``: a gather by 1-based positions (all within ``this``)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "indexes": True}


class ListLastIndexOf(exp.Expression, exp.Func):
    """1-based position of the last element of ``this`` equal to ``value`` (which must occur)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "value": True}


class ListRunEnds(exp.Expression, exp.Func):
    """Booleans: does any of the equal-length lists ``expressions`` change after element j?
    The last element always ends a run. Lists must not hold NULLs."""

    arg_types: ClassVar[dict[str, bool]] = {"expressions": True}
    is_var_len_args = True


class ListNextOf(exp.Expression, exp.Func):
    """For i = 1..``length``: the first position after i (at or after i when ``inclusive``)
    where boolean list ``flags`` is true, or ``length + 1`` when there is none; ``this`` is
    the same positions ascending (a column: ``ListIndexWhere`` of the same condition).

    ClickHouse fills the flagged positions backwards (``arrayReverseFill``). DuckDB has no
    scan, so it builds the result in O(length) from runs: the positions cut 1..length into
    segments that each hold one value (``list_resize`` of an empty list, then flatten).
    Each engine reads the argument it needs; the other one is pruned as unused (``flags``
    may be an expression over the row's lists: DuckDB never evaluates it).
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "flags": True, "length": True, "inclusive": True}


class ListPrevOf(exp.Expression, exp.Func):
    """For i = 1..``length``: the last flagged position at or before i, else 0 (arguments as
    for ``ListNextOf``; ClickHouse fills forwards)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "flags": True, "length": True}


class TupleOf(exp.Expression, exp.Func):
    """A tuple of ``expressions``; compares lexicographically, so lists of tuples sort by field."""

    arg_types: ClassVar[dict[str, bool]] = {"expressions": True}
    is_var_len_args = True


class TupleGet(exp.Expression, exp.Func):
    """Field ``index`` (1-based, an integer literal) of a ``TupleOf`` value ``this``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "index": True}


class ListZipMap(exp.Expression, exp.Func):
    """``[body(a[i], b[i], …) for i]`` over lists ``arrays`` of equal length.

    ``body`` refers to the element of ``arrays[k]`` as the column ``names[k]``; it may also
    refer to columns of the row (scalars). Arrays should be plain columns.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "names": True, "arrays": True}


class PeriodIndex(exp.Expression, exp.Func):
    """Whole ``unit``s (day, week, month) from 1970 to ``this``, the first date of such a period.

    Weeks start on Monday (1970-01-05), months on the 1st: consecutive periods have
    consecutive indexes, so "n periods later" is a subtraction.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True}


# -- renderings ----------------------------------------------------------------------------


def _flag(e: exp.Expr, name: str) -> bool:
    value = e.args.get(name)
    return isinstance(value, exp.Boolean) and bool(value.this)


def _segments(length_fn: str, resize: str, flatten: str, lam: str, rng: str, cond: str) -> Render:
    """``ListNextOf``/``ListPrevOf``: segment ``_j`` (0..len(P)) of 1..length spans
    ``[low, high)`` and holds ``value``; the segments are made and flattened. Without any
    flagged position (a step's event the actor never did: the common case) it is one fill."""

    def render(gen: Any, e: exp.Func) -> str:
        p, n = gen.sql(e.this), gen.sql(e, "length")
        last = f"{length_fn}({p})"

        def at(k: str) -> str:
            return f"{p}[{k}]"

        if isinstance(e, ListPrevOf):
            low = cond.format("_j = 0", "1", at("_j"))
            high = cond.format(f"_j = {last}", f"{n} + 1", at("_j + 1"))
            value = cond.format("_j = 0", "0", at("_j"))
        else:
            inclusive = _flag(e, "inclusive")
            low = cond.format("_j = 0", "0" if inclusive else "1", at("_j"))
            high = cond.format(f"_j = {last}", n if inclusive else f"{n} + 1", at("_j + 1"))
            value = cond.format(f"_j = {last}", f"{n} + 1", at("_j + 1"))
        made = f"{flatten}({lam.format(resize.format(f'({high}) - ({low})', value), rng.format(last))})"
        none = "0" if isinstance(e, ListPrevOf) else f"{n} + 1"
        return cond.format(f"{last} = 0", resize.format(n, none), made)

    return render


def _ch_fill(gen: Any, e: exp.Func) -> str:
    """``ListNextOf``/``ListPrevOf`` in ClickHouse: flagged positions, then a fill."""
    flags, n = gen.sql(e, "flags"), gen.sql(e, "length")
    marked = f"arrayMap((_f, _i) -> if(_f, toInt64(_i), toInt64(0)), {flags}, arrayEnumerate({flags}))"
    if isinstance(e, ListPrevOf):
        return f"arrayFill(_x -> _x > 0, {marked})"
    nxt = f"arrayMap(_x -> if(_x = 0, {n} + 1, _x), arrayReverseFill(_x -> _x > 0, {marked}))"
    return nxt if _flag(e, "inclusive") else f"arrayShiftLeft({nxt}, 1, {n} + 1)"


def _zipmap_body(e: ListZipMap, element: Callable[[int], exp.Expr]) -> exp.Expr:
    names = {n.name: k for k, n in enumerate(e.args["names"])}

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name in names:
            return element(names[node.name])
        return node

    body: exp.Expr = e.this.transform(swap)
    return body


def _duck_zipmap(gen: Any, e: ListZipMap) -> str:
    """One list: ``list_transform``; several: over the positions, reading each list there."""
    arrays, names = e.args["arrays"], e.args["names"]
    if len(arrays) == 1:
        return f"LIST_TRANSFORM({gen.sql(arrays[0])}, LAMBDA {gen.sql(names[0])}: {gen.sql(e.this)})"
    i = exp.column("_zi")
    body = _zipmap_body(e, lambda k: exp.Bracket(this=arrays[k].copy(), expressions=[i.copy()], offset=1))
    return f"LIST_TRANSFORM(RANGE(1, LEN({gen.sql(arrays[0])}) + 1), LAMBDA _zi: {gen.sql(body)})"


def _ch_zipmap(gen: Any, e: ListZipMap) -> str:
    names = ", ".join(gen.sql(n) for n in e.args["names"])
    arrays = ", ".join(gen.sql(a) for a in e.args["arrays"])
    return f"arrayMap(({names}) -> {gen.sql(e.this)}, {arrays})"


def _over_index(template: str) -> Render:
    """``ListIndexMap``/``ListIndexWhere``: ``template`` gets the index, the body and the list."""

    def render(gen: Any, e: exp.Func) -> str:
        return template.format(gen.sql(e, "index"), gen.sql(e.this), gen.sql(e, "over"))

    return render


def _run_ends(index: str, differs: str) -> Render:
    def render(gen: Any, e: ListRunEnds) -> str:
        lists = [gen.sql(x) for x in e.expressions]
        return index.format(lists[0], " OR ".join(differs.format(x) for x in lists))

    return render


_PERIOD_ORIGIN = {
    "day": ("day", "1970-01-01", 1),
    "week": ("day", "1970-01-05", 7),
    "month": ("month", "1970-01-01", 1),
}


def _period_index(date: str, diff: str, divide: str) -> Render:
    def render(gen: Any, e: PeriodIndex) -> str:
        unit, origin, size = _PERIOD_ORIGIN[e.text("unit")]
        days = f"{diff}('{unit}', {date.format(origin)}, {gen.sql(e.this)})"
        return days if size == 1 else divide.format(days, size)

    return render


def _duck_list_agg(gen: Any, e: ListAgg) -> str:
    where = e.args.get("where")
    if where is None:
        return f"LIST({gen.sql(e.this)})"
    return f"COALESCE(LIST({gen.sql(e.this)}) FILTER (WHERE {gen.sql(where)}), [])"


def _ch_list_agg(gen: Any, e: ListAgg) -> str:
    where = e.args.get("where")
    if where is None:
        return f"groupArray({gen.sql(e.this)})"
    return f"groupArrayIf({gen.sql(e.this)}, {gen.sql(where)})"


def _duck_tuple(gen: Any, e: TupleOf) -> str:
    fields = ", ".join(f"'f{k + 1}': {gen.sql(x)}" for k, x in enumerate(e.expressions))
    return f"{{{fields}}}"


_DUCK_SEGMENTS = (
    "LEN",
    "LIST_RESIZE([]::BIGINT[], {0}, {1})",
    "FLATTEN",
    "LIST_TRANSFORM({1}, LAMBDA _j: {0})",
)

DUCKDB_TRANSFORMS: dict[type[exp.Expression], Render] = {
    EpochMicros: lambda self, e: self.func("EPOCH_US", e.this),
    ListAgg: _duck_list_agg,
    ListLen: lambda self, e: self.func("LEN", e.this),
    ListSort: lambda self, e: self.func("LIST_SORT", e.this),
    ListMax: lambda self, e: self.func("LIST_MAX", e.this),
    ListDistinct: lambda self, e: self.func("LIST_DISTINCT", e.this),
    ListUnnest: lambda self, e: self.func("UNNEST", e.this),
    ListConcat: lambda self, e: self.func("LIST_CONCAT", *e.expressions),
    ListFlatten: lambda self, e: self.func("FLATTEN", e.this),
    ListWhere: lambda self, e: self.func("LIST_WHERE", e.this, e.args["mask"]),
    ListIndexMap: _over_index("LIST_TRANSFORM(RANGE(1, LEN({2}) + 1), LAMBDA {0}: {1})"),
    ListIndexWhere: _over_index("LIST_FILTER(RANGE(1, LEN({2}) + 1), LAMBDA {0}: {1})"),
    ListSelect: lambda self, e: self.func("LIST_SELECT", e.this, e.args["indexes"]),
    ListLastIndexOf: lambda self, e: (
        f"(LEN({self.sql(e.this)}) - LIST_POSITION(LIST_REVERSE({self.sql(e.this)}),"
        f" {self.sql(e, 'value')}) + 1)"
    ),
    ListRunEnds: _run_ends(
        "LIST_TRANSFORM(RANGE(1, LEN({0}) + 1), LAMBDA _j: {1})", "{0}[_j] IS DISTINCT FROM {0}[_j + 1]"
    ),
    ListNextOf: _segments(*_DUCK_SEGMENTS, "RANGE(0, {0} + 1)", "CASE WHEN {0} THEN {1} ELSE {2} END"),
    ListPrevOf: _segments(*_DUCK_SEGMENTS, "RANGE(0, {0} + 1)", "CASE WHEN {0} THEN {1} ELSE {2} END"),
    TupleOf: _duck_tuple,
    TupleGet: lambda self, e: f"STRUCT_EXTRACT({self.sql(e.this)}, 'f{e.args['index'].name}')",
    ListZipMap: _duck_zipmap,
    PeriodIndex: _period_index("DATE '{}'", "DATE_DIFF", "({} // {})"),
}

CLICKHOUSE_TRANSFORMS: dict[type[exp.Expression], Render] = {
    EpochMicros: lambda self, e: self.func("toUnixTimestamp64Micro", e.this),
    ListAgg: _ch_list_agg,
    ListLen: lambda self, e: self.func("length", e.this),
    ListSort: lambda self, e: self.func("arraySort", e.this),
    ListMax: lambda self, e: self.func("arrayMax", e.this),
    ListDistinct: lambda self, e: self.func("arrayDistinct", e.this),
    ListUnnest: lambda self, e: self.func("arrayJoin", e.this),
    ListConcat: lambda self, e: self.func("arrayConcat", *e.expressions),
    ListFlatten: lambda self, e: self.func("arrayFlatten", e.this),
    ListWhere: lambda self, e: f"arrayFilter((_x, _m) -> _m, {self.sql(e.this)}, {self.sql(e, 'mask')})",
    ListIndexMap: _over_index("arrayMap({0} -> {1}, arrayEnumerate({2}))"),
    ListIndexWhere: _over_index("arrayFilter({0} -> {1}, arrayEnumerate({2}))"),
    ListSelect: lambda self, e: f"arrayMap(_i -> {self.sql(e.this)}[_i], {self.sql(e, 'indexes')})",
    ListLastIndexOf: lambda self, e: f"arrayLastIndex(_x -> _x = {self.sql(e, 'value')}, {self.sql(e.this)})",
    ListRunEnds: _run_ends(
        "arrayMap(_j -> _j = length({0}) OR {1}, arrayEnumerate({0}))", "{0}[_j] != {0}[_j + 1]"
    ),
    ListNextOf: _ch_fill,
    ListPrevOf: _ch_fill,
    TupleOf: lambda self, e: self.func("tuple", *e.expressions),
    TupleGet: lambda self, e: self.func("tupleElement", e.this, e.args["index"]),
    ListZipMap: _ch_zipmap,
    PeriodIndex: _period_index("toDate('{}')", "dateDiff", "intDiv({}, {})"),
}
