"""The embedded DuckDB engine: one database file, one writer thread, many readers.

Writes go through a single writer thread that groups whatever requests are waiting into
one transaction (group commit): a request's future resolves only after DuckDB has
committed (and synced its write-ahead log), so an HTTP 2xx means the data is on disk,
while concurrent requests share the cost of a commit. Ids already stored are found with
an in-memory ``IdIndex`` of id hashes (rebuilt from the table when a collection is first
written after opening) instead of a primary key: DuckDB's ART index cost more than the
append itself. Reads run on per-thread cursors and are interrupted when they exceed the
query timeout.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sqlglot import exp

from aggregata.errors import BadRequest, QueryTimeout
from aggregata.model.arrow import to_arrow
from aggregata.model.documents import Batch
from aggregata.model.mapping import ID_FIELD, Mapping
from aggregata.sql import ddl
from aggregata.sql.dialects import RenderMemo, render
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
from aggregata.storage.ids import Hashes, IdIndex, hash_ids
from aggregata.storage.watchdog import Watchdog

T = TypeVar("T")
MAX_GROUP_ROWS = 200_000
IDLE_S = 0.25  # how long the writer waits for work before asking listeners for theirs
ARROW_BATCH_ROWS = 131_072  # rows per Arrow record batch (DuckDB's default)


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


def arrow_result(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None) -> pa.Table:
    """Run one statement and fetch its rows as Arrow, the way DuckDB's own relations do.

    DuckDB 2.0's Python API is a pure-Python relation layer over the engine:
    ``cur.sql(q).to_arrow_table()`` parses and binds the statement to build a lazy relation,
    then submits it, which parses and binds it again. On a 10 ms aggregation that is ~0.6
    ms (6%) of overhead; its DB-API ``execute`` skips it but warns of an extra copy when
    asked for Arrow. ``_submit`` is the single call both end in: the statement runs once,
    its rows in the Arrow encoding the relation would give. It is not public, so a DuckDB
    without it gets the public way (correct, ~0.6 ms slower) instead of an error.
    """
    submit = getattr(cur, "_submit", None)
    if submit is None:
        table: pa.Table = cur.sql(sql, params=params or None).to_arrow_table()
        return table
    return submit(sql, params or None, "arrow", ARROW_BATCH_ROWS).arrow_table()


@functools.lru_cache(maxsize=256)
def _append_sql(name: str, source: str, columns: tuple[str, ...]) -> str:
    """The append statement, rendered once per shape: building and rendering it took ~0.6 ms,
    and every write of one shape runs the same one."""
    return render(ddl.insert(name, exp.to_identifier(source), list(columns)), DuckDBEngine.dialect)


class _Tx:
    """The writer's open transaction as listeners see it (see ``storage.engine.Transaction``)."""

    dialect = "duckdb"

    def __init__(
        self, cur: duckdb.DuckDBPyConnection, pending: dict[str, Collection], memo: RenderMemo
    ) -> None:
        self.cur = cur
        self.pending = pending
        self.state: dict[str, Any] = {}
        # Listeners run the same statement trees in every write: rendered once.
        self._memo = memo

    def execute(self, tree: exp.Expr, params: dict[str, Any] | None = None) -> pa.Table:
        sql = self._memo(tree)
        if isinstance(tree, exp.Query):
            return arrow_result(self.cur, sql, params)
        # A write answers with its row count at most: fetched as a row, which costs half of
        # an Arrow result's ~1.5 ms, on statements listeners run in every write.
        rows = self.cur.execute(sql, params or None).fetchall()
        return pa.table({"Count": [r[0] for r in rows]}) if rows else pa.table({})


class DuckDBEngine(BaseEngine):
    """Storage on an embedded DuckDB database (``path=None`` keeps it in memory)."""

    dialect = "duckdb"

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        query_timeout_s: float | None = 30.0,
        checkpoint_threshold: str | None = None,
    ) -> None:
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        if checkpoint_threshold:
            config["checkpoint_threshold"] = checkpoint_threshold
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
        self._ids: dict[str, IdIndex] = {}
        self._memo = RenderMemo(self.dialect)
        self._watchdog = Watchdog()
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
        return {name: from_catalog(name, kind, m, s) for name, kind, m, s in rows}

    def _save_catalog(self, coll: Collection, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Store ``coll``'s catalog row in ``cur``'s transaction (``None``: on its own)."""
        cur = cur if cur is not None else self._db.cursor()
        cur.execute(
            f'INSERT OR REPLACE INTO "{CATALOG_TABLE}" VALUES ($name, $kind, $mapping, $settings)',
            to_catalog(coll),
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
                self._save_catalog(coll, cur)
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
            tx = _Tx(cur, {}, self._memo)
            for listener in self._listeners:
                listener.dropped(tx, name)
            cur.execute("COMMIT")
            notify_committed(self._listeners, tx)
            del self._collections[name]
            self._ids.pop(name, None)

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
        request = _WriteRequest(name, batch, prepare, frozenset(overwrite), tuple(delete))
        self._queue.put(request)
        return request.future.result()

    def transaction(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` in a writer transaction of its own, in order with queued writes."""
        work = _Work(fn)
        self._queue.put(work)
        result: T = work.future.result()
        return result

    def _write_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                self._maintain(idle=True)
                continue
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
            self._maintain(idle=False)
            if work is not None:
                self._run_work(work)

    def _maintain(self, idle: bool) -> None:
        run_due(self._listeners, idle, lambda fn: self._run_work(_Work(fn), check=True))

    def _run_work(self, work: _Work, *, check: bool = False) -> None:
        """Run queued work in its own transaction (``check``: raise its error here too)."""
        cur = self._writer_cursor
        self._tx = _Tx(cur, {}, self._memo)
        try:
            cur.execute("BEGIN")
            result = work.fn(self._tx)
            cur.execute("COMMIT")
        except Exception as exc:
            cur.execute("ROLLBACK")
            work.future.set_exception(exc)
        else:
            notify_committed(self._listeners, self._tx)
            work.future.set_result(result)
        finally:
            self._tx = None
        if check:
            work.future.result()

    def _commit_group(self, group: list[_WriteRequest]) -> None:
        """Apply a group of writes in one transaction; on failure, retry each alone."""
        cur = self._writer_cursor
        pending: dict[str, Collection] = {}
        self._tx = tx = _Tx(cur, pending, self._memo)
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
            for request in group:  # they may hold hashes of rows that were not committed
                self._ids.pop(request.name, None)
            if len(group) == 1:
                group[0].future.set_exception(exc)
            else:
                for request in group:
                    self._commit_group([request])
            return
        with self._catalog_lock:
            self._collections.update(pending)
        notify_committed(self._listeners, tx)
        for request, result in zip(group, results, strict=True):
            request.future.set_result(result)

    def _evolve(
        self, cur: duckdb.DuckDBPyConnection, request: _WriteRequest, pending: dict[str, Collection]
    ) -> None:
        """Apply the batch's mapping changes (re-validating it first if they conflict)."""
        coll = pending.get(request.name) or self.get_collection(request.name)
        evolved, request.batch, changes = self._reconcile(coll, request.batch, request.prepare)
        for change in changes:
            cur.execute(self.render(change))
        if evolved is not coll:
            self._save_catalog(evolved, cur)
        pending[coll.name] = evolved

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
        """Delete documents by id; the ids that were stored."""
        wanted = list(ids)
        if not wanted:
            return []
        ids = pa.table({ID_FIELD: pa.array(wanted, type=pa.string())})
        with self._registered(cur, ids, "__aggregata_ids") as source:
            matches = id_in(source)
            if self._listeners and self._tx is not None:
                self._removing(self._tx, self._tx.pending[name], matches)
            statement = exp.delete(ddl.table(name), where=matches)
            statement.set("returning", exp.Returning(expressions=[exp.column(ID_FIELD, quoted=True)]))
            return [row[0] for row in cur.execute(self.render(statement)).fetchall()]

    @staticmethod
    @contextmanager
    def _registered(
        cur: duckdb.DuckDBPyConnection, data: pa.Table, source: str = "__aggregata_rows"
    ) -> Iterator[exp.Identifier]:
        """``data`` visible to ``cur`` as ``source`` while the block runs. Only the writer
        registers on its cursor, one table at a time, so names repeat: the statements
        that read them then repeat too (and listeners can reuse theirs)."""
        cur.register(source, data)
        try:
            yield exp.to_identifier(source)
        finally:
            cur.unregister(source)

    def _index(self, cur: duckdb.DuckDBPyConnection, name: str) -> IdIndex:
        """The collection's id index, built from its ids (streamed) on first use."""
        index = self._ids.get(name)
        if index is None:
            index = IdIndex()
            for batch in cur.sql(self.render(select_ids(name))).to_arrow_reader(1_000_000):
                index.add(hash_ids(batch.column(0).to_pylist()))
            self._ids[name] = index
        return index

    def _insert(self, cur: duckdb.DuckDBPyConnection, name: str, tables: list[pa.Table]) -> set[str]:
        """Append the rows whose id is not stored yet (ids are unique within ``tables``)."""
        data = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        index = self._index(cur, name)
        ids: list[str] = data.column(ID_FIELD).to_pylist()
        hashes = hash_ids(ids)
        maybe = index.maybe_contains(hashes)
        if maybe.any():
            keep = self._not_stored(cur, name, ids, maybe)
            if keep is not None:
                data, hashes = data.filter(pa.array(keep)), hashes[keep]
                ids = [x for x, k in zip(ids, keep, strict=True) if k]
        if ids:
            with self._registered(cur, data) as source:
                self._append_rows(cur, name, source, data.column_names, hashes)
        return set(ids)

    def _append_rows(
        self,
        cur: duckdb.DuckDBPyConnection,
        name: str,
        source: exp.Identifier,
        columns: list[str],
        hashes: Hashes,
    ) -> None:
        cur.execute(_append_sql(name, source.name, tuple(columns)))
        self._ids[name].add(hashes)
        if self._listeners and self._tx is not None:
            for listener in self._listeners:
                listener.inserted(self._tx, self._tx.pending[name], source, columns)

    def _not_stored(
        self, cur: duckdb.DuckDBPyConnection, name: str, ids: list[str], maybe: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_] | None:
        """Which ids the table does not hold, checked exactly where the hashes matched
        (hashes can collide); None when it holds none of them."""
        candidates = pa.array([x for x, m in zip(ids, maybe, strict=True) if m], type=pa.string())
        with self._registered(cur, pa.table({ID_FIELD: candidates}), "__aggregata_ids") as source:
            found = select_ids(name).where(id_in(source))
            stored = {row[0] for row in cur.execute(self.render(found)).fetchall()}
        if not stored:
            return None
        return np.array([x not in stored for x in ids], dtype=np.bool_)

    # -- reads -----------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._db.cursor()
            self._local.cursor = cur
        return cur

    def query_sql(
        self, sql: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> pa.Table:
        cur = self._cursor()
        limit = timeout if timeout is not None else self.query_timeout_s
        timer = self._watchdog.arm(limit, cur.interrupt) if limit else None
        try:
            return arrow_result(cur, sql, params)
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"query exceeded the timeout of {limit}s and was cancelled") from exc
        finally:
            if timer is not None:
                self._watchdog.disarm(timer)

    def checkpoint(self) -> None:
        self._writer_cursor.execute("CHECKPOINT")

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._watchdog.close()
        self._db.close()
