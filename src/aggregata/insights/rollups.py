"""Rollups: per event collection, event counts and unique-actor sketches per hour and per day.

For each event collection (unless its settings say ``"rollups": {"enabled": false}``)
three tables per ``grain`` (``hour`` and ``day``, UTC), one per ``Kind``:

* ``_rollup_<coll>_<grain>``: per ``(event, bucket, breakdown values…)``, ``n``, the
  number of events;
* ``_rollup_<coll>_<grain>_hll``: per the same keys, a HyperLogLog sketch of the actors,
  one row per register (see ``insights/hll.py``);
* ``_rollup_<coll>_<grain>_actors``: per ``bucket``, one sketch of the actors of every
  event: what a series over all events without breakdowns or filters (daily active
  users) reads, instead of merging every key's sketch per bucket and register (a 90-day
  DAU read 2.9M rows grouped into 1.5M registers; this table has at most one row per
  register and bucket once compacted).

The breakdown properties are configured per collection (``"rollups": {"breakdowns":
["country", "properties.browser"]}``, default none); their values are stored as text with
a one-character prefix (``'='||value``, and ``''`` for a missing value) so every key
column is ``NOT NULL``.

They are kept in step by a ``WriteListener``: inside the transaction of every write, the
rows it stores are appended to a stage table (``stage_rows``), which is folded into the
rollup tables in batches (``fold_stage``) and which readers aggregate too, so a committed
event is in the rollups at the same instant it is in the table. Rollup tables are
append-only; ``compact`` merges rows of equal keys. The buckets of rows a write deletes or
overwrites are rebuilt from the events before the commit (a sketch cannot subtract). The
first write after a rollup's definition changed (or on a collection that has none yet)
rebuilds it from the events in that same transaction; ``refresh`` rebuilds a time range
on demand.

What each grain holds is recorded in ``_aggregata_rollups`` (the latest row per
collection wins): the planner reads it to know what a rollup can answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import orjson
from sqlglot import exp

from aggregata.insights import hll
from aggregata.insights.buckets import epoch_ms, from_epoch_ms
from aggregata.model.mapping import Field, FieldType
from aggregata.sql.aggs.functions import EpochMillis, MillisToTimestamp
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.sql.types import column_type
from aggregata.storage.engine import Collection, Transaction

CATALOG = "_aggregata_rollups"
GRAINS: dict[str, int] = {"hour": 3_600_000, "day": 86_400_000}
# Bump when the stored layout or the sketch parameters change: rollups then rebuild.
FORMAT = f"4/hll{hll.P}"
KEYS = ("event", "bucket")


class Kind(Enum):
    """A rollup table's kind: what its rows are keyed by and what they hold."""

    COUNTS = ""
    SKETCHES = "_hll"
    ACTORS = "_actors"

    @property
    def sketch(self) -> bool:
        return self is not Kind.COUNTS

    def keys(self, spec: RollupSpec) -> list[str]:
        """The key columns (rows of equal keys merge)."""
        keys = ["bucket"] if self is Kind.ACTORS else spec.key_names()
        return keys + (["reg"] if self.sketch else [])

    def measure(self) -> str:
        """The column rows of equal keys combine (counts add, ranks take the maximum)."""
        return "rnk" if self.sketch else "n"


@dataclass(frozen=True)
class RollupSpec:
    """What a collection's rollups hold: which fields, which breakdowns, which format."""

    collection: str
    timestamp: str
    event: str
    actor: str
    breakdowns: tuple[str, ...] = ()
    format: str = FORMAT

    def table(self, grain: str, kind: Kind = Kind.COUNTS) -> str:
        return f"_rollup_{self.collection}_{grain}{kind.value}"

    def stage(self) -> str:
        """The table of event rows written but not yet folded into the rollup tables."""
        return f"_rollup_{self.collection}_stage"

    def key_names(self) -> list[str]:
        return [*KEYS, *(f"k{i}" for i in range(len(self.breakdowns)))]

    def key_of(self, breakdown: str) -> str | None:
        """The key column holding breakdown field ``breakdown``, if the rollup has it."""
        try:
            return f"k{self.breakdowns.index(breakdown)}"
        except ValueError:
            return None

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "timestamp": self.timestamp,
                "event": self.event,
                "actor": self.actor,
                "breakdowns": list(self.breakdowns),
                "format": self.format,
            }
        ).decode()

    @classmethod
    def from_json(cls, collection: str, text: str) -> RollupSpec:
        data = orjson.loads(text)
        return cls(
            collection,
            data["timestamp"],
            data["event"],
            data["actor"],
            tuple(data["breakdowns"]),
            data["format"],
        )


def spec_for(coll: Collection) -> RollupSpec | None:
    """The rollups ``coll`` should have (None: not an event collection, or disabled)."""
    settings = coll.settings
    conf = settings.get("rollups")
    conf = conf if isinstance(conf, dict) else {}
    names = [settings.get(k) for k in ("timestamp_field", "event_field", "actor_field")]
    if conf.get("enabled") is False or not all(isinstance(n, str) for n in names):
        return None
    ts, event, actor = (str(n) for n in names)
    wanted = conf.get("breakdowns")
    breakdowns = [b for b in wanted if isinstance(b, str) and b] if isinstance(wanted, list) else []
    return RollupSpec(
        coll.name, ts, event, actor, tuple(dict.fromkeys(_field_name(coll, b) for b in breakdowns))
    )


def _field_name(coll: Collection, name: str) -> str:
    """``country`` → ``properties.country`` unless it is a top-level field already mapped."""
    if name.startswith("properties.") or (name in coll.mapping and not name.startswith("properties")):
        return name
    return "properties." + name


def encode(value: exp.Expr | None) -> exp.Expr:
    """A breakdown value as a non-null key: ``''`` when missing, else ``'='`` + the text."""
    if value is None:
        return exp.Literal.string("")
    text = exp.DPipe(this=exp.Literal.string("="), expression=exp.cast(value, "VARCHAR"))
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=value.copy(), expression=exp.Null()), true=exp.Literal.string(""))],
        default=text,
    )


def decode(key: str | None) -> str | None:
    """The breakdown value an encoded key stands for."""
    return key[1:] if key else None


def floor_ms(ts: exp.Expr, step: int) -> exp.Expr:
    """Epoch milliseconds of ``ts`` rounded down to a multiple of ``step`` (UTC grains)."""
    ms = EpochMillis(this=ts)
    return exp.Sub(
        this=ms, expression=exp.Paren(this=exp.Mod(this=ms.copy(), expression=exp.Literal.number(step)))
    )


# -- DDL -------------------------------------------------------------------------------------


def _dtype(text: str | exp.DType) -> exp.DataType:
    dtype = exp.DataType.build(text)
    dtype.set("nullable", False)
    return dtype


def _nullable(text: str | exp.DType) -> exp.DataType:
    dtype = exp.DataType.build(text)
    dtype.set("nullable", True)
    return dtype


def _columns(spec: RollupSpec, kind: Kind, dialect: str) -> list[tuple[str, exp.DataType]]:
    bucket = column_type(Field("bucket", FieldType.DATE), dialect)
    bucket.set("nullable", False)
    cols = [("bucket", bucket)]
    if kind is not Kind.ACTORS:
        cols = [("event", _dtype("VARCHAR")), *cols]
        cols += [(f"k{i}", _dtype("VARCHAR")) for i in range(len(spec.breakdowns))]
    if kind.sketch:
        return [*cols, ("reg", _dtype("SMALLINT")), ("rnk", _dtype("TINYINT"))]
    return [*cols, ("n", _dtype("BIGINT"))]


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _merge_tree(keys: list[str], sketch: bool) -> exp.Properties:
    """ClickHouse merges rows of equal keys itself: summing counts, keeping the top rank."""
    engine = "ReplacingMergeTree(rnk)" if sketch else "SummingMergeTree(n)"
    order = exp.Order(expressions=[exp.Ordered(this=exp.Tuple(expressions=[col(k) for k in keys]))])
    return exp.Properties(expressions=[exp.EngineProperty(this=exp.var(engine)), order])


# Table properties per dialect: ClickHouse tables need an engine (which also merges rows of
# equal keys); elsewhere a plain table, merged by ``compact``.
_PROPERTIES: dict[str, Callable[[list[str], bool], exp.Properties]] = {"clickhouse": _merge_tree}


def create_table(
    spec: RollupSpec, grain: str, kind: Kind, dialect: str, name: str | None = None
) -> exp.Create:
    properties = _PROPERTIES.get(dialect)
    defs: list[exp.Expr] = [exp.ColumnDef(this=_ident(n), kind=t) for n, t in _columns(spec, kind, dialect)]
    table = exp.table_(name or spec.table(grain, kind), quoted=True)
    schema = exp.Schema(this=table, expressions=defs)
    props = properties(kind.keys(spec), kind.sketch) if properties else None
    return exp.Create(this=schema, kind="TABLE", properties=props)


def _plain_merge_tree(keys: list[str], sketch: bool) -> exp.Properties:
    order = exp.Order(expressions=[exp.Ordered(this=exp.Tuple(expressions=[]))])
    return exp.Properties(expressions=[exp.EngineProperty(this=exp.var("MergeTree")), order])


_STAGE_PROPERTIES: dict[str, Callable[[list[str], bool], exp.Properties]] = {"clickhouse": _plain_merge_tree}


def create_stage(spec: RollupSpec, coll: Collection, dialect: str) -> exp.Create:
    """The stage: ``stage_rows`` of every event written since the last fold."""
    ts = coll.mapping.get(spec.timestamp)
    ts_type = column_type(ts if ts is not None else Field("ts", FieldType.DATE), dialect)
    cols = [("event", _dtype("VARCHAR")), ("ts", ts_type)]
    cols += [(f"k{i}", _dtype("VARCHAR")) for i in range(len(spec.breakdowns))]
    cols += [("h", _nullable(exp.DType.UBIGINT))]
    properties = _STAGE_PROPERTIES.get(dialect)
    defs: list[exp.Expr] = [exp.ColumnDef(this=_ident(n), kind=t) for n, t in cols]
    schema = exp.Schema(this=exp.table_(spec.stage(), quoted=True), expressions=defs)
    return exp.Create(this=schema, kind="TABLE", properties=properties([], False) if properties else None)


def _drop(name: str) -> exp.Drop:
    return exp.Drop(tables=[exp.table_(name, quoted=True)], kind="TABLE", exists=True)


def catalog_ddl(dialect: str) -> exp.Create:
    """``_aggregata_rollups(collection, spec, version)``: append-only, the top version wins."""
    defs = [
        exp.ColumnDef(this=_ident("collection"), kind=_dtype("VARCHAR")),
        exp.ColumnDef(this=_ident("spec"), kind=_dtype("VARCHAR")),
        exp.ColumnDef(this=_ident("version"), kind=_dtype("BIGINT")),
    ]
    props = None
    if dialect == "clickhouse":  # a table needs an engine there; the data is the same
        order = exp.Order(expressions=[exp.Ordered(this=col("collection"))])
        props = exp.Properties(expressions=[exp.EngineProperty(this=exp.var("MergeTree")), order])
    schema = exp.Schema(this=exp.table_(CATALOG, quoted=True), expressions=defs)
    return exp.Create(this=schema, kind="TABLE", exists=True, properties=props)


def built_query(collection: str, params: Params) -> exp.Select:
    """The spec a collection's rollups were last built with (empty text: none)."""
    return (
        exp.select(col("spec"))
        .from_(exp.table_(CATALOG, quoted=True))
        .where(exp.EQ(this=col("collection"), expression=params.bind(collection)))
        .order_by(exp.Ordered(this=col("version"), desc=True))
        .limit(1)
    )


def read_built(rows: list[dict[str, Any]], collection: str) -> RollupSpec | None:
    """The spec rollups were built with; None if none, or if built in another ``FORMAT``
    (tables this version cannot read, as if there were none: they get rebuilt)."""
    text = rows[0]["spec"] if rows else ""
    spec = RollupSpec.from_json(collection, text) if text else None
    return spec if spec is not None and spec.format == FORMAT else None


# -- maintenance statements ------------------------------------------------------------------


def stage_rows(
    spec: RollupSpec, source: exp.Expr, available: Iterable[str], where: exp.Expr | None = None
) -> exp.Select:
    """Event rows ``source`` (with columns ``available``) as staged rows: the event, its
    time, its encoded breakdown keys and its actor's 64-bit hash (NULL when the event has no
    actor). Kept this plain because it runs once per write: splitting the hash into a sketch
    register and rank waits for ``fold``, once per many writes (an INSERT with them took
    twice as long as without, mostly in planning)."""
    have = set(available)
    ts = col(spec.timestamp)
    actor = col(spec.actor)
    encoded = [encode(col(b) if b in have else None) for b in spec.breakdowns]
    conds: list[exp.Expr] = [
        exp.Not(this=exp.Is(this=ts.copy(), expression=exp.Null())),
        exp.Not(this=exp.Is(this=col(spec.event), expression=exp.Null())),
    ]
    if where is not None:
        conds.append(where)
    hashed = exp.Case(
        ifs=[exp.If(this=exp.Is(this=actor.copy(), expression=exp.Null()), true=exp.Null())],
        default=hll.actor_hash(exp.cast(actor.copy(), "VARCHAR")),
    )
    return (
        exp.select(
            exp.cast(col(spec.event), "VARCHAR").as_("event"),
            ts.as_("ts"),
            *[e.as_(f"k{i}") for i, e in enumerate(encoded)],
            hashed.as_("h"),
        )
        .from_(source)
        .where(exp.and_(*conds))
    )


def fold(spec: RollupSpec, grain: str, staged: exp.Expr, kind: Kind) -> exp.Select:
    """Rows of a rollup table of ``kind`` aggregated from staged rows (``stage_rows``)."""
    keyed = [] if kind is Kind.ACTORS else [f"k{i}" for i in range(len(spec.breakdowns))]
    inner = exp.select(
        *([] if kind is Kind.ACTORS else [col("event")]),
        MillisToTimestamp(this=floor_ms(col("ts"), GRAINS[grain])).as_("bucket"),
        *[col(k) for k in keyed],
        *(_sketch_columns() if kind.sketch else []),
    ).from_(staged, copy=False)
    if kind.sketch:
        inner = inner.where(exp.Not(this=exp.Is(this=col("h"), expression=exp.Null())))
    keys = kind.keys(spec)
    count = exp.cast(exp.Count(this=exp.Star()), "BIGINT")  # one type in both halves of ``readable``
    value = exp.Max(this=col("rnk")).as_("rnk") if kind.sketch else count.as_("n")
    return (
        exp.select(*[col(k) for k in keys], value)
        .from_(inner.subquery("r", copy=False), copy=False)
        .group_by(*[col(k) for k in keys])
    )


def _sketch_columns() -> list[exp.Expr]:
    """Register and rank of the staged hash ``h``, typed as the rollup tables store them
    (ClickHouse would otherwise give the rank a variant type of its two branches)."""
    return [
        exp.cast(hll.register(col("h")), _dtype("SMALLINT")).as_("reg"),
        exp.cast(hll.rank(col("h")), _dtype("TINYINT")).as_("rnk"),
    ]


def readable(spec: RollupSpec, grain: str, kind: Kind) -> exp.Expr:
    """What readers see of a rollup table: its rows and those the stage still holds."""
    columns = [*kind.keys(spec), kind.measure()]
    stored = exp.select(*[col(k) for k in columns]).from_(exp.table_(spec.table(grain, kind), quoted=True))
    staged = fold(spec, grain, exp.table_(spec.stage(), quoted=True), kind)
    return exp.union(stored, staged, distinct=False).subquery("rollup", copy=False)


def append(spec: RollupSpec, grain: str, kind: Kind, rows: exp.Select) -> exp.Insert:
    """Add aggregated rows to a rollup table (readers sum counts and take the top rank)."""
    columns = [*kind.keys(spec), kind.measure()]
    table = exp.table_(spec.table(grain, kind), quoted=True)
    return exp.insert(rows, table, columns=[_ident(k) for k in columns])


def _tables() -> Iterable[tuple[str, Kind]]:
    return itertools.product(GRAINS, Kind)


def _range_condition(spec: RollupSpec, start: datetime, end: datetime, params: Params) -> exp.Expr:
    ts = col(spec.timestamp)
    return exp.and_(
        exp.GTE(this=ts, expression=params.bind(start)), exp.LT(this=ts.copy(), expression=params.bind(end))
    )


def build(tx: Transaction, spec: RollupSpec, coll: Collection, version: int) -> None:
    """(Re)create every rollup table of ``spec`` from all of the collection's events."""
    for grain, kind in _tables():
        tx.execute(_drop(spec.table(grain, kind)))
        tx.execute(create_table(spec, grain, kind, tx.dialect))
    tx.execute(_drop(spec.stage()))
    tx.execute(create_stage(spec, coll, tx.dialect))
    apply(tx, spec, exp.table_(coll.name, quoted=True), (f.name for f in coll.mapping))
    fold_stage(tx, spec)
    record(tx, spec.collection, spec.to_json(), version)


def record(tx: Transaction, collection: str, text: str, version: int) -> None:
    params = Params()
    values = exp.Tuple(expressions=[params.bind(collection), params.bind(text), params.bind(version)])
    tx.execute(exp.insert(exp.Values(expressions=[values]), exp.table_(CATALOG, quoted=True)), params.values)


def drop_all(tx: Transaction, collection: str, version: int) -> None:
    spec = RollupSpec(collection, "", "", "")
    for grain, kind in _tables():
        tx.execute(_drop(spec.table(grain, kind)))
    tx.execute(_drop(spec.stage()))
    record(tx, collection, "", version)


def apply(
    tx: Transaction,
    spec: RollupSpec,
    rows: exp.Expr,
    columns: Iterable[str],
    where: exp.Expr | None = None,
    params: dict[str, Any] | None = None,
) -> int:
    """Stage freshly stored event rows: one narrow append per write (``fold_stage`` later
    aggregates many writes' rows into the rollup tables at once); rows staged."""
    return count_of(tx.execute(stage_insert(spec, rows, columns, where), params))


def stage_insert(
    spec: RollupSpec, rows: exp.Expr, columns: Iterable[str], where: exp.Expr | None = None
) -> exp.Insert:
    """The statement ``apply`` runs."""
    staged = stage_rows(spec, rows.copy(), columns, where)
    return exp.insert(staged, exp.table_(spec.stage(), quoted=True))


def fold_stage(tx: Transaction, spec: RollupSpec) -> int:
    """Aggregate the staged rows into the rollup tables and empty the stage; rows appended."""
    stage = exp.table_(spec.stage(), quoted=True)
    appended = 0
    for grain, kind in _tables():
        result = tx.execute(append(spec, grain, kind, fold(spec, grain, stage.copy(), kind)))
        appended += count_of(result)
    tx.execute(_delete_all(stage.copy()))
    return appended


def _delete_all(table: exp.Table) -> exp.Delete:
    return exp.delete(table, where=exp.true())


def staged_range(tx: Transaction, spec: RollupSpec) -> tuple[datetime, datetime] | None:
    """The earliest and latest event time in the stage (None: empty)."""
    ts = col("ts")
    tree = exp.select(exp.Min(this=ts).as_("lo"), exp.Max(this=ts.copy()).as_("hi"))
    row = tx.execute(tree.from_(exp.table_(spec.stage(), quoted=True))).to_pylist()
    if not row or row[0]["lo"] is None:
        return None
    return row[0]["lo"], row[0]["hi"]


def compact(tx: Transaction, spec: RollupSpec, span: tuple[datetime, datetime] | None = None) -> int:
    """Merge each rollup table's rows of equal keys (appends leave several), in the buckets
    of ``span`` (the event times folded since the last compaction) or everywhere; rows left
    there. Live ingestion touches the latest buckets only, so that is what gets rewritten."""
    left = 0
    for grain, kind in _tables():
        name = spec.table(grain, kind)
        merged = f"{name}_compact"
        keys = kind.keys(spec)
        value = exp.Max(this=col("rnk")) if kind.sketch else exp.cast(exp.Sum(this=col("n")), "BIGINT")
        params = Params()
        where: exp.Expr = exp.true()
        if span is not None:
            where = exp.and_(
                exp.GTE(this=col("bucket"), expression=params.bind(day_floor(span[0]))),
                exp.LTE(this=col("bucket"), expression=params.bind(span[1])),
            )
        rows = (
            exp.select(*[col(k) for k in keys], value.as_(kind.measure()))
            .from_(exp.table_(name, quoted=True))
            .where(where.copy())
            .group_by(*[col(k) for k in keys])
        )
        tx.execute(_drop(merged))
        tx.execute(create_table(spec, grain, kind, tx.dialect, merged))
        tx.execute(exp.insert(rows, exp.table_(merged, quoted=True)), params.values)
        tx.execute(exp.delete(exp.table_(name, quoted=True), where=where), params.values)
        result = tx.execute(
            exp.insert(exp.select("*").from_(exp.table_(merged, quoted=True)), exp.table_(name, quoted=True))
        )
        tx.execute(_drop(merged))
        left += count_of(result)
    return left


def count_of(result: Any) -> int:
    """Rows an ``INSERT`` wrote, from the one-cell table DuckDB answers it with (else 0).

    ClickHouse does not say: there, compaction never triggers (its merge trees merge rows
    of equal keys themselves) and the stage is folded after every write.
    """
    if result.num_rows == 1 and result.num_columns == 1:
        return int(result.column(0)[0].as_py() or 0)
    return 0


def rebuild(tx: Transaction, spec: RollupSpec, coll: Collection, start: datetime, end: datetime) -> None:
    """Recompute the rollup rows of ``[start, end)`` (UTC day boundaries) from the events."""
    for grain, kind in _tables():
        params = Params()
        bucket = col("bucket")
        in_range = exp.and_(
            exp.GTE(this=bucket, expression=params.bind(start)),
            exp.LT(this=bucket.copy(), expression=params.bind(end)),
        )
        tx.execute(
            exp.delete(exp.table_(spec.table(grain, kind), quoted=True), where=in_range),
            params.values,
        )
    params = Params()
    staged = exp.and_(
        exp.GTE(this=col("ts"), expression=params.bind(start)),
        exp.LT(this=col("ts"), expression=params.bind(end)),
    )
    tx.execute(exp.delete(exp.table_(spec.stage(), quoted=True), where=staged), params.values)
    params = Params()
    where = _range_condition(spec, start, end, params)
    apply(tx, spec, exp.table_(coll.name, quoted=True), (f.name for f in coll.mapping), where, params.values)
    fold_stage(tx, spec)


def day_ranges(days_ms: Iterable[int]) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive UTC days (epoch ms of their starts) as ``[start, end)`` ranges."""
    out: list[tuple[datetime, datetime]] = []
    for day in sorted(set(days_ms)):
        start = from_epoch_ms(day)
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], start + timedelta(days=1))
        else:
            out.append((start, start + timedelta(days=1)))
    return out


def day_floor(instant: datetime) -> datetime:
    return from_epoch_ms(epoch_ms(instant) - epoch_ms(instant) % GRAINS["day"])


def day_ceil(instant: datetime) -> datetime:
    floor = day_floor(instant)
    return floor if floor == instant else floor + timedelta(days=1)
