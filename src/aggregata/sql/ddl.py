"""DDL shared by SQL engines: table creation and mapping evolution as sqlglot trees.

Reconciling a batch's mapping changes with the stored mapping happens here, so every engine
evolves schemas the same way: new fields add columns, a scalar field that receives an
array becomes an array column (existing values wrapped), a nested field that gains
sub-fields widens its struct. Anything else is a conflict the caller resolves by
re-validating the documents against the current mapping.

What a dialect does differently is looked up in tables (``_TABLE_PROPERTIES``, ``_RETYPE``)
rather than branched on: ClickHouse tables need an engine and a sorting key, and ClickHouse
cannot cast a scalar column to an array column in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlglot import exp

from aggregata.model.mapping import ID_FIELD, Field, FieldType, Mapping
from aggregata.sql.dialects import AlterUpdate
from aggregata.sql.types import column_defs, column_type


class MappingConflict(Exception):
    """A concurrent write changed the mapping in a way this batch did not expect."""


def table(name: str) -> exp.Table:
    return exp.table_(name, quoted=True)


def _merge_tree() -> exp.Properties:
    """``ENGINE = MergeTree ORDER BY _id``: rows sorted (and found) by their id."""
    order = exp.Order(expressions=[exp.Ordered(this=exp.column(ID_FIELD, quoted=True), nulls_first=False)])
    return exp.Properties(expressions=[exp.EngineProperty(this=exp.var("MergeTree")), order])


_TABLE_PROPERTIES: dict[str, Callable[[], exp.Properties]] = {"clickhouse": _merge_tree}


def create_table(name: str, mapping: Mapping, dialect: str) -> exp.Create:
    """A collection's table. No primary key: engines keep ids unique themselves, cheaper
    than an index the database maintains on every append (see ``storage.ids``)."""
    cols = column_defs(mapping, dialect)
    schema = exp.Schema(this=table(name), expressions=cols)
    properties = _TABLE_PROPERTIES.get(dialect)
    return exp.Create(this=schema, kind="TABLE", properties=properties() if properties else None)


def drop_table(name: str) -> exp.Drop:
    return exp.Drop(tables=[table(name)], kind="TABLE", exists=True)


def _merge_nested(current: Field, incoming: Field) -> Field:
    props = dict((current.properties or Mapping()).fields)
    for sub in incoming.properties or Mapping():
        have = props.get(sub.name)
        if have is None or (have.type is sub.type and not have.array and sub.array):
            props[sub.name] = sub
        elif {have.type, sub.type} == _NUMBERS:
            props[sub.name] = replace(have, type=FieldType.DOUBLE, array=have.array or sub.array)
        elif have.type is not sub.type:
            raise MappingConflict(sub.name)
    return replace(current, properties=Mapping(props))


def reconcile(
    name: str, current: Mapping, changed: list[Field], dialect: str
) -> tuple[Mapping, list[exp.Expr]]:
    """The mapping after applying ``changed`` and the DDL that gets the table there."""
    ddl: list[exp.Expr] = []
    merged = current
    for f in changed:
        have = merged.get(f.name)
        if have is None:
            ddl.append(_add_column(name, f, dialect))
            merged = merged.with_fields(f)
            continue
        target = have
        if have.type is not f.type:
            if {have.type, f.type} != _NUMBERS:
                raise MappingConflict(f.name)
            target = replace(have, type=FieldType.DOUBLE)
        if f.type is FieldType.NESTED:
            target = _merge_nested(have, f)
        if f.array and not target.array and f.type is not FieldType.NESTED:
            target = replace(target, array=True)
        if target != have:
            ddl += _RETYPE.get(dialect, _retype_column)(name, have, target, dialect)
            merged = merged.with_fields(target)
    return merged, ddl


# A long field that receives a fraction becomes a double: every long below 2**53 is exact.
_NUMBERS = {FieldType.LONG, FieldType.DOUBLE}


def _add_column(name: str, f: Field, dialect: str) -> exp.Alter:
    col = exp.ColumnDef(this=exp.to_identifier(f.name, quoted=True), kind=column_type(f, dialect))
    return exp.Alter(this=table(name), kind="TABLE", actions=[col])


def _retype_column(name: str, have: Field, target: Field, dialect: str) -> list[exp.Expr]:
    col = exp.column(have.name, quoted=True)
    using: exp.Expr | None = None
    if target.array and not have.array and target.type is not FieldType.NESTED:
        using = exp.If(
            this=exp.Is(this=col.copy(), expression=exp.Null()),
            true=exp.Null(),
            false=exp.Array(expressions=[col.copy()]),
        )
    action = exp.AlterColumn(
        this=exp.to_identifier(have.name, quoted=True),
        dtype=column_type(target, dialect),
        using=using,
    )
    return [exp.Alter(this=table(name), kind="TABLE", actions=[action])]


_RETYPE_TEMP = "__aggregata_retype"


def _retype_by_copy(name: str, have: Field, target: Field, dialect: str) -> list[exp.Expr]:
    """Scalar → array without a cast: fill a new array column, then swap it in.

    A widened struct (``nested`` gaining sub-fields) is an ordinary type change. Missing
    values become ``[]``, which is how a missing array is stored where arrays are not
    nullable.
    """
    if have.type is FieldType.NESTED or have.array or not target.array:
        return _retype_column(name, have, target, dialect)
    col = exp.column(have.name, quoted=True)
    temp = exp.to_identifier(_RETYPE_TEMP, quoted=True)
    wrapped = exp.If(
        this=exp.Is(this=col.copy(), expression=exp.Null()),
        true=exp.Array(expressions=[]),
        false=exp.Array(expressions=[col.copy()]),
    )

    def alter(action: exp.Expr) -> exp.Alter:
        return exp.Alter(this=table(name), kind="TABLE", actions=[action])

    return [
        alter(exp.ColumnDef(this=temp.copy(), kind=column_type(target, dialect))),
        alter(AlterUpdate(this=exp.column(temp.copy()), expression=wrapped)),
        alter(exp.Drop(kind="COLUMN", tables=[col.copy()])),
        alter(exp.RenameColumn(this=exp.column(temp.copy()), to=col.copy())),
    ]


_RETYPE: dict[str, Callable[[str, Field, Field, str], list[exp.Expr]]] = {"clickhouse": _retype_by_copy}


def insert(name: str, source: exp.Identifier, columns: list[str]) -> exp.Insert:
    """Append every row of ``source`` (an Arrow table registered with the engine)."""
    idents = [exp.to_identifier(c, quoted=True) for c in columns]
    select = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(source.copy())
    return exp.insert(select, table(name), columns=idents)
