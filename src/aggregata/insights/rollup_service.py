"""Rollup maintenance and access: the write listener, the catalog, refreshes.

``RollupListener`` keeps every event collection's rollups in step with its rows inside
each write's transaction (see ``insights/rollups.py`` for what they hold).
``RollupService`` is the IO side the rest of the app uses: it registers the listener with
the engine, tells the trends planner what a collection's rollups were built with, and
rebuilds rollups for a time range (``aggregata rollup refresh``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlglot import exp

from aggregata.insights.buckets import epoch_ms
from aggregata.insights.rollups import (
    GRAINS,
    RollupSpec,
    apply,
    build,
    built_query,
    catalog_ddl,
    day_ceil,
    day_floor,
    day_ranges,
    drop_all,
    floor_ms,
    read_built,
    rebuild,
    spec_for,
)
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Collection, Engine, Transaction, WriteListener


@dataclass
class _Pending:
    """What one transaction learned: collections checked, days to rebuild before commit."""

    ready: dict[str, bool] = field(default_factory=dict)
    dirty: dict[str, set[int]] = field(default_factory=dict)
    colls: dict[str, Collection] = field(default_factory=dict)


class RollupListener:
    """Keeps rollups in step with writes, inside their transactions (a ``WriteListener``)."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock

    def version(self) -> int:
        return epoch_ms(self.clock()) * 1000

    def _pending(self, tx: Transaction) -> _Pending:
        state = tx.state.get("rollups")
        if not isinstance(state, _Pending):
            state = tx.state["rollups"] = _Pending()
        return state

    def _ensure(self, tx: Transaction, spec: RollupSpec, coll: Collection) -> bool:
        """True when the rollups were already current; else build them now (False)."""
        pending = self._pending(tx)
        if pending.ready.get(spec.collection):
            return True
        tx.execute(catalog_ddl(tx.dialect))
        params = Params()
        built = read_built(
            tx.execute(built_query(spec.collection, params), params.values).to_pylist(), spec.collection
        )
        pending.ready[spec.collection] = True
        if built == spec:
            return True
        build(tx, spec, coll, self.version())
        return False

    def inserted(self, tx: Transaction, coll: Collection, rows: exp.Expr, columns: list[str]) -> None:
        spec = spec_for(coll)
        if spec is not None and self._ensure(tx, spec, coll):
            apply(tx, spec, rows, columns)

    def removing(self, tx: Transaction, coll: Collection, rows: exp.Expr) -> None:
        spec = spec_for(coll)
        if spec is None or not self._ensure(tx, spec, coll):
            return
        day = floor_ms(col(spec.timestamp), GRAINS["day"]).as_("day")
        found = tx.execute(exp.select(day).distinct().from_(rows.copy()))
        pending = self._pending(tx)
        pending.dirty.setdefault(coll.name, set()).update(
            d for d in found.column(0).to_pylist() if d is not None
        )
        pending.colls[coll.name] = coll

    def committing(self, tx: Transaction) -> None:
        pending = self._pending(tx)
        for name, days in pending.dirty.items():
            coll = pending.colls[name]
            spec = spec_for(coll)
            if spec is None:
                continue
            for start, end in day_ranges(days):
                rebuild(tx, spec, coll, start, end)
        pending.dirty.clear()

    def dropped(self, tx: Transaction, name: str) -> None:
        tx.execute(catalog_ddl(tx.dialect))
        drop_all(tx, name, self.version())


class TransactionalEngine(Engine, Protocol):
    """An engine that runs listeners in its write transactions (DuckDB)."""

    def add_listener(self, listener: WriteListener) -> None: ...

    def transaction(self, fn: Callable[[Transaction], Any]) -> Any: ...


class RollupService:
    """Rollups of an engine's event collections: built-with specs, refreshes.

    On an engine without write listeners (``add_listener``), rollups are never built and
    every trends query reads raw events.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.listener = RollupListener(clock)
        self.enabled = hasattr(engine, "add_listener") and hasattr(engine, "transaction")
        if self.enabled:
            tx_engine: TransactionalEngine = engine  # type: ignore[assignment]
            tx_engine.transaction(lambda tx: tx.execute(catalog_ddl(tx.dialect)))
            tx_engine.add_listener(self.listener)

    def built(self, collection: str) -> RollupSpec | None:
        """What ``collection``'s rollups hold now (None: no rollups)."""
        if not self.enabled:
            return None
        params = Params()
        rows = self.engine.query(built_query(collection, params), params.values).to_pylist()
        return read_built(rows, collection)

    def _transaction(self, fn: Callable[[Transaction], Any]) -> Any:
        tx_engine: TransactionalEngine = self.engine  # type: ignore[assignment]
        return tx_engine.transaction(fn)

    def ensure(self, collection: str) -> RollupSpec | None:
        """Build ``collection``'s rollups if they are missing or outdated; what they hold."""
        coll = self.engine.get_collection(collection)
        spec = spec_for(coll)
        if not self.enabled or spec is None:
            return None
        if self.built(collection) != spec:
            self._transaction(
                lambda tx: build(tx, spec, self.engine.get_collection(collection), self.listener.version())
            )
        return spec

    def ensure_all(self) -> list[str]:
        """Build missing rollups of every event collection (at startup); their names."""
        return [c.name for c in self.engine.list_collections() if self.ensure(c.name) is not None]

    def refresh(
        self, collection: str, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, Any]:
        """Rebuild the rollups of ``[start, end)`` (widened to UTC days) from the events;
        without a range, rebuild them whole."""
        spec = self.ensure(collection)
        if spec is None:
            return {"collection": collection, "rollups": False}
        if start is None or end is None:
            self._transaction(
                lambda tx: build(tx, spec, self.engine.get_collection(collection), self.listener.version())
            )
            return {"collection": collection, "rollups": True, "from": None, "to": None}
        lo, hi = day_floor(start), day_ceil(end)
        self._transaction(lambda tx: rebuild(tx, spec, self.engine.get_collection(collection), lo, hi))
        return {"collection": collection, "rollups": True, "from": lo.isoformat(), "to": hi.isoformat()}
