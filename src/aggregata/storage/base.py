"""What the DuckDB and ClickHouse engines share, written once.

The ``Engine`` protocol (``storage.engine``) stays the public contract: code that uses an
engine types it as ``Engine``. ``BaseEngine`` is only the implementation both backends
inherit: reads over their ``query_sql``, the catalog's row format and settings updates,
write listeners, the schema evolution of a write, and the ``_id`` lookups they build.
Where the engines really differ (transactions, how rows enter, how a query is cancelled)
each keeps its own code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import orjson
import pyarrow as pa
from sqlglot import exp

from aggregata.model.documents import Batch
from aggregata.model.mapping import ID_FIELD, Mapping
from aggregata.sql import ddl
from aggregata.sql.dialects import RenderMemo, render
from aggregata.storage.engine import Collection, CollectionCache, Prepare, Transaction, WriteListener

CATALOG_TABLE = "_aggregata_catalog"


def to_catalog(coll: Collection) -> dict[str, str]:
    """A collection as a catalog row stores it: mapping and settings as JSON text."""
    return {
        "name": coll.name,
        "kind": coll.kind,
        "mapping": orjson.dumps(coll.mapping.to_json()).decode(),
        "settings": orjson.dumps(coll.settings).decode(),
    }


def from_catalog(name: str, kind: str, mapping: str, settings: str) -> Collection:
    """The collection a catalog row describes (the inverse of ``to_catalog``)."""
    return Collection(name, kind, Mapping.from_json(orjson.loads(mapping)), orjson.loads(settings))


def select_ids(name: str) -> exp.Select:
    """``SELECT _id FROM name``."""
    return exp.select(exp.column(ID_FIELD, quoted=True)).from_(ddl.table(name))


def id_in(source: exp.Expr) -> exp.Expr:
    """``_id IN (SELECT _id FROM source)``: the rows whose id ``source`` lists."""
    id_col = exp.column(ID_FIELD, quoted=True)
    return id_col.isin(query=exp.select(id_col.copy()).from_(source.copy()))


class BaseEngine(CollectionCache, ABC):
    """The code both engines share (see the module's docstring); subclasses run the SQL."""

    dialect: str
    query_timeout_s: float | None
    _listeners: list[WriteListener]
    # Held around every catalog change (the cache and the catalog table change together).
    _catalog_lock: AbstractContextManager[Any]
    # SQL of the trees queried again (cached search plans, listener statements).
    _memo: RenderMemo

    @abstractmethod
    def query_sql(
        self, sql: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> pa.Table:
        """Run SQL in this engine's dialect; cancel it past ``timeout`` (else ``query_timeout_s``)."""

    @abstractmethod
    def _save_catalog(self, coll: Collection) -> None:
        """Store ``coll``'s catalog row, in place of the one stored under its name."""

    def render(self, tree: exp.Expr) -> str:
        return render(tree, self.dialect)

    def query(
        self, tree: exp.Expr, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> pa.Table:
        """Run a compiled tree with bound parameters; it is cancelled past the timeout."""
        return self.query_sql(self._memo(tree), params, timeout=timeout)

    def count(self, name: str) -> int:
        self.get_collection(name)
        tree = exp.select(exp.Count(this=exp.Star())).from_(ddl.table(name))
        return int(self.query(tree).column(0)[0].as_py())

    def update_settings(self, name: str, settings: dict[str, Any]) -> Collection:
        with self._catalog_lock:
            coll = replace(self.get_collection(name), settings=settings)
            self._save_catalog(coll)
            self._collections[name] = coll
            return coll

    def add_listener(self, listener: WriteListener) -> None:
        """Keep derived data (rollups) in step with writes (see ``WriteListener``)."""
        self._listeners.append(listener)

    def _reconcile(
        self, coll: Collection, batch: Batch, prepare: Prepare | None
    ) -> tuple[Collection, Batch, list[exp.Expr]]:
        """``coll`` with the batch's mapping changes, the batch to store, and the DDL they need.

        The changes conflict with the stored mapping when a concurrent write changed it
        after the batch was validated: then ``prepare`` validates the batch again (without
        it, the conflict is raised). ``coll`` comes back as is when the mapping stays.
        """
        try:
            mapping, changes = ddl.reconcile(coll.name, coll.mapping, batch.changed, self.dialect)
        except ddl.MappingConflict:
            if prepare is None:
                raise
            batch = prepare(coll.mapping)
            mapping, changes = ddl.reconcile(coll.name, coll.mapping, batch.changed, self.dialect)
        if mapping is not coll.mapping:
            coll = replace(coll, mapping=mapping)
        return coll, batch, changes

    def _removing(self, tx: Transaction, coll: Collection, where: exp.Expr) -> None:
        """Show listeners the stored rows of ``coll`` that ``where`` selects, before they go."""
        doomed = exp.select("*").from_(ddl.table(coll.name)).where(where.copy()).subquery("removed")
        for listener in self._listeners:
            listener.removing(tx, coll, doomed)
