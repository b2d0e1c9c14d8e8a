"""The ClickHouse engine, run in-process through chDB: same interface as the DuckDB engine.

ClickHouse is where event analytics goes when one machine is not enough; running its engine
in-process lets every query, aggregation and insight test run on both dialects of the same
compiler. What differs from DuckDB, and how this module bridges it:

* **One data directory per process.** chDB embeds one server; sessions on the same path
  share it, a second path is refused. Each engine therefore owns a ClickHouse *database*
  (``database=``) inside the directory, so tests can open many engines side by side.
* **No transactions, no ``INSERT OR IGNORE``.** Writes are serialized by one lock; the ids
  of a batch already stored are looked up before inserting and reported as duplicates;
  deletes (and overwrites) are lightweight ``DELETE``s that finish before the insert.
  Schema changes are applied (and the catalog saved) before the rows, so the catalog
  always describes the table even if an insert fails. Arrow data enters through chDB's
  ``Python()`` table function.
* **Catalog** rows live in a ``ReplacingMergeTree`` keyed by name, read with ``FINAL``;
  dropping a collection writes a tombstone.
* **Parameters** are ClickHouse query parameters, parsed from text in the *escaped*
  format: backslashes, tabs and newlines are escaped, dates are sent as UTC text.
* **Results** come back as Arrow with DuckDB's shapes: stored names (``user:country``,
  see ``AggregataClickHouse``) are turned back into field names, and an empty array reads
  as NULL, because ``Array`` columns cannot be ``Nullable`` and ``[]`` is how a missing
  array is stored (documents never store an empty array: it counts as missing).
* **Timeouts** use the ``max_execution_time`` setting; ClickHouse cancels the query itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pyarrow as pa
import pyarrow.compute as pc
from chdb import session as chdb_session
from sqlglot import exp

from aggregata.errors import BadRequest, QueryTimeout
from aggregata.model.arrow import to_arrow
from aggregata.model.documents import Batch
from aggregata.model.mapping import ID_FIELD, Mapping
from aggregata.sql import ddl
from aggregata.sql.dialects import AggregataClickHouse, RenderMemo
from aggregata.storage.base import CATALOG_TABLE, BaseEngine, from_catalog, id_in, select_ids, to_catalog
from aggregata.storage.engine import (
    DOCUMENTS,
    Collection,
    Prepare,
    Transaction,
    WriteListener,
    WriteResult,
    notify_committed,
    run_due,
)

T = TypeVar("T")
# Ids to delete are staged here: a DELETE (a mutation, run on a ClickHouse thread) that
# read ``Python()`` itself would wait forever for the Python thread waiting on it.
DELETE_IDS_TABLE = "_aggregata_delete_ids"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_TIMEOUT_CODES = frozenset({159, 160})  # TIMEOUT_EXCEEDED, TOO_SLOW
# chDB's ``Python(name)`` table function finds an Arrow table by a variable's name in the
# calling frame: ``_Session`` binds the table it is given to a parameter of this name.
_DATA_VAR = "aggregata_data"

# Every session: outer joins yield NULL (as in DuckDB) rather than default values, and
# ALTER … UPDATE (a scalar column becoming an array) completes before the write goes on.
_SESSION_SETTINGS: dict[str, int] = {
    "join_use_nulls": 1,
    "mutations_sync": 2,
    "allow_experimental_nullable_tuple_type": 1,
}


def _escape(text: str) -> str:
    """A string as ClickHouse parses a query parameter (the TSV "escaped" format).

    A backslash starts an escape sequence and a raw tab or newline ends the value; every
    other character, NUL included, stands for itself.
    """
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def param_text(value: Any) -> str:
    """The text of one bound value, matching the type ``Params`` gave its placeholder."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, str):
        return _escape(value)
    raise TypeError(f"cannot bind a {type(value).__name__} as a ClickHouse query parameter")


def _reshape(arr: pa.Array, rename: Callable[[str], str], null_empty: bool) -> pa.Array:
    """Rename struct fields, make lists plain and compact, and optionally read ``[]`` as NULL.

    Compact: chDB expects a list's last offset to equal the length of its values, which a
    sliced list, or a fixed-size list with NULL entries, does not satisfy.
    """
    kind = arr.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        lengths = pc.fill_null(pc.list_value_length(arr), 0).cast(pa.int32())
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)])
        mask = arr.is_null()
        if null_empty:
            mask = pc.or_(mask, pc.equal(lengths, 0))
        values = _reshape(arr.flatten(), rename, null_empty)
        return pa.ListArray.from_arrays(offsets, values, mask=mask)
    if pa.types.is_struct(kind):
        children = [_reshape(child, rename, null_empty) for child in arr.flatten()]
        names = [rename(kind.field(i).name) for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(children, names=names, mask=arr.is_null())
    return arr


def _reshape_table(table: pa.Table, rename: Callable[[str], str], null_empty: bool) -> pa.Table:
    columns: list[pa.Array | pa.ChunkedArray] = []
    for column in table.columns:
        if pa.types.is_nested(column.type):
            chunks = column.chunks or [pa.array([], type=column.type)]
            columns.append(pa.chunked_array([_reshape(c, rename, null_empty) for c in chunks]))
        else:
            columns.append(column)
    return pa.Table.from_arrays(columns, names=[rename(n) for n in table.column_names])


def _error_code(exc: Exception) -> int | None:
    match = _ERROR_CODE.search(str(exc))
    return int(match.group(1)) if match else None


class _Session:
    """One chDB session, typed: statements, Arrow results, and Arrow input via ``Python()``."""

    def __init__(self, target: str) -> None:
        try:
            self._raw = chdb_session.Session(target)  # type: ignore[no-untyped-call]
        except RuntimeError as exc:
            raise BadRequest(
                f"cannot open ClickHouse data directory {target}: {exc}", type="store_locked_exception"
            ) from exc
        self.timeout: float | None = None
        for name, value in _SESSION_SETTINGS.items():
            self.run(f"SET {name} = {int(value)}")

    def run(self, sql: str, params: dict[str, str] | None = None) -> None:
        self._raw.query(sql, "CSV", params=params or {})  # type: ignore[no-untyped-call]

    def table(self, sql: str, params: dict[str, str] | None = None) -> pa.Table:
        result = self._raw.query(sql, "ArrowTable", params=params or {})  # type: ignore[no-untyped-call]
        return cast(pa.Table, result)

    def table_with(self, sql: str, aggregata_data: pa.Table) -> pa.Table:
        """Run ``sql``, in which ``Python(aggregata_data)`` reads the Arrow table given.

        chDB looks the name up in the frame that calls it, so the call stays in this frame.
        """
        result = self._raw.query(sql, "ArrowTable")  # type: ignore[no-untyped-call]
        return cast(pa.Table, result)

    def close(self) -> None:
        self._raw.close()  # type: ignore[no-untyped-call]


class _Tx:
    """What write listeners run their statements in (``storage.engine.Transaction``).

    ClickHouse has no transactions: statements apply one by one, under the engine's write
    lock. While a listener looks at a stored batch, ``data`` is that batch for ``Python(...)``.
    """

    dialect = "clickhouse"

    def __init__(self, engine: ClickHouseEngine) -> None:
        self.engine = engine
        self.state: dict[str, Any] = {}
        self.data: pa.Table | None = None

    def execute(self, tree: exp.Expr, params: dict[str, Any] | None = None) -> pa.Table:
        sql = self.engine._memo(tree)
        writer = self.engine._writer
        if self.data is not None and _DATA_VAR in sql:
            table = writer.table_with(sql, self.data)
        else:
            table = writer.table(sql, {k: param_text(v) for k, v in (params or {}).items()})
        return _reshape_table(table, AggregataClickHouse.decode_name, null_empty=True)


class ClickHouseEngine(BaseEngine):
    """Storage on ClickHouse via chDB: ``path`` is the data directory (``None``: in memory)."""

    dialect = "clickhouse"

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        database: str = "aggregata",
        query_timeout_s: float | None = 30.0,
    ) -> None:
        if not _DATABASE_NAME.match(database):
            raise BadRequest(f"invalid ClickHouse database name [{database[:60]}]")
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = database
        self._memo = RenderMemo(self.dialect)
        self.query_timeout_s = query_timeout_s
        self._lock = threading.RLock()
        self._catalog_lock = self._lock  # catalog changes and writes take the same lock
        self._sessions: list[_Session] = []
        self._local = threading.local()
        self._closed = False
        self._writer = self._open_session(create=True)
        self._writer.run(
            f"CREATE TABLE IF NOT EXISTS `{CATALOG_TABLE}` (name String, kind String,"
            " mapping String, settings String, version UInt64, deleted UInt8)"
            " ENGINE = ReplacingMergeTree(version) ORDER BY name"
        )
        self._writer.run(f"CREATE TABLE IF NOT EXISTS `{DELETE_IDS_TABLE}` (`_id` String) ENGINE = Memory")
        self._version = 0
        self._collections = self._load_catalog()
        self._listeners: list[WriteListener] = []
        self._tx: _Tx | None = None

    def transaction(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` under the write lock (statements apply one by one: no rollback)."""
        with self._lock:
            tx = _Tx(self)
            result = fn(tx)
            notify_committed(self._listeners, tx)
            return result

    # -- sessions --------------------------------------------------------------------------

    def _open_session(self, *, create: bool = False) -> _Session:
        """A session in this engine's database (the name was validated: it is a plain word)."""
        sess = _Session(str(self.path) if self.path is not None else ":memory:")
        if create:
            sess.run(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        sess.run(f"USE `{self.database}`")
        with self._lock:
            self._sessions.append(sess)
        return sess

    def _reader(self) -> _Session:
        """A session per thread: queries on one chDB session run one at a time."""
        if self._closed:
            raise RuntimeError("the ClickHouse engine is closed")
        sess: _Session | None = getattr(self._local, "session", None)
        if sess is None:
            sess = self._open_session()
            self._local.session = sess
        return sess

    # -- catalog ---------------------------------------------------------------------------

    def _load_catalog(self) -> dict[str, Collection]:
        rows = self._writer.table(
            f"SELECT name, kind, mapping, settings, version, deleted FROM `{CATALOG_TABLE}` FINAL"
        ).to_pylist()
        self._version = max((r["version"] for r in rows), default=0)
        return {
            r["name"]: from_catalog(r["name"], r["kind"], r["mapping"], r["settings"])
            for r in rows
            if not r["deleted"]
        }

    def _save_catalog(self, coll: Collection, *, deleted: bool = False) -> None:
        """A new version of ``coll``'s catalog row (``deleted``: its tombstone)."""
        self._version = max(self._version + 1, time.time_ns())
        values = {**to_catalog(coll), "version": self._version, "deleted": int(deleted)}
        self._writer.run(
            f"INSERT INTO `{CATALOG_TABLE}` VALUES ({{name:String}}, {{kind:String}}, {{mapping:String}},"
            " {settings:String}, {version:UInt64}, {deleted:UInt8})",
            {k: param_text(v) for k, v in values.items()},
        )

    def create_collection(
        self,
        name: str,
        mapping: Mapping,
        *,
        kind: str = DOCUMENTS,
        settings: dict[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Collection:
        with self._lock:
            coll, new = self._new_collection(name, mapping, kind, settings, exist_ok)
            if not new:
                return coll
            self._writer.run(self.render(ddl.create_table(name, mapping, self.dialect)))
            self._save_catalog(coll)
            self._collections[name] = coll
            return coll

    def drop_collection(self, name: str) -> None:
        with self._lock:
            coll = self.get_collection(name)
            drop = ddl.drop_table(name)
            drop.set("sync", True)  # free the name and the files now, not after a delay
            self._writer.run(self.render(drop))
            tx = _Tx(self)
            for listener in self._listeners:
                listener.dropped(tx, name)
            self._save_catalog(coll, deleted=True)
            notify_committed(self._listeners, tx)
            del self._collections[name]

    # -- writes ----------------------------------------------------------------------------

    def write(
        self,
        name: str,
        batch: Batch,
        prepare: Prepare | None = None,
        *,
        overwrite: Iterable[str] = (),
        delete: Iterable[str] = (),
    ) -> WriteResult:
        """Store a validated batch; ids already stored are reported, not written again.

        ``delete`` removes documents first, ids in ``overwrite`` replace the stored document.
        Each step is its own statement (ClickHouse has no transactions), in the order of
        ``Engine.write``; the lock keeps other writes from interleaving.
        """
        with self._lock:
            self._tx = tx = _Tx(self)
            try:
                result = self._write(name, batch, prepare, overwrite, delete)
                for listener in self._listeners:
                    listener.committing(tx)
            finally:
                self._tx = None
            notify_committed(self._listeners, tx)
            # No writer thread to wait for idle time: deferred work runs after each write.
            run_due(self._listeners, True, self.transaction)
            return result

    def _write(
        self,
        name: str,
        batch: Batch,
        prepare: Prepare | None,
        overwrite: Iterable[str],
        delete: Iterable[str],
    ) -> WriteResult:
        """The body of ``write``, under its lock."""
        current = self.get_collection(name)
        coll, batch, changes = self._reconcile(current, batch, prepare)
        for change in changes:
            self._writer.run(self.render(change))
        if coll is not current:
            self._save_catalog(coll)
            self._collections[coll.name] = coll
        mapping = coll.mapping
        deleted = self._delete(name, list(delete))
        replacing = frozenset(overwrite)
        overwritten = self._delete(name, [i for i in batch.ids if i in replacing]) if replacing else []
        if not batch.size:
            return WriteResult(0, [], mapping, batch, overwritten, deleted)
        data = batch.table if batch.table is not None else to_arrow(batch.rows, mapping)
        stored = self._stored_ids(coll.name, data.column(ID_FIELD).combine_chunks())
        fresh = data.filter(pc.invert(pc.is_in(data.column(ID_FIELD), value_set=stored)))
        if fresh.num_rows:
            self._insert(coll.name, fresh)
        known = set(stored.to_pylist())
        duplicates = [i for i in batch.ids if i in known]
        return WriteResult(fresh.num_rows, duplicates, mapping, batch, overwritten, deleted)

    def _delete(self, name: str, ids: list[str]) -> list[str]:
        """Delete documents by id (a lightweight delete, done when it returns); those stored."""
        if not ids:
            return []
        stored = self._stored_ids(name, pa.array(ids, type=pa.string()))
        if len(stored):
            staged = ddl.table(DELETE_IDS_TABLE)
            self._writer.run(self.render(exp.TruncateTable(expressions=[staged.copy()])))
            stage = exp.insert(exp.select("*").from_(_python_table()), staged.copy())
            self._writer.table_with(self.render(stage), pa.table({ID_FIELD: stored}))
            where = id_in(staged)
            if self._listeners and self._tx is not None:
                self._removing(self._tx, self.get_collection(name), where)
            self._writer.run(self.render(exp.delete(ddl.table(name), where=where)))
        found: list[str] = stored.to_pylist()
        return found

    def _stored_ids(self, name: str, ids: pa.Array) -> pa.Array:
        """Which of ``ids`` the table holds already (a lookup on the sorting key)."""
        tree = select_ids(name).where(id_in(_python_table()))
        found = self._writer.table_with(self.render(tree), pa.table({ID_FIELD: ids}))
        return found.column(0).combine_chunks() if found.num_rows else pa.array([], type=pa.string())

    def _insert(self, name: str, data: pa.Table) -> None:
        columns = [exp.to_identifier(c, quoted=True) for c in data.column_names]
        tree = exp.insert(exp.select("*").from_(_python_table()), ddl.table(name), columns=columns)
        stored = _reshape_table(data, AggregataClickHouse.encode_name, null_empty=False)
        self._writer.table_with(self.render(tree), stored)
        tx = self._tx
        if self._listeners and tx is not None:
            tx.data = stored  # listeners read the batch as ``Python(...)``
            try:
                for listener in self._listeners:
                    listener.inserted(tx, self.get_collection(name), _python_table(), data.column_names)
            finally:
                tx.data = None

    # -- reads -----------------------------------------------------------------------------

    def query_sql(
        self, sql: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> pa.Table:
        sess = self._reader()
        limit = timeout if timeout is not None else self.query_timeout_s
        seconds = float(limit or 0)  # 0: no limit
        if sess.timeout != seconds:
            sess.run(f"SET max_execution_time = {seconds!r}")
            sess.timeout = seconds
        bound = {k: param_text(v) for k, v in (params or {}).items()}
        try:
            table = sess.table(sql, bound)
        except RuntimeError as exc:
            if _error_code(exc) in _TIMEOUT_CODES:
                raise QueryTimeout(f"query exceeded the timeout of {limit}s and was cancelled") from exc
            raise
        return _reshape_table(table, AggregataClickHouse.decode_name, null_empty=True)

    def checkpoint(self) -> None:
        """Nothing to do: an insert has written its data part to disk when it returns."""

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for sess in self._sessions:
                sess.close()
            self._sessions.clear()


def _python_table() -> exp.Table:
    """``Python(aggregata_data)``: chDB's table function over the table ``table_with`` binds."""
    return exp.Table(this=exp.Anonymous(this="Python", expressions=[exp.var(_DATA_VAR)]))
