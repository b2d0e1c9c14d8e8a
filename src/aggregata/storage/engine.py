"""The storage engine interface every backend implements (DuckDB embedded, ClickHouse via chDB).

Engines are IO only: they own connections, DDL, the catalog of collections and the
execution of compiled sqlglot trees. They never interpret the DSL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
from sqlglot import exp

from aggregata.errors import BadRequest, CollectionNotFound, Conflict
from aggregata.model.documents import Batch
from aggregata.model.mapping import Mapping

log = logging.getLogger(__name__)

_COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,127}$")

Prepare = Callable[[Mapping], Batch]

DOCUMENTS = "documents"
EVENTS = "events"


def validate_collection_name(name: str) -> str:
    """Collection names are lower-case identifiers, like Elasticsearch index names."""
    if not _COLLECTION_NAME.match(name):
        raise BadRequest(
            f"invalid collection name [{name[:60]}]: use 1-128 lower-case letters, digits,"
            " '_' or '-', starting with a letter or digit",
            type="invalid_index_name_exception",
        )
    return name


@dataclass(frozen=True)
class Collection:
    """A collection as the catalog knows it."""

    name: str
    kind: str
    mapping: Mapping
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    """What one committed write did: rows stored, ids already there, the batch as written.

    ``batch`` may differ from the one submitted when a concurrent write changed the mapping
    and the documents had to be validated again. ``overwritten_ids`` are stored documents the
    batch replaced (ids the caller allowed to overwrite); ``deleted_ids`` the stored documents
    the write deleted. Both are empty for a plain append.
    """

    inserted: int
    duplicate_ids: list[str]
    mapping: Mapping
    batch: Batch
    overwritten_ids: list[str] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)


class CollectionCache:
    """The in-memory view of the catalog that every engine keeps (its table holds the truth).

    Engines load ``_collections`` at start and update it only after a catalog change is
    stored, so reads never see a collection the database does not have.
    """

    _collections: dict[str, Collection]

    def list_collections(self) -> list[Collection]:
        return sorted(self._collections.values(), key=lambda c: c.name)

    def get_collection(self, name: str) -> Collection:
        coll = self._collections.get(name)
        if coll is None:
            raise CollectionNotFound(name)
        return coll

    def _new_collection(
        self, name: str, mapping: Mapping, kind: str, settings: dict[str, Any] | None, exist_ok: bool
    ) -> tuple[Collection, bool]:
        """The collection to create (``True``), or the existing one when ``exist_ok`` (``False``).

        Callers hold their catalog lock around this and the DDL that follows.
        """
        validate_collection_name(name)
        existing = self._collections.get(name)
        if existing is not None:
            if exist_ok:
                return existing, False
            raise Conflict(f"collection [{name}] already exists")
        return Collection(name, kind, mapping, settings or {}), True


class Engine(Protocol):
    dialect: str

    def list_collections(self) -> list[Collection]: ...

    def get_collection(self, name: str) -> Collection: ...

    def create_collection(
        self,
        name: str,
        mapping: Mapping,
        *,
        kind: str = DOCUMENTS,
        settings: dict[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Collection: ...

    def drop_collection(self, name: str) -> None: ...

    def write(
        self,
        name: str,
        batch: Batch,
        prepare: Prepare | None = None,
        *,
        overwrite: Iterable[str] = (),
        delete: Iterable[str] = (),
    ) -> WriteResult:
        """Store ``batch`` in one committed transaction; ``prepare`` re-validates it if the mapping moved.

        By default an ``_id`` already stored is a duplicate and keeps the stored document
        (retries are free). Ids in ``overwrite`` instead replace the stored document whole
        (Elasticsearch's ``index`` operation); ids in ``delete`` are removed before the batch
        is stored. All of it commits atomically, and a write sees every write queued before it.
        """
        ...

    def query(
        self,
        tree: exp.Expr,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> pa.Table: ...

    def count(self, name: str) -> int: ...

    def close(self) -> None: ...


class Transaction(Protocol):
    """The open write transaction a ``WriteListener`` runs its statements in.

    ``state`` lives as long as the transaction, for listeners to carry work from one
    callback to the next (``committing`` sees what ``removing`` collected).
    """

    dialect: str
    state: dict[str, Any]

    def execute(self, tree: exp.Expr, params: dict[str, Any] | None = None) -> pa.Table: ...


class WriteListener(Protocol):
    """Derived data kept in step with a collection's rows, inside the writes' transaction.

    Engines call ``inserted`` after rows are stored (``rows``: a relation of exactly the
    rows stored, with ``columns``), ``removing`` before stored rows are deleted or
    overwritten (``rows``: a relation of those rows), ``committing`` just before the
    commit, ``committed`` after it, and ``dropped`` when a collection is dropped; ``due``
    lets a listener defer work (and batch it) to a transaction of its own. A listener that raises fails the
    write, so derived data never drifts.
    """

    def inserted(self, tx: Transaction, coll: Collection, rows: exp.Expr, columns: list[str]) -> None: ...

    def removing(self, tx: Transaction, coll: Collection, rows: exp.Expr) -> None: ...

    def committing(self, tx: Transaction) -> None: ...

    def dropped(self, tx: Transaction, name: str) -> None:
        """Collection ``name`` is being dropped (its derived data goes with it)."""
        ...

    def committed(self, tx: Transaction) -> None:
        """``tx`` committed: what it did is durable (not called when it rolled back)."""
        ...

    def due(self, idle: bool) -> Callable[[Transaction], Any] | None:
        """Deferred maintenance to run now in a writer transaction of its own, if any.

        Asked after every committed write and whenever the writer is ``idle``.
        """
        ...


def notify_committed(listeners: Iterable[WriteListener], tx: Transaction) -> None:
    """Tell listeners ``tx`` committed. A failing listener is logged: the data is stored."""
    for listener in listeners:
        try:
            listener.committed(tx)
        except Exception:
            log.exception("write listener failed after a commit")


def run_due(
    listeners: Iterable[WriteListener], idle: bool, run: Callable[[Callable[[Transaction], Any]], Any]
) -> None:
    """Run, through ``run``, the deferred work listeners say is due (``WriteListener.due``).

    Failures are logged, not raised: the write that prompted the work already succeeded,
    and the work is planned again when next due (readers never depend on it having run).
    """
    for listener in listeners:
        try:
            fn = listener.due(idle)
            if fn is not None:
                run(fn)
        except Exception:
            log.exception("write listener maintenance failed")
