"""The storage engine interface every backend implements (DuckDB embedded, ClickHouse via chDB).

Engines are IO only: they own connections, DDL, the catalog of collections and the
execution of compiled sqlglot trees. They never interpret the DSL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.model.documents import Batch
from aggregata.model.mapping import Mapping

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
    and the documents had to be validated again.
    """

    inserted: int
    duplicate_ids: list[str]
    mapping: Mapping
    batch: Batch


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

    def write(self, name: str, batch: Batch, prepare: Prepare | None = None) -> WriteResult:
        """Store ``batch``; ``prepare`` re-validates the documents if the mapping moved."""
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
