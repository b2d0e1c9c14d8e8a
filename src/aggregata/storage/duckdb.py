"""The embedded DuckDB engine: one database file, one writer thread, many readers.

Writes go through a single writer thread that groups whatever requests are waiting into
one transaction (group commit): a request's future resolves only after DuckDB has
committed (and synced its write-ahead log), so an HTTP 2xx means the data is on disk,
while concurrent requests share the cost of a commit. Reads run on per-thread cursors
and are interrupted when they exceed the query timeout.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
import pyarrow as pa
from sqlglot import exp

from aggregata.errors import BadRequest, QueryTimeout
from aggregata.model.arrow import to_arrow
from aggregata.model.documents import Batch
from aggregata.model.mapping import ID_FIELD, Mapping
from aggregata.sql import ddl
from aggregata.sql.dialects import render
from aggregata.storage.engine import (
    DOCUMENTS,
    Collection,
    CollectionCache,
    Prepare,
    Transaction,
    WriteListener,
    WriteResult,
)

CATALOG_TABLE = "_aggregata_catalog"
T = TypeVar("T")
MAX_GROUP_ROWS = 200_000


@dataclass
class _WriteRequest:
    name: str
    batch: Batch
    prepare: Prepare | None
    overwrite: frozenset[str] = frozenset()
    delete: tuple[str, ...] = ()
    future: Future[WriteResult] = field(default_factory=Future)


@dataclass
class _Work:
    """A function to run alone in a writer transaction (``DuckDBEngine.transaction``)."""

    fn: Callable[[Transaction], Any]
    future: Future[Any] = field(default_factory=Future)


class _Tx:
    """The writer's open transaction as listeners see it (see ``storage.engine.Transaction``)."""

    dialect = "duckdb"

    def __init__(self, cur: duckdb.DuckDBPyConnection, pending: dict[str, Collection]) -> None:
        self.cur = cur
        self.pending = pending
        self.state: dict[str, Any] = {}

    def execute(self, tree: exp.Expr, params: dict[str, Any] | None = None) -> pa.Table:
        rel = self.cur.sql(render(tree, self.dialect), params=params or None)
        return rel.to_arrow_table() if rel is not None else pa.table({})


class DuckDBEngine(CollectionCache):
    """Storage on an embedded DuckDB database (``path=None`` keeps it in memory)."""

    dialect = "duckdb"

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        query_timeout_s: float | None = 30.0,
    ) -> None:
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = duckdb.connect(str(path) if path is not None else ":memory:", config=config)
        except duckdb.IOException as exc:
            raise BadRequest(f"cannot open database {path}: {exc}", type="store_locked_exception") from exc
        self.path = path
        self.query_timeout_s = query_timeout_s
        self._local = threading.local()
        self._catalog_lock = threading.Lock()
        self._writer_cursor = self._db.cursor()
        self._ensure_catalog()
        self._collections = self._load_catalog()
        self._queue: queue.Queue[_WriteRequest | _Work | None] = queue.Queue()
        self._listeners: list[WriteListener] = []
        self._tx: _Tx | None = None
        self._sources = itertools.count()
        self._writer = threading.Thread(target=self._write_loop, name="aggregata-writer", daemon=True)
        self._writer.start()

    # -- catalog ---------------------------------------------------------------------------

    def _ensure_catalog(self) -> None:
        self._writer_cursor.execute(
            f'CREATE TABLE IF NOT EXISTS "{CATALOG_TABLE}" ('
            "name VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, mapping VARCHAR NOT NULL,"
            " settings VARCHAR NOT NULL)"
        )

    def _load_catalog(self) -> dict[str, Collection]:
        rows = self._writer_cursor.sql(
            f'SELECT name, kind, mapping, settings FROM "{CATALOG_TABLE}"'
        ).fetchall()
        return {
            name: Collection(name, kind, Mapping.from_json(orjson.loads(m)), orjson.loads(s))
            for name, kind, m, s in rows
        }

    def _save_catalog(self, cur: duckdb.DuckDBPyConnection, coll: Collection) -> None:
        cur.execute(
            f'INSERT OR REPLACE INTO "{CATALOG_TABLE}" VALUES ($name, $kind, $mapping, $settings)',
            {
                "name": coll.name,
                "kind": coll.kind,
                "mapping": orjson.dumps(coll.mapping.to_json()).decode(),
                "settings": orjson.dumps(coll.settings).decode(),
            },
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
        with self._catalog_lock:
            coll, new = self._new_collection(name, mapping, kind, settings, exist_ok)
            if not new:
                return coll
            cur = self._db.cursor()
            cur.execute("BEGIN")
            try:
                cur.execute(self.render(ddl.create_table(name, mapping, self.dialect)))
                self._save_catalog(cur, coll)
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
            self._collections[name] = coll
            return coll

    def drop_collection(self, name: str) -> None:
        with self._catalog_lock:
            self.get_collection(name)
            cur = self._db.cursor()
            cur.execute("BEGIN")
            cur.execute(self.render(ddl.drop_table(name)))
            cur.execute(f'DELETE FROM "{CATALOG_TABLE}" WHERE name = $name', {"name": name})
            for listener in self._listeners:
                listener.dropped(_Tx(cur, {}), name)
            cur.execute("COMMIT")
            del self._collections[name]

    def update_settings(self, name: str, settings: dict[str, Any]) -> Collection:
        with self._catalog_lock:
            coll = replace(self.get_collection(name), settings=settings)
            self._save_catalog(self._db.cursor(), coll)
            self._collections[name] = coll
            return coll

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
        """Store a validated batch; returns once committed. Blocks the calling thread.

        ``overwrite``: ids whose stored document the batch replaces; ``delete``: ids removed
        first (see ``Engine.write``).
        """
        return self.submit(name, batch, prepare, overwrite=overwrite, delete=delete).result()

    def submit(
        self,
        name: str,
        batch: Batch,
        prepare: Prepare | None = None,
        *,
        overwrite: Iterable[str] = (),
        delete: Iterable[str] = (),
    ) -> Future[WriteResult]:
        request = _WriteRequest(name, batch, prepare, frozenset(overwrite), tuple(delete))
        self._queue.put(request)
        return request.future

    def add_listener(self, listener: WriteListener) -> None:
        """Keep derived data (rollups) in step with writes, inside their transactions."""
        self._listeners.append(listener)

    def transaction(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` in a writer transaction of its own, in order with queued writes."""
        work = _Work(fn)
        self._queue.put(work)
        result: T = work.future.result()
        return result

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if isinstance(first, _Work):
                self._run_work(first)
                continue
            group = [first]
            rows = first.batch.size
            work: _Work | None = None
            while rows < MAX_GROUP_ROWS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                if isinstance(nxt, _Work):
                    work = nxt
                    break
                group.append(nxt)
                rows += nxt.batch.size
            self._commit_group(group)
            if work is not None:
                self._run_work(work)

    def _run_work(self, work: _Work) -> None:
        cur = self._writer_cursor
        self._tx = _Tx(cur, {})
        try:
            cur.execute("BEGIN")
            result = work.fn(self._tx)
            cur.execute("COMMIT")
        except Exception as exc:
            cur.execute("ROLLBACK")
            work.future.set_exception(exc)
        else:
            work.future.set_result(result)
        finally:
            self._tx = None

    def _commit_group(self, group: list[_WriteRequest]) -> None:
        """Apply a group of writes in one transaction; on failure, retry each alone."""
        cur = self._writer_cursor
        pending: dict[str, Collection] = {}
        self._tx = tx = _Tx(cur, pending)
        try:
            cur.execute("BEGIN")
            for request in group:
                self._evolve(cur, request, pending)
            results = self._append(cur, group, pending)
            for listener in self._listeners:
                listener.committing(tx)
            cur.execute("COMMIT")
        except Exception as exc:
            cur.execute("ROLLBACK")
            if len(group) == 1:
                group[0].future.set_exception(exc)
            else:
                for request in group:
                    self._commit_group([request])
            return
        with self._catalog_lock:
            self._collections.update(pending)
        for request, result in zip(group, results, strict=True):
            request.future.set_result(result)

    def _evolve(
        self, cur: duckdb.DuckDBPyConnection, request: _WriteRequest, pending: dict[str, Collection]
    ) -> None:
        """Apply the batch's mapping changes (re-validating it first if they conflict)."""
        coll = pending.get(request.name) or self.get_collection(request.name)
        batch = request.batch
        try:
            mapping, changes = ddl.reconcile(coll.name, coll.mapping, batch.changed, self.dialect)
        except ddl.MappingConflict:
            if request.prepare is None:
                raise
            batch = request.prepare(coll.mapping)
            mapping, changes = ddl.reconcile(coll.name, coll.mapping, batch.changed, self.dialect)
        request.batch = batch
        for change in changes:
            cur.execute(self.render(change))
        if mapping is not coll.mapping:
            coll = replace(coll, mapping=mapping)
            self._save_catalog(cur, coll)
        pending[coll.name] = coll

    def _append(
        self, cur: duckdb.DuckDBPyConnection, group: list[_WriteRequest], pending: dict[str, Collection]
    ) -> list[WriteResult]:
        """One ``INSERT`` per collection for the whole group: appends are cheaper in bulk.

        A request that overwrites or deletes ids ends the current run of appends: the rows
        queued before it are inserted first, so each request sees exactly the writes queued
        before it, as if the group had run one request at a time.
        """
        duplicates: dict[int, list[str]] = {}
        removed: dict[int, tuple[list[str], list[str]]] = {}
        for name in pending:
            run: list[int] = []
            for i, request in enumerate(group):
                if request.name != name:
                    continue
                if request.overwrite or request.delete:
                    duplicates.update(self._insert_run(cur, name, group, run, pending))
                    run = []
                    deleted = self._delete(cur, name, request.delete)
                    replaced = [x for x in request.batch.ids if x in request.overwrite]
                    removed[i] = (self._delete(cur, name, replaced), deleted)
                run.append(i)
            duplicates.update(self._insert_run(cur, name, group, run, pending))
        results = []
        for i, request in enumerate(group):
            dup = duplicates[i]
            overwritten, deleted = removed.get(i, ([], []))
            mapping = pending[request.name].mapping
            size = request.batch.size
            results.append(WriteResult(size - len(dup), dup, mapping, request.batch, overwritten, deleted))
        return results

    def _insert_run(
        self,
        cur: duckdb.DuckDBPyConnection,
        name: str,
        group: list[_WriteRequest],
        run: list[int],
        pending: dict[str, Collection],
    ) -> dict[int, list[str]]:
        """Insert the batches of ``run`` (indexes into ``group``) at once; their duplicate ids.

        Rows whose id an earlier request of the run already carries are dropped before the
        ``INSERT``: with duplicates inside one statement, which row DuckDB keeps depends on
        its threads, and the first request must win deterministically.
        """
        mapping = pending[name].mapping
        tables = []
        claimed: set[str] = set()
        for r in (group[i] for i in run):
            if not r.batch.size:
                continue
            table = r.batch.table if r.batch.table is not None else to_arrow(r.batch.rows, mapping)
            ids = r.batch.ids
            if not claimed.isdisjoint(ids):
                table = table.filter(pa.array([x not in claimed for x in ids], type=pa.bool_()))
            claimed.update(ids)
            tables.append(table)
        stored = self._insert(cur, name, tables) if tables else set()
        out = {}
        for i in run:
            ids = group[i].batch.ids
            out[i] = [x for x in ids if x not in stored]
            stored.difference_update(ids)  # a later request in the run with the same id is a duplicate
        return out

    def _delete(self, cur: duckdb.DuckDBPyConnection, name: str, ids: Iterable[str]) -> list[str]:
        """Delete documents by id; the ids that were stored. Ids arrive as an Arrow table."""
        wanted = list(ids)
        if not wanted:
            return []
        source = f"__ids_{next(self._sources)}"
        cur.register(source, pa.table({ID_FIELD: pa.array(wanted, type=pa.string())}))
        try:
            id_col = exp.column(ID_FIELD, quoted=True)
            matches = id_col.isin(query=exp.select(id_col.copy()).from_(exp.to_identifier(source)))
            if self._listeners and self._tx is not None:
                doomed = exp.select("*").from_(ddl.table(name)).where(matches.copy()).subquery("removed")
                for listener in self._listeners:
                    listener.removing(self._tx, self._tx.pending[name], doomed)
            statement = exp.delete(ddl.table(name), where=matches)
            statement.set("returning", exp.Returning(expressions=[id_col.copy()]))
            return [row[0] for row in cur.sql(self.render(statement)).fetchall()]
        finally:
            cur.unregister(source)

    def _insert(self, cur: duckdb.DuckDBPyConnection, name: str, tables: list[pa.Table]) -> set[str]:
        data = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        source = f"__batch_{next(self._sources)}"
        cur.register(source, data)
        try:
            statement = ddl.insert_ignore(name, source, data.column_names)
            stored = {row[0] for row in cur.sql(self.render(statement)).fetchall()}
            if self._listeners and self._tx is not None and stored:
                self._notify_inserted(cur, self._tx.pending[name], data, stored)
            return stored
        finally:
            cur.unregister(source)

    def _notify_inserted(
        self, cur: duckdb.DuckDBPyConnection, coll: Collection, data: pa.Table, stored: set[str]
    ) -> None:
        """Show listeners exactly the rows stored: duplicates (and repeated ids) left out."""
        if len(stored) != data.num_rows:
            left, keep = set(stored), []
            for doc_id in data.column(ID_FIELD).to_pylist():
                keep.append(doc_id in left)
                left.discard(doc_id)
            data = data.filter(pa.array(keep))
        source = f"__stored_{next(self._sources)}"
        cur.register(source, data)
        try:
            for listener in self._listeners:
                assert self._tx is not None
                listener.inserted(self._tx, coll, exp.to_identifier(source), data.column_names)
        finally:
            cur.unregister(source)

    # -- reads -----------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._db.cursor()
            self._local.cursor = cur
        return cur

    def render(self, tree: exp.Expr) -> str:
        return render(tree, self.dialect)

    def query(
        self,
        tree: exp.Expr,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> pa.Table:
        """Run a compiled tree with bound parameters; cancel it past the timeout."""
        return self.query_sql(self.render(tree), params, timeout=timeout)

    def query_sql(
        self, sql: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> pa.Table:
        cur = self._cursor()
        limit = timeout if timeout is not None else self.query_timeout_s
        timer = threading.Timer(limit, cur.interrupt) if limit else None
        if timer is not None:
            timer.start()
        try:
            return cur.sql(sql, params=params or None).to_arrow_table()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"query exceeded the timeout of {limit}s and was cancelled") from exc
        finally:
            if timer is not None:
                timer.cancel()

    def count(self, name: str) -> int:
        self.get_collection(name)
        tree = exp.select(exp.Count(this=exp.Star())).from_(ddl.table(name))
        return int(self.query(tree).column(0)[0].as_py())

    def checkpoint(self) -> None:
        self._writer_cursor.execute("CHECKPOINT")

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._db.close()
