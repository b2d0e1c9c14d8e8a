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
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from sqlglot import exp

from aggregata.errors import BadRequest, CollectionNotFound, Conflict, QueryTimeout
from aggregata.model.arrow import to_arrow
from aggregata.model.documents import Batch
from aggregata.model.mapping import Mapping
from aggregata.sql import ddl
from aggregata.sql.dialects import render
from aggregata.storage.engine import (
    DOCUMENTS,
    Collection,
    Prepare,
    WriteResult,
    validate_collection_name,
)

CATALOG_TABLE = "_aggregata_catalog"
MAX_GROUP_ROWS = 200_000


@dataclass
class _WriteRequest:
    name: str
    batch: Batch
    prepare: Prepare | None
    future: Future[WriteResult] = field(default_factory=Future)


class DuckDBEngine:
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
        self._queue: queue.Queue[_WriteRequest | None] = queue.Queue()
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

    def list_collections(self) -> list[Collection]:
        return sorted(self._collections.values(), key=lambda c: c.name)

    def get_collection(self, name: str) -> Collection:
        coll = self._collections.get(name)
        if coll is None:
            raise CollectionNotFound(name)
        return coll

    def create_collection(
        self,
        name: str,
        mapping: Mapping,
        *,
        kind: str = DOCUMENTS,
        settings: dict[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Collection:
        validate_collection_name(name)
        with self._catalog_lock:
            existing = self._collections.get(name)
            if existing is not None:
                if exist_ok:
                    return existing
                raise Conflict(f"collection [{name}] already exists")
            coll = Collection(name, kind, mapping, settings or {})
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
            cur.execute("COMMIT")
            del self._collections[name]

    def update_settings(self, name: str, settings: dict[str, Any]) -> Collection:
        with self._catalog_lock:
            coll = replace(self.get_collection(name), settings=settings)
            self._save_catalog(self._db.cursor(), coll)
            self._collections[name] = coll
            return coll

    # -- writes ----------------------------------------------------------------------------

    def write(self, name: str, batch: Batch, prepare: Prepare | None = None) -> WriteResult:
        """Store a validated batch; returns once committed. Blocks the calling thread."""
        return self.submit(name, batch, prepare).result()

    def submit(self, name: str, batch: Batch, prepare: Prepare | None = None) -> Future[WriteResult]:
        request = _WriteRequest(name, batch, prepare)
        self._queue.put(request)
        return request.future

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            rows = first.batch.size
            while rows < MAX_GROUP_ROWS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                group.append(nxt)
                rows += nxt.batch.size
            self._commit_group(group)

    def _commit_group(self, group: list[_WriteRequest]) -> None:
        """Apply a group of writes in one transaction; on failure, retry each alone."""
        cur = self._writer_cursor
        pending: dict[str, Collection] = {}
        try:
            cur.execute("BEGIN")
            for request in group:
                self._evolve(cur, request, pending)
            results = self._append(cur, group, pending)
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
        """One ``INSERT`` per collection for the whole group: appends are cheaper in bulk."""
        stored: dict[str, set[str]] = {}
        for name, coll in pending.items():
            tables = [
                r.batch.table if r.batch.table is not None else to_arrow(r.batch.rows, coll.mapping)
                for r in group
                if r.name == name and r.batch.size
            ]
            stored[name] = self._insert(cur, name, tables) if tables else set()
        results = []
        for request in group:
            batch, mine = request.batch, stored[request.name]
            ids = batch.ids
            duplicates = [i for i in ids if i not in mine]
            mine.difference_update(ids)  # a later request in the group with the same id is a duplicate
            mapping = pending[request.name].mapping
            results.append(WriteResult(len(ids) - len(duplicates), duplicates, mapping, batch))
        return results

    def _insert(self, cur: duckdb.DuckDBPyConnection, name: str, tables: list[pa.Table]) -> set[str]:
        data = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        source = f"__batch_{next(self._sources)}"
        cur.register(source, data)
        try:
            statement = ddl.insert_ignore(name, source, data.column_names)
            return {row[0] for row in cur.sql(self.render(statement)).fetchall()}
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
