"""Rollups: per event collection, event counts and unique-actor sketches per hour and per day.

For each event collection (unless its settings say ``"rollups": {"enabled": false}``) four
tables hold, per ``(event, bucket, breakdown values…)``:

* ``_rollup_<coll>_<grain>``: ``n``, the number of events;
* ``_rollup_<coll>_<grain>_hll``: a HyperLogLog sketch of the actors, one row per register
  (see ``insights/hll.py``),

for ``grain`` ``hour`` and ``day`` (UTC). The breakdown properties are configured per
collection (``"rollups": {"breakdowns": ["country", "properties.browser"]}``, default
none); their values are stored as text with a one-character prefix (``'='||value``, and
``''`` for a missing value) so every key column is ``NOT NULL`` and can be a primary key.

They are kept in step by a ``WriteListener`` *inside the transaction of every write*: the
rows a write stores are aggregated and merged in (an upsert adding counts and taking the
larger register rank), and the buckets of rows a write deletes or overwrites are rebuilt
from the events before the commit (a sketch cannot subtract). So a committed event is in
the rollups at the same instant it is in the table. The first write after a rollup's
definition changed (or on a collection that has none yet) rebuilds it from the events in
that same transaction; ``refresh`` rebuilds a time range on demand.

What each grain holds is recorded in ``_aggregata_rollups`` (the latest row per
collection wins): the planner reads it to know what a rollup can answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlglot import exp

from aggregata.insights import hll
from aggregata.insights.buckets import epoch_ms, from_epoch_ms
from aggregata.model.mapping import Field, FieldType
from aggregata.sql.dialects import EpochMillis, FromEpochMillis
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.sql.types import column_type
from aggregata.storage.engine import Collection, Transaction

CATALOG = "_aggregata_rollups"
GRAINS: dict[str, int] = {"hour": 3_600_000, "day": 86_400_000}
# Bump when the stored layout or the sketch parameters change: rollups then rebuild.
FORMAT = f"1/hll{hll.P}"
KEYS = ("event", "bucket")


@dataclass(frozen=True)
class RollupSpec:
    """What a collection's rollups hold: which fields, which breakdowns, which format."""

    collection: str
    timestamp: str
    event: str
    actor: str
    breakdowns: tuple[str, ...] = ()
    format: str = FORMAT

    def table(self, grain: str, *, sketch: bool = False) -> str:
        return f"_rollup_{self.collection}_{grain}" + ("_hll" if sketch else "")

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


def _dtype(text: str) -> exp.DataType:
    dtype = exp.DataType.build(text)
    dtype.set("nullable", False)
    return dtype


def _columns(spec: RollupSpec, sketch: bool, dialect: str) -> list[tuple[str, exp.DataType]]:
    bucket = column_type(Field("bucket", FieldType.DATE), dialect)
    bucket.set("nullable", False)
    cols = [("event", _dtype("VARCHAR")), ("bucket", bucket)]
    cols += [(f"k{i}", _dtype("VARCHAR")) for i in range(len(spec.breakdowns))]
    if sketch:
        return [*cols, ("reg", _dtype("SMALLINT")), ("rnk", _dtype("TINYINT"))]
    return [*cols, ("n", _dtype("BIGINT"))]


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _primary_key(keys: list[str], sketch: bool) -> tuple[list[exp.Expr], exp.Properties | None]:
    return [exp.PrimaryKey(expressions=[_ident(k) for k in keys])], None


def _merge_tree(keys: list[str], sketch: bool) -> tuple[list[exp.Expr], exp.Properties | None]:
    """ClickHouse merges rows of equal keys itself: summing counts, keeping the top rank."""
    engine = "ReplacingMergeTree(rnk)" if sketch else "SummingMergeTree(n)"
    order = exp.Order(expressions=[exp.Ordered(this=exp.Tuple(expressions=[col(k) for k in keys]))])
    return [], exp.Properties(expressions=[exp.EngineProperty(this=exp.var(engine)), order])


# How each dialect keeps one row per key: a primary key (DuckDB upserts) or a merge tree.
_KEYED: dict[str, Callable[[list[str], bool], tuple[list[exp.Expr], exp.Properties | None]]] = {
    "duckdb": _primary_key,
    "clickhouse": _merge_tree,
}


def create_table(spec: RollupSpec, grain: str, sketch: bool, dialect: str) -> exp.Create:
    keys = spec.key_names() + (["reg"] if sketch else [])
    constraints, properties = _KEYED[dialect](keys, sketch)
    defs: list[exp.Expr] = [exp.ColumnDef(this=_ident(n), kind=t) for n, t in _columns(spec, sketch, dialect)]
    schema = exp.Schema(
        this=exp.table_(spec.table(grain, sketch=sketch), quoted=True), expressions=defs + constraints
    )
    return exp.Create(this=schema, kind="TABLE", properties=properties)


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
    text = rows[0]["spec"] if rows else ""
    return RollupSpec.from_json(collection, text) if text else None


# -- maintenance statements ------------------------------------------------------------------


def aggregate(
    spec: RollupSpec,
    grain: str,
    source: exp.Expr,
    available: Iterable[str],
    *,
    sketch: bool,
    where: exp.Expr | None = None,
) -> exp.Select:
    """Rows of a rollup table computed from event rows ``source`` (with columns ``available``)."""
    have = set(available)
    ts = col(spec.timestamp)
    inner = exp.select(
        exp.cast(col(spec.event), "VARCHAR").as_("event"),
        FromEpochMillis(this=floor_ms(ts, GRAINS[grain])).as_("bucket"),
        *[encode(col(b) if b in have else None).as_(f"k{i}") for i, b in enumerate(spec.breakdowns)],
    )
    conds: list[exp.Expr] = [
        exp.Not(this=exp.Is(this=ts.copy(), expression=exp.Null())),
        exp.Not(this=exp.Is(this=col(spec.event), expression=exp.Null())),
    ]
    if sketch:
        actor = exp.cast(col(spec.actor), "VARCHAR")
        inner = inner.select(hll.register(actor).as_("reg"), hll.rank(actor.copy()).as_("rnk"))
        conds.append(exp.Not(this=exp.Is(this=col(spec.actor), expression=exp.Null())))
    if where is not None:
        conds.append(where)
    inner = inner.from_(source).where(exp.and_(*conds))
    keys = spec.key_names() + (["reg"] if sketch else [])
    value = exp.Max(this=col("rnk")).as_("rnk") if sketch else exp.Count(this=exp.Star()).as_("n")
    return (
        exp.select(*[col(k) for k in keys], value)
        .from_(inner.subquery("r"))
        .group_by(*[col(k) for k in keys])
    )


def _on_conflict(spec: RollupSpec, sketch: bool) -> exp.OnConflict:
    keys = spec.key_names() + (["reg"] if sketch else [])
    if sketch:
        merged: exp.Expr = exp.Greatest(this=col("rnk"), expressions=[exp.column("rnk", table="excluded")])
        target = "rnk"
    else:
        merged = exp.Add(this=col("n"), expression=exp.column("n", table="excluded"))
        target = "n"
    return exp.OnConflict(
        conflict_keys=[_ident(k) for k in keys],
        action=exp.var("DO UPDATE"),
        expressions=[exp.EQ(this=col(target), expression=merged)],
    )


# Upserts where the dialect has them; ClickHouse appends and its merge tree combines rows.
_UPSERT: dict[str, Callable[[RollupSpec, bool], exp.OnConflict]] = {"duckdb": _on_conflict}


def merge_into(spec: RollupSpec, grain: str, sketch: bool, rows: exp.Select, dialect: str) -> exp.Insert:
    keys = spec.key_names() + (["reg", "rnk"] if sketch else ["n"])
    insert = exp.insert(
        rows, exp.table_(spec.table(grain, sketch=sketch), quoted=True), columns=[_ident(k) for k in keys]
    )
    upsert = _UPSERT.get(dialect)
    if upsert is not None:
        insert.set("conflict", upsert(spec, sketch))
    return insert


def _tables() -> Iterable[tuple[str, bool]]:
    return itertools.product(GRAINS, (False, True))


def _range_condition(spec: RollupSpec, start: datetime, end: datetime, params: Params) -> exp.Expr:
    ts = col(spec.timestamp)
    return exp.and_(
        exp.GTE(this=ts, expression=params.bind(start)), exp.LT(this=ts.copy(), expression=params.bind(end))
    )


def build(tx: Transaction, spec: RollupSpec, coll: Collection, version: int) -> None:
    """(Re)create every rollup table of ``spec`` from all of the collection's events."""
    for grain, sketch in _tables():
        tx.execute(_drop(spec.table(grain, sketch=sketch)))
        tx.execute(create_table(spec, grain, sketch, tx.dialect))
        rows = aggregate(
            spec, grain, exp.table_(coll.name, quoted=True), (f.name for f in coll.mapping), sketch=sketch
        )
        tx.execute(merge_into(spec, grain, sketch, rows, tx.dialect))
    record(tx, spec.collection, spec.to_json(), version)


def record(tx: Transaction, collection: str, text: str, version: int) -> None:
    params = Params()
    values = exp.Tuple(expressions=[params.bind(collection), params.bind(text), params.bind(version)])
    tx.execute(exp.insert(exp.Values(expressions=[values]), exp.table_(CATALOG, quoted=True)), params.values)


def drop_all(tx: Transaction, collection: str, version: int) -> None:
    spec = RollupSpec(collection, "", "", "")
    for grain, sketch in _tables():
        tx.execute(_drop(spec.table(grain, sketch=sketch)))
    record(tx, collection, "", version)


def apply(tx: Transaction, spec: RollupSpec, rows: exp.Expr, columns: Iterable[str]) -> None:
    """Merge freshly stored event rows into every rollup table."""
    have = list(columns)
    for grain, sketch in _tables():
        tx.execute(
            merge_into(
                spec, grain, sketch, aggregate(spec, grain, rows.copy(), have, sketch=sketch), tx.dialect
            )
        )


def rebuild(tx: Transaction, spec: RollupSpec, coll: Collection, start: datetime, end: datetime) -> None:
    """Recompute the rollup rows of ``[start, end)`` (UTC day boundaries) from the events."""
    for grain, sketch in _tables():
        params = Params()
        bucket = col("bucket")
        in_range = exp.and_(
            exp.GTE(this=bucket, expression=params.bind(start)),
            exp.LT(this=bucket.copy(), expression=params.bind(end)),
        )
        tx.execute(
            exp.delete(exp.table_(spec.table(grain, sketch=sketch), quoted=True), where=in_range),
            params.values,
        )
        params = Params()
        rows = aggregate(
            spec,
            grain,
            exp.table_(coll.name, quoted=True),
            (f.name for f in coll.mapping),
            sketch=sketch,
            where=_range_condition(spec, start, end, params),
        )
        tx.execute(merge_into(spec, grain, sketch, rows, tx.dialect), params.values)


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
